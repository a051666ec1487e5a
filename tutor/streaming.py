"""Relay a blocking iterator of text chunks (a generation backend, a TA reply) to a websocket, chunk by chunk.

The iterator runs in a thread of its own pool, since backends block on the network; each chunk is handed to
the event loop as soon as it exists and sent at once. Consumers call this from a task of their own, never
inside `receive`, or every chunk would arrive in one burst.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

_DONE = object()


@functools.cache
def stream_pool() -> ThreadPoolExecutor:
    """Threads for generation streams, sized by a setting. asyncio's default pool has min(32, CPUs + 4) threads:
    on 2 cores only 6 students could stream at once and the rest waited seconds for their first token."""
    return ThreadPoolExecutor(max_workers=settings.TUTOR_STREAM_THREADS, thread_name_prefix="tutor-stream")


async def relay(chunks: Iterable[str], *, cancel: threading.Event, send: Callable[[str], Awaitable[None]],
                parts: list[str]) -> None:
    """Send every chunk of `chunks` through `send`, collecting them in `parts` (kept even if the task is cancelled).

    Setting `cancel` (the student left, or the stream ended) stops the producer, which closes the iterator, so a
    model server stops generating for nobody.
    """
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def produce() -> None:
        try:
            for chunk in chunks:
                if cancel.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    producer = loop.run_in_executor(stream_pool(), produce)
    try:
        while True:
            chunk = await queue.get()
            if chunk is _DONE:
                break
            parts.append(chunk)
            await send(chunk)
    finally:
        cancel.set()
        await asyncio.shield(producer)
