"""A learned re-ranker over the hybrid search's best candidates: a few cheap signals per passage, weighed by a linear
model fitted on labelled questions (pairwise logistic loss, pulled towards the plain ranking).

Boundaries: plain numpy arrays in, scores out. Nothing here embeds, searches or knows a course; `SearchIndex` computes
the features (`inference/retrieval.py`) and `benchmarks/ta_eval.py --tune-rerank` fits the weights on the dev halves of
the question sets. The plain ranking (reciprocal rank fusion times kind and scaffold weights) is one of the features,
so `PLAIN` (its weight alone) reproduces it exactly, and a fit with too few questions returns `PLAIN`.

    features = rerank_features(base=..., rrf=..., dense=..., ...)       # (n_candidates, len(FEATURES))
    order = np.argsort(-DEFAULT_RERANKER.scores(features), kind="stable")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# One column each, in this order (see `rerank_features`).
FEATURES = (
    "base",  # the plain ranking's score: reciprocal rank fusion times the kind and scaffold weights
    "rrf",  # reciprocal rank fusion alone (x 60, about 1 for a passage first in both rankings)
    "dense",  # cosine of the question and the passage's own text
    "bm25",  # BM25 over text and context, divided by the best candidate's
    "bm25_context",  # BM25 of the passage's context alone (its exercise's question), on the same scale
    "stem_cosine",  # cosine of the question and the stem of the passage's exercise (its own cosine if it has none)
    "scaffold",  # 1 for a step that asks the student something instead of explaining
    "log_chars",  # log(1 + characters): a longer passage explains more than a one-line hint
)
RERANK_DEPTH = 40  # the plain ranking's best this many candidates are re-ranked; the rest follow in plain order


@dataclass(frozen=True)
class Reranker:
    weights: tuple[float, ...]  # one per FEATURES, on the raw features: score = features @ weights

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"{len(self.weights)} weights for {len(FEATURES)} features ({', '.join(FEATURES)})")

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(n_candidates,) scores of (n_candidates, len(FEATURES)) features; higher ranks first."""
        return np.asarray(features, dtype=np.float64) @ np.asarray(self.weights, dtype=np.float64)

    @property
    def plain(self) -> bool:
        """Whether this orders candidates exactly as the plain ranking does (the base score's weight alone)."""
        return self.weights[0] > 0 and not any(self.weights[1:])


PLAIN = Reranker(weights=(1.0,) + (0.0,) * (len(FEATURES) - 1))
# Fitted by `benchmarks/ta_eval.py --tune-rerank` on the dev halves of the demo, College Algebra and Introductory
# Stats question sets together (each course weighing the same), with FitConfig's defaults.
DEFAULT_RERANKER = Reranker(weights=(295.007, -1.27745, 3.40841, 1.46167, 1.25537, 3.68761, -0.491554, 1.04998))


def rerank_features(*, base: np.ndarray, rrf: np.ndarray, dense: np.ndarray, bm25: np.ndarray,
                    bm25_context: np.ndarray, bm25_best: float, stem_cosine: np.ndarray, scaffold: np.ndarray,
                    chars: np.ndarray) -> np.ndarray:
    """(n_candidates, len(FEATURES)) from per-candidate arrays (each (n_candidates,)); `bm25_best` is the best BM25
    score (text and context) of any candidate, which both BM25 columns are divided by."""
    best = bm25_best if bm25_best > 0 else 1.0
    columns = (base, 60.0 * np.asarray(rrf), dense, np.asarray(bm25) / best, np.asarray(bm25_context) / best,
               stem_cosine, np.asarray(scaffold, dtype=np.float64), np.log1p(np.asarray(chars, dtype=np.float64)))
    return np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)


@dataclass(frozen=True)
class FitConfig:
    pull: float = 0.01  # L2 pull of the (standardised) weights towards the plain ranking's
    plain_weight: float = 1.0  # the plain ranking's standardised weight the pull is towards
    min_questions: int = 20  # with fewer usable questions (a relevant and an irrelevant candidate) keep PLAIN
    max_iter: int = 500  # L-BFGS iterations


@dataclass(frozen=True)
class LabelledQuestion:
    """One labelled question's candidates: (n_candidates, len(FEATURES)) features, which are relevant, and its weight
    in the loss (1 / the number of questions of its course, so that each course counts the same)."""

    features: np.ndarray
    relevant: np.ndarray
    weight: float = 1.0


def reranker_fit(questions: Sequence[LabelledQuestion], config: FitConfig = FitConfig()) -> Reranker:
    """Weights that rank each question's relevant candidates above its others (pairwise logistic loss, the mean over
    its pairs, each question weighted), pulled towards the plain ranking. Deterministic: L-BFGS from the plain
    weights, no sampling. Fewer than `config.min_questions` usable questions: PLAIN."""
    import torch

    usable = [q for q in questions if q.relevant.any() and not q.relevant.all()]
    if len(usable) < config.min_questions:
        return PLAIN
    stacked = np.concatenate([q.features for q in usable])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature carries no information; its weight stays at the prior
    prior = torch.zeros(len(FEATURES), dtype=torch.float64)
    prior[0] = config.plain_weight
    groups = [(torch.tensor((q.features - mean) / scale), torch.tensor(q.relevant, dtype=torch.bool), q.weight)
              for q in usable]
    total = sum(weight for _, _, weight in groups)
    w = prior.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([w], max_iter=config.max_iter, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.zeros((), dtype=torch.float64)
        for x, relevant, weight in groups:
            s = x @ w
            margins = s[relevant][:, None] - s[~relevant][None, :]  # (n_relevant, n_other)
            value = value + weight * torch.nn.functional.softplus(-margins).mean()
        value = value / total + config.pull * ((w - prior) ** 2).sum()
        value.backward()  # type: ignore[no-untyped-call]  # torch's stub leaves backward untyped
        return value

    optimiser.step(loss)  # type: ignore[no-untyped-call]
    standardised = w.detach().numpy()
    return Reranker(weights=tuple(float(v) for v in standardised / scale))
