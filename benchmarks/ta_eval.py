"""How well does the TA-bot find the passage that answers a question, decline what the course does not cover,
and answer briefly? Per course, per retriever, on one split of hand-written question sets.

Courses and their questions (benchmarks/data/):
    demo      the demo course (derivatives)            ta_questions_demo.json (+ ta_questions_tuning.json)
    algebra   OATutor OpenStax College Algebra         ta_questions_oatutor.json (+ ta_questions_tuning.json)
                                                       + ta_questions_concepts_algebra.json ("cdev", "ctest")
                                                       + ta_questions_concepts2_algebra.json ("ctrain", "cfresh")
                                                       + ta_questions_concepts3_algebra.json ("cblind")
                                                       + ta_questions_concepts4_algebra.json ("cblind2")
    stats     OATutor OpenStax Introductory Stats      ta_questions_intro_stats.json (dev, test)
                                                       + ta_questions_intro_stats_fresh.json (split "fresh")
                                                       + ta_questions_concepts_stats.json ("cdev", "ctest")
                                                       + ta_questions_concepts2_stats.json ("ctrain", "cfresh")
                                                       + ta_questions_concepts3_stats.json ("cblind")
                                                       + ta_questions_concepts4_stats.json ("cblind2")
Splits: a question's own "split" field where it has one; else even positions in their file are dev, odd are test.
"fresh" is a second held-out set for Introductory Stats, written blind by someone who had not seen the bot's output,
after the test half had been run many times: a clean check of what the test half could no longer show unbiased.
"cdev" / "ctest": conceptual questions (why, when, which method, a misconception; not one exercise's numbers), both
imported courses, written blind (2026-12-07); look at cdev, measure on ctest. "ctrain" / "cfresh": a second, larger
blind set of them (2026-12-07, other ideas than the first): the re-ranker is fitted with ctrain, cdev and ctest
(`--tune-rerank --concepts`), and cfresh measures it. "cblind": a third blind set (2026-12-07), run once after the
scope rule was changed on what cfresh showed. "cblind2": a fourth (2026-12-07, 15:45 UTC), fixed before the session's
changes to idea-question search were tried on the earlier sets, and run once after them.
ta_questions_tuning.json is dev only. Everything tuned here (field and kind weights, the re-ranker, the scope
thresholds) is tuned on dev; report test figures, and Introductory Stats apart (written outside this code).

Prints per course: recall@1/@5 and MRR@10 of dense, BM25, hybrid and hybrid re-ranked (the TA's) search over
answerable questions (a hit is a passage of a gold concept holding the question's evidence phrase; where the question
set names the exercises that hold it, also "problem level": any hint or worked solution of such an exercise counts,
issue 19's "a passage from the right problem"); then, end to end through `TeachingAssistant` with the `authored` backend: the share of
out-of-course questions declined (near-miss and off-topic apart), of answerable ones wrongly declined, the median
answer length in words, the share of answers whose first citation is a gold passage, and p50/p95 time to the
complete reply. `--show N` prints N sampled replies.

    nice -n 10 python benchmarks/ta_eval.py --courses demo,algebra --split dev
    nice -n 10 python benchmarks/ta_eval.py --courses stats --split test --show 20
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.retrieval import CachingEmbedder, Chunk, Embedder, SearchIndex, course_documents
from inference.retrieval_rerank import FEATURES, PLAIN, LabelledQuestion, Reranker, reranker_fit
from inference.ta import WITHHELD_NOTE, StudentState, TeachingAssistant

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
CACHE = ROOT / "var" / "ta_cache"
OATUTOR = Path("/work/shared/data/oatutor")
K_RECALL, K_MRR = 5, 10
COURSES = {  # name -> (source, question files)
    "demo": (ROOT / "courses" / "demo" / "derivatives", ("ta_questions_demo.json", "ta_questions_tuning.json")),
    "algebra": (OATUTOR / "openstax-college-algebra.tar.gz", ("ta_questions_oatutor.json", "ta_questions_tuning.json",
                                                              "ta_questions_concepts_algebra.json",
                                                              "ta_questions_concepts2_algebra.json",
                                                              "ta_questions_concepts3_algebra.json",
                                                              "ta_questions_concepts4_algebra.json")),
    "stats": (OATUTOR / "openstax-introductory-stats.tar.gz", ("ta_questions_intro_stats.json",
                                                               "ta_questions_intro_stats_fresh.json",
                                                               "ta_questions_concepts_stats.json",
                                                               "ta_questions_concepts2_stats.json",
                                                               "ta_questions_concepts3_stats.json",
                                                               "ta_questions_concepts4_stats.json")),
}
# (label, mode, re-weighted by kind and scaffold, learned re-ranker): each retriever as the TA uses it, and hybrid
# without re-weighting and without the learned re-ranker
SEARCHES = (("dense", "dense", True, False), ("bm25", "bm25", True, False),
            ("hybrid, no re-weighting", "hybrid", False, False), ("hybrid, no learned re-rank", "hybrid", True, False),
            ("hybrid (the TA's)", "hybrid", True, True))


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    course: str
    split: str  # "dev" | "test" | "fresh"
    answer_docs: tuple[str, ...] = ()
    answer_concepts: tuple[str, ...] | None = None  # None: gold given by documents; (): any concept
    evidence: tuple[str, ...] = ()
    kind: str = ""  # out-of-course questions: "near_miss" | "off_topic"
    answer_items: tuple[str, ...] = ()  # the exercises whose hints or worked solution hold the evidence

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)

    def relevant(self, chunk: Chunk) -> bool:
        text = _plain(chunk.text)
        if not any(_plain(e) in text for e in self.evidence):
            return False
        if self.answer_concepts is not None:
            return not self.answer_concepts or chunk.concept in self.answer_concepts
        return chunk.doc_id in self.answer_docs

    def relevant_problem(self, chunk: Chunk) -> bool:
        """Issue 19's looser rule, "a passage from the right problem": a passage holding the evidence, or any hint or
        worked solution of an exercise that holds it (not its question stem, which answers nothing)."""
        return self.relevant(chunk) or (chunk.item_id in self.answer_items and chunk.kind != "item")


@functools.cache
def _plain(text: str) -> str:
    """Text as compared with an evidence phrase: maths delimiters, escapes and line breaks aside (the importer writes
    OATutor's `$$x$$` in a sentence as `$x$`, its `\\n` as a paragraph, its money as `\\$5`)."""
    return " ".join(text.replace("\\n", " ").replace("\\$", "$").replace("$", "").split())


def _list(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def load_questions(course: str) -> list[Question]:
    out = []
    for name in COURSES[course][1]:
        path = DATA / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if name == "ta_questions_tuning.json":
            data = data.get(course, {"questions": [], "unanswerable": []})
        answerable = data.get("questions", data.get("answerable", []))
        declined = data.get("unanswerable", data.get("decline", []))
        for position, q in enumerate(answerable + declined):
            concepts = q.get("answer_concepts", q.get("concepts"))
            split = q.get("split") or ("dev" if name == "ta_questions_tuning.json" or position % 2 == 0 else "test")
            evidence = _list(q.get("evidence"))
            kind = "" if evidence else str(q.get("kind", q.get("decline", "off_topic"))).replace("-", "_")
            out.append(Question(id=q["id"], text=q["question"], course=course, split=split,
                                answer_docs=_list(q.get("answer_docs")),
                                answer_concepts=tuple(concepts) if concepts is not None else None,
                                evidence=evidence, kind=kind, answer_items=_list(q.get("answer_items"))))
    return out


def load_spec(course: str):  # type: ignore[no-untyped-def]  # CourseSpec (courses.format)
    source = COURSES[course][0]
    if course == "demo":
        from courses.format import load_course

        return load_course(source)
    from courses.importers.oatutor import load_oatutor

    return load_oatutor(source).spec


def build(course: str) -> tuple[SearchIndex, TeachingAssistant]:
    """The course's index (vectors cached in var/ta_cache by text) and its TA, as the tutor builds them."""
    from tutor.ta.sources import course_text, passage_reveals

    spec = load_spec(course)
    text = course_text(spec)
    index = SearchIndex(CachingEmbedder(CACHE / f"{course}.npz"))
    index.upsert(course_documents(text))
    index.annotate(passage_reveals(index.chunks, spec))
    ta = TeachingAssistant(index, course=text, course_title=spec.title,
                           prerequisites={c.slug: c.prerequisites for c in spec.concepts},
                           answer_keys={i.id: i.answer for c in spec.concepts for i in c.items})
    return index, ta


def first_relevant_rank(index: SearchIndex, q: Question, mode: str, rerank: bool, vector: np.ndarray,
                        learned: bool = True, problem: bool = False) -> int | None:
    reranker = index.reranker
    if not learned:
        index.reranker = PLAIN
    try:
        hits = index.search(index.prepare_query(q.text), k=K_MRR, mode=mode, query_vector=vector, rerank=rerank)
    finally:
        index.reranker = reranker
    relevant = q.relevant_problem if problem else q.relevant
    return next((rank for rank, h in enumerate(hits, start=1) if relevant(h.chunk)), None)


@dataclass
class Retrieval:
    r1: list[float] = field(default_factory=list)
    r5: list[float] = field(default_factory=list)
    rr: list[float] = field(default_factory=list)

    def add(self, rank: int | None) -> None:
        self.r1.append(float(rank == 1))
        self.r5.append(float(rank is not None and rank <= K_RECALL))
        self.rr.append(1 / rank if rank else 0.0)

    def row(self) -> str:
        return f"{np.mean(self.r1):9.3f} {np.mean(self.r5):9.3f} {np.mean(self.rr):7.3f}"


def retrieval(index: SearchIndex, questions: list[Question], vectors: dict[str, np.ndarray]) -> dict[str, Retrieval]:
    table: dict[str, Retrieval] = {}
    for label, mode, rerank, learned in SEARCHES:
        row = table.setdefault(label, Retrieval())
        for q in questions:
            row.add(first_relevant_rank(index, q, mode, rerank, vectors[q.id], learned))
    if any(q.answer_items for q in questions):  # the question set names its exercises: issue 19's looser rule too
        row = table.setdefault("the TA's, problem level", Retrieval())
        for q in questions:
            row.add(first_relevant_rank(index, q, "hybrid", True, vectors[q.id], problem=True))
    return table


def search_cost(index: SearchIndex, questions: list[Question], vectors: dict[str, np.ndarray], repeats: int = 3) -> str:
    """Time of the TA's search (k=8, the query embedded and its cosines computed, as after the scope check) with and
    without the learned re-ranker, one after the other (which first alternates) so that both see the same load: p50/p95
    of each, and of the difference per question."""
    taken: dict[bool, list[float]] = {True: [], False: []}
    reranker = index.reranker
    for n, q in enumerate(questions * repeats):
        query = index.prepare_query(q.text)
        index.search(query, k=8, query_vector=vectors[q.id])  # the question's cosines, as the scope check leaves them
        for learned in (n % 2 == 0, n % 2 == 1):
            index.reranker = reranker if learned else PLAIN
            started = time.perf_counter()
            index.search(query, k=8, query_vector=vectors[q.id])
            taken[learned].append(1000 * (time.perf_counter() - started))
    index.reranker = reranker
    added = np.subtract(taken[True], taken[False])
    return (f"search (k=8, query embedded): plain p50/p95 {np.percentile(taken[False], 50):.1f}/"
            f"{np.percentile(taken[False], 95):.1f} ms, with the learned re-ranker {np.percentile(taken[True], 50):.1f}/"
            f"{np.percentile(taken[True], 95):.1f} ms (added per search: p50 {np.percentile(added, 50):.1f}, "
            f"p95 {np.percentile(added, 95):.1f} ms)")


@dataclass
class Replies:
    outcomes: dict[str, str] = field(default_factory=dict)  # question id -> outcome
    words: list[int] = field(default_factory=list)  # answered: words in the reply
    first_gold: list[float] = field(default_factory=list)
    any_gold: list[float] = field(default_factory=list)  # answered: a cited passage is a gold one
    held_back: list[float] = field(default_factory=list)  # answered: the reply says a passage was held back
    seconds: list[float] = field(default_factory=list)
    samples: list[tuple[Question, str, str]] = field(default_factory=list)


DECLINED = ("declined",)


def words(text: str) -> int:
    """Words a student reads: links' targets, citation marks and Markdown punctuation left out."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[A-Za-z0-9$\\][^\s]*", re.sub(r"[>*_#\[\]—]", " ", text)))


def replies(ta: TeachingAssistant, questions: list[Question], student: StudentState | None = None) -> Replies:
    """Each question through the TA as `student`, timed with the question embedded for real (the course's vectors
    come from the cache; a query never does). The default student counts every exercise as attempted, so nothing
    is held back as giving an exercise away; `StudentState(attempted=frozenset())` is one who has tried none."""
    cached = ta.index.embedder
    live = Embedder()
    live._model = cached._load()  # the same loaded model, without the memo
    ta.index.embedder = live
    out = Replies()
    for q in questions:
        started = time.perf_counter()
        reply = ta.answer(q.text, student or StudentState())
        text = reply.text()
        out.seconds.append(time.perf_counter() - started)
        out.outcomes[q.id] = reply.outcome
        out.samples.append((q, reply.outcome, text))
        if q.answerable and reply.outcome not in DECLINED:
            out.words.append(words(text))
            first = reply.citations[0] if reply.citations else None
            out.first_gold.append(float(first is not None and q.relevant(ta.index.chunk(first.chunk_id))))
            out.any_gold.append(float(any(q.relevant(ta.index.chunk(c.chunk_id)) for c in reply.citations)))
            out.held_back.append(float(WITHHELD_NOTE.split(" because")[0] in text))
    ta.index.embedder = cached
    return out


def share(values: list[bool]) -> str:
    return f"{sum(values)}/{len(values)} = {np.mean(values):.1%}" if values else "n/a"


def report(course: str, index: SearchIndex, ta: TeachingAssistant, questions: list[Question], show: int) -> None:
    answerable = [q for q in questions if q.answerable]
    out_of_course = [q for q in questions if not q.answerable]
    print(f"\n== {course}: {len(index)} chunks; {len(answerable)} answerable, {len(out_of_course)} out of course "
          f"({sum(q.kind == 'near_miss' for q in out_of_course)} near-miss)")
    vectors = {q.id: index.embedder.encode([index.prepare_query(q.text)])[0] for q in answerable}
    print(f"{'search':24} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>7}")
    for label, row in retrieval(index, answerable, vectors).items():
        print(f"{label:24} {row.row()}")
    print(search_cost(index, answerable, vectors))
    got = replies(ta, questions)
    declined = {q.id: got.outcomes[q.id] in DECLINED for q in questions}
    near = [declined[q.id] for q in out_of_course if q.kind == "near_miss"]
    off = [declined[q.id] for q in out_of_course if q.kind != "near_miss"]
    print("end to end (authored backend, a student who has tried every exercise: nothing held back):")
    print(f"  out of course declined: {share(near + off)} (near-miss {share(near)}, off-topic {share(off)})")
    print(f"  answerable wrongly declined: {share([declined[q.id] for q in answerable])}")
    print(f"  median answer {statistics.median(got.words) if got.words else float('nan'):.0f} words "
          f"(max {max(got.words, default=0)}); first citation gold: {share([bool(x) for x in got.first_gold])}"
          f"; a gold passage cited: {share([bool(x) for x in got.any_gold])}")
    print(f"  outcomes: { {o: list(got.outcomes.values()).count(o) for o in sorted(set(got.outcomes.values()))} }")
    from inference.ta_scope import judge

    lexical = {q.id: not judge(index, index.prepare_query(q.text), None).covered for q in questions}
    print(f"  while the embedding model loads (BM25's scope rule): out of course declined "
          f"{share([lexical[q.id] for q in out_of_course])}, answerable wrongly declined "
          f"{share([lexical[q.id] for q in answerable])}")
    new = replies(ta, questions, StudentState(attempted=frozenset()))
    print("  as a new student (no exercise tried: a passage giving an exercise's key away is held back): "
          f"answerable wrongly declined {share([new.outcomes[q.id] in DECLINED for q in answerable])}; "
          f"first citation gold {share([bool(x) for x in new.first_gold])}; a gold passage cited "
          f"{share([bool(x) for x in new.any_gold])}; told something was held back "
          f"{share([bool(x) for x in new.held_back])}")
    seconds = sorted(got.seconds)
    print(f"  time to the complete reply: p50 {1000 * np.percentile(seconds, 50):.0f} ms, "
          f"p95 {1000 * np.percentile(seconds, 95):.0f} ms")
    for q, outcome, text in random.Random(7).sample(got.samples, min(show, len(got.samples))):
        gold = "answerable" if q.answerable else q.kind
        print(f"\n--- [{q.id}, {gold}] {q.text}\n[{outcome}] {text}")
    missed = [q for q in answerable if declined[q.id]] + [q for q in out_of_course if not declined[q.id]]
    for q in missed:
        print(f"  wrong: [{q.id} {'answerable' if q.answerable else q.kind}] {q.text} -> {got.outcomes[q.id]}")


def tune_scope(built: dict[str, tuple[SearchIndex, TeachingAssistant]], questions: list[Question]) -> None:
    """Grid-search the scope thresholds on these (dev) questions: balanced accuracy of "covered?", answerable
    wrongly declined at most 5 %. Then, with the thresholds as configured, what each value of the local-passage rule
    (ta_scope.LOCAL_COSINE) would decline: the rule is chosen apart, so that it does not buy a looser grid."""
    from inference.ta_scope import Thresholds, decide, signals

    vectors = {q.id: built[q.course][0].embedder.encode([built[q.course][0].prepare_query(q.text)])[0]
               for q in questions}

    def found_at(local: float | None = None) -> list:
        options = {} if local is None else {"local": local}
        return [(q, signals(built[q.course][0], built[q.course][0].prepare_query(q.text), vectors[q.id], **options))
                for q in questions]

    found = found_at()
    best: tuple[float, Thresholds] = (-1.0, Thresholds())
    for off in np.arange(0.20, 0.46, 0.02):
        for near in np.arange(0.30, 0.66, 0.02):
            for central in np.arange(0.02, 0.61, 0.04):
                t = Thresholds(float(off), float(near), float(central))
                wrong_decline = [not decide(s, t).covered for q, s in found if q.answerable]
                declined = [not decide(s, t).covered for q, s in found if not q.answerable]
                if np.mean(wrong_decline) > 0.05:
                    continue
                score = (np.mean(declined) + 1 - np.mean(wrong_decline)) / 2
                if score > best[0] + 1e-9:
                    best = (float(score), t)
    t = best[1]
    print(f"scope thresholds chosen on {len(found)} questions: off-topic cosine < {t.off_topic:.2f}, near {t.near:.2f},"
          f" central shift > {t.central:.2f} (balanced accuracy {best[0]:.3f})")
    for q, s in found:
        verdict = decide(s, t)
        if verdict.covered != q.answerable:
            print(f"  wrong: [{q.id}] {q.text[:70]} | {verdict.reason}")
    print("the local-passage rule, thresholds as configured: local cosine -> answerable wrongly declined, "
          "near-miss declined, all out-of-course declined")
    for local in (*np.round(np.arange(0.50, 0.81, 0.05), 2), None):
        at = found_at(float(local) if local is not None else 9.0)  # 9: no passage is that close, the rule is off
        wrong = np.mean([not decide(s).covered for q, s in at if q.answerable])
        near = np.mean([not decide(s).covered for q, s in at if q.kind == "near_miss"])
        out = np.mean([not decide(s).covered for q, s in at if not q.answerable])
        print(f"  {'off' if local is None else f'{local:.2f}':>5}: {wrong:.3f} {near:.3f} {out:.3f}")


def tune_retrieval(built: dict[str, tuple[SearchIndex, TeachingAssistant]], questions: list[Question],
                   fine: bool = False) -> None:
    """Grid-search field, kind and scaffold weights on these (dev) answerable questions: mean over courses of
    recall@5, then MRR. (An earlier grid also tried the context's own vector in dense search and a bonus from the
    best passage of the same concept: both lost on dev and are gone.)"""
    answerable = [q for q in questions if q.answerable]
    vectors = {q.id: built[q.course][0].embedder.encode([built[q.course][0].prepare_query(q.text)])[0]
               for q in answerable}
    results = []
    if fine:  # the BM25 weight in fusion, around the best of the coarse grid
        grid = [(cb, 0.7, 0.7, 0.55, bw) for cb in (0.25, 0.5) for bw in (0.5, 1.0, 1.5, 2.0, 3.0)]
    else:
        grid = [(cb, sc, wk, st, 1.0) for cb in (0.0, 0.25, 0.5, 1.0) for sc in (0.5, 0.7, 1.0)
                for wk in (0.7, 1.0) for st in (0.4, 0.55, 0.8)]
    for context_bm25, scaffold, worked, stem, bm25_rrf in grid:
        per_course = []
        for course, (index, _) in built.items():
            index.context_bm25_weight, index.scaffold_weight = context_bm25, scaffold
            index.bm25_rrf_weight = bm25_rrf
            index.kind_weights = {"item": stem, "hint": worked, "solution": worked}
            row = Retrieval()
            for q in answerable:
                if q.course == course:
                    row.add(first_relevant_rank(index, q, "hybrid", True, vectors[q.id]))
            per_course.append((np.mean(row.r5), np.mean(row.rr)))
        score = tuple(np.mean(per_course, axis=0))
        results.append((score, (context_bm25, scaffold, worked, stem, bm25_rrf), per_course))
    results.sort(reverse=True)
    for score, weights, per_course in results[:8]:
        print(f"  recall@5 {score[0]:.3f} MRR {score[1]:.3f}  context (BM25) x{weights[0]}, scaffolds x{weights[1]}, "
              f"hints/solutions x{weights[2]}, stems x{weights[3]}, BM25 in fusion x{weights[4]}  per course "
              + " ".join(f"{r:.2f}/{m:.2f}" for r, m in per_course))


CONCEPT_TRAIN = ("cdev", "ctest", "ctrain")  # conceptual questions the re-ranker may be fitted on (never cfresh)


def tune_rerank(built: dict[str, tuple[SearchIndex, TeachingAssistant]], questions: list[Question],
                without: tuple[str, ...] = (), fit_ideas: bool = False, idea_weight: float = 1.0) -> None:
    """Fit the learned re-ranker on these answerable questions, all courses together, and estimate how it does on a
    course it has not seen: fitted on the other courses, scored on each one (leave one course out), against the plain
    ranking and the shipped one, by recall@1/@5 and MRR@10 of the TA's hybrid search. Questions are grouped by course
    and by kind (about an exercise: the dev halves; about an idea: the conceptual sets of `CONCEPT_TRAIN`); each group
    weighs the same (an idea group `idea_weight` times that). The idea groups are always scored, and fitted on only
    with `fit_ideas`. Features named in
    `without` are held at 0 (a constant feature keeps its weight at 0)."""
    dropped = [FEATURES.index(name) for name in without]
    answerable = [q for q in questions if q.answerable]
    vectors = {q.id: built[q.course][0].embedder.encode([built[q.course][0].prepare_query(q.text)])[0]
               for q in answerable}

    def group(q: Question) -> tuple[str, str]:
        return q.course, "ideas" if q.split in CONCEPT_TRAIN else "exercises"

    sizes = {g: sum(group(x) == g for x in answerable) for g in map(group, answerable)}
    labelled: dict[tuple[str, str], list[LabelledQuestion]] = {}
    for q in answerable:
        index = built[q.course][0]
        chunks, features = index.rerank_candidates(index.prepare_query(q.text), vectors[q.id])
        features[:, dropped] = 0.0
        labelled.setdefault(group(q), []).append(
            LabelledQuestion(features, np.array([q.relevant(c) for c in chunks], dtype=bool),
                             (idea_weight if group(q)[1] == "ideas" else 1.0) / sizes[group(q)]))

    def scored(key: tuple[str, str], reranker: Reranker) -> Retrieval:
        index, row = built[key[0]][0], Retrieval()
        shipped, index.reranker = index.reranker, reranker
        for q in answerable:
            if group(q) == key:
                row.add(first_relevant_rank(index, q, "hybrid", True, vectors[q.id]))
        index.reranker = shipped
        return row

    def fit(keep: Callable[[tuple[str, str]], bool]) -> Reranker:
        return reranker_fit([x for g, xs in labelled.items() if keep(g) and (fit_ideas or g[1] == "exercises")
                             for x in xs])

    print(f"{'course':18} {'re-ranker':28} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>7}")
    for course in built:
        others = fit(lambda g: g[0] != course)  # noqa: B023  # called at once
        for key in sorted(k for k in sizes if k[0] == course):
            for label, reranker in (("plain", PLAIN), ("shipped", built[course][0].reranker),
                                    ("fitted on the other courses", others)):
                print(f"{course + ' ' + key[1]:18} {label:28} {scored(key, reranker).row()}")
    fitted = fit(lambda g: True)
    for key in sorted(sizes):
        print(f"{key[0] + ' ' + key[1]:18} {'fitted on all (in sample)':28} {scored(key, fitted).row()}")
    print("DEFAULT_RERANKER = Reranker(weights=(" + ", ".join(f"{w:.6g}" for w in fitted.weights) + "))  # "
          + ", ".join(FEATURES))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", default="demo,algebra")
    parser.add_argument("--split", default="dev",
                        choices=("dev", "test", "fresh", "cdev", "ctest", "ctrain", "cfresh", "cblind", "cblind2",
                                 "all"))
    parser.add_argument("--show", type=int, default=0, help="print this many sampled replies per course")
    parser.add_argument("--tune-scope", action="store_true", help="choose the scope thresholds on these questions")
    parser.add_argument("--tune-retrieval", action="store_true", help="choose field, kind and re-ranking weights")
    parser.add_argument("--fine", action="store_true", help="with --tune-retrieval: BM25's weight in fusion")
    parser.add_argument("--tune-rerank", action="store_true", help="fit the learned re-ranker (and leave one course out)")
    parser.add_argument("--idea-weight", type=float, default=1.0,
                        help="with --tune-rerank --concepts: an idea group's weight against an exercise group's")
    parser.add_argument("--without", default="", help="with --tune-rerank: features (comma-separated) held at 0")
    parser.add_argument("--concepts", action="store_true",
                        help="with --tune-rerank: fit on the conceptual questions of " + ", ".join(CONCEPT_TRAIN)
                        + " too (they are scored either way)")
    args = parser.parse_args()
    import courses.checking  # noqa: F401  # registers the modules the sandbox's workers preload
    from inference import sandbox

    sandbox.warm()  # the answer checker's worker processes start before the first course is read
    if args.tune_scope or args.tune_retrieval or args.tune_rerank:
        if args.split != "dev":
            raise SystemExit("tune on the dev split only")
        built = {course: build(course) for course in args.courses.split(",")}
        splits = ("dev",) + (CONCEPT_TRAIN if args.tune_rerank else ())
        dev = [q for c in built for q in load_questions(c) if q.split in splits]
        if args.tune_scope:
            tune_scope(built, dev)
        elif args.tune_rerank:
            tune_rerank(built, dev, tuple(name for name in args.without.split(",") if name), args.concepts,
                        args.idea_weight)
        else:
            tune_retrieval(built, dev, fine=args.fine)
        return
    for course in args.courses.split(","):
        questions = [q for q in load_questions(course) if args.split in ("all", q.split)]
        started = time.perf_counter()
        index, ta = build(course)
        print(f"{course}: index built in {time.perf_counter() - started:.0f} s")
        missing = [q.id for q in questions if q.answerable and not any(q.relevant(c) for c in index.chunks)]
        if missing:
            print(f"  WARNING {course}: no chunk holds the evidence of {missing}")
        report(course, index, ta, questions, args.show)


if __name__ == "__main__":
    main()
