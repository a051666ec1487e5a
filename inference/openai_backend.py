"""The `openai` backend: any OpenAI-compatible chat server, streamed through the `openai` client.

In production this is vLLM; llama.cpp's server, Ollama and TGI speak the same protocol. The backend
knows nothing of students or fallbacks: it streams, retries what is worth retrying *before the first
chunk* (after that a retry would repeat text the student has already read), stops when the request is
cancelled, and turns every way the server can fail into `BackendUnavailable`, which
`inference.fallback` turns into authored text.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai

from inference.base import BackendUnavailable, GenerationRequest

# Worth another try: the server is busy or restarting. Anything else (400 context too long, 401 bad key,
# 404 unknown model) will fail the same way again, so it is reported at once.
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str = "not-needed",
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 30.0,  # the longest silence allowed between two chunks
        max_retries: int = 2,
        backoff_s: float = 0.25,  # first retry waits about this long, then doubles (with jitter)
        health_timeout_s: float = 2.0,
        extra_body: dict[str, Any] | None = None,  # server-specific sampling options, sent as is
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.health_timeout_s = health_timeout_s
        self.extra_body = dict(extra_body or {})
        self._model = model
        self._model_lock = threading.Lock()
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        # Retries are ours (below) so that they stop at the first chunk; the client's own would not.
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=0)

    # --- the Backend protocol ----------------------------------------------------------------------

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        response = self._open(request)
        try:
            for chunk in response:
                if request.cancelled():
                    return
                if not chunk.choices:
                    continue
                text = chunk.choices[0].delta.content
                if text:
                    yield text
        except (openai.APIError, httpx.TransportError) as exc:
            # The server died or stalled mid-answer; the fallback continues with authored text.
            raise BackendUnavailable(f"{self.base_url}: stream broke after it started: {_describe(exc)}") from exc
        finally:
            # Closing the HTTP response is how the server learns the student left: vLLM and llama.cpp
            # abort the generation and free the slot.
            response.close()

    def health(self) -> bool:
        try:
            self.client.with_options(timeout=self.health_timeout_s).models.list()
        except openai.APIError:
            return False
        return True

    # --- internals -------------------------------------------------------------------------------

    def model(self) -> str:
        """The configured model, or the first one the server lists (llama.cpp and vLLM serve one)."""
        with self._model_lock:
            if self._model is None:
                try:
                    models = self.client.models.list().data
                except openai.APIError as exc:
                    raise BackendUnavailable(f"{self.base_url}: cannot list models: {_describe(exc)}") from exc
                if not models:
                    raise BackendUnavailable(f"{self.base_url}: the server lists no model")
                self._model = models[0].id
            return self._model

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model(),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if request.seed is not None:
            arguments["seed"] = request.seed
        if request.json_schema is not None:
            # Grammar-constrained decoding on vLLM (guided decoding) and llama.cpp (json_schema -> grammar).
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.kind or "response", "schema": request.json_schema, "strict": True},
            }
        if self.extra_body:
            arguments["extra_body"] = self.extra_body
        return arguments

    def _open(self, request: GenerationRequest) -> openai.Stream[Any]:
        arguments = self._arguments(request)
        attempt = 0
        while True:
            try:
                stream: openai.Stream[Any] = self.client.chat.completions.create(**arguments)
                return stream
            except openai.APIStatusError as exc:
                if exc.status_code not in _RETRY_STATUS or attempt >= self.max_retries:
                    raise BackendUnavailable(f"{self.base_url}: {_describe(exc)}") from exc
            except openai.APIConnectionError as exc:  # refused, reset, DNS, connect/read timeout
                if attempt >= self.max_retries:
                    raise BackendUnavailable(f"{self.base_url}: {_describe(exc)}") from exc
            if request.cancelled():
                raise BackendUnavailable(f"{self.base_url}: cancelled while retrying")
            time.sleep(self.backoff_s * (2**attempt) * random.uniform(0.8, 1.2))
            attempt += 1


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    return f"{kind} {status}: {exc}" if status else f"{kind}: {exc}"
