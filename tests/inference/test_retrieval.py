"""The TA-bot's search: documents from course content, chunks that link to the exact place, hybrid ranking,
incremental reindexing and vectors that survive a trip through the database as bytes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inference.retrieval import (
    KIND_WEIGHTS,
    ConceptText,
    CourseText,
    Document,
    Embedder,
    ItemText,
    SearchIndex,
    chunk_document,
    course_documents,
    default_embedder,
    faculty_answer_document,
    normalise_query,
    pdf_documents,
    slugify,
    tokenize,
    vector_from_bytes,
    vector_to_bytes,
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return default_embedder()  # one model load per test session


def small_course() -> CourseText:
    return CourseText(slug="calc", title="Calculus", concepts=(
        ConceptText(slug="power-rule", title="The power rule",
                    lesson="To differentiate $x^n$, bring the exponent down and lower it by one: $n x^{n-1}$.\n\n"
                           "### Why it works\n\nExpand $(x+h)^n$ with the binomial theorem; every term but one vanishes.",
                    items=(ItemText(id="pr-1", prompt="Differentiate $x^5$.",
                                    hints=("Bring the 5 down.", "Lower the exponent to 4."),
                                    solution="Bring the exponent down: $5x^4$."),)),
        ConceptText(slug="chain-rule", title="The chain rule",
                    lesson="For a composition $f(g(x))$, multiply the derivative of the outer function, evaluated at "
                           "the inner one, by the derivative of the inner function.",
                    explanation="Think of gears: if the inner gear turns twice as fast and the outer three times, "
                                "the whole turns six times as fast."),
    ))


@pytest.fixture(scope="module")
def index(embedder: Embedder) -> SearchIndex:
    idx = SearchIndex(embedder)
    idx.upsert(course_documents(small_course()))
    return idx


def test_answer_keys_are_never_made_into_documents() -> None:
    docs = course_documents(small_course())
    assert {d.kind for d in docs} >= {"lesson", "explanation", "item", "hint", "solution"}
    assert "answer" not in ItemText.__dataclass_fields__  # the course as retrieval reads it has no key to leak


def test_each_hint_is_one_chunk_indexed_with_its_exercises_question_but_quoting_only_the_hint() -> None:
    hints = next(d for d in course_documents(small_course()) if d.kind == "hint")
    chunks = chunk_document(hints)
    assert [c.text for c in chunks] == ["Bring the 5 down.", "Lower the exponent to 4."]
    assert all(c.context == "Differentiate $x^5$." and c.topic == "The power rule" for c in chunks)


def test_an_importers_lesson_outline_is_searched_for_scope_but_never_quoted(embedder: Embedder) -> None:
    course = CourseText(slug="alg", title="Algebra", concepts=(
        ConceptText(slug="asymptotes", title="Vertical asymptotes", outline=True,
                    lesson="From **Lesson 3.7: Rational Functions**. Learning objective: vertical asymptotes."),
        ConceptText(slug="slopes", title="Slopes", lesson="Slope is the change in output over the change in input."),
    ))
    idx = SearchIndex(embedder)
    idx.upsert(course_documents(course))
    assert any(c.kind == "outline" for c in idx.chunks)
    hits = idx.search(idx.prepare_query("what are vertical asymptotes of rational functions"), k=5)
    assert hits and all(h.chunk.kind != "outline" for h in hits)
    assert idx.best_similarity(embedder.encode(["vertical asymptotes of rational functions"])[0]) > 0.6


def test_a_students_shorthand_and_misspelling_are_read_in_the_courses_words(index: SearchIndex) -> None:
    query = index.prepare_query("deriv of x^n, the binomal theorem proof?")
    assert "derivative" in query and "binomial" in query
    assert any(h.chunk.url.endswith("#why-it-works") for h in index.search(query, k=2))


def test_a_subscript_typed_flat_is_the_same_word_as_the_courses_maths() -> None:
    # "do i reject H0 ..." against a course that writes $H_0$: the student's "h0" was a word no passage had.
    assert tokenize("do I reject H0? Q1 and Q3") == tokenize("do I reject $H_0$? $Q_{1}$ and Q_3")
    # one word first (Q1 is not the q of "q = 1 - p"), with its letter and number for a passage that parts them
    assert tokenize("$H_0$") == ["h0", "h", "0"] and tokenize("Q1") == ["q1", "q", "1"]
    assert tokenize("x_n") == ["x", "n"]  # only a numbered subscript


@pytest.mark.parametrize(("asked", "searched"), [
    ("does a parabola have a max or a min", "does a parabola have a maximum or a minimum"),
    ("the coeff over the denom, approx", "the coefficient over the denominator, approximately"),
    ("4 calls per min, each takes 5 min", "4 calls per min, each takes 5 min"),  # minutes stay minutes
    ("whats p prime, and f double prime", "whats p', and f''"),  # a letter's prime as the course writes it
    ("is 7 a prime number? Lagrange's prime notation", "is 7 a prime number? Lagrange's prime notation"),
])
def test_shorthand_is_spelt_out_and_minutes_are_not_read_as_a_minimum(asked: str, searched: str) -> None:
    assert normalise_query(asked) == searched


def test_a_word_the_course_uses_in_another_form_is_not_respelt() -> None:
    course = CourseText(slug="c", title="C", concepts=(ConceptText(
        slug="cards", title="Cards", lesson="Draw one card from the hearts. The variance of the draws is small. "
                                            "Pain scores fell."),))
    chunks = [c for d in course_documents(course) for c in chunk_document(d)]
    idx = SearchIndex(Embedder())
    idx.load(chunks, np.zeros((len(chunks), Embedder.dim), dtype=np.float32))
    # "heart" stems as the course's "hearts" does, and "plain" is an English word, not a misspelt "pain": kept as
    # the student wrote them; "varience" is a misspelling
    assert idx.prepare_query("resting heart rate in plain words, and varience") == (
        "resting heart rate in plain words, and variance")


def test_the_same_text_in_many_exercises_is_returned_once(embedder: Embedder) -> None:
    course = CourseText(slug="c", title="C", concepts=(ConceptText(slug="s", title="Scientific notation", items=tuple(
        ItemText(id=f"sn-{n}", prompt=f"Write {n}00000 in scientific notation.",
                 hints=("A number is written in scientific notation as a times 10 to the n, with 1 <= |a| < 10.",))
        for n in range(1, 6))),))
    idx = SearchIndex(embedder)
    idx.upsert(course_documents(course))
    hits = idx.search(idx.prepare_query("what is scientific notation"), k=5, mode="hybrid")
    assert sum("1 <= |a| < 10" in h.chunk.text for h in hits) == 1


def test_each_chunk_links_to_the_heading_it_sits_under_and_is_a_verbatim_slice() -> None:
    doc = Document(id="d", url="/c/page/", title="Page", kind="upload",
                   text="Intro line.\n\n## First part\n\nAlpha.\n\nBeta.\n\n### Deeper: a subsection\n\nGamma.")
    chunks = chunk_document(doc)
    assert [c.url for c in chunks] == ["/c/page/", "/c/page/#first-part", "/c/page/#deeper-a-subsection"]
    for chunk in chunks:
        assert chunk.text in doc.text
        anchor = chunk.url.partition("#")[2]
        if anchor:
            heading = re.findall(r"^#+ (.+)$", doc.text[: doc.text.index(chunk.text)], re.MULTILINE)[-1]
            assert slugify(heading) == anchor


def test_a_long_paragraph_is_cut_at_sentences_under_the_size_cap() -> None:
    text = " ".join(f"Sentence number {i} says something about limits." for i in range(60))
    chunks = chunk_document(Document(id="d", url="/u/", title="T", text=text, kind="upload"), max_chars=300)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(c.text in text for c in chunks)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_the_passage_that_answers(index: SearchIndex, mode: str) -> None:
    hits = index.search("how do I differentiate a composition of two functions (chain rule)?", k=3, mode=mode)
    assert hits[0].chunk.concept == "chain-rule"


def test_normalised_fusion_ranks_like_rrf_on_a_clear_question(embedder: Embedder) -> None:
    idx = SearchIndex(embedder, fusion="normalised")
    idx.upsert(course_documents(small_course()))
    assert idx.search("gears turning faster, composition", k=1)[0].chunk.doc_id == "chain-rule#explanation"


def test_incremental_reindex_updates_results_and_embeds_only_what_changed(embedder: Embedder) -> None:
    idx = SearchIndex(embedder)
    first = idx.upsert(course_documents(small_course()))
    assert first.embedded_chunks == len(idx)
    assert idx.upsert(course_documents(small_course())).embedded_chunks == 0

    note = Document(id="upload/1", url="/files/1/", title="Notes", kind="upload", text="L'Hôpital's rule handles 0/0.")
    change = idx.upsert([note])
    assert change.added == ["upload/1"] and change.embedded_chunks == 1
    assert idx.search("L'Hôpital 0/0", k=1)[0].chunk.doc_id == "upload/1"

    edited = Document(id="upload/1", url="/files/1/", title="Notes", kind="upload", text="Taylor series approximate functions.")
    assert idx.upsert([edited]).updated == ["upload/1"]
    assert all("Hôpital" not in h.chunk.text for h in idx.search("L'Hôpital 0/0", k=10))
    assert idx.search("Taylor series", k=1)[0].chunk.doc_id == "upload/1"

    assert idx.remove(["upload/1"]).removed == ["upload/1"]
    assert all(h.chunk.doc_id != "upload/1" for h in idx.search("Taylor series", k=10))


def test_vectors_survive_a_trip_through_bytes_and_a_reload_needs_no_embedding(index: SearchIndex) -> None:
    stored = index.vectors()
    vector = vector_from_bytes(stored[index.chunks[0].id])
    assert vector.dtype == np.float32 and vector.shape == (384,)
    assert vector_to_bytes(vector) == stored[index.chunks[0].id]

    class NoEmbedding(Embedder):
        def encode(self, texts, batch_size=32):  # type: ignore[no-untyped-def]
            if len(texts) != 1:  # only the query may be embedded
                raise AssertionError("a reload must not re-embed chunks")
            return index.embedder.encode(texts)

    reloaded = SearchIndex(NoEmbedding())
    reloaded.load(index.chunks, [stored[c.id] for c in index.chunks])
    query = "why does the binomial theorem prove the power rule"
    assert [h.chunk.id for h in reloaded.search(query)] == [h.chunk.id for h in index.search(query)]


def test_a_course_sentence_is_embedded_once_however_many_replies_quote_it(index: SearchIndex, monkeypatch) -> None:
    embedded: list[str] = []

    class Counting(Embedder):
        def encode(self, texts, batch_size=32):  # type: ignore[no-untyped-def]
            embedded.extend(texts)
            return index.embedder.encode(texts)

    idx = SearchIndex(Counting())
    idx.load(index.chunks, list(index.vectors().values()))
    sentences = ["The power rule: bring the exponent down.", "Why it works: expand with the binomial theorem."]
    first = idx.sentence_vectors(sentences)
    again = idx.sentence_vectors(list(reversed(sentences)) + sentences[:1])
    assert embedded == sentences  # the second reply embeds nothing
    assert np.allclose(again, first[[1, 0, 0]])
    monkeypatch.setattr("inference.retrieval.SENTENCE_MEMO", 2)
    idx.sentence_vectors(["A third sentence pushes the oldest out."])
    idx.sentence_vectors(sentences[:1])
    assert embedded[-1] == sentences[0]  # kept at most SENTENCE_MEMO: the oldest was embedded again


def test_search_can_exclude_chunks_such_as_a_graded_items_solution(index: SearchIndex) -> None:
    hits = index.search("differentiate x^5 worked solution", k=10, where=lambda c: c.item_id != "pr-1")
    assert hits and all(h.chunk.item_id != "pr-1" for h in hits)


def test_faculty_answers_keep_no_email_address() -> None:
    doc = faculty_answer_document(id="fa/1", url="/ta/answers/1/", question="From bob@uni.edu: is 0^0 defined?",
                                  answer="It is left undefined in this course.")
    assert "bob@uni.edu" not in doc.text and "undefined" in doc.text


def _one_page_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_an_uploaded_pdf_is_indexed_page_by_page_with_page_links(embedder: Embedder) -> None:
    docs = pdf_documents(id="up/syllabus", url="/files/syllabus.pdf", title="Syllabus",
                         data=_one_page_pdf("The midterm covers limits and continuity."))
    assert [d.url for d in docs] == ["/files/syllabus.pdf#page=1"]
    idx = SearchIndex(embedder)
    idx.upsert(docs)
    assert idx.search("what does the midterm cover", k=1)[0].chunk.url == "/files/syllabus.pdf#page=1"


def test_kind_weights_let_a_lesson_outrank_an_exercise_that_repeats_the_question(index: SearchIndex) -> None:
    question = "Differentiate x^5"
    index.kind_weights = {}
    try:
        assert index.search(question, k=1, mode="dense")[0].chunk.kind in ("item", "hint", "solution")
        index.kind_weights = {"item": 0.1, "hint": 0.1, "solution": 0.1}
        assert index.search(question, k=1, mode="dense")[0].chunk.kind == "lesson"
    finally:
        index.kind_weights = dict(KIND_WEIGHTS)


def test_best_similarity_is_high_for_course_topics_and_low_for_others(index: SearchIndex) -> None:
    on_topic = index.best_similarity(index.embedder.encode(["the chain rule for compositions"])[0])
    off_topic = index.best_similarity(index.embedder.encode(["recipe for banana bread"])[0])
    assert on_topic > 0.5 > off_topic
