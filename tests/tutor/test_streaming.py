"""The relay from a blocking chunk iterator to a websocket: text arrives whole and in order, the first chunk at
once, later ones gathered into at most one frame per flush interval."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tutor.streaming import relay


def _paced(words: list[str], delay_s: float, produced: list[float] | None = None):
    for word in words:
        time.sleep(delay_s)
        if produced is not None:
            produced.append(time.monotonic())
        yield word


async def _collect(chunks, flush_s: float, cancel: threading.Event | None = None):
    frames: list[tuple[float, str]] = []
    parts: list[str] = []

    async def send(text: str) -> None:
        frames.append((time.monotonic(), text))

    await relay(chunks, cancel=cancel or threading.Event(), send=send, parts=parts, flush_s=flush_s)
    return frames, parts


WORDS = [f"w{i} " for i in range(40)]


async def test_text_arrives_whole_and_in_order_in_fewer_frames_than_chunks():
    frames, parts = await _collect(_paced(WORDS, 0.005), flush_s=0.05)
    assert "".join(text for _, text in frames) == "".join(WORDS)
    assert parts == WORDS
    assert 1 < len(frames) < len(WORDS) / 3


async def test_frames_are_at_least_the_flush_interval_apart_except_the_last():
    frames, _ = await _collect(_paced(WORDS, 0.005), flush_s=0.05)
    # The relay waits out the interval from the time it sent; the last frame goes as soon as the stream ends.
    assert len(frames) >= 3
    gaps = [b - a for (a, _), (b, _) in zip(frames[:-2], frames[1:-1], strict=True)]
    assert min(gaps) >= 0.05 - 0.005


async def test_the_first_chunk_is_sent_before_the_next_one_exists():
    first_sent = threading.Event()

    def chunks():
        yield "first "
        # the relay must send this without waiting for more (its flush interval here is a minute)
        if not first_sent.wait(timeout=20):
            raise AssertionError("the first chunk was held back")
        yield "second "

    frames: list[str] = []

    async def send(text: str) -> None:
        frames.append(text)
        first_sent.set()

    await relay(chunks(), cancel=threading.Event(), send=send, parts=[], flush_s=60.0)
    assert frames[0] == "first " and "".join(frames) == "first second "  # the end, too, without waiting 60 s


async def test_with_no_flush_interval_a_slow_stream_is_sent_chunk_by_chunk():
    frames, _ = await _collect(_paced(WORDS[:10], 0.02), flush_s=0.0)
    assert [text for _, text in frames] == WORDS[:10]


async def test_cancelling_stops_the_producer_and_keeps_what_was_sent():
    cancel = threading.Event()
    produced: list[float] = []
    parts: list[str] = []

    async def send(text: str) -> None:
        pass

    task = asyncio.create_task(relay(_paced(WORDS * 10, 0.01, produced), cancel=cancel, send=send, parts=parts,
                                     flush_s=0.05))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(produced)
    await asyncio.sleep(0.1)
    assert cancel.is_set()
    assert len(produced) <= count + 1  # the producer thread stopped at its next chunk
    assert 0 < len(parts) <= count
