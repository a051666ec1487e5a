"""Stacking: Best-LR and DKT combined on the logit scale, the weights fitted on held-out students.

    logit P(correct) = a * logit(Best-LR) + b * logit(DKT) + c

The two models make different errors (counts and recency features against a learned sequence summary), so a
combination fitted on students neither model trained on beats both. Both members are fitted on the training
students; DKT early-stops on the validation students, which then also fit (a, b, c) by logistic regression (three
parameters: the slight optimism of reusing them is negligible). Without a validation set, 10 % of the training
students are held out for it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from learner_model.data import Interactions
from learner_model.pfa import LogisticKTModel
from learner_model.seqtrain import SequenceKTModel, TrainConfig, split_valid

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(p / (1 - p)))


class StackedKTModel:
    early_stops = True  # fit(train, valid): the validation students early-stop DKT and fit the weights

    def __init__(self, *, train_config: TrainConfig | None = None, name: str = "best-lr+dkt") -> None:
        self.name = name
        self.train_config = train_config or TrainConfig()
        self.lr = LogisticKTModel(variant="best-lr")
        self.seq = SequenceKTModel("dkt", train_config=self.train_config)
        self.weights = np.array([1.0, 0.0, 0.0])  # a, b, c

    def fit(self, train: Interactions, valid: Interactions | None = None,
            log: Callable[[str], None] = print) -> StackedKTModel:
        if valid is None:
            train, valid = split_valid(train, self.train_config.valid_share, self.train_config.seed)
        self.lr.fit(train)
        self.seq.fit(train, valid, log=log)
        x = torch.as_tensor(np.stack([_logit(self.lr.predict(valid)), _logit(self.seq.predict(valid))], axis=1))
        y = torch.as_tensor(valid.correct, dtype=torch.float64)
        w = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=100, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w[:2] + w[2], y)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        opt.step(closure)  # type: ignore[no-untyped-call]
        self.weights = w.detach().numpy().copy()
        return self

    def combine(self, p_lr: np.ndarray | float, p_seq: np.ndarray | float) -> np.ndarray:
        a, b, c = self.weights
        z = a * _logit(np.asarray(p_lr, float)) + b * _logit(np.asarray(p_seq, float)) + c
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def predict(self, log: Interactions) -> np.ndarray:
        return self.combine(self.lr.predict(log), self.seq.predict(log))

    def state(self) -> dict[str, object]:
        return {"lr": self.lr.state(), "seq": self.seq.state(), "weights": self.weights.tolist()}

    def load_state(self, state: dict[str, object]) -> None:
        self.lr.load_state(state["lr"])  # type: ignore[arg-type]
        self.seq.load_state(state["seq"])  # type: ignore[arg-type]
        self.weights = np.asarray(state["weights"], float)
