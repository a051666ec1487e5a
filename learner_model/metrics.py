"""Scores of predicted P(correct) against observed answers: AUC, accuracy, RMSE, log loss. numpy only."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both correct and wrong answers")
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    # average rank of tied scores
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0  # 1-based
    ranks = np.empty(len(p))
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class Scores:
    auc: float
    accuracy: float
    rmse: float
    log_loss: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score(y: np.ndarray, p: np.ndarray) -> Scores:
    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    return Scores(
        auc=auc(y, p),
        accuracy=float(((p >= 0.5) == (y == 1)).mean()),
        rmse=float(np.sqrt(((p - y) ** 2).mean())),
        log_loss=float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
        n=len(y),
    )
