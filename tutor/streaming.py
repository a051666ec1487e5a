"""Relay a blocking iterator of text chunks (a generation backend, a TA reply) to a websocket.

The iterator runs in a thread of its own pool, since backends block on the network. The first chunk is sent as
soon as it exists; after that, what arrives within `TUTOR_STREAM_FLUSH_S` of the last frame goes out together
in the next one. A student still sees text appear as it is generated (a frame at most every 100 ms by default),
and the server sends a frame per flush, not per token: at 200 students streaming word by word, per-token frames
were ~45 websocket frames and event-loop wake-ups per student action (benchmarks/RESULTS.md, Load).
Consumers call this from a task of their own, never inside `receive`, or every chunk would arrive in one burst.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

_DONE = object()


@functools.cache
def stream_pool() -> ThreadPoolExecutor:
    """Threads for generation streams, sized by a setting. asyncio's default pool has min(32, CPUs + 4) threads:
    on 2 cores only 6 students could stream at once and the rest waited seconds for their first token."""
    return ThreadPoolExecutor(max_workers=settings.TUTOR_STREAM_THREADS, thread_name_prefix="tutor-stream")


class _Inbox:
    """Chunks handed over from the producer thread. The event loop is woken once per batch, not per chunk: a
    chunk that finds a wake-up already pending is only appended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready = asyncio.Event()
        self.finished = asyncio.Event()  # the producer is done: what is left goes out without waiting
        self._lock = threading.Lock()
        self._chunks: list[object] = []
        self._wake_pending = False

    def put(self, chunk: object) -> None:  # producer thread
        if chunk is _DONE:
            self.loop.call_soon_threadsafe(self.finished.set)
        with self._lock:
            self._chunks.append(chunk)
            if self._wake_pending:
                return
            self._wake_pending = True
        self.loop.call_soon_threadsafe(self.ready.set)

    def take(self) -> list[object]:  # event loop
        with self._lock:
            chunks, self._chunks = self._chunks, []
            self._wake_pending = False
            self.ready.clear()
        return chunks


async def relay(chunks: Iterable[str], *, cancel: threading.Event, send: Callable[[str], Awaitable[None]],
                parts: list[str], flush_s: float | None = None) -> None:
    """Send the text of `chunks` through `send`, collecting every chunk in `parts` (kept if the task is cancelled).

    `flush_s` (default `TUTOR_STREAM_FLUSH_S`) is the least time between two frames; 0 sends each batch of
    chunks as soon as the event loop sees it. Setting `cancel` (the student left, or the stream ended) stops
    the producer, which closes the iterator, so a model server stops generating for nobody.
    """
    flush_s = settings.TUTOR_STREAM_FLUSH_S if flush_s is None else flush_s
    loop = asyncio.get_running_loop()
    inbox = _Inbox(loop)

    def produce() -> None:
        try:
            for chunk in chunks:
                if cancel.is_set():
                    return
                inbox.put(chunk)
        finally:
            inbox.put(_DONE)

    producer = loop.run_in_executor(stream_pool(), produce)
    try:
        last_sent = None
        done = False
        while not done:
            await inbox.ready.wait()
            if last_sent is not None and (wait := last_sent + flush_s - time.monotonic()) > 0:
                try:  # gather what arrives meanwhile into this frame, unless the stream ends first
                    await asyncio.wait_for(inbox.finished.wait(), timeout=wait)
                except TimeoutError:
                    pass
            batch = inbox.take()
            done = bool(batch) and batch[-1] is _DONE
            text = [chunk for chunk in batch if chunk is not _DONE]
            if text:
                parts.extend(text)
                last_sent = time.monotonic()
                await send("".join(text))
    finally:
        cancel.set()
        await asyncio.shield(producer)
