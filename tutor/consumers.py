"""The session websocket: the student's actions in, stage fragments and streamed explanation tokens out.

Thin: parse the message, call one service, render, send. The htmx websocket extension sends each form as
JSON (its fields plus HEADERS) and swaps every element we send into the element with the same id.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.template.loader import render_to_string

from courses.models import Course
from courses.rendering import render_markdown
from courses.selectors import course_asset_url
from tutor import llm, services
from tutor.display import dom_length, finished_blocks
from tutor.models import Guess, TutorSession
from tutor.ratelimit import aratelimit_check, ratelimit_check, ratelimit_peek
from tutor.selectors import enrolled_course, knowledge_state, stage_context
from tutor.streaming import relay
from tutor.teachback import services as teachback

log = logging.getLogger(__name__)


@functools.cache
def db_pool() -> ThreadPoolExecutor:
    """Threads for the consumers' database work, sized by TUTOR_DB_THREADS; each keeps its own connection.

    Channels' `database_sync_to_async` runs every call of a process on one thread (thread_sensitive), so one
    student's answer would wait for everyone else's, PostgreSQL round trips included."""
    return ThreadPoolExecutor(max_workers=settings.TUTOR_DB_THREADS, thread_name_prefix="tutor-db")


@functools.cache
def checker_pool() -> ThreadPoolExecutor:
    """Threads that wait for the answer checker's sandbox (`services.answer_precheck`), one per sandbox worker:
    a check may take the sandbox's whole time budget, and the database threads must not wait with it."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="tutor-check")


def checker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as a coroutine function run on `checker_pool()`, database connections handled as `db` does."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=checker_pool())


def db(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as a coroutine function run on `db_pool()`. Channels' wrapper closes unusable or expired
    connections before and after each call (`close_old_connections`), as it does on its own thread; a student's
    calls still run one after another, since a consumer awaits each before it reads the next message."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=db_pool())


class CourseConsumer(AsyncJsonWebsocketConsumer):
    """A socket scoped to one course of the URL: anonymous visitors are closed with 4401, outsiders with 4403."""

    course: Course
    stream_task: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        course = await db(self._enrolled_course)(self.scope["url_route"]["kwargs"]["slug"])
        if course is None:
            await self.close(code=4403)
            return
        self.course = course
        await self.accept()
        await self.connected()

    async def connected(self) -> None:
        """After the handshake: send what the page needs first."""

    def _enrolled_course(self, slug: str) -> Course | None:
        return enrolled_course(user=self.scope["user"], slug=slug)


class SessionConsumer(CourseConsumer):
    stream_cancel: threading.Event | None = None

    async def connected(self) -> None:
        await self._act(services.session_get)

    async def disconnect(self, code: int) -> None:
        self._stop_stream()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        handler = ACTIONS.get(action) if isinstance(action, str) else None
        if handler is None:
            log.info("session socket: unknown action %r from user %s", action, self.scope["user"].pk)
            await self._notice("The tutor did not understand that request; please reload the page.")
            return
        # A load test asks for the server's own time of an action (benchmarks/load.py); pages never do.
        started = time.perf_counter() if content.get("server_timing") else None
        try:
            await handler(self, content, started)
        except services.SessionError as exc:
            await self._notice(str(exc))
        except (ValueError, TypeError):
            await self._notice("That message could not be read; please try again.")
        except (OperationalError, InterfaceError) as exc:
            # The database is away (restarting, failing over): keep the socket open and say so; the page resends,
            # and the next call opens a fresh connection. Answers are idempotent on client_id, so a resend is safe.
            log.warning("database unavailable during %r: %s", action, exc)
            await self._notice("The tutor lost its connection for a moment and did not save that. Please try again.")

    async def _notice(self, message: str) -> None:
        await self.send(text_data=render_to_string("tutor/partials/notice.html", {"message": message}))

    # --- the actions a page sends (`ACTIONS`) ------------------------------------------------------------

    async def guess(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(services.guess_record, started, client_id=_uuid(content.get("client_id")),
                        text=str(content.get("guess", "")))

    async def practice(self, content: dict[str, Any], started: float | None) -> None:
        self._stop_stream()
        await self._act(services.practice_start, started, step=_uuid(content.get("step")))

    async def hint(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(services.hint_reveal, started, shown=int(content.get("shown", -1)))

    async def answer(self, content: dict[str, Any], started: float | None) -> None:
        if not await aratelimit_check(key=f"answers:{self.scope['user'].pk}",
                                      limit=settings.TUTOR_RATELIMIT_ANSWERS, period=60):
            raise services.SessionError("You're answering very fast: take a breath and try again in a minute.")
        item_id, answer = int(content.get("item", 0)), str(content.get("answer", ""))
        await checker(_precheck)(user=self.scope["user"], course=self.course, item_id=item_id, answer=answer)
        await self._act(_answer, started, client_id=_uuid(content.get("client_id")), item_id=item_id, answer=answer)

    async def skip_placement(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(services.placement_skip, started)

    async def next(self, content: dict[str, Any], started: float | None) -> None:
        # after a mastered concept's feedback, maybe into a teach-back first
        await self._act(teachback.session_next, started, step=_uuid(content.get("step")))

    async def teach_explain(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(teachback.teachback_explain, started, client_id=_uuid(content.get("client_id")),
                        text=str(content.get("text", "")))

    async def teach_answer(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(teachback.teachback_answer, started, client_id=_uuid(content.get("client_id")),
                        text=str(content.get("text", "")))

    async def teach_start(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(teachback.teachback_start, started)

    async def teach_skip(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(teachback.teachback_skip, started)

    async def teach_continue(self, content: dict[str, Any], started: float | None) -> None:
        await self._act(teachback.teachback_continue, started, step=_uuid(content.get("step")))

    async def _act(self, service: Callable[..., TutorSession], started: float | None = None, **kwargs: Any) -> None:
        """Call one service, render the stage it leads to and send it. Service and rendering run in one trip to a
        database thread: each trip costs a thread hop and a connection health check (a round trip to PostgreSQL)."""
        session, text = await db(self._serve)(service, **kwargs)
        if started is not None:  # services + rendering, as a comment the asking client reads
            text += f"<!-- server-timing: app;dur={(time.perf_counter() - started) * 1000:.2f} -->"
        await self.send(text_data=text)
        # Whatever moved the student into the explanation (a guess, "next" onto a concept with no pain-first
        # problem, the end of placement), the explanation starts streaming now, not at the next reload.
        if session.phase == TutorSession.Phase.EXPLAIN and not session.explanation and \
                (self.stream_task is None or self.stream_task.done()):
            self._start_stream(session)

    def _serve(self, service: Callable[..., TutorSession], **kwargs: Any) -> tuple[TutorSession, str]:
        session = service(user=self.scope["user"], course=self.course, **kwargs)
        # `session` is as the service saved it, with its concept, item, last attempt and course loaded: no reload.
        return session, render_to_string("tutor/partials/stage.html", stage_context(session=session))

    # --- streaming the explanation ------------------------------------------------------------------

    def _start_stream(self, session: TutorSession) -> None:
        self._stop_stream()
        self.stream_cancel = threading.Event()
        # A task of its own, not awaited inside receive: each chunk is sent as soon as it exists.
        self.stream_task = asyncio.create_task(self._stream_explanation(session, self.stream_cancel))

    def _stop_stream(self) -> None:
        if self.stream_cancel is not None:
            self.stream_cancel.set()
        if self.stream_task is not None and not self.stream_task.done():
            self.stream_task.cancel()
        self.stream_task = None

    async def _stream_explanation(self, session: TutorSession, cancel: threading.Event) -> None:
        request = await db(self._explanation_request)(session, cancel)
        # Over the generation limit, the student still gets an explanation: the course's authored one.
        generate = await aratelimit_check(key=f"generate:{self.scope['user'].pk}",
                                          limit=settings.TUTOR_RATELIMIT_GENERATIONS, period=60)
        backend = llm.backend() if generate else llm.authored_backend()
        parts: list[str] = []
        pending = ""  # text after the last block sent typeset
        assets = course_asset_url(self.course)  # an authored explanation's figures (an imported worked example's)

        async def send(chunk: str) -> None:
            # Each block (paragraph, list, formula) goes out typeset once it is finished, with the length of text
            # it covers; the text itself, as generated, goes to the hidden stream the page shows the rest of.
            nonlocal pending
            pending += chunk
            frame = f'<div id="explanation-stream" hx-swap-oob="beforeend">{html.escape(chunk)}</div>'
            if end := finished_blocks(pending):
                block, pending = pending[:end], pending[end:]
                frame = (f'<div id="explanation-typeset" hx-swap-oob="beforeend"><div class="md-block" '
                         f'data-source-length="{dom_length(block)}">{render_markdown(block, asset_base=assets)}</div></div>' + frame)
            await self.send(text_data=frame)

        # The backend is wrapped with the authored fallback: a dead model server ends in course text, not an error.
        await relay(backend.stream(request), cancel=cancel, send=send, parts=parts)
        text = "".join(parts)
        await db(services.explanation_store)(
            user=self.scope["user"], course=self.course, concept_id=session.concept_id, text=text)
        await self.send(text_data=render_to_string(
            "tutor/partials/explanation_done.html",
            {"explanation_html": render_markdown(text, asset_base=assets), "step": session.step}))

    def _explanation_request(self, session: TutorSession, cancel: threading.Event):
        concept = session.concept
        state = knowledge_state(user=self.scope["user"], course=self.course)
        threshold = services.course_settings(self.course).mastery_threshold
        graph = services.course_model(self.course).graph  # cached per content version: no query
        titles = {c.slug: c.title for c in graph}
        mastery = {c.slug: services.concept_mastery(state, self.course, c.slug) for c in graph}
        known = [titles[s] for s in state.concepts if s in titles and mastery[s] >= threshold]
        prereqs = next((c.prerequisites for c in graph if c.slug == concept.slug), ())
        shaky = [titles[slug] for slug in prereqs if slug in mastery and mastery[slug] < threshold]
        guess = Guess.objects.filter(user=self.scope["user"], concept=concept).order_by("-created_at").first()
        return llm.explanation_request(concept=concept, known=known, shaky=shaky,
                                       guess=guess.text if guess else None, cancel=cancel)


# The actions the session page sends, by the `action` field of its forms; anything else gets an error notice.
ACTIONS: dict[str, Callable[[SessionConsumer, dict[str, Any], float | None], Awaitable[None]]] = {
    name: getattr(SessionConsumer, name) for name in (
        "guess", "practice", "hint", "answer", "skip_placement", "next",
        "teach_explain", "teach_answer", "teach_start", "teach_skip", "teach_continue",
    )
}


def _answer(*, user: Any, course: Course, **answer: Any) -> TutorSession:
    """Record an answer and return the session it leaves (the feedback stage), for `_act`; a resend reads it.

    An answer too large to check is stored and the item stays on screen: the student gets the checker's message
    (as a SessionError's notice). Each costs the sandbox up to its time budget, so a student gets only
    TUTOR_RATELIMIT_UNCHECKED of them a minute; past that, answers wait for the next minute."""
    limit = _unchecked_limit(user)
    if not ratelimit_peek(**limit):
        raise services.SessionError("Several of your answers were too large to check: please wait a minute, "
                                    "then try a simpler form.")
    outcome = services.attempt_record(user=user, course=course, **answer)
    if outcome.check is not None and outcome.check.unchecked:
        ratelimit_check(**limit)
        raise services.SessionError(outcome.check.feedback)
    return outcome.session if outcome.session is not None else services.session_get(user=user, course=course)


def _unchecked_limit(user: Any) -> dict[str, Any]:
    return {"key": f"unchecked:{user.pk}", "limit": settings.TUTOR_RATELIMIT_UNCHECKED, "period": 60}


def _precheck(*, user: Any, course: Course, item_id: int, answer: str) -> None:
    """The answer graded on a checker thread first (`services.answer_precheck`), unless the student is over the
    limit of answers too large to check (`_answer` then refuses it without checking)."""
    if not ratelimit_peek(**_unchecked_limit(user)):
        return
    try:
        services.answer_precheck(user=user, course=course, item_id=item_id, answer=answer)
    except (OperationalError, InterfaceError) as exc:
        # only a head start (SQLite busy with a write, say): recording the answer checks it all the same
        log.info("answer precheck skipped: %s", exc)


def _uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))
