"""The TA-bot on an imported OATutor course (Introductory Stats, not a course its code was written against):
which passages give away an exercise's key (decided by the answer checker), and lexical answers and declines.
No database and no embedding model: BM25 over the imported course's chunks, as while the model loads."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from courses.format import CourseSpec
from inference.retrieval import Chunk, Embedder, SearchIndex, chunk_document, course_documents
from inference.ta import StudentState, TeachingAssistant
from tests.conftest import SHARED_DATA, oatutor_import
from tutor.ta.sources import course_text, passage_reveals

STATS = SHARED_DATA / "oatutor" / "openstax-introductory-stats.tar.gz"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not STATS.exists(), reason="shared OATutor data not present")]


@cache
def stats() -> tuple[CourseSpec, list[Chunk]]:
    spec = oatutor_import(STATS).spec
    return spec, [c for d in course_documents(course_text(spec)) for c in chunk_document(d)]


def test_hints_that_compute_a_key_reveal_it_a_worked_example_s_own_answer_is_no_secret_and_outlines_reveal_nothing(
        ) -> None:
    spec, chunks = stats()
    concepts = [c for c in spec.concepts if c.explanation.strip()][:12]
    slugs = {c.slug for c in concepts}
    judged = passage_reveals([c for c in chunks if c.concept in slugs], spec)
    for concept in concepts:
        example = next(i for i in concept.items if len(i.hints) >= 2)  # the importer's worked example
        # the passage that ends the walk-through with its answer ("*Answer:* ...", or its last step's "Answer: ...")
        closing = [c for c in judged if c.doc_id == f"{concept.slug}#explanation" and "Answer:" in c.text][-1:]
        # every student reads the example worked through before practising, and practice serves it last
        assert closing and not any(example.id in c.reveals for c in judged), concept.slug
    assert all(not c.reveals for c in judged if c.kind in ("outline", "item"))
    student = StudentState(attempted=frozenset())
    revealing = [c for c in judged if c.reveals]
    assert revealing and not any(student.may_quote(c) for c in revealing)
    assert all(StudentState(attempted=frozenset(c.reveals)).may_quote(c) for c in revealing if c.kind != "solution")


class NoModel(Embedder):
    def _load(self) -> object:
        raise AssertionError("the embedding model was used")


def test_while_the_model_loads_an_imported_course_answers_from_its_hints_and_declines_other_statistics() -> None:
    spec, chunks = stats()
    index = SearchIndex(NoModel())
    index.load(chunks, np.zeros((len(chunks), Embedder.dim), dtype=np.float32))
    ta = TeachingAssistant(index, course=course_text(spec))
    reply = ta.answer("what is the interquartile range and how do I find it", StudentState(), lexical=True)
    text = reply.text()
    assert reply.outcome == "quoted" and 1 <= len(reply.citations) <= 4 and "> " in text
    assert len(text.split()) <= 140 and "Learning objective" not in text and "\\n" not in text
    declined = ta.answer("whats a bayesian prior and posterior", StudentState(), lexical=True)
    assert declined.outcome == "declined" and declined.escalate_offered
