"""The TA-bot's websocket: a question in, the answer streamed out piece by piece, then the finished card.

Thin: parse, call `ta_services.ta_question_ask`, relay the reply's stream from a worker thread (the same pool and
pattern as the session's explanation stream), store the text, render the card. The htmx websocket extension
sends the form as JSON and swaps every element we send by id.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from typing import Any

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError
from django.template.loader import render_to_string

from tutor.consumers import CourseConsumer
from tutor.models import TAQuestion
from tutor.streaming import relay
from tutor.ta import services as ta_services
from tutor.ta.selectors import ask_placeholder, question_card

log = logging.getLogger(__name__)


class TAConsumer(CourseConsumer):
    placeholder: str | None = None  # the form's example question, looked up once per socket

    async def disconnect(self, code: int) -> None:
        if self.stream_task is not None and not self.stream_task.done():
            self.stream_task.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("action") != "ask":
            log.info("TA socket: unknown action from user %s", self.scope["user"].pk)
            await self._notice("The TA-bot did not understand that request; please reload the page.")
            return
        if self.stream_task is not None and not self.stream_task.done():
            await self._notice("One question at a time: wait for this answer to finish.")
            return
        try:
            # Off the shared database thread: embedding the question (and, once per process, loading the course's
            # index) takes long enough to hold up every other student's socket on it.
            asked = await database_sync_to_async(ta_services.ta_question_ask, thread_sensitive=False)(
                user=self.scope["user"], course=self.course, question=str(content.get("question", "")))
            if self.placeholder is None:
                self.placeholder = await database_sync_to_async(ask_placeholder, thread_sensitive=False)(
                    user=self.scope["user"], course=self.course)
        except ta_services.TAError as exc:
            await self._notice(str(exc))
            return
        except (OperationalError, InterfaceError) as exc:
            # The database is away for a moment: keep the socket, say so; the student can ask again.
            log.warning("database unavailable during a TA question: %s", exc)
            await self._notice("The tutor lost its connection for a moment. Please ask again.")
            return
        await self.send(text_data=render_to_string("tutor/ta/partials/streaming.html",
                                                   {"q": asked.question, "placeholder": self.placeholder}))
        self.stream_task = asyncio.create_task(self._relay(asked))

    async def _relay(self, asked: ta_services.TAAsk) -> None:
        parts: list[str] = []

        async def send(chunk: str) -> None:
            await self.send(text_data=f'<div id="ta-stream" hx-swap-oob="beforeend">{html.escape(chunk)}</div>')

        try:
            await relay(asked.reply.stream, cancel=threading.Event(), send=send, parts=parts)
        finally:
            # Whatever reached the student is kept, also when they left mid-answer.
            question = await database_sync_to_async(ta_services.ta_question_finish)(question=asked.question,
                                                                                  text="".join(parts))
        await self.send(text_data=await database_sync_to_async(_render_done)(question))

    async def _notice(self, message: str) -> None:
        await self.send(text_data=render_to_string("tutor/ta/partials/notice.html", {"message": message}))


def _render_done(question: TAQuestion) -> str:
    return render_to_string("tutor/ta/partials/done.html", {"card": question_card(question=question),
                                                            "course": question.course})
