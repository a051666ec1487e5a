"""The TA-bot in the product: index a course's texts, answer students' questions, escalate to faculty.

`inference/retrieval.py` and `inference/ta.py` know nothing of Django; this module turns rows into their inputs
and persists their outputs:

    TAChunk     every passage a student may read (lessons, explanations, item stems, hints, worked solutions,
                faculty answers, uploaded Markdown/PDF), with its embedding: a restart never re-embeds
    TAIndex     per course: `version` (bumped when chunks change) and the progress of the last reindex
    TAQuestion  a student's question, the streamed answer, and the faculty answer when escalated

Each process keeps one `SearchIndex` per course in memory, loaded from TAChunk rows and reloaded when
`TAIndex.version` moves. Answer keys are never indexed; the live items' keys go to the output guard.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from courses import selectors as course_selectors
from courses.background import jobs_run_elsewhere, task_start
from courses.format import CourseSpec
from courses.models import Course, Item
from inference.retrieval import (
    Chunk,
    Document,
    Embedder,
    SearchIndex,
    chunk_document,
    course_documents,
    default_embedder,
    faculty_answer_document,
    markdown_document,
    pdf_documents,
)
from inference.ta import CurrentItem, StudentState, TAReply, TeachingAssistant
from tutor import caches, llm
from tutor.models import Attempt, TAChunk, TADocument, TAIndex, TAQuestion, TutorSession
from tutor.ratelimit import ratelimit_check
from tutor.selectors import knowledge_state
from tutor.services import concept_mastery, course_model, course_rows
from tutor.ta import selectors as ta_selectors
from tutor.ta.privacy import personal_data
from tutor.ta.sources import CourseKeys, course_keys, course_text, keys_digest, passage_reveals

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
EMBED_BATCH_DOCS = 50  # documents embedded between two progress updates
EARLIER_QUESTIONS = 5  # the student's last questions, checked together for split prompt injections
SHAKY_MASTERY = 0.5  # a prerequisite answered below this mastery gets a one-line reminder in the TA's reply
DECLINED_MESSAGE = "The course materials don't cover this."


class TAError(ValueError):
    """The request cannot be served as asked (empty question, over the rate limit, unreadable upload)."""


class TARateLimited(TAError):
    pass


# --- URLs of the places chunks link to ------------------------------------------------------------------


def concept_base_url(course: Course) -> str:
    """Lessons link to `<base>/<concept>/#lesson`, item texts to `<base>/<concept>/items/<item>/#exercise`."""
    return f"/learn/{course.slug}/concept"


def faq_url(question: TAQuestion) -> str:
    return f"/learn/{question.course.slug}/faq/{question.pk}/"


def document_url(document: TADocument) -> str:
    return f"/learn/{document.course.slug}/documents/{document.pk}/"


# --- documents and indexing -------------------------------------------------------------------------------


def ta_documents(*, course: Course) -> list[Document]:
    """Every text of the course a student may read, as retrieval documents. Only published items; no keys; no
    upload held for a teacher's confirmation (it holds personal data)."""
    return _sources(course)[1]


def _published_spec(course: Course) -> CourseSpec:
    """The course's published content, as the folder format holds it: review and rejected items are not shown to
    students, so they are neither indexed nor judged."""
    spec = course_selectors.course_spec(course=course)
    for concept in spec.concepts:
        concept.items = [i for i in concept.items if course_selectors.ITEM_STATUS_KEY not in i.extra]
    return spec


def _sources(course: Course) -> tuple[CourseSpec, list[Document]]:
    """The course's published content and its retrieval documents."""
    spec = _published_spec(course)
    docs = course_documents(course_text(spec), base_url=concept_base_url(course))
    answered = TAQuestion.objects.filter(course=course, shared=True).exclude(faculty_answer="").select_related("course")
    for q in answered.order_by("pk"):
        docs.append(faculty_answer_document(id=f"faculty/{q.pk}", url=faq_url(q), question=q.question,
                                            answer=q.faculty_answer, concept=(q.concepts or [""])[0]))
    for d in TADocument.objects.filter(course=course, held=False).select_related("course").order_by("pk"):
        docs.extend(upload_documents(document=d))
    return spec, docs


def upload_documents(*, document: TADocument) -> list[Document]:
    data = bytes(document.data)
    if document.kind == "pdf":
        return pdf_documents(id=f"upload/{document.pk}", url=document_url(document), title=document.title, data=data)
    return [markdown_document(id=f"upload/{document.pk}", url=document_url(document), title=document.title,
                              text=data.decode("utf-8", errors="replace"))]


@dataclass(frozen=True)
class ReindexOutcome:
    version: int
    embedded_documents: int
    removed_documents: int
    unchanged_documents: int

    def as_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


def ta_index_rebuild(*, course: Course, progress: Callable[[int, str], None] | None = None) -> ReindexOutcome:
    """Bring the stored chunks up to date with the course: embed only documents whose version changed,
    drop documents that are gone, and bump the index version (so every process reloads) if anything moved."""
    state, _ = TAIndex.objects.get_or_create(course=course)
    _index_status(state, TAIndex.Status.RUNNING, 0, "Reading the course")
    try:
        spec, docs = _sources(course)
        stored = dict(TAChunk.objects.filter(course=course).values_list("doc_id", "doc_version").distinct())
        fresh = [d for d in docs if stored.get(d.id) != d.version]
        gone = set(stored) - {d.id for d in docs}
        digest = keys_digest(spec)
        keys = course_keys(spec)  # read once, for every batch judged (`_sources` keeps published items only)
        rows: list[TAChunk] = []
        for start in range(0, len(fresh), EMBED_BATCH_DOCS):
            batch = fresh[start:start + EMBED_BATCH_DOCS]
            rows.extend(_chunk_rows(course, keys, batch))
            done = min(len(fresh), start + EMBED_BATCH_DOCS)
            percent = round(90 * done / len(fresh))
            _index_status(state, TAIndex.Status.RUNNING, percent, f"Embedded {done} of {len(fresh)} changed texts")
            if progress:
                progress(percent, state.message)
        # A key that changed may change what any stored passage gives away: every one is judged again.
        kept = _rejudged(course, keys, {d.id for d in fresh} | gone) if digest != state.keys_digest else []
        with transaction.atomic():
            # The row lock serialises two reindexes of one course (a first question racing the import's task):
            # each replaces the chunks of the documents it embedded, so none is stored twice.
            state = TAIndex.objects.select_for_update().get(pk=state.pk)
            TAChunk.objects.filter(course=course, doc_id__in=[d.id for d in fresh] + sorted(gone)).delete()
            TAChunk.objects.bulk_create(rows, batch_size=500)
            TAChunk.objects.bulk_update(kept, ["reveals"], batch_size=500)
            if fresh or gone or kept:
                state.version += 1
            state.status, state.progress, state.keys_digest = TAIndex.Status.DONE, 100, digest
            state.message = (f"{len(docs)} texts indexed: {len(fresh)} (re)embedded, {len(gone)} removed, "
                             f"{len(docs) - len(fresh)} unchanged")
            state.save(update_fields=["version", "status", "progress", "message", "keys_digest", "updated_at"])
    except Exception as exc:
        # A worker's failure must show on the faculty page, not only in a log; the error still propagates.
        _index_status(state, TAIndex.Status.FAILED, state.progress, f"Reindexing failed: {exc}"[:300])
        raise
    return ReindexOutcome(version=state.version, embedded_documents=len(fresh), removed_documents=len(gone),
                          unchanged_documents=len(docs) - len(fresh))


def _chunk_rows(course: Course, keys: CourseKeys, docs: list[Document]) -> list[TAChunk]:
    """Chunks of `docs` with their vectors and the exercises whose key each gives away (judged now, by the checker)."""
    index = SearchIndex(default_embedder())
    index.upsert(docs)
    vectors = index.vectors()
    versions = {d.id: d.version for d in docs}
    return [TAChunk(course=course, doc_id=c.doc_id, doc_version=versions[c.doc_id], chunk_id=c.id, url=c.url,
                    title=c.title[:500], text=c.text, kind=c.kind, concept=c.concept, item_id=c.item_id,
                    context=c.context, topic=c.topic[:300], reveals=list(c.reveals), vector=vectors[c.id])
            for c in passage_reveals(index.chunks, keys=keys)]


def _rejudged(course: Course, keys: CourseKeys, skip: set[str]) -> list[TAChunk]:
    """The stored chunks (but those of `skip`, about to be replaced) whose `reveals` changed with the keys."""
    rows = [r for r in TAChunk.objects.filter(course=course).order_by("pk") if r.doc_id not in skip]
    judged = passage_reveals([_chunk(r) for r in rows], keys=keys)
    changed = []
    for row, chunk in zip(rows, judged, strict=True):
        if list(chunk.reveals) != list(row.reveals):
            row.reveals = list(chunk.reveals)
            changed.append(row)
    return changed


def _chunk(row: TAChunk) -> Chunk:
    return Chunk(id=row.chunk_id, doc_id=row.doc_id, url=row.url, title=row.title, text=row.text, kind=row.kind,
                 concept=row.concept, item_id=row.item_id, context=row.context, topic=row.topic,
                 reveals=tuple(row.reveals))


def _index_status(state: TAIndex, status: str, progress: int, message: str) -> None:
    state.status, state.progress, state.message = status, progress, message[:300]
    state.save(update_fields=["status", "progress", "message", "updated_at"])


def ta_index_schedule(*, course: Course) -> TAIndex:
    """Queue a reindex (Celery; inline in eager mode) once the current transaction has committed."""
    from tutor.ta.tasks import ta_index_rebuild_task

    state, _ = TAIndex.objects.get_or_create(course=course)
    _index_status(state, TAIndex.Status.QUEUED, 0, "Waiting for a worker")
    transaction.on_commit(lambda: task_start(ta_index_rebuild_task, course_id=course.pk))
    return state


# --- the in-process search index ----------------------------------------------------------------------------

# A first index queued or running with no progress for this long is taken for a job that died with its process.
INDEX_JOB_STALE = timedelta(minutes=15)
_INDEXES: dict[int, tuple[int, SearchIndex]] = {}
_LEXICAL_INDEXES: dict[int, SearchIndex] = {}  # courses never indexed yet, while the embedding model loads
_INDEXES_LOCK = threading.Lock()


def course_index(*, course: Course, lexical: bool = False) -> SearchIndex:
    """The course's SearchIndex, loaded from its stored chunks once per index version (built on first use).

    `lexical`: the caller will search by BM25 alone because the embedding model is not loaded. The stored chunks
    serve as they are (their vectors were computed earlier); a course never indexed is not built now, which would
    wait for the model: its texts are chunked in memory without vectors instead, until the import's reindex, the
    warm-up or the first question after the model has loaded stores them.

    A course whose first reindex a Celery worker has queued or is running is not built here either
    (`first_index_pending`): the same lexical stand-in serves until the worker has stored the chunks. With a
    worker, a course never scheduled (created by `course_import` alone) is scheduled now, for the same reason."""
    return _course_index(course, _index_state(course), lexical)


def _course_index(course: Course, state: TAIndex | None, lexical: bool) -> SearchIndex:
    """`course_index` with the course's index row as the caller read it (`_index_state`)."""
    if state is None or (state.version == 0 and state.status != TAIndex.Status.DONE):
        if lexical or first_index_pending(state):
            return _lexical_index(course)
        if jobs_run_elsewhere():  # never scheduled, or its job died with its process: start it, search by keyword
            if state is None or state.status != TAIndex.Status.FAILED:
                ta_index_schedule(course=course)
            return _lexical_index(course)
        ta_index_rebuild(course=course)
        state = TAIndex.objects.get(course=course)
    cached = _INDEXES.get(course.pk)
    if cached is not None and cached[0] == state.version:
        return cached[1]
    with _INDEXES_LOCK:
        cached = _INDEXES.get(course.pk)
        if cached is not None and cached[0] == state.version:
            return cached[1]
        rows = list(TAChunk.objects.filter(course=course).order_by("pk"))
        index = SearchIndex(default_embedder())
        index.load([_chunk(r) for r in rows], [bytes(r.vector) for r in rows], {r.doc_id: r.doc_version for r in rows})
        _INDEXES[course.pk] = (state.version, index)
        _LEXICAL_INDEXES.pop(course.pk, None)  # the stand-in used before the course was first indexed
        return index


def _index_state(course: Course) -> TAIndex | None:
    state = TAIndex.objects.filter(course=course).first()
    if state is None and jobs_run_elsewhere():
        state = ta_index_schedule(course=course)  # never scheduled (made by `course_import` alone): start it now
    return state


def first_index_pending(state: TAIndex | None) -> bool:
    """The course has no stored index yet and a Celery worker has its first reindex queued or running (the import
    scheduled it). A server process then does not embed the whole course itself, in a student's request, beside the
    worker that is doing just that. Without a
    worker (eager Celery, the embedded default) a thread of the process that scheduled it builds it
    (`courses.background`); only when jobs run inline (tests, commands) does the first use build it here."""
    return (state is not None and state.version == 0 and state.status in (TAIndex.Status.QUEUED, TAIndex.Status.RUNNING)
            and jobs_run_elsewhere() and timezone.now() - state.updated_at < INDEX_JOB_STALE)


def _lexical_index(course: Course) -> SearchIndex:
    """A never-indexed course's chunks with zero vectors: BM25 can rank them, dense search cannot. Judging which
    passages give a key away takes the checker a minute on a large course, too long for a student's request: until the
    stored index has that judgement, every hint, worked solution and worked example counts as giving away the keys of
    its exercise (a worked example: of every exercise of its concept)."""
    with _INDEXES_LOCK:
        index = _LEXICAL_INDEXES.get(course.pk)
        if index is None:
            spec, docs = _sources(course)
            by_concept = {c.slug: [i.id for i in c.items] for c in spec.concepts}
            chunks = [c.with_reveals([c.item_id] if c.item_id else by_concept.get(c.concept, []))
                      if c.kind in ("hint", "solution", "explanation") else c
                      for d in docs for c in chunk_document(d)]
            index = SearchIndex(default_embedder())
            index.load(chunks, np.zeros((len(chunks), Embedder.dim), dtype=np.float32), {d.id: d.version for d in docs})
            _LEXICAL_INDEXES[course.pk] = index
        return index


def embedding_model_ready() -> bool:
    """Whether this process can embed a question now. If not, the model starts loading in the background (once) and
    the caller waits at most `TUTOR_TA_EMBED_WAIT_S` for it: a question asked meanwhile is answered by BM25 alone
    rather than waiting the minute or more a load takes on a busy machine."""
    return default_embedder().load_in_background(wait_s=settings.TUTOR_TA_EMBED_WAIT_S)


def ta_preload() -> None:
    """With `TUTOR_TA_PRELOAD`, load the embedding model now and wait for it (an ASGI process starting up).

    Loaded on a student's first visit instead, in a background thread, the load's imports hold the interpreter lock
    in long stretches while the process serves everyone else, and their answers wait behind it."""
    if settings.TUTOR_TA_PRELOAD:
        started = time.monotonic()
        default_embedder().load_in_background(wait_s=600)
        log.info("TA embedding model %s in %.1f s", "loaded" if default_embedder().loaded else "NOT loaded",
                 time.monotonic() - started)


_WARMED: set[int] = set()


def ta_warm_up(*, course: Course) -> None:
    """Load the embedding model and the course's index in the background, once per course and process.

    Called when a student opens their session or the TA page: both take a while (over a minute on 2 busy cores),
    so they start before the first question. One asked sooner is answered by BM25 (`embedding_model_ready`).
    """
    if not settings.TUTOR_TA_WARMUP or course.pk in _WARMED:
        return
    _WARMED.add(course.pk)
    default_embedder().load_in_background()  # the one loader thread that questions asked meanwhile also wait on

    def warm() -> None:
        from django.db import connection

        try:
            course_index(course=course)
            ta_index_refresh_judgement(course=course)
        finally:
            connection.close()  # this thread's own connection

    threading.Thread(target=warm, name=f"ta-warm-up-{course.pk}", daemon=True).start()


def ta_index_refresh_judgement(*, course: Course) -> bool:
    """Queue a reindex when what the stored passages give away was judged on other grounds than the course's now
    (`keys_digest`: an edit that bypassed the reindex, or a newer rule for judging it, as after an upgrade); the
    reindex judges every passage again. Returns whether one was queued."""
    state = TAIndex.objects.filter(course=course, status=TAIndex.Status.DONE).first()
    if state is None or state.keys_digest == keys_digest(_published_spec(course)):
        return False
    ta_index_schedule(course=course)
    return True


def index_cache_clear() -> None:
    """Forget this process's search indexes and which courses it warmed up (`tutor.caches.clear` calls this)."""
    with _INDEXES_LOCK:
        _INDEXES.clear()
        _LEXICAL_INDEXES.clear()
        _WARMED.clear()


caches.on_clear(index_cache_clear)


# --- asking ---------------------------------------------------------------------------------------------------


def teaching_assistant(*, course: Course, index: SearchIndex) -> TeachingAssistant:
    # the course's graph and rows from the process's caches (per content version, as the session's actions read
    # them): no query for them on each question
    graph = course_model(course).graph
    live = [(i.slug, i.answer) for i in course_rows(course).items.values() if i.status == Item.Status.PUBLISHED]
    backend = llm.backend()
    return TeachingAssistant(index, private_strings=private_strings(course=course),
                             backend=None if backend.name == "authored" else backend,
                             course_title=course.title, prerequisites={c.slug: list(c.prerequisites) for c in graph},
                             concept_titles={c.slug: c.title for c in graph}, answer_keys=dict(live))


def student_state(*, user: AbstractBaseUser, course: Course) -> StudentState:
    """Mastery per concept, the item on screen (practice or placement) and the items not to be solved for them:
    the other published items of the concept being practised, which the tutor may serve next."""
    knowledge = knowledge_state(user=user, course=course)
    mastery = {slug: concept_mastery(knowledge, course, slug) for slug in course_rows(course).concepts_by_slug}
    item, siblings = ta_selectors.protected_items(user=user, course=course)
    current = None
    if item is not None:
        hints_seen = TutorSession.objects.filter(user=user, course=course).values_list("hints_shown", flat=True).first()
        current = CurrentItem(id=item.slug, stem=item.prompt, hints=tuple(str(h) for h in item.hints),
                              hints_seen=hints_seen or 0, concept=item.concept.slug)
    graded = frozenset(i.slug for i in siblings)
    earlier = TAQuestion.objects.filter(user=user, course=course).order_by("-created_at")
    tried = set(Attempt.objects.filter(user=user, concept__course=course)
                .values_list("item__slug", "concept__slug").distinct())
    # the item page's rule (`ta_selectors.item_page`): a worked solution, or any passage giving away an exercise's
    # key, once the student has answered that exercise; a teacher reads everything
    attempted = None if course_selectors.teaches(user=user, course=course) else frozenset(i for i, _ in tried)
    # shaky: concepts the knowledge model has evidence on (the student answered some of it) and doubts
    shaky = frozenset(c for _, c in tried if mastery.get(c, 1.0) < SHAKY_MASTERY)
    return StudentState(mastery=mastery, current_item=current, graded_item_ids=graded, attempted=attempted,
                        shaky=shaky,
                        earlier_questions=tuple(reversed(earlier.values_list("question", flat=True)[:EARLIER_QUESTIONS])))


@dataclass
class TAAsk:
    question: TAQuestion
    reply: TAReply


def ta_question_ask(*, user: AbstractBaseUser, course: Course, question: str) -> TAAsk:
    """Store the question and start the TA's reply; the caller consumes `reply.stream` and then calls
    `ta_question_finish` with the text. Over the per-student rate limit it raises TARateLimited."""
    question = question.strip()
    if not question:
        raise TAError("Type a question first.")
    if len(question) > MAX_QUESTION_CHARS:
        raise TAError(f"Please keep questions under {MAX_QUESTION_CHARS} characters.")
    if not ratelimit_check(key=f"ta:{user.pk}", limit=settings.TUTOR_RATELIMIT_TA_QUESTIONS, period=60):
        raise TARateLimited("You've asked a lot of questions in the last minute. Take a moment with the answers, "
                            "then ask again in a minute.")
    state = _index_state(course)
    lexical = not embedding_model_ready() or first_index_pending(state)
    ta = teaching_assistant(course=course, index=_course_index(course, state, lexical))
    reply = ta.answer(question, student_state(user=user, course=course), lexical=lexical)
    if ta.backend is None:  # a quoted answer is one piece: paced word by word like authored explanations
        reply.stream = _paced(reply.stream, settings.TUTOR_STREAM_DELAY_S)
    row = TAQuestion.objects.create(
        user=user, course=course, question=question, outcome=reply.outcome, reason=reply.reason[:300],
        citations=[{"n": c.n, "url": c.url, "title": c.title} for c in reply.citations], concepts=reply.concepts)
    return TAAsk(question=row, reply=reply)


def _paced(stream: Iterator[str], delay_s: float) -> Iterator[str]:
    """The same text, re-cut into words (after the output guard, so nothing it stopped comes back)."""
    for chunk in stream:
        for word in _WORDS.findall(chunk) or [chunk]:
            yield word
            if delay_s > 0:
                time.sleep(delay_s)


_WORDS = re.compile(r"\s*\S+\s*")


def ta_question_finish(*, question: TAQuestion, text: str) -> TAQuestion:
    """Keep the reply as the student saw it (after the output guard)."""
    question.answer = text
    question.save(update_fields=["answer", "updated_at"])
    return question


def ta_question_answer(*, user: AbstractBaseUser, course: Course, question: str) -> TAQuestion:
    """Ask and wait for the whole reply (the page's form without websocket, the tests)."""
    asked = ta_question_ask(user=user, course=course, question=question)
    return ta_question_finish(question=asked.question, text=asked.reply.text())


def _own_question(user: AbstractBaseUser, course: Course, question_id: int) -> TAQuestion:
    return TAQuestion.objects.select_related("course").get(pk=question_id, user=user, course=course,
                                                           hidden_by_student=False)


@transaction.atomic
def ta_question_escalate(*, user: AbstractBaseUser, course: Course, question_id: int) -> TAQuestion:
    """Send one's own question to the course's faculty (idempotent). Another student's id is DoesNotExist."""
    q = _own_question(user, course, question_id)
    if not q.escalated:
        q.escalated, q.escalated_at = True, datetime.now(UTC)
        q.save(update_fields=["escalated", "escalated_at", "updated_at"])
    return q


def ta_question_answer_by_faculty(*, user: AbstractBaseUser, course: Course, question_id: int, answer: str,
                                  shared: bool = True) -> TAQuestion:
    """Faculty answer an escalated question: the student sees it in their log, and (if `shared`) it goes into
    the course's index at once (without who asked), so the TA finds it for the next student."""
    answer = answer.strip()
    with transaction.atomic():
        q = TAQuestion.objects.select_for_update().get(pk=question_id, course=course, escalated=True)
        if not answer:
            raise TAError("Write an answer first.")
        q.faculty_answer, q.answered_by, q.answered_at, q.shared = answer, user, datetime.now(UTC), shared
        q.save(update_fields=["faculty_answer", "answered_by", "answered_at", "shared", "updated_at"])
    ta_index_rebuild(course=course)  # incremental: embeds this one answer (a few chunks), nothing else
    return q


def ta_question_delete(*, user: AbstractBaseUser, course: Course, question_id: int) -> None:
    """A student removes a question from their log. One whose faculty answer is shared with the class stays,
    anonymous, in the course's answers (it helps others); it is hidden from the student's log. Others are deleted."""
    q = _own_question(user, course, question_id)
    if q.faculty_answer and q.shared:
        q.hidden_by_student = True
        q.save(update_fields=["hidden_by_student", "updated_at"])
    else:
        q.delete()


# --- uploads --------------------------------------------------------------------------------------------------


def ta_document_upload(*, user: AbstractBaseUser, course: Course, filename: str, data: bytes,
                       title: str = "") -> TADocument:
    """Store a Markdown or PDF file for the TA and queue a reindex. A file holding personal data (names beside grades,
    e-mail addresses, student ids, phone numbers: `tutor.ta.privacy`) is stored but held: not indexed until a
    teacher confirms it (`ta_document_confirm`) or removes it."""
    name = filename.rsplit("/", 1)[-1]
    lower = name.lower()
    if lower.endswith(".pdf"):
        kind = "pdf"
        from pypdf.errors import PdfReadError

        try:  # read it now, so a broken file is refused here and not found by the reindex later
            pages = pdf_documents(id="check", url="", title=name, data=data)
        except (PdfReadError, ValueError, KeyError) as exc:
            raise TAError(f"{name} could not be read as a PDF ({exc}).") from None
        if not pages:
            raise TAError(f"{name} has no text the TA could read (a scan without OCR?).")
        text = "\n".join(p.text for p in pages)
    elif lower.endswith((".md", ".markdown", ".txt")):
        kind = "markdown"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TAError(f"{name} is not UTF-8 text.") from None
    else:
        raise TAError("Upload a Markdown (.md) or PDF (.pdf) file.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise TAError(f"{name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    findings = personal_data(text)
    with transaction.atomic():
        document = TADocument.objects.create(course=course, title=(title.strip() or name)[:200], filename=name[:255],
                                             kind=kind, data=data, uploaded_by=user, held=bool(findings),
                                             findings=[{"kind": f.kind, "text": f.text} for f in findings])
        if not findings:
            ta_index_schedule(course=course)
    return document


def ta_document_confirm(*, user: AbstractBaseUser, course: Course, document_id: int) -> TADocument:
    """A teacher confirms that a held document may be searched: it is indexed. The personal data found in it stays
    protected: the output guard withholds any sentence of a reply that holds it (`private_strings`)."""
    with transaction.atomic():
        document = TADocument.objects.select_for_update().get(course=course, pk=document_id)
        if document.held:
            document.held, document.confirmed_by = False, user
            document.save(update_fields=["held", "confirmed_by"])
            ta_index_schedule(course=course)
    return document


def private_strings(*, course: Course) -> list[str]:
    """The names, e-mail addresses, ids and phone numbers found in the course's uploads: never shown to a student."""
    found = TADocument.objects.filter(course=course).exclude(findings=[]).values_list("findings", flat=True)
    return sorted({f["text"] for findings in found for f in findings if f.get("kind") != "name_grade"})


def ta_document_delete(*, course: Course, document_id: int) -> None:
    with transaction.atomic():
        TADocument.objects.filter(course=course, pk=document_id).delete()
        ta_index_schedule(course=course)
