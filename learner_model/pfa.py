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
         "last_skill", "last_all", "recent_skill", "recent_all", "first_on_skill")
RECENT_SKILL, RECENT_ALL = 5, 10


def _grouped(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable order grouping equal keys (time order kept inside a group) and each sorted row's group start."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    start = np.concatenate([[True], k[1:] != k[:-1]]) if len(k) else np.zeros(0, bool)
    start_idx = np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))
    return order, start_idx


def _history(key: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each row, over earlier rows with the same key: successes, failures, last answer (+1/-1/0),
    and share correct among the last `window` of them (0.5 when none)."""
    order, start = _grouped(key)
    v = y[order].astype(float)
    idx = np.arange(len(v))
    n_before = idx - start
    cs = np.concatenate([[0.0], np.cumsum(v)])  # cs[i] = sum of v[:i]
    succ = cs[idx] - cs[start]
    fail = n_before - succ
    prev = np.where(n_before > 0, 2 * v[np.maximum(idx - 1, 0)] - 1, 0.0)
    lo = np.maximum(idx - window, start)
    n_recent = idx - lo
    recent = np.where(n_recent > 0, (cs[idx] - cs[lo]) / np.maximum(n_recent, 1), 0.5)
    out = [np.empty(len(v)) for _ in range(4)]
    for o, val in zip(out, (succ, fail, prev, recent), strict=True):
        o[order] = val
    return out[0], out[1], out[2], out[3]


def features(log: Interactions) -> np.ndarray:
    """(N, len(DENSE)) dense features of each answer from the student's earlier answers."""
    st = log.student.astype(np.int64)
    y = log.correct
    s_all, f_all, last_all, recent_all = _history(st, y, RECENT_ALL)
    sk = st * (int(log.skill.max(initial=0)) + 1) + log.skill
    s_sk, f_sk, last_sk, recent_sk = _history(sk, y, RECENT_SKILL)
    if log.has_items:
        it = st * (int(log.item.max(initial=0)) + 1) + log.item
        s_it, f_it, _, _ = _history(it, y, 1)
    else:
        s_it = f_it = np.zeros(len(log))
    cols = [np.log1p(s_all), np.log1p(f_all), np.log1p(s_it), np.log1p(f_it), np.log1p(s_sk), np.log1p(f_sk),
            last_sk, last_all, recent_sk - 0.5, recent_all - 0.5, (s_sk + f_sk == 0).astype(float)]
    return np.stack(cols, axis=1)


@dataclass
class LogisticKTModel:
    variant: str = "best-lr"  # "pfa" or "best-lr"
    l2: float = 1e-4  # L2 penalty per parameter, on the mean log-likelihood scale
    max_iter: int = 300
    name: str = "best-lr"

    def __post_init__(self) -> None:
        if self.variant not in ("pfa", "best-lr"):
            raise ValueError(f"unknown logistic variant {self.variant!r}; known: pfa, best-lr")
        self.skills = IdMap(np.zeros(0, np.int64))
        self.items = IdMap(np.zeros(0, np.int64))
        self.weights: dict[str, np.ndarray] = {}

    def _design(self, log: Interactions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        skill = torch.as_tensor(self.skills(log.skill))
        use_items = self.variant == "best-lr" and len(self.items.known) > 0 and log.has_items
        item = torch.as_tensor(self.items(log.item) if use_items else np.full(len(log), self.items.size - 1))
        x = torch.as_tensor(features(log))
        return skill, item, x

    def _logit(self, w: dict[str, torch.Tensor], skill: torch.Tensor, item: torch.Tensor,
               x: torch.Tensor) -> torch.Tensor:
        # (N,) per-skill PFA slopes on log-counts of this skill's successes and failures
        logit = -w["b_skill"][skill] - w["b_item"][item]
        logit = logit + w["a_skill"][skill] * x[:, 4] + w["c_skill"][skill] * x[:, 5]
        if self.variant == "best-lr":
            logit = logit + x @ w["dense"] + w["bias"]
        return logit

    def fit(self, train: Interactions, valid: Interactions | None = None) -> LogisticKTModel:
        self.skills = IdMap.fit(train.skill)
        self.items = IdMap.fit(train.item) if (self.variant == "best-lr" and train.has_items) else IdMap(
            np.zeros(0, np.int64))
        skill, item, x = self._design(train)
        y = torch.as_tensor(train.correct, dtype=torch.float64)
        k, i = self.skills.size, self.items.size
        w = {name: torch.zeros(size, dtype=torch.float64, requires_grad=True) for name, size in
             (("b_skill", k), ("b_item", i), ("a_skill", k), ("c_skill", k), ("dense", x.shape[1]), ("bias", 1))}
        opt = torch.optim.LBFGS(list(w.values()), max_iter=self.max_iter, line_search_fn="strong_wolfe",
                                tolerance_change=1e-10)
        n = len(y)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self._logit(w, skill, item, x), y)
            loss = loss + self.l2 * sum(v.pow(2).sum() for v in w.values()) * (1000.0 / n)
            loss.backward()
            return loss

        opt.step(closure)
        self.weights = {name: v.detach().numpy().copy() for name, v in w.items()}
        return self

    def predict(self, log: Interactions) -> np.ndarray:
        if not self.weights:
            raise RuntimeError("LogisticKTModel.predict before fit")
        skill, item, x = self._design(log)
        w = {name: torch.as_tensor(v) for name, v in self.weights.items()}
        with torch.no_grad():
            return torch.sigmoid(self._logit(w, skill, item, x)).numpy()

    def state(self) -> dict[str, object]:
        return {"variant": self.variant, "skills": self.skills.to_list(), "items": self.items.to_list(),
                "weights": {k: v.tolist() for k, v in self.weights.items()}}

    def load_state(self, state: dict[str, object]) -> None:
        self.variant = str(state["variant"])
        self.skills = IdMap.from_list(list(state["skills"]))  # type: ignore[call-overload]
        self.items = IdMap.from_list(list(state["items"]))  # type: ignore[call-overload]
        self.weights = {k: np.asarray(v, float) for k, v in state["weights"].items()}  # type: ignore[attr-defined]
