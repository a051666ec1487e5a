"""How well does the TA-bot find the passage that answers a question, and does it decline what the course
does not cover? Over the hand-written question sets in benchmarks/data/ta_questions_{demo,oatutor}.json.

Prints, per course and overall: recall@5 and MRR@10 of dense, BM25 and hybrid search (reciprocal rank
fusion and min-max normalised score fusion) side by side; then the decline threshold tuned on the dev half
(questions with an even position in their file) and, on the test half only, the share of unanswerable
questions declined and of answerable ones wrongly declined, end to end through `TeachingAssistant` (quoted
path), with any question the injection classifier refused counted as a wrong refusal; then the same over all
questions by BM25 alone, as the TA answers while its embedding model is still loading.

    nice -n 10 python benchmarks/ta_eval.py
    nice -n 10 python benchmarks/ta_eval.py --lexical-only   # BM25 alone, no model: seconds
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from courses.format import load_course
from inference.retrieval import (
    KIND_WEIGHTS,
    CachingEmbedder,
    Chunk,
    Embedder,
    SearchIndex,
    chunk_document,
    course_documents,
)
from inference.ta import LEXICAL_DECLINE_COVERAGE, StudentState, TeachingAssistant

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
CACHE = ROOT / "var" / "ta_cache"
K_RECALL, K_MRR = 5, 10
SEARCHES = (("dense", "dense", "rrf"), ("bm25", "bm25", "rrf"), ("hybrid rrf", "hybrid", "rrf"),
            ("hybrid normalised", "hybrid", "normalised"))


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    course: str
    split: str  # "dev" | "test"
    answer_docs: tuple[str, ...] = ()
    answer_concepts: tuple[str, ...] | None = None  # None: gold given by documents; (): any concept
    evidence: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)

    def relevant(self, chunk: Chunk) -> bool:
        if self.evidence not in chunk.text:
            return False
        if self.answer_concepts is not None:
            return not self.answer_concepts or chunk.concept in self.answer_concepts
        return chunk.doc_id in self.answer_docs


def load_questions(name: str) -> list[Question]:
    data = json.loads((DATA / f"ta_questions_{name}.json").read_text(encoding="utf-8"))
    out = []
    for position, q in enumerate(data["questions"] + data["unanswerable"]):
        concepts = q.get("answer_concepts")
        out.append(Question(id=q["id"], text=q["question"], course=name, split="dev" if position % 2 == 0 else "test",
                            answer_docs=tuple(q.get("answer_docs", ())),
                            answer_concepts=tuple(concepts) if concepts is not None else None,
                            evidence=q.get("evidence", "")))
    return out


def build(name: str, lexical_only: bool = False) -> tuple[SearchIndex, TeachingAssistant]:
    if name == "demo":
        spec = load_course(ROOT / "courses" / "demo" / "derivatives")
    else:
        from courses.importers.oatutor import load_oatutor

        spec = load_oatutor(Path("/work/shared/data/oatutor/openstax-college-algebra.tar.gz")).spec
    if lexical_only:  # chunks without vectors, ranked by BM25 alone: the TA while its embedding model loads
        chunks = [c for d in course_documents(spec) for c in chunk_document(d)]
        index = SearchIndex(Embedder())
        index.load(chunks, np.zeros((len(chunks), Embedder.dim), dtype=np.float32))
    else:
        index = SearchIndex(CachingEmbedder(CACHE / f"{name}.npz"))
        index.upsert(course_documents(spec))
    ta = TeachingAssistant(index, course_title=spec.title, prerequisites={c.slug: c.prerequisites for c in spec.concepts},
                           concept_titles={c.slug: c.title for c in spec.concepts},
                           answer_keys={i.id: i.answer for c in spec.concepts for i in c.items})
    return index, ta


def first_relevant_rank(index: SearchIndex, q: Question, mode: str, fusion: str,
                        vector: np.ndarray | None) -> int | None:
    index.fusion = fusion
    hits = index.search(q.text, k=K_MRR, mode=mode, query_vector=vector)
    return next((rank for rank, h in enumerate(hits, start=1) if q.relevant(h.chunk)), None)


def retrieval_table(built: dict[str, SearchIndex], questions: list[Question], vectors: dict[str, np.ndarray],
                    weights: dict[str, float]) -> dict[str, dict[str, list[float]]]:
    """search label -> {"recall <course>": [...], "rr <course>": [...], "recall": [...], "rr": [...]}"""
    rows: dict[str, dict[str, list[float]]] = {}
    for label, mode, fusion in SEARCHES:
        row = rows.setdefault(label, {})
        for q in questions:
            index = built[q.course]
            index.kind_weights = weights
            rank = first_relevant_rank(index, q, mode, fusion, vectors[q.id])
            hit, rr = float(rank is not None and rank <= K_RECALL), 1 / rank if rank else 0.0
            for key, value in ((f"recall {q.course}", hit), (f"rr {q.course}", rr), ("recall", hit), ("rr", rr)):
                row.setdefault(key, []).append(value)
    return rows


def print_table(title: str, rows: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{title}")
    print(f"{'search':20} {'recall@5 demo':>14} {'MRR demo':>9} {'recall@5 oat':>13} {'MRR oat':>8} "
          f"{'recall@5 all':>13} {'MRR all':>8}")
    for label, r in rows.items():
        cells = [f"{np.mean(r[key]) if key in r else float('nan'):{width}.3f}"
                 for key, width in (("recall demo", 14), ("rr demo", 9), ("recall oatutor", 13), ("rr oatutor", 8),
                                    ("recall", 13), ("rr", 8))]
        print(f"{label:20} {' '.join(cells)}")


def tune_weights(built: dict[str, SearchIndex], dev: list[Question], vectors: dict[str, np.ndarray]) -> dict[str, float]:
    """Kind weights (item stems; hints and solutions) that maximise hybrid-RRF MRR on the dev half."""
    best: tuple[float, dict[str, float]] = (-1.0, {})
    for stem in (1.0, 0.85, 0.7, 0.55, 0.4):
        for worked in (1.0, 0.85, 0.7):
            weights = {"item": stem, "hint": worked, "solution": worked}
            rows = retrieval_table(built, dev, vectors, weights)
            score = float(np.mean(rows["hybrid rrf"]["rr"]))
            print(f"  dev MRR (hybrid rrf) with stems x{stem}, hints/solutions x{worked}: {score:.3f}")
            if score > best[0] + 1e-9:
                best = (score, {k: v for k, v in weights.items() if v != 1.0})
    return best[1]


def evidence_signal(index: SearchIndex, q: Question) -> float:
    """What the TA declines on: the best cosine between the question and any chunk of the course."""
    return index.best_similarity(index.embedder.encode([q.text])[0])


def tune_threshold(signals: list[tuple[float, bool]]) -> float:
    """The cut that maximises balanced accuracy (answerable answered, unanswerable declined) on dev."""
    candidates = sorted({round(s, 3) for s, _ in signals})
    best, best_score = 0.0, -1.0
    for cut in candidates:
        answered = [s >= cut for s, a in signals if a]
        declined = [s < cut for s, a in signals if not a]
        score = (np.mean(answered) + np.mean(declined)) / 2
        if score > best_score:
            best, best_score = cut, score
    # midpoint to the next lower signal: the cut sits in the gap, not on a dev example
    lower = [s for s, _ in signals if s < best]
    return (best + max(lower)) / 2 if lower else best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", default="demo,oatutor")
    parser.add_argument("--tune", action="store_true", help="choose kind weights on the dev half first")
    parser.add_argument("--lexical-only", action="store_true",
                        help="no embedding model: BM25 recall and the lexical declines only (seconds, not minutes)")
    args = parser.parse_args()
    built: dict[str, tuple[SearchIndex, TeachingAssistant]] = {}
    questions: list[Question] = []
    for name in args.courses.split(","):
        course_questions = load_questions(name)
        index, ta = build(name, args.lexical_only)
        built[name] = (index, ta)
        missing = [q.id for q in course_questions if q.answerable and not any(q.relevant(c) for c in index.chunks)]
        if missing:
            raise SystemExit(f"{name}: no chunk holds the evidence of {missing}: fix the question set")
        answerable = sum(q.answerable for q in course_questions)
        print(f"{name}: {len(index)} chunks, {answerable} answerable and {len(course_questions) - answerable} "
              "unanswerable questions")
        questions += course_questions
    if args.lexical_only:
        answerable = [q for q in questions if q.answerable]
        ranks = [first_relevant_rank(built[q.course][0], q, "bm25", "rrf", None) for q in answerable]
        print(f"BM25 alone: recall@{K_RECALL} {np.mean([r is not None and r <= K_RECALL for r in ranks]):.3f} "
              f"over {len(answerable)} answerable questions")
        print_declines(LEXICAL_TITLE, built, questions, lexical=True)
        return
    indexes = {name: index for name, (index, _) in built.items()}
    vectors = {q.id: indexes[q.course].embedder.encode([q.text])[0] for q in questions}
    answerable = [q for q in questions if q.answerable]
    dev = [q for q in answerable if q.split == "dev"]
    test = [q for q in answerable if q.split == "test"]

    weights = dict(KIND_WEIGHTS)
    if args.tune:
        weights = tune_weights(indexes, dev, vectors)
        print(f"kind weights chosen on the dev half: {weights or 'none'} (inference/retrieval.py KIND_WEIGHTS)")
    print_table("no kind weights, all answerable questions", retrieval_table(indexes, answerable, vectors, {}))
    print_table(f"kind weights {weights}, test half only", retrieval_table(indexes, test, vectors, weights))
    print_table(f"kind weights {weights}, all answerable questions", retrieval_table(indexes, answerable, vectors, weights))

    for index in indexes.values():
        index.kind_weights = weights
    signals = [(q, evidence_signal(built[q.course][0], q)) for q in questions]
    threshold = tune_threshold([(s, q.answerable) for q, s in signals if q.split == "dev"])
    print(f"\ndecline threshold tuned on the dev half ({sum(q.split == 'dev' for q, _ in signals)} questions): "
          f"best cosine < {threshold:.3f}")
    for _, ta in built.values():
        ta.decline_threshold = threshold
    print_declines("test half, end to end through TeachingAssistant (quoted path)", built,
                   [q for q, _ in signals if q.split == "test"])
    print_declines(LEXICAL_TITLE, built, questions, lexical=True)


LEXICAL_TITLE = (f"while the embedding model loads (BM25 only, declined under {LEXICAL_DECLINE_COVERAGE} of the "
                 "question's terms in the course), all questions")


def print_declines(title: str, built: dict[str, tuple[SearchIndex, TeachingAssistant]], questions: list[Question],
                   lexical: bool = False) -> None:
    outcomes: dict[str, Counter[str]] = {"answerable": Counter(), "unanswerable": Counter()}
    for q in questions:
        reply = built[q.course][1].answer(q.text, StudentState(), lexical=lexical)
        reply.text()
        outcomes["answerable" if q.answerable else "unanswerable"][reply.outcome] += 1
    a, u = outcomes["answerable"], outcomes["unanswerable"]
    n_a, n_u = sum(a.values()), sum(u.values())
    print(f"{title}: {n_a} answerable, {n_u} unanswerable")
    print(f"  unanswerable correctly declined: {u['declined']}/{n_u} = {u['declined'] / n_u:.1%}")
    print(f"  answerable wrongly declined:     {a['declined']}/{n_a} = {a['declined'] / n_a:.1%}")
    print(f"  answerable wrongly refused as attacks: {a['refused']}/{n_a}; outcomes: answerable {dict(a)}, "
          f"unanswerable {dict(u)}")


if __name__ == "__main__":
    main()
