"""Never leave a student without an answer: wrap a model backend so that authored text takes over.

`with_fallback(backend)` returns a backend with the same `stream`/`health` surface. It asks the primary
backend first and watches it: no first chunk within `first_token_timeout_s`, a silence longer than
`stall_timeout_s`, or `BackendUnavailable` (server refused, died mid-stream) and the student gets the
course's authored text instead; if the model had already written part of an answer, the authored text
follows it. After a failure the primary is skipped for `retry_after_s`, so that a dead server costs one
student one timeout rather than every student one each.

Outages are recorded per backend, in memory, for a status page: `health_report()` returns plain dicts.
Other exceptions (bugs) are not caught: they are not an outage and must be seen.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inference.authored import AuthoredBackend
from inference.base import Backend, BackendUnavailable, GenerationRequest

_POLL_S = 0.05  # how often a wait re-checks whether the student left


@dataclass
class BackendHealth:
    """What a status page shows for one backend. Times are unix seconds."""

    name: str
    up: bool = True
    down_since: float | None = None  # first failure of the current outage
    last_error: str = ""
    last_error_at: float | None = None
    last_ok_at: float | None = None
    served: int = 0  # requests answered entirely by the model
    fell_back: int = 0  # requests answered (wholly or in part) with authored text

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("down_since", "last_error_at", "last_ok_at"):
            value = out[key]
            out[key] = datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None
        return out


_health: dict[str, BackendHealth] = {}
_health_lock = threading.Lock()


def health_report() -> dict[str, dict[str, Any]]:
    """Every wrapped backend's state, e.g. {"openai": {"up": False, "last_error": ..., "down_since": ...}}."""
    with _health_lock:
        return {name: state.as_dict() for name, state in sorted(_health.items())}


def reset_health() -> None:
    """Forget all recorded outages (tests; a process restart does the same)."""
    with _health_lock:
        _health.clear()


def _record(label: str, update: Callable[[BackendHealth], None]) -> None:
    with _health_lock:
        update(_health.setdefault(label, BackendHealth(name=label)))


def _ok(state: BackendHealth) -> None:
    state.up, state.down_since, state.last_ok_at = True, None, time.time()


class FallbackBackend:
    def __init__(
        self,
        primary: Backend,
        fallback: Backend | None = None,
        first_token_timeout_s: float = 3.0,
        stall_timeout_s: float = 10.0,
        retry_after_s: float = 15.0,
        label: str | None = None,  # key in health_report(); defaults to the primary's name
    ) -> None:
        self.primary = primary
        self.fallback: Backend = fallback or AuthoredBackend()
        self.first_token_timeout_s = first_token_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.retry_after_s = retry_after_s
        self.name = primary.name
        self.label = label or primary.name
        self._skip_until = 0.0  # monotonic time before which the primary is not asked
        _record(self.label, lambda state: None)  # appear on the status page before the first request

    def health(self) -> bool:
        up = self.primary.health()
        if up:
            _record(self.label, _ok)
        else:
            self._failed("health check failed")
        return up

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        if time.monotonic() < self._skip_until:
            _record(self.label, _count_fallback)
            yield from self.fallback.stream(request)
            return
        stop = threading.Event()  # set when we give up on the primary or the student leaves
        chunks: queue.Queue[Any] = queue.Queue()
        worker = threading.Thread(target=_pump, args=(self.primary, dataclasses.replace(request, cancel=stop), chunks),
                                  name=f"{self.label}-stream", daemon=True)
        worker.start()
        wrote_any = False
        try:
            while True:
                limit = self.stall_timeout_s if wrote_any else self.first_token_timeout_s
                item = _next(chunks, limit, request)
                if item is _CANCELLED:
                    return
                if item is _TIMEOUT:
                    what = "stalled mid-stream" if wrote_any else "no first token"
                    self._failed(f"{what} within {limit:g} s")
                    break
                if item is _END:
                    _record(self.label, _count_served)
                    return
                if isinstance(item, BackendUnavailable):
                    self._failed(str(item))
                    break
                if isinstance(item, BaseException):
                    raise item
                wrote_any = True
                yield item
        finally:
            stop.set()
        # The primary failed: the rest of the answer comes from the course.
        _record(self.label, _count_fallback)
        if wrote_any and request.authored:
            yield "\n\n"
        yield from self.fallback.stream(request)

    def _failed(self, message: str) -> None:
        now = time.time()
        self._skip_until = time.monotonic() + self.retry_after_s

        def update(state: BackendHealth) -> None:
            if state.up:
                state.down_since = now
            state.up, state.last_error, state.last_error_at = False, message, now

        _record(self.label, update)


def with_fallback(backend: Backend, **options: Any) -> Backend:
    """`backend`, made safe for the student path. The authored backend cannot fail and is returned as is."""
    if isinstance(backend, AuthoredBackend):
        return backend
    return FallbackBackend(backend, **options)


# --- the worker thread and its queue ------------------------------------------------------------------

_END, _TIMEOUT, _CANCELLED = object(), object(), object()


def _pump(primary: Backend, request: GenerationRequest, chunks: queue.Queue[Any]) -> None:
    iterator = primary.stream(request)
    try:
        for chunk in iterator:
            chunks.put(chunk)
            if request.cancelled():  # the consumer gave up; closing the iterator frees the server slot
                break
    except BaseException as exc:  # handed to the consumer thread, which decides; nothing is dropped here
        chunks.put(exc)
        return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    chunks.put(_END)


def _next(chunks: queue.Queue[Any], limit_s: float, request: GenerationRequest) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        if request.cancelled():
            return _CANCELLED
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _TIMEOUT
        try:
            return chunks.get(timeout=min(remaining, _POLL_S))
        except queue.Empty:
            continue


def _count_served(state: BackendHealth) -> None:
    _ok(state)
    state.served += 1


def _count_fallback(state: BackendHealth) -> None:
    state.fell_back += 1
