"""The one interface every generation backend implements: a request in, an iterator of text chunks out.

Backends know nothing of Django, students or storage: the tutor builds a `GenerationRequest` from the
student's state (see `inference/prompts.py`) and relays the chunks to the browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class BackendUnavailable(RuntimeError):
    """The backend cannot serve now (server down, too slow to first token). Callers fall back to authored text."""


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    kind: str  # "explanation" | "hint" | "feedback" | "pain_first" | "guess_prompt" | "item" | "ta_answer"
    messages: tuple[Message, ...] = ()
    authored: str = ""  # the course's own text for this request; what the `authored` backend streams
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    json_schema: dict[str, Any] | None = None  # structured output where the backend supports it
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set by the caller when the student leaves: a backend stops generating (and frees the server slot)
    # at its next chunk. Closing the iterator has the same effect.
    cancel: threading.Event | None = field(default=None, compare=False, repr=False)

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


class Backend(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text chunks as they are generated. Raises BackendUnavailable if it cannot serve."""
        ...

    def health(self) -> bool:
        """True when the backend can serve a request now."""
        ...
