"""Bayesian Knowledge Tracing fitted by EM (Baum-Welch), vectorised over every student-skill sequence at once.

Public API (also used by the policy simulator to fit its students to real data):

    fit_bkt(skills, students, correct, *, items=None, forgetting=False, item_guess_slip=False, n_iter=60,
            tol=1e-6) -> dict[int, BKTParams]          # one BKTParams per skill id

    BKTModel(forgetting=..., item_guess_slip=...).fit(log).predict(log)   # the evaluation form

`skills`, `students`, `correct` are equal-length 1-D arrays, one entry per answer, each student's answers in time
order (rows of different students may interleave). Options:
- ``forgetting``: also fit P(known -> unknown) per skill (Khajah et al. 2016, "BKT+forgets").
- ``item_guess_slip``: guess and slip per item (KT-IDEM, Pardos & Heffernan 2011), shrunk toward the skill's values
  by `item_prior_strength` pseudo-answers so that rare items do not get extreme parameters.

How the vectorisation works: every (student, skill) pair is one hidden Markov chain. Chains are sorted by length,
longest first, and answers laid out position-major, so the answers at position t of all chains still running form one
contiguous slice whose chains are 0..n_t-1. The forward and backward passes loop over positions (at most the longest
chain), never over answers or skills; each position's slices are updated in place. EM's passes run in float32 (twice
as fast as float64, same fitted parameters to 5 decimals); prediction runs in float64. P(known) is clamped into
[P_KNOWN_MARGIN, 1 - P_KNOWN_MARGIN] exactly as the online update does, so that both agree and a wrong answer after a
long run of right ones still lowers it. This module knows nothing of storage or Django; the online update the tutor
runs lives in `learner_model/knowledge.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learner_model.data import IdMap, Interactions
from learner_model.knowledge import P_KNOWN_MARGIN, BKTParams

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
    emission_row: np.ndarray  # (N,) 2 * (guess/slip row: item or skill) + correct: indexes `_per_answer`'s tables
    category: np.ndarray  # (N,) 4 * skill + 2 * correct + has_next: one bincount gives every M-step sum per skill
    category_counts: np.ndarray  # (K, 2, 2) answers per skill, correct, has_next


def _layout(skill: np.ndarray, student: np.ndarray, correct: np.ndarray, item: np.ndarray, n_skills: int,
            item_level: bool) -> _Layout:
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
    counts = np.bincount(pos)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    # the chains still running at position t are ranks 0..n_t-1 (longest first): answer j goes to slot
    # offsets[pos[j]] + rank[j], no sort needed
    rows = np.empty(n, np.int64)
    rows[offsets[pos] + rank] = np.arange(n)
    chain_skill = np.empty(len(lengths), np.int64)
    chain_skill[rank] = skill
    sorted_lengths = lengths[np.argsort(-lengths, kind="stable")]
    has_next = (pos[rows] + 1) < sorted_lengths[rank[rows]]
    c, k, i = correct[rows].astype(np.int64), skill[rows], item[rows]
    category = 4 * k + 2 * c + has_next
    return _Layout(rows, offsets, chain_skill, c.astype(bool), k, i, has_next,
                   emission_row=2 * (i if item_level else k) + c, category=category,
                   category_counts=np.bincount(category, minlength=4 * n_skills).reshape(n_skills, 2, 2))


@dataclass
class _Params:
    prior: np.ndarray  # (K,) P(known) at a chain's first answer
    learn: np.ndarray  # (K,)
    forget: np.ndarray  # (K,)
    guess: np.ndarray  # (K,) or (I,) with item-level guess/slip
    slip: np.ndarray  # (K,) or (I,)


@dataclass(frozen=True)
class _PerAnswer:
    """Parameters gathered to each answer, (N,) each, position-major, in the pass's float type."""

    e1: np.ndarray  # P(observed answer | known)
    e0: np.ndarray  # P(observed answer | unknown)
    learn: np.ndarray  # P(unknown -> known) after this answer
    forget: np.ndarray  # P(known -> unknown) after this answer


def _per_answer(lay: _Layout, p: _Params, dtype: type[np.floating]) -> _PerAnswer:
    given_known = np.stack([p.slip, 1 - p.slip], axis=1).ravel().astype(dtype)  # (2 rows,): wrong, right of each row
    given_unknown = np.stack([1 - p.guess, p.guess], axis=1).ravel().astype(dtype)
    return _PerAnswer(given_known[lay.emission_row], given_unknown[lay.emission_row],
                      p.learn.astype(dtype)[lay.skill], p.forget.astype(dtype)[lay.skill])


def _forward(lay: _Layout, p: _Params, q: _PerAnswer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted P(known) before each answer, filtered P(known) after it, and P(answer | past), position-major.

    The predicted P(known) is clamped into [P_KNOWN_MARGIN, 1 - P_KNOWN_MARGIN], as the tutor's online update does:
    unclamped, P(unknown) = 1 - P(known) rounds to 0 after ~20 right answers in a row and, with no forgetting, no
    later wrong answer lowers P(known) again. Slices are written in place (out=): no array is allocated per position.
    """
    n, dtype = len(lay.rows), q.e1.dtype
    before, after, norm = np.empty(n, dtype), np.empty(n, dtype), np.empty(n, dtype)
    keep_minus_learn = (1 - q.forget) - q.learn  # P(known next) = learn + P(known now) * keep_minus_learn
    e_diff = q.e1 - q.e0
    lo, hi = dtype.type(P_KNOWN_MARGIN), dtype.type(1 - P_KNOWN_MARGIN)
    off = lay.offsets
    if len(off) > 1:
        np.clip(p.prior[lay.chain_skill[: off[1]]], lo, hi, out=before[: off[1]], casting="same_kind")
    for t in range(len(off) - 1):
        a, b = off[t], off[t + 1]
        k = before[a:b]
        den = norm[a:b]
        np.multiply(k, e_diff[a:b], out=den)
        den += q.e0[a:b]
        f = after[a:b]
        np.multiply(k, q.e1[a:b], out=f)
        f /= den
        c = off[t + 2] if t + 2 < len(off) else b
        if c > b:  # chains 0..c-b-1 continue: their prediction for position t+1
            nxt = before[b:c]
            np.multiply(f[: c - b], keep_minus_learn[b:c], out=nxt)
            nxt += q.learn[b:c]
            np.maximum(nxt, lo, out=nxt)
            np.minimum(nxt, hi, out=nxt)
    return before, after, norm


def _clamp_as_transition(q: _PerAnswer, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(unknown -> known) and P(known -> unknown) after each answer, with `_forward`'s clamp folded in.

    Where the clamp binds it acts as an extra transition of that answer (a little forgetting at the top, a little
    learning at the bottom). The backward pass must use the same transitions as the forward one: otherwise its
    messages describe another model, and over a long chain (22 right answers, then 110 wrong) they underflow.
    """
    lo, hi = after.dtype.type(P_KNOWN_MARGIN), after.dtype.type(1 - P_KNOWN_MARGIN)
    unclamped = q.learn + after * ((1 - q.forget) - q.learn)
    learn, forget = q.learn, q.forget
    # solve after * (1 - forget) + (1 - after) * learn = hi (resp. lo) for forget (resp. learn); few answers need it
    top = np.flatnonzero(unclamped > hi)
    if len(top):
        forget = forget.copy()
        forget[top] = 1 - (hi - (1 - after[top]) * learn[top]) / after[top]
    bottom = np.flatnonzero(unclamped < lo)
    if len(bottom):
        learn = learn.copy()
        learn[bottom] = (lo - after[bottom] * (1 - forget[bottom])) / (1 - after[bottom])
    return learn, forget


def _em_step(lay: _Layout, p: _Params, item_level: bool, n_items: int, item_prior_strength: float,
             forgetting: bool) -> tuple[_Params, float]:
    """One Baum-Welch pass in float32 (the statistics it sums are far coarser than float32's 1e-7); returns the
    new parameters and the log-likelihood of the old ones."""
    q = _per_answer(lay, p, np.float32)
    _, after, norm = _forward(lay, p, q)
    loglik = float(np.log(norm).sum(dtype=np.float64))
    learn, forget = _clamp_as_transition(q, after)  # of the transition after each answer
    r1, r0 = q.e1 / norm, q.e0 / norm
    n = len(lay.rows)
    # beta: P(the chain's later answers | state now) / P(them | past), scaled like `norm`; 1 at a chain's last answer.
    # after * beta1 + (1 - after) * beta0 = 1, so neither overflows (nor both underflow) in float32.
    # w1: r1 * beta1 of the chain's next answer, kept at this answer's slot (0 at a chain's last) for xi; likewise w0.
    beta1, beta0 = np.ones(n, np.float32), np.ones(n, np.float32)
    w1, w0 = np.zeros(n, np.float32), np.zeros(n, np.float32)
    off = lay.offsets
    for t in range(len(off) - 3, -1, -1):  # positions with a next one
        a, b, c = off[t], off[t + 1], off[t + 2]
        m = c - b  # chains 0..m-1 continue after position t, at slots a..a+m-1 now and b..c-1 next
        x1, x0 = w1[a:a + m], w0[a:a + m]
        np.multiply(r1[b:c], beta1[b:c], out=x1)
        np.multiply(r0[b:c], beta0[b:c], out=x0)
        step = x1 - x0
        b0 = beta0[a:a + m]  # (1 - learn) * x0 + learn * x1
        np.multiply(learn[a:a + m], step, out=b0)
        b0 += x0
        b1 = beta1[a:a + m]  # forget * x0 + (1 - forget) * x1
        np.multiply(forget[a:a + m], step, out=b1)
        np.subtract(x1, b1, out=b1)
    g1 = after * beta1
    gamma1 = g1 / (g1 + (1 - after) * beta0)  # P(known at this answer | the whole chain)
    xi01_w = (1 - after) * learn * w1  # P(unknown here, known at the next answer | the whole chain)
    k = len(p.prior)
    # sums of gamma1 per skill, correct, has_next; those of gamma0 = 1 - gamma1 are the counts minus them
    sum1 = np.bincount(lay.category, weights=gamma1, minlength=4 * k).reshape(k, 2, 2)
    sum0 = lay.category_counts - sum1
    first = slice(0, lay.offsets[1]) if len(lay.offsets) > 1 else slice(0, 0)
    prior_num = np.bincount(lay.skill[first], weights=gamma1[first], minlength=k)
    prior_den = np.bincount(lay.skill[first], minlength=k)
    xi01 = np.bincount(lay.skill, weights=xi01_w, minlength=k)
    new = _Params(
        prior=(prior_num + 0.5) / (prior_den + 1.0),  # half a pseudo-chain each way: no 0/1 priors
        learn=(xi01 + _EPS) / (sum0[:, :, 1].sum(axis=1) + 2 * _EPS),
        forget=np.zeros(k), guess=np.empty(0), slip=np.empty(0),
    )
    if forgetting:
        xi10 = np.bincount(lay.skill, weights=after * forget * w0, minlength=k)
        new.forget = (xi10 + _EPS) / (sum1[:, :, 1].sum(axis=1) + 2 * _EPS)
    skill_guess = (sum0[:, 1].sum(axis=1) + _EPS) / (sum0.sum(axis=(1, 2)) + 2 * _EPS)
    skill_slip = (sum1[:, 0].sum(axis=1) + _EPS) / (sum1.sum(axis=(1, 2)) + 2 * _EPS)
    if item_level:
        item_skill = np.zeros(n_items, np.int64)
        item_skill[lay.item] = lay.skill  # an item's skill: the last one seen with it
        m0 = item_prior_strength
        item1 = np.bincount(lay.emission_row, weights=gamma1, minlength=2 * n_items).reshape(n_items, 2)
        item0 = np.bincount(lay.emission_row, minlength=2 * n_items).reshape(n_items, 2) - item1
        new.guess = (item0[:, 1] + m0 * skill_guess[item_skill]) / (item0.sum(axis=1) + m0)
        new.slip = (item1[:, 0] + m0 * skill_slip[item_skill]) / (item1.sum(axis=1) + m0)
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
    # stop when the log-likelihood improves by less than this fraction of itself. EM's tail is slow, and what it
    # adds past this point changes held-out AUC by little (benchmarks/RESULTS.md, knowledge tracing)
    tol: float = 1e-4
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
        lay = _layout(skill, train.student, train.correct, item, self.skills.size, self.item_guess_slip)
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
        lay = _layout(skill, log.student, log.correct, item, self.skills.size, self.item_guess_slip)
        before, _, _ = _forward(lay, self.params, _per_answer(lay, self.params, np.float64))
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
            forgetting: bool = False, item_guess_slip: bool = False, n_iter: int = 60,
            tol: float = 1e-6) -> dict[int, BKTParams]:
    """Fit BKT by EM; one `BKTParams` per skill id. See the module docstring for the array contract.

    Fitted to convergence by default (tol 1e-6, not BKTModel's 1e-4): callers recover parameters, not predictions."""
    skills, students = np.asarray(skills, np.int64), np.asarray(students, np.int64)
    items_arr = np.full(len(skills), -1, np.int64) if items is None else np.asarray(items, np.int64)
    if item_guess_slip and items is None:
        raise ValueError("item_guess_slip needs item ids")
    log = Interactions(students, skills, items_arr, np.asarray(correct, np.int8))
    model = BKTModel(forgetting=forgetting, item_guess_slip=item_guess_slip, n_iter=n_iter, tol=tol)
    return model.fit(log).skill_params()
