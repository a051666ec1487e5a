"""How well does the TA-bot find the passage that answers a question, and does it decline what the course
does not cover? Over the hand-written question sets in benchmarks/data/ta_questions_{demo,oatutor}.json.

Prints, per course and overall: recall@5 and MRR@10 of dense, BM25 and hybrid search (reciprocal rank
fusion and min-max normalised score fusion) side by side; then the decline threshold tuned on the dev half
(questions with an even position in their file) and, on the test half only, the share of unanswerable
questions declined and of answerable ones wrongly declined, end to end through `TeachingAssistant` (quoted
path), with any question the injection classifier refused counted as a wrong refusal.

    nice -n 10 python benchmarks/ta_eval.py
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from courses.format import load_course
from inference.retrieval import CachingEmbedder, Chunk, SearchIndex, course_documents
from inference.ta import PASSAGES, StudentState, TeachingAssistant

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


def build(name: str) -> tuple[SearchIndex, TeachingAssistant]:
    if name == "demo":
        spec = load_course(ROOT / "courses" / "demo" / "derivatives")
    else:
        from courses.importers.oatutor import load_oatutor

        spec = load_oatutor(Path("/work/shared/data/oatutor/openstax-college-algebra.tar.gz")).spec
    index = SearchIndex(CachingEmbedder(CACHE / f"{name}.npz"))
    index.upsert(course_documents(spec))
    ta = TeachingAssistant(index, course_title=spec.title, prerequisites={c.slug: c.prerequisites for c in spec.concepts},
                           concept_titles={c.slug: c.title for c in spec.concepts},
                           answer_keys={i.id: i.answer for c in spec.concepts for i in c.items})
    return index, ta


def first_relevant_rank(index: SearchIndex, q: Question, mode: str, fusion: str) -> int | None:
    index.fusion = fusion
    hits = index.search(q.text, k=K_MRR, mode=mode)
    return next((rank for rank, h in enumerate(hits, start=1) if q.relevant(h.chunk)), None)


def evidence_signal(index: SearchIndex, q: Question) -> float:
    """What the TA declines on: the best cosine among the hybrid candidates it would use."""
    index.fusion = "rrf"
    return max((h.dense for h in index.search(q.text, k=PASSAGES + 4)), default=-1.0)


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
    courses = parser.parse_args().courses.split(",")
    rows: dict[str, dict[str, list[float]]] = {}
    all_signals: list[tuple[Question, float]] = []
    built: dict[str, tuple[SearchIndex, TeachingAssistant]] = {}
    for name in courses:
        questions = load_questions(name)
        index, ta = build(name)
        built[name] = (index, ta)
        missing = [q.id for q in questions if q.answerable and not any(q.relevant(c) for c in index.chunks)]
        if missing:
            raise SystemExit(f"{name}: no chunk holds the evidence of {missing}: fix the question set")
        answerable = [q for q in questions if q.answerable]
        print(f"\n{name}: {len(index)} chunks, {len(answerable)} answerable and "
              f"{len(questions) - len(answerable)} unanswerable questions")
        for label, mode, fusion in SEARCHES:
            ranks = [first_relevant_rank(index, q, mode, fusion) for q in answerable]
            rows.setdefault(label, {}).setdefault("recall", []).extend(r is not None and r <= K_RECALL for r in ranks)
            rows[label].setdefault("rr", []).extend(1 / r if r else 0.0 for r in ranks)
            rows[label].setdefault(f"recall {name}", []).extend(r is not None and r <= K_RECALL for r in ranks)
            rows[label].setdefault(f"rr {name}", []).extend(1 / r if r else 0.0 for r in ranks)
        all_signals += [(q, evidence_signal(index, q)) for q in questions]

    print(f"\n{'search':20} {'recall@5 demo':>14} {'MRR demo':>9} {'recall@5 oat':>13} {'MRR oat':>8} "
          f"{'recall@5 all':>13} {'MRR all':>8}")
    for label, _, _ in SEARCHES:
        r = rows[label]
        cells = [f"{np.mean(r[f'{m} {c}']) if f'{m} {c}' in r else float('nan'):{w}.3f}"
                 for c in ("demo", "oatutor") for m, w in (("recall", 14 if c == "demo" else 13), ("rr", 9 if c == "demo" else 8))]
        print(f"{label:20} {' '.join(cells)} {np.mean(r['recall']):13.3f} {np.mean(r['rr']):8.3f}")

    threshold = tune_threshold([(s, q.answerable) for q, s in all_signals if q.split == "dev"])
    print(f"\ndecline threshold tuned on the dev half ({sum(q.split == 'dev' for q, _ in all_signals)} questions): "
          f"best cosine < {threshold:.3f}")
    test = [q for q, _ in all_signals if q.split == "test"]
    outcomes: dict[str, Counter[str]] = {"answerable": Counter(), "unanswerable": Counter()}
    for q in test:
        _, ta = built[q.course]
        ta.decline_threshold = threshold
        reply = ta.answer(q.text, StudentState())
        outcomes["answerable" if q.answerable else "unanswerable"][reply.outcome] += 1
    a, u = outcomes["answerable"], outcomes["unanswerable"]
    n_a, n_u = sum(a.values()), sum(u.values())
    print(f"test half, end to end through TeachingAssistant (quoted path): {n_a} answerable, {n_u} unanswerable")
    print(f"  unanswerable correctly declined: {u['declined']}/{n_u} = {u['declined'] / n_u:.1%}")
    print(f"  answerable wrongly declined:     {a['declined']}/{n_a} = {a['declined'] / n_a:.1%}")
    print(f"  answerable wrongly refused as attacks: {a['refused']}/{n_a}; outcomes: answerable {dict(a)}, "
          f"unanswerable {dict(u)}")


if __name__ == "__main__":
    main()
