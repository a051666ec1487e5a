"""Rasch (1PL IRT) item difficulties with an online, Elo-like Bayesian update of each student's ability.

P(correct) = sigmoid(theta_student + theta_student,skill - b_item - b_skill).

Fitting (offline, on many students): joint L2-regularised maximum likelihood of every student's abilities and every
item's and skill's difficulty (torch, full-batch L-BFGS). The training students' abilities are then thrown away:
only the difficulties and the spread of abilities (the prior for a new student) are kept.

Prediction (online, one answer at a time): each ability is a Gaussian belief N(mu, var). After an answer with
predicted probability p, a Laplace step gives var' = 1 / (1/var + p(1-p)) and mu' = mu + var' (y - p): an Elo update
whose K factor (= var') shrinks as evidence accumulates, so no K schedule needs tuning. Global and per-skill abilities
are updated independently (a diagonal approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from learner_model.data import IdMap, Interactions


def position_major(student: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows reordered so that position t of every sequence (longest first) is one slice.

    Returns rows (N,), offsets (T+1,), and the sequence rank of each position-major slot (N,).
    """
    n = len(student)
    change = np.flatnonzero(student[1:] != student[:-1]) + 1 if n else np.zeros(0, np.int64)
    starts = np.concatenate([[0], change]).astype(np.int64) if n else np.zeros(0, np.int64)
    lengths = np.diff(np.concatenate([starts, [n]]))
    seq = np.repeat(np.arange(len(starts)), lengths)
    pos = np.arange(n) - np.repeat(starts, lengths)
    rank_of_seq = np.empty(len(starts), np.int64)
    rank_of_seq[np.argsort(-lengths, kind="stable")] = np.arange(len(starts))
    rank = rank_of_seq[seq]
    rows = np.lexsort((rank, pos))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pos))]) if n else np.zeros(1, np.int64)
    return rows, offsets, rank[rows]


@dataclass
class RaschEloModel:
    l2: float = 0.5  # Gaussian prior N(0, 1) on abilities and difficulties (penalty l2 * x^2 on the summed loss)
    l2_skill_ability: float = 5.0  # prior N(0, 0.1) on skill-specific abilities: few answers per student-skill
    skill_ability: bool = True  # per-skill abilities besides the global one
    max_iter: int = 60
    name: str = "rasch-elo"

    def __post_init__(self) -> None:
        self.skills = IdMap(np.zeros(0, np.int64))
        self.items = IdMap(np.zeros(0, np.int64))
        self.item_b = np.zeros(1)  # (I+1,) item difficulty; the spare row (unseen items) is 0
        self.skill_b = np.zeros(1)  # (K+1,)
        self.var_global = 1.0  # prior variance of a new student's global ability
        self.var_skill = 0.3  # prior variance of a skill-specific ability

    def fit(self, train: Interactions, valid: Interactions | None = None) -> RaschEloModel:
        torch.manual_seed(0)
        self.skills = IdMap.fit(train.skill)
        self.items = IdMap.fit(train.item) if train.has_items else IdMap(np.zeros(0, np.int64))
        students = np.unique(train.student, return_inverse=True)[1]
        n_students = int(students.max()) + 1
        skill = torch.as_tensor(self.skills(train.skill))
        item = torch.as_tensor(self._item_rows(train))
        st = torch.as_tensor(students)
        pair = st * self.skills.size + skill  # (N,) student-skill ability index
        y = torch.as_tensor(train.correct, dtype=torch.float64)
        theta = torch.zeros(n_students, dtype=torch.float64, requires_grad=True)
        theta_k = torch.zeros(n_students * self.skills.size, dtype=torch.float64, requires_grad=True)
        b_item = torch.zeros(self.items.size, dtype=torch.float64, requires_grad=True)
        b_skill = torch.zeros(self.skills.size, dtype=torch.float64, requires_grad=True)
        params = [theta, theta_k, b_item, b_skill]
        opt = torch.optim.LBFGS(params, max_iter=self.max_iter, line_search_fn="strong_wolfe", tolerance_change=1e-9)
        k_l2 = self.l2_skill_ability if self.skill_ability else 1e6

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logit = theta[st] + theta_k[pair] - b_item[item] - b_skill[skill]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
            n = len(y)
            loss = loss + (self.l2 * (theta.pow(2).sum() + b_item.pow(2).sum()) + k_l2 * theta_k.pow(2).sum()) / n
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        opt.step(closure)  # type: ignore[no-untyped-call]
        self.item_b = b_item.detach().numpy().copy()
        self.skill_b = b_skill.detach().numpy().copy()
        # MAP abilities are shrunk toward 0; add back their mean posterior variance (Laplace) for the prior
        with torch.no_grad():
            p = torch.sigmoid(theta[st] + theta_k[pair] - b_item[item] - b_skill[skill])
            info = torch.zeros(n_students, dtype=torch.float64).index_add_(0, st, p * (1 - p))
            self.var_global = float(theta.var() + (1.0 / (2 * self.l2 + info)).mean())
        used = torch.unique(pair)
        self.var_skill = float(theta_k.detach()[used].var()) if self.skill_ability else 0.0
        return self

    def _difficulty(self, log: Interactions) -> tuple[np.ndarray, np.ndarray]:
        skill = self.skills(log.skill)
        return skill, self.item_b[self._item_rows(log)] + self.skill_b[skill]

    def _item_rows(self, log: Interactions) -> np.ndarray:
        # without item ids every answer uses the spare row, which then acts as the global intercept
        if log.has_items and len(self.items.known):
            return self.items(log.item)
        return np.full(len(log), self.items.size - 1, np.int64)

    def predict(self, log: Interactions) -> np.ndarray:
        """Online: each answer is predicted from the same student's earlier answers only."""
        skill, difficulty = self._difficulty(log)
        rows, offsets, rank = position_major(log.student)
        n_seq = int(rank.max()) + 1 if len(rank) else 0
        mu, var = np.zeros(n_seq), np.full(n_seq, self.var_global)
        # per-skill beliefs, keyed densely by (sequence, skill)
        k = self.skills.size
        mu_k, var_k = np.zeros(n_seq * k), np.full(n_seq * k, self.var_skill)
        out = np.empty(len(log))
        y_all = log.correct.astype(float)
        for t in range(len(offsets) - 1):
            slot = rows[offsets[t]:offsets[t + 1]]
            s = rank[offsets[t]:offsets[t + 1]]
            pk = s * k + skill[slot]
            logit = mu[s] + mu_k[pk] - difficulty[slot]
            p = 1.0 / (1.0 + np.exp(-logit))
            out[slot] = p
            y = y_all[slot]
            info = p * (1 - p)
            var[s] = 1.0 / (1.0 / var[s] + info)
            mu[s] += var[s] * (y - p)
            if self.skill_ability:
                var_k[pk] = 1.0 / (1.0 / var_k[pk] + info)
                mu_k[pk] += var_k[pk] * (y - p)
        return out

    def state(self) -> dict[str, object]:
        return {"skills": self.skills.to_list(), "items": self.items.to_list(), "item_b": self.item_b.tolist(),
                "skill_b": self.skill_b.tolist(), "var_global": self.var_global, "var_skill": self.var_skill,
                "skill_ability": self.skill_ability}

    def load_state(self, state: dict[str, object]) -> None:
        self.skills = IdMap.from_list(list(state["skills"]))  # type: ignore[call-overload]
        self.items = IdMap.from_list(list(state["items"]))  # type: ignore[call-overload]
        self.item_b = np.asarray(state["item_b"], float)
        self.skill_b = np.asarray(state["skill_b"], float)
        self.var_global = float(state["var_global"])  # type: ignore[arg-type]
        self.var_skill = float(state["var_skill"])  # type: ignore[arg-type]
        self.skill_ability = bool(state["skill_ability"])

    # --- the online form (one student, one answer) -----------------------------------------------------

    def difficulty_of(self, skill: int, item: int | None) -> float:
        k = int(self.skills(np.asarray([skill]))[0])
        row = self.items.size - 1
        if item is not None and len(self.items.known):
            row = int(self.items(np.asarray([item]))[0])
        return float(self.skill_b[k] + self.item_b[row])
