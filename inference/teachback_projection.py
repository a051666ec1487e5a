"""A learned adjustment of the teach-back scorer's word alignment, fitted on graded answers.

The scorer (inference/teachback.py) aligns the content word pieces of a concept's key ideas with the explanation's,
by the cosine of MiniLM's contextual token vectors. MiniLM was trained for sentence similarity, not for "does this
answer say what the reference says", so some directions of its token space matter more for grading than others.
A low-rank map `t -> normalise(t + (t U) V^T)` (U, V: 384 x rank, starting at the identity) is fitted so that the
alignment features of graded answers predict their grades: a few tens of thousands of numbers, stored in
`inference/data/teachback_projection.npz`, applied to every token vector the scorer computes.

    pairs = [AlignmentPair(answer=..., reference=..., grade=4.5), ...]   # unprojected content token vectors
    projection = projection_fit(pairs)                                    # seconds to minutes on one core
    projection_save(projection, path); projection_load(path)

The fitting (benchmarks/teachback_eval.py --train-projection) was chosen on the dev questions' graded answers and
measured on the test questions'; the map that ships is fitted on all of them (`--all`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "teachback_projection.npz"


@dataclass(frozen=True)
class AlignmentPair:
    answer: np.ndarray  # (T, 384) unit content token vectors of the answer (the explanation)
    reference: np.ndarray  # (t, 384) unit content token vectors of all key ideas together
    grade: float  # 0-5


@dataclass(frozen=True)
class Projection:
    u: np.ndarray  # (384, rank)
    v: np.ndarray  # (384, rank)

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        """Rows of `tokens` (n, 384) mapped and renormalised to unit length."""
        mapped = tokens + (tokens @ self.u) @ self.v.T
        unit: np.ndarray = mapped / np.maximum(np.linalg.norm(mapped, axis=-1, keepdims=True), 1e-9)
        return unit


def projection_save(projection: Projection, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, u=projection.u.astype(np.float32), v=projection.v.astype(np.float32))


def projection_load(path: Path) -> Projection:
    with np.load(path) as data:
        return Projection(u=data["u"], v=data["v"])


def alignment(answer: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of the soft word alignment of two sets of unit token vectors: the mean over the reference's
    tokens of the cosine to the closest answer token, and the same from the answer's side; 0 when either is empty.
    The scorer's overall score and the fitting below both read it from here."""
    if not len(answer) or not len(reference):
        return 0.0, 0.0
    similarity = reference @ answer.T  # (t, T)
    return float(similarity.max(axis=1).mean()), float(similarity.max(axis=0).mean())


def alignment_features(pairs: Sequence[AlignmentPair], projection: Projection | None = None) -> np.ndarray:
    """Per pair (recall, recall^2, precision) of the soft word alignment, as the scorer computes them: (n, 3)."""
    rows = []
    for pair in pairs:
        answer, reference = pair.answer, pair.reference
        if projection is not None:
            answer, reference = projection.apply(answer), projection.apply(reference)
        recall, precision = alignment(answer, reference)
        rows.append((recall, recall * recall, precision))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Ridge regression on standardised columns, returned as raw-feature weights and a bias."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return w / sd, float(y.mean() - (mu * w / sd).sum())


def projection_fit(pairs: Sequence[AlignmentPair], *, rank: int = 16, penalty: float = 0.1, epochs: int = 50,
                   learning_rate: float = 0.01, seed: int = 0, batch: int = 48) -> Projection:
    """Fit U and V (and, alongside, a linear read-out of the three alignment features) by full-batch Adam on the
    squared error of the predicted grades; `penalty` pulls the map towards the identity (||U V^T||^2)."""
    import torch

    torch.manual_seed(seed)
    dim = pairs[0].reference.shape[1]
    u = torch.nn.Parameter(torch.zeros(dim, rank))
    v = torch.nn.Parameter(torch.randn(dim, rank) * 0.01)
    head = torch.nn.Linear(3, 1)
    grades = np.array([p.grade for p in pairs], dtype=np.float64)
    w, b = ridge(alignment_features(pairs), grades, 1.0)
    with torch.no_grad():
        head.weight[:] = torch.tensor(w, dtype=torch.float32)
        head.bias[:] = b
    optimiser = torch.optim.Adam([u, v, *head.parameters()], lr=learning_rate)
    batches = [_padded(pairs, chunk) for chunk in _chunks(pairs, batch)]
    for _ in range(epochs):
        optimiser.zero_grad()
        for answer, answer_mask, reference, reference_mask, y in batches:
            features = _features(_mapped(answer, u, v), answer_mask, _mapped(reference, u, v), reference_mask)
            loss = ((head(features).squeeze(1) - y) ** 2).sum() / len(pairs)
            loss.backward()
        pull = penalty * ((u.T @ u) * (v.T @ v)).sum()  # ||U V^T||^2
        pull.backward()  # type: ignore[no-untyped-call]  # torch's stub leaves backward untyped
        optimiser.step()
    return Projection(u=u.detach().numpy().copy(), v=v.detach().numpy().copy())


def _chunks(pairs: Sequence[AlignmentPair], size: int) -> list[list[int]]:
    """Indices of pairs of similar length together, `size` at a time: each batch is padded to its longest."""
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i].answer), len(pairs[i].reference)))
    return [order[k:k + size] for k in range(0, len(order), size)]


def _padded(pairs: Sequence[AlignmentPair], chunk: list[int]) -> tuple[Any, ...]:
    import torch

    def pad(arrays: list[np.ndarray]) -> tuple[Any, Any]:
        n = max(1, max(len(a) for a in arrays))
        out, mask = torch.zeros(len(arrays), n, arrays[0].shape[1]), torch.zeros(len(arrays), n, dtype=torch.bool)
        for i, a in enumerate(arrays):
            if len(a):
                out[i, :len(a)], mask[i, :len(a)] = torch.from_numpy(np.asarray(a, dtype=np.float32)), True
        return out, mask

    answer, answer_mask = pad([pairs[i].answer for i in chunk])
    reference, reference_mask = pad([pairs[i].reference for i in chunk])
    grades = torch.tensor([pairs[i].grade for i in chunk], dtype=torch.float32)
    return answer, answer_mask, reference, reference_mask, grades


def _mapped(x: Any, u: Any, v: Any) -> Any:
    import torch

    return torch.nn.functional.normalize(x + (x @ u) @ v.T, dim=-1)


def _features(answer: Any, answer_mask: Any, reference: Any, reference_mask: Any) -> Any:
    """The alignment features of a padded batch (torch, differentiable): recall, recall^2, precision."""
    import torch

    similarity = (reference @ answer.transpose(1, 2)).masked_fill(~answer_mask[:, None, :], -1.0)
    recall = (similarity.max(2).values * reference_mask).sum(1) / reference_mask.sum(1).clamp(min=1)
    best_for_answer = similarity.masked_fill(~reference_mask[:, :, None], -1.0).max(1).values
    precision = (best_for_answer * answer_mask).sum(1) / answer_mask.sum(1).clamp(min=1)
    has_answer = answer_mask.any(1)
    recall = torch.where(has_answer, recall, torch.zeros_like(recall))
    precision = torch.where(has_answer, precision, torch.zeros_like(precision))
    return torch.stack([recall, recall ** 2, precision], 1)
