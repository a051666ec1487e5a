"""Bayesian Knowledge Tracing fitted by EM (Baum-Welch), vectorised over every student-skill sequence at once.

Public API (also used by the policy simulator to fit its students to real data):

    fit_bkt(skills, students, correct, *, items=None, forgetting=False, item_guess_slip=False, n_iter=60)
        -> dict[int, BKTParams]          # one BKTParams per skill id

    BKTModel(forgetting=..., item_guess_slip=...).fit(log).predict(log)   # the evaluation form

`skills`, `students`, `correct` are equal-length 1-D arrays, one entry per answer, each student's answers in time
order (rows of different students may interleave). Options:
- ``forgetting``: also fit P(known -> unknown) per skill (Khajah et al. 2016, "BKT+forgets").
- ``item_guess_slip``: guess and slip per item (KT-IDEM, Pardos & Heffernan 2011), shrunk toward the skill's values
  by `item_prior_strength` pseudo-answers so that rare items do not get extreme parameters.

How the vectorisation works: every (student, skill) pair is one hidden Markov chain. Chains are sorted by length,
longest first, and answers laid out position-major, so the answers at position t of all chains still running form one
contiguous slice whose chains are 0..n_t-1. The forward and backward passes loop over positions (at most the longest
chain), never over answers or skills. This module knows nothing of storage or Django; the online update the tutor
runs lives in `learner_model/knowledge.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learner_model.data import IdMap, Interactions
from learner_model.knowledge import BKTParams

_EPS = 1e-6
_MAX_GUESS_SLIP = 0.45  # keeps guess + slip < 1: a correct answer must be evidence of knowing


@dataclass(frozen=True)
class _Layout:
    """Answers reordered position-major; see the module docstring."""

    rows: np.ndarray  # (N,) original row index of each position-major slot
    offsets: np.ndarray  # (T+1,) slot offsets of each position t
    chain_skill: np.ndarray  # (C,) skill row of each chain, chains ordered longest first
    correct: np.ndarray  # (N,) bool, position-major
    skill: np.ndarray  # (N,) skill row, position-major
    item: np.ndarray  # (N,) item row, position-major (0 when items are not used)
    has_next: np.ndarray  # (N,) bool: the chain continues after this answer


def _layout(skill: np.ndarray, student: np.ndarray, correct: np.ndarray, item: np.ndarray) -> _Layout:
    n = len(skill)
    # chain id per answer; stable sort keeps time order inside a chain
    key = student.astype(np.int64) * (int(skill.max(initial=0)) + 1) + skill
    _, chain = np.unique(key, return_inverse=True)
    chain = chain.ravel()
    by_chain = np.argsort(chain, kind="stable")
    lengths = np.bincount(chain)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.empty(n, np.int64)
    pos[by_chain] = np.arange(n) - np.repeat(starts, lengths)
    rank_of_chain = np.empty(len(lengths), np.int64)
    rank_of_chain[np.argsort(-lengths, kind="stable")] = np.arange(len(lengths))
    rank = rank_of_chain[chain]
    rows = np.lexsort((rank, pos))
    counts = np.bincount(pos)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    chain_skill = np.empty(len(lengths), np.int64)
    chain_skill[rank] = skill
    sorted_lengths = lengths[np.argsort(-lengths, kind="stable")]
    has_next = (pos[rows] + 1) < sorted_lengths[rank[rows]]
    return _Layout(rows, offsets, chain_skill, correct[rows].astype(bool), skill[rows], item[rows], has_next)


@dataclass
class _Params:
    prior: np.ndarray  # (K,) P(known) at a chain's first answer
    learn: np.ndarray  # (K,)
    forget: np.ndarray  # (K,)
    guess: np.ndarray  # (K,) or (I,) with item-level guess/slip
    slip: np.ndarray  # (K,) or (I,)


def _emissions(c: np.ndarray, g: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(observed answer | known), P(observed answer | unknown)."""
    return np.where(c, 1 - s, s), np.where(c, g, 1 - g)


def _forward(lay: _Layout, p: _Params, item_level: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted P(known) before each answer, filtered P(known) after it, and P(answer | past), position-major."""
    n = len(lay.rows)
    before, after, norm = np.empty(n), np.empty(n), np.empty(n)
    known = p.prior[lay.chain_skill].copy()  # (C,)
    gs_index = lay.item if item_level else lay.skill
    g, s = p.guess[gs_index], p.slip[gs_index]
    learn, forget = p.learn[lay.skill], p.forget[lay.skill]
    e1, e0 = _emissions(lay.correct, g, s)
    for t in range(len(lay.offsets) - 1):
        a, b = lay.offsets[t], lay.offsets[t + 1]
        k = known[: b - a]
        num = k * e1[a:b]
        den = num + (1 - k) * e0[a:b]
        f = num / den
        before[a:b], after[a:b], norm[a:b] = k, f, den
        known[: b - a] = f * (1 - forget[a:b]) + (1 - f) * learn[a:b]
    return before, after, norm


def _em_step(lay: _Layout, p: _Params, item_level: bool, n_items: int, item_prior_strength: float,
             forgetting: bool) -> tuple[_Params, float]:
    before, after, norm = _forward(lay, p, item_level)
    loglik = float(np.log(norm).sum())
    gs_index = lay.item if item_level else lay.skill
    e1, e0 = _emissions(lay.correct, p.guess[gs_index], p.slip[gs_index])
    learn, forget = p.learn[lay.skill], p.forget[lay.skill]
    n = len(lay.rows)
    gamma1 = np.empty(n)
    xi01, xi10 = np.zeros(n), np.zeros(n)
    # backward messages of the chains still running at t+1, scaled by P(answer_{t+1} | past)
    beta0 = np.ones(len(lay.chain_skill))
    beta1 = np.ones(len(lay.chain_skill))
    for t in range(len(lay.offsets) - 2, -1, -1):
        a, b = lay.offsets[t], lay.offsets[t + 1]
        m = b - a
        nxt_a, nxt_b = lay.offsets[t + 1], lay.offsets[t + 2] if t + 2 < len(lay.offsets) else lay.offsets[t + 1]
        m_next = nxt_b - nxt_a  # chains 0..m_next-1 continue after position t
        b0, b1 = np.ones(m), np.ones(m)
        if m_next:
            sl = slice(nxt_a, nxt_b)
            w0 = e0[sl] * beta0[:m_next] / norm[sl]  # (m_next,)
            w1 = e1[sl] * beta1[:m_next] / norm[sl]
            lt, ft = learn[a:a + m_next], forget[a:a + m_next]
            b0[:m_next] = (1 - lt) * w0 + lt * w1
            b1[:m_next] = ft * w0 + (1 - ft) * w1
            f = after[a:a + m_next]
            xi01[a:a + m_next] = (1 - f) * lt * w1
            xi10[a:a + m_next] = f * ft * w0
        g1 = after[a:b] * b1
        gamma1[a:b] = g1 / (g1 + (1 - after[a:b]) * b0)
        beta0[:m], beta1[:m] = b0, b1
    gamma0 = 1 - gamma1
    k = len(p.prior)

    def per_skill(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        w = values if where is None else values * where
        return np.bincount(lay.skill, weights=w, minlength=k)

    first = slice(0, lay.offsets[1]) if len(lay.offsets) > 1 else slice(0, 0)
    prior_num = np.bincount(lay.skill[first], weights=gamma1[first], minlength=k)
    prior_den = np.bincount(lay.skill[first], minlength=k)
    nxt = lay.has_next.astype(float)
    c = lay.correct.astype(float)
    new = _Params(
        prior=(prior_num + 0.5) / (prior_den + 1.0),  # half a pseudo-chain each way: no 0/1 priors
        learn=(per_skill(xi01) + _EPS) / (per_skill(gamma0, nxt) + 2 * _EPS),
        forget=((per_skill(xi10) + _EPS) / (per_skill(gamma1, nxt) + 2 * _EPS)) if forgetting else np.zeros(k),
        guess=np.empty(0), slip=np.empty(0),
    )
    skill_guess = (per_skill(gamma0, c) + _EPS) / (per_skill(gamma0) + 2 * _EPS)
    skill_slip = (per_skill(gamma1, 1 - c) + _EPS) / (per_skill(gamma1) + 2 * _EPS)
    if item_level:
        item_skill = np.zeros(n_items, np.int64)
        item_skill[lay.item] = lay.skill  # an item's skill: the last one seen with it
        m0 = item_prior_strength
        new.guess = ((np.bincount(lay.item, gamma0 * c, n_items) + m0 * skill_guess[item_skill])
                     / (np.bincount(lay.item, gamma0, n_items) + m0))
        new.slip = ((np.bincount(lay.item, gamma1 * (1 - c), n_items) + m0 * skill_slip[item_skill])
                    / (np.bincount(lay.item, gamma1, n_items) + m0))
    else:
        new.guess, new.slip = skill_guess, skill_slip
    new.guess = np.clip(new.guess, _EPS, _MAX_GUESS_SLIP)
    new.slip = np.clip(new.slip, _EPS, _MAX_GUESS_SLIP)
    new.learn = np.clip(new.learn, _EPS, 1 - _EPS)
    new.forget = np.clip(new.forget, 0.0, 1 - _EPS)
    return new, loglik


def _initial(k: int, n_gs: int, forgetting: bool) -> _Params:
    return _Params(prior=np.full(k, 0.4), learn=np.full(k, 0.1), forget=np.full(k, 0.02 if forgetting else 0.0),
                   guess=np.full(n_gs, 0.2), slip=np.full(n_gs, 0.1))


@dataclass
class BKTModel:
    """Per-skill BKT (options: forgetting, item-level guess/slip) with the evaluation interface."""

    forgetting: bool = False
    item_guess_slip: bool = False
    n_iter: int = 60
    tol: float = 1e-6  # stop when the log-likelihood improves by less than this fraction
    item_prior_strength: float = 5.0  # pseudo-answers pulling an item's guess/slip toward its skill's
    name: str = "bkt"

    def __post_init__(self) -> None:
        self.skills = IdMap(np.zeros(0, np.int64))
        self.items = IdMap(np.zeros(0, np.int64))
        self.params: _Params | None = None
        self.loglik_trace: list[float] = []
        self.item_skill = np.zeros(0, np.int64)  # (I,) skill row of each item row, with item-level guess/slip

    def _rows(self, log: Interactions) -> tuple[np.ndarray, np.ndarray]:
        skill = self.skills(log.skill)
        item = self.items(log.item) if self.item_guess_slip else np.zeros(len(log), np.int64)
        return skill, item

    def fit(self, train: Interactions, valid: Interactions | None = None) -> BKTModel:
        self.skills = IdMap.fit(train.skill)
        if self.item_guess_slip:
            self.items = IdMap.fit(train.item)
        skill, item = self._rows(train)
        lay = _layout(skill, train.student, train.correct, item)
        n_gs = self.items.size if self.item_guess_slip else self.skills.size
        p = _initial(self.skills.size, n_gs, self.forgetting)
        self.loglik_trace = []
        for _ in range(self.n_iter):
            p, ll = _em_step(lay, p, self.item_guess_slip, self.items.size, self.item_prior_strength,
                             self.forgetting)
            self.loglik_trace.append(ll)
            if len(self.loglik_trace) > 1 and abs(ll - self.loglik_trace[-2]) < self.tol * abs(ll):
                break
        self.params = p
        if self.item_guess_slip:
            self.item_skill = np.full(self.items.size, -1, np.int64)
            self.item_skill[item] = skill  # an item's skill: the last one seen with it
        return self

    def predict(self, log: Interactions) -> np.ndarray:
        """P(correct) for each answer given only the same student's earlier answers on its skill."""
        if self.params is None:
            raise RuntimeError("BKTModel.predict before fit")
        skill, item = self._rows(log)
        lay = _layout(skill, log.student, log.correct, item)
        before, _, _ = _forward(lay, self.params, self.item_guess_slip)
        gs = lay.item if self.item_guess_slip else lay.skill
        p_pos = before * (1 - self.params.slip[gs]) + (1 - before) * self.params.guess[gs]
        out = np.empty(len(log))
        out[lay.rows] = p_pos
        return out

    def skill_params(self) -> dict[int, BKTParams]:
        """Skill id -> BKTParams (guess/slip averaged over the skill's items with item-level guess/slip)."""
        if self.params is None:
            raise RuntimeError("BKTModel.skill_params before fit")
        p = self.params
        out = {}
        for row, sid in enumerate(self.skills.known):
            if self.item_guess_slip:
                rows = self._item_rows_of_skill(row)
                g = float(p.guess[rows].mean()) if len(rows) else 0.2
                s = float(p.slip[rows].mean()) if len(rows) else 0.1
            else:
                g, s = float(p.guess[row]), float(p.slip[row])
            out[int(sid)] = BKTParams(p_init=float(p.prior[row]), p_learn=float(p.learn[row]), p_guess=g,
                                      p_slip=s, p_forget=float(p.forget[row]))
        return out

    def _item_rows_of_skill(self, skill_row: int) -> np.ndarray:
        return np.flatnonzero(self.item_skill == skill_row)

    def state(self) -> dict[str, object]:
        if self.params is None:
            raise RuntimeError("BKTModel.state before fit")
        p = self.params
        return {"skills": self.skills.to_list(), "items": self.items.to_list(),
                "prior": p.prior.tolist(), "learn": p.learn.tolist(), "forget": p.forget.tolist(),
                "guess": p.guess.tolist(), "slip": p.slip.tolist()}

    def load_state(self, state: dict[str, object]) -> None:
        def arr(key: str) -> np.ndarray:
            return np.asarray(state[key], float)

        self.skills = IdMap.from_list(list(state["skills"]))  # type: ignore[call-overload]
        self.items = IdMap.from_list(list(state["items"]))  # type: ignore[call-overload]
        self.params = _Params(arr("prior"), arr("learn"), arr("forget"), arr("guess"), arr("slip"))


def fit_bkt(skills: np.ndarray, students: np.ndarray, correct: np.ndarray, *, items: np.ndarray | None = None,
            forgetting: bool = False, item_guess_slip: bool = False, n_iter: int = 60) -> dict[int, BKTParams]:
    """Fit BKT by EM; one `BKTParams` per skill id. See the module docstring for the array contract."""
    skills, students = np.asarray(skills, np.int64), np.asarray(students, np.int64)
    items_arr = np.full(len(skills), -1, np.int64) if items is None else np.asarray(items, np.int64)
    if item_guess_slip and items is None:
        raise ValueError("item_guess_slip needs item ids")
    log = Interactions(students, skills, items_arr, np.asarray(correct, np.int8))
    return BKTModel(forgetting=forgetting, item_guess_slip=item_guess_slip, n_iter=n_iter).fit(log).skill_params()
