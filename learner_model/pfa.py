"""Logistic regression on practice counts: PFA (Pavlik et al. 2009) and Best-LR (Gervet et al. 2020), plus recency.

logit P(correct) = - b_item - b_skill
                   + a_skill * log1p(successes on skill) + c_skill * log1p(failures on skill)        # PFA
                   + w . dense features                                                                # Best-LR
Dense features (all computed from the same student's EARLIER answers only):
  log1p of successes / failures overall, on this item, on this skill; the last answer on this skill and overall
  (+1 / -1, 0 if none); the share correct among the last 5 answers on this skill and the last 10 overall.
``variant="pfa"`` keeps only the skill terms; ``"best-lr"`` uses everything and the item difficulties where ids exist.

Features are computed column-wise with grouped cumulative sums (no loop over answers); fitting is full-batch L-BFGS
in torch. The online form keeps per-student counters (see `learner_model/online.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from learner_model.data import IdMap, Interactions

DENSE = ("succ_all", "fail_all", "succ_item", "fail_item", "succ_skill", "fail_skill",
         "last_skill", "last_all", "recent_skill", "recent_all", "first_on_skill", "streak_skill", "run_on_skill",
         "ability", "ability_recent", "ability_if_new_skill")
RECENT_SKILL, RECENT_ALL = 5, 10
N_PATTERNS = 27  # the last three answers, each correct / wrong / none


def _grouped(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable order grouping equal keys (time order kept inside a group) and each sorted row's group start."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    start = np.concatenate([[True], k[1:] != k[:-1]]) if len(k) else np.zeros(0, bool)
    start_idx = np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))
    return order, start_idx


@dataclass(frozen=True)
class _History:
    succ: np.ndarray  # (N,) earlier successes with the same key
    fail: np.ndarray  # (N,) earlier failures
    last: np.ndarray  # (N,) last answer +1 / -1, 0 if none
    recent: np.ndarray  # (N,) share correct among the last `window`, 0.5 if none
    pattern: np.ndarray  # (N,) int: the last three answers, base 3 (wrong / none / correct)
    streak: np.ndarray  # (N,) correct answers in a row just before, at most `window`


def _history(key: np.ndarray, y: np.ndarray, window: int) -> _History:
    """For each row, what the earlier rows with the same key say (see `_History`)."""
    order, start = _grouped(key)
    v = y[order].astype(float)
    idx = np.arange(len(v))
    n_before = idx - start
    cs = np.concatenate([[0.0], np.cumsum(v)])  # cs[i] = sum of v[:i]
    succ = cs[idx] - cs[start]
    fail = n_before - succ

    def back(k: int) -> np.ndarray:
        return np.where(n_before >= k, 2 * v[np.maximum(idx - k, 0)] - 1, 0.0)

    prev1, prev2, prev3 = back(1), back(2), back(3)
    pattern = ((prev1 + 1) * 9 + (prev2 + 1) * 3 + (prev3 + 1)).astype(np.int64)
    lo = np.maximum(idx - window, start)
    n_recent = idx - lo
    recent = np.where(n_recent > 0, (cs[idx] - cs[lo]) / np.maximum(n_recent, 1), 0.5)
    # index just past the latest failure at or before each row (or the group start)
    past_fail = np.maximum.accumulate(np.where(v == 0, idx + 1, start))
    before = np.where(n_before > 0, past_fail[np.maximum(idx - 1, 0)], start)
    streak = np.minimum(idx - np.maximum(before, start), window).astype(float)
    cols = [np.empty(len(v)) for _ in range(4)] + [np.empty(len(v), np.int64), np.empty(len(v))]
    for o, val in zip(cols, (succ, fail, prev1, recent, pattern, streak), strict=True):
        o[order] = val
    return _History(*cols)


def _ability(student: np.ndarray, y: np.ndarray, base_rate: np.ndarray,
             window: int | None = None) -> np.ndarray:
    """(N,) mean of (answer - its skill's base rate) over the student's earlier answers (the last `window` of
    them if given), shrunk toward 0 by ABILITY_PRIOR pseudo-answers."""
    order, start = _grouped(student)
    r = (y.astype(float) - base_rate)[order]
    idx = np.arange(len(r))
    lo = start if window is None else np.maximum(idx - window, start)
    cs = np.concatenate([[0.0], np.cumsum(r)])
    out = np.empty(len(r))
    out[order] = (cs[idx] - cs[lo]) / (idx - lo + ABILITY_PRIOR)
    return out


def _run_lengths(student: np.ndarray, skill: np.ndarray) -> np.ndarray:
    """(N,) answers on the same skill immediately before each row, within the student."""
    n = len(skill)
    idx = np.arange(n)
    new_run = np.ones(n, bool)
    if n:
        new_run[1:] = (skill[1:] != skill[:-1]) | (student[1:] != student[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    return (idx - run_start).astype(float)


ABILITY_PRIOR = 5.0  # pseudo-answers at the skill's base rate in the running ability estimate
RECENT_ABILITY = 20  # answers in the recent-ability window


def features(log: Interactions, base_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, len(DENSE)) dense features and (N, 2) answer patterns (on the skill, overall) of each answer,
    from the same student's earlier answers only. `base_rate` (N,) is the training share correct of each
    answer's skill: "ability" is the student's running mean surplus over it, shrunk toward 0."""
    st = log.student.astype(np.int64)
    y = log.correct
    a = _history(st, y, RECENT_ALL)
    sk = _history(st * (int(log.skill.max(initial=0)) + 1) + log.skill, y, RECENT_SKILL)
    if log.has_items:
        it = _history(st * (int(log.item.max(initial=0)) + 1) + log.item, y, 1)
        s_it, f_it = it.succ, it.fail
    else:
        s_it = f_it = np.zeros(len(log))
    cols = [np.log1p(a.succ), np.log1p(a.fail), np.log1p(s_it), np.log1p(f_it), np.log1p(sk.succ), np.log1p(sk.fail),
            sk.last, a.last, sk.recent - 0.5, a.recent - 0.5, (sk.succ + sk.fail == 0).astype(float),
            np.log1p(sk.streak), np.log1p(_run_lengths(st, log.skill))]
    ability = _ability(st, y, base_rate)
    cols += [ability, _ability(st, y, base_rate, RECENT_ABILITY), ability * cols[10]]
    return np.stack(cols, axis=1), np.stack([sk.pattern, a.pattern], axis=1)


@dataclass
class LogisticKTModel:
    variant: str = "best-lr"  # "pfa" or "best-lr"
    l2: float = 1e-4  # L2 penalty per parameter, on the mean log-likelihood scale
    max_iter: int = 150
    name: str = "best-lr"

    def __post_init__(self) -> None:
        if self.variant not in ("pfa", "best-lr"):
            raise ValueError(f"unknown logistic variant {self.variant!r}; known: pfa, best-lr")
        self.skills = IdMap(np.zeros(0, np.int64))
        self.items = IdMap(np.zeros(0, np.int64))
        self.weights: dict[str, np.ndarray] = {}
        self.base_rate = np.zeros(1)  # (K+1,) training share correct per skill row

    def _design(self, log: Interactions) -> tuple[torch.Tensor, ...]:
        skill = torch.as_tensor(self.skills(log.skill))
        use_items = self.variant == "best-lr" and len(self.items.known) > 0 and log.has_items
        item = torch.as_tensor(self.items(log.item) if use_items else np.full(len(log), self.items.size - 1))
        x, patterns = features(log, self.base_rate[skill.numpy()])
        return skill, item, torch.as_tensor(x), torch.as_tensor(patterns)

    def _logit(self, w: dict[str, torch.Tensor], skill: torch.Tensor, item: torch.Tensor, x: torch.Tensor,
               patterns: torch.Tensor) -> torch.Tensor:
        # (N,) per-skill PFA slopes on log-counts of this skill's successes and failures
        logit = -w["b_skill"][skill] - w["b_item"][item]
        logit = logit + w["a_skill"][skill] * x[:, 4] + w["c_skill"][skill] * x[:, 5]
        if self.variant == "best-lr":
            logit = logit + x @ w["dense"] + w["bias"] + w["l_skill"][skill] * x[:, 6]
            logit = logit + w["pattern_skill"][patterns[:, 0]] + w["pattern_all"][patterns[:, 1]]
            logit = logit + w["pattern_by_skill"][skill * N_PATTERNS + patterns[:, 0]]
        return logit

    def fit(self, train: Interactions, valid: Interactions | None = None) -> LogisticKTModel:
        self.skills = IdMap.fit(train.skill)
        self.items = IdMap.fit(train.item) if (self.variant == "best-lr" and train.has_items) else IdMap(
            np.zeros(0, np.int64))
        rows = self.skills(train.skill)
        self.base_rate = (np.bincount(rows, weights=train.correct, minlength=self.skills.size) + 1.0) / (
            np.bincount(rows, minlength=self.skills.size) + 2.0)
        skill, item, x, patterns = self._design(train)
        y = torch.as_tensor(train.correct, dtype=torch.float64)
        k, i = self.skills.size, self.items.size
        w = {name: torch.zeros(size, dtype=torch.float64, requires_grad=True) for name, size in
             (("b_skill", k), ("b_item", i), ("a_skill", k), ("c_skill", k), ("dense", x.shape[1]), ("bias", 1),
              ("l_skill", k), ("pattern_skill", N_PATTERNS), ("pattern_all", N_PATTERNS),
              ("pattern_by_skill", k * N_PATTERNS))}
        opt = torch.optim.LBFGS(list(w.values()), max_iter=self.max_iter, line_search_fn="strong_wolfe",
                                tolerance_change=1e-10)
        n = len(y)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self._logit(w, skill, item, x, patterns), y)
            loss = loss + self.l2 * sum(v.pow(2).sum() for v in w.values()) * (1000.0 / n)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        opt.step(closure)  # type: ignore[no-untyped-call]
        self.weights = {name: v.detach().numpy().copy() for name, v in w.items()}
        return self

    def predict(self, log: Interactions) -> np.ndarray:
        if not self.weights:
            raise RuntimeError("LogisticKTModel.predict before fit")
        skill, item, x, patterns = self._design(log)
        w = {name: torch.as_tensor(v) for name, v in self.weights.items()}
        with torch.no_grad():
            return torch.sigmoid(self._logit(w, skill, item, x, patterns)).numpy()

    def state(self) -> dict[str, object]:
        return {"variant": self.variant, "skills": self.skills.to_list(), "items": self.items.to_list(),
                "base_rate": self.base_rate.tolist(),
                "weights": {k: v.tolist() for k, v in self.weights.items()}}

    def load_state(self, state: dict[str, object]) -> None:
        self.variant = str(state["variant"])
        self.skills = IdMap.from_list(list(state["skills"]))  # type: ignore[call-overload]
        self.items = IdMap.from_list(list(state["items"]))  # type: ignore[call-overload]
        self.base_rate = np.asarray(state["base_rate"], float)
        self.weights = {k: np.asarray(v, float) for k, v in state["weights"].items()}  # type: ignore[attr-defined]
