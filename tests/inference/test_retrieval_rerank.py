"""The TA-bot's learned re-ranker: it learns from labelled questions what ranks the answering passage first, ranks
questions it was not fitted on better, is deterministic, and falls back to the plain ranking when it has too little
to learn from."""

from __future__ import annotations

import numpy as np
import pytest

from inference.retrieval import CourseText, Embedder, SearchIndex, course_documents, default_embedder
from inference.retrieval_rerank import (
    DEFAULT_RERANKER,
    FEATURES,
    PLAIN,
    FitConfig,
    LabelledQuestion,
    Reranker,
    rerank_features,
    reranker_fit,
)
from tests.inference.test_retrieval import small_course


def synthetic_questions(seed: int, n: int) -> list[LabelledQuestion]:
    """Questions of 30 candidates each, one relevant: the plain ranking's score ("base") only half sees it, while
    the passage's exercise stem matching the question ("stem_cosine") and its length give it away."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        features = rng.normal(size=(30, len(FEATURES)))
        relevant = np.zeros(30, dtype=bool)
        relevant[rng.integers(30)] = True
        features[relevant, FEATURES.index("base")] += 1.0
        features[relevant, FEATURES.index("stem_cosine")] += 2.0
        features[relevant, FEATURES.index("log_chars")] += 1.0
        out.append(LabelledQuestion(features, relevant))
    return out


def mean_rank(reranker: Reranker, questions: list[LabelledQuestion]) -> float:
    ranks = []
    for q in questions:
        order = np.argsort(-reranker.scores(q.features), kind="stable")
        ranks.append(1 + int(np.flatnonzero(q.relevant[order])[0]))
    return float(np.mean(ranks))


def test_a_reranker_fitted_on_some_questions_ranks_questions_it_never_saw_better() -> None:
    fitted = reranker_fit(synthetic_questions(seed=1, n=60))
    held_out = synthetic_questions(seed=2, n=60)
    assert mean_rank(fitted, held_out) < 0.6 * mean_rank(PLAIN, held_out)
    assert fitted.weights[FEATURES.index("stem_cosine")] > 0  # it found the signal the plain ranking misses


def test_fitting_twice_gives_the_same_weights() -> None:
    questions = synthetic_questions(seed=3, n=40)
    assert reranker_fit(questions).weights == reranker_fit(questions).weights


def test_with_too_few_labelled_questions_the_fit_keeps_the_plain_ranking() -> None:
    few = synthetic_questions(seed=4, n=5)
    assert reranker_fit(few) is PLAIN
    assert reranker_fit(few, FitConfig(min_questions=5)) is not PLAIN
    # a question whose candidates are all relevant (or none) teaches nothing and does not count
    useless = [LabelledQuestion(q.features, np.ones_like(q.relevant)) for q in synthetic_questions(seed=5, n=30)]
    assert reranker_fit(useless) is PLAIN


def test_a_reranker_needs_one_weight_per_feature() -> None:
    with pytest.raises(ValueError, match="features"):
        Reranker(weights=(1.0, 2.0))
    assert PLAIN.plain and not DEFAULT_RERANKER.plain


def test_features_are_scaled_per_question() -> None:
    ones = np.ones(2)
    features = rerank_features(base=ones, rrf=np.array([1 / 61, 1 / 62]), dense=ones, bm25=np.array([4.0, 2.0]),
                               bm25_context=np.array([2.0, 0.0]), bm25_best=4.0, stem_cosine=ones,
                               scaffold=np.array([True, False]), chars=np.array([0, 99]))
    assert features.shape == (2, len(FEATURES))
    assert features[:, FEATURES.index("bm25")].tolist() == [1.0, 0.5]
    assert features[:, FEATURES.index("bm25_context")].tolist() == [0.5, 0.0]
    assert features[:, FEATURES.index("scaffold")].tolist() == [1.0, 0.0]
    assert features[1, FEATURES.index("log_chars")] == pytest.approx(np.log(100))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return default_embedder()


def course_index(embedder: Embedder, course: CourseText) -> SearchIndex:
    index = SearchIndex(embedder)
    index.upsert(course_documents(course))
    return index


def test_the_search_orders_its_best_candidates_by_the_reranker_and_plain_keeps_the_plain_order(
        embedder: Embedder) -> None:
    index = course_index(embedder, small_course())
    question = "how do I differentiate x to the fifth"
    vector = embedder.encode([question])[0]
    candidates, features = index.rerank_candidates(question, vector)
    assert len(candidates) == len(features) > 3

    index.reranker = PLAIN
    plain = [h.chunk.id for h in index.search(question, k=3, query_vector=vector)]
    assert plain == [c.id for c in candidates[:3]]

    # a re-ranker that wants the longest passage puts it first, whatever the plain ranking said
    index.reranker = Reranker(weights=tuple(1.0 if f == "log_chars" else 0.0 for f in FEATURES))
    longest = max(candidates, key=lambda c: len(c.text))
    assert index.search(question, k=3, query_vector=vector)[0].chunk.id == longest.id != plain[0]
    # the other retrievers are not re-ranked
    assert [h.chunk.id for h in index.search(question, k=3, mode="dense", query_vector=vector)] == [
        h.chunk.id for h in course_index(embedder, small_course()).search(question, k=3, mode="dense",
                                                                          query_vector=vector)]
