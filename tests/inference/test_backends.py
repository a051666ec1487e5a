"""Every backend streams, stops at max tokens, is deterministic at temperature 0, and cancels.

The same properties, run against real engines: llama.cpp's server over HTTP (`openai`), llama.cpp in
process (`llamacpp`), a random-weight Hugging Face model (`transformers`), and the course text (`authored`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from inference import BackendUnavailable, GenerationRequest, Message, UnknownBackend, get_backend
from inference.base import Backend
from inference.llamacpp_backend import LlamaCppServer

PROMPT = (Message("system", "You are a patient maths tutor."),
          Message("user", "Explain, in several sentences, what a derivative is and why it is useful."))


def request(max_tokens: int = 24, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(kind="explanation", messages=PROMPT, max_tokens=max_tokens, temperature=0.0,
                             authored="A derivative is a rate of change.", **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["openai", "llamacpp", "transformers"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "openai":
        server: LlamaCppServer = request.getfixturevalue("llama_server")
        return get_backend("openai", base_url=server.base_url + "/v1")
    if request.param == "llamacpp":
        request.getfixturevalue("llama_server")
        return get_backend("llamacpp", **request.getfixturevalue("llama_options"))
    model_dir: Path = request.getfixturevalue("tiny_model_dir")
    return get_backend("transformers", path=model_dir)


def test_backend_streams_text_in_several_chunks(backend: Backend) -> None:
    chunks = list(backend.stream(request(max_tokens=16)))
    assert len(chunks) > 1
    assert "".join(chunks).strip()


def test_backend_stops_at_max_tokens(backend: Backend) -> None:
    short = "".join(backend.stream(request(max_tokens=6)))
    long = "".join(backend.stream(request(max_tokens=30)))
    # Greedy decoding: the short answer is the long one cut off, and it was the limit that cut it.
    assert long.startswith(short.rstrip())
    assert len(long) > len(short)


def test_backend_is_deterministic_at_temperature_zero(backend: Backend) -> None:
    first = "".join(backend.stream(request()))
    second = "".join(backend.stream(request()))
    assert first == second


def test_backend_stops_when_the_student_leaves(backend: Backend) -> None:
    full = list(backend.stream(request(max_tokens=40)))
    cancel = threading.Event()
    received = []
    for chunk in backend.stream(request(max_tokens=40, cancel=cancel)):
        received.append(chunk)
        if len(received) == 3:
            cancel.set()
    assert 3 <= len(received) < len(full)
    # The slot was freed: the engine serves the next student at once.
    assert "".join(backend.stream(request(max_tokens=4)))


def test_closing_the_stream_early_frees_the_engine(backend: Backend) -> None:
    stream = backend.stream(request(max_tokens=200))
    next(stream)
    stream.close()  # what a websocket consumer does when the socket drops
    assert "".join(backend.stream(request(max_tokens=4)))  # (a held slot would hang here: pytest's timeout)


# --- backend-specific behaviour ----------------------------------------------------------------------


def test_openai_backend_returns_schema_valid_json_when_asked(llama_server: LlamaCppServer) -> None:
    schema = {"type": "object", "properties": {"question": {"type": "string", "maxLength": 60},
                                               "answer": {"type": "integer"}},
              "required": ["question", "answer"], "additionalProperties": False}
    backend = get_backend("openai", base_url=llama_server.base_url + "/v1")
    text = "".join(backend.stream(GenerationRequest(
        kind="item", messages=(Message("user", "Write one arithmetic question as JSON with its integer answer."),),
        max_tokens=80, json_schema=schema)))
    data = json.loads(text)
    assert isinstance(data["question"], str) and isinstance(data["answer"], int)


def test_openai_backend_reports_a_broken_server_as_unavailable_after_retrying(refusing_server) -> None:  # type: ignore[no-untyped-def]
    backend = get_backend("openai", base_url=refusing_server.url, model="m", max_retries=2, backoff_s=0.01)
    with pytest.raises(BackendUnavailable, match="APIConnectionError"):
        list(backend.stream(request()))
    assert refusing_server.connections >= 3  # the first try and two retries, then it gave up
    assert backend.health() is False


def test_openai_backend_health_is_true_for_a_live_server(llama_server: LlamaCppServer) -> None:
    assert get_backend("openai", base_url=llama_server.base_url + "/v1").health() is True


def test_llamacpp_backend_reports_a_bad_request_as_unavailable(llama_server: LlamaCppServer,
                                                               llama_options: dict[str, int]) -> None:
    backend = get_backend("llamacpp", **llama_options)
    bad = GenerationRequest(kind="item", messages=PROMPT, max_tokens=8, json_schema={"type": "no-such-type"})
    with pytest.raises(BackendUnavailable, match="llama.cpp"):
        list(backend.stream(bad))


def test_transformers_backend_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        get_backend("transformers", path=tmp_path / "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_authored_backend_streams_the_course_text_word_by_word() -> None:
    chunks = list(get_backend("authored").stream(request()))
    assert len(chunks) > 1 and "".join(chunks) == "A derivative is a rate of change."


def test_unknown_backend_name_is_a_clear_error_listing_the_valid_ones() -> None:
    with pytest.raises(UnknownBackend, match="'vllm'.*valid: authored, llamacpp, openai, transformers"):
        get_backend("vllm")


def test_every_registered_backend_is_importable() -> None:
    from inference.registry import BACKENDS

    factories: dict[str, Callable[..., Backend]] = BACKENDS
    assert set(factories) == {"authored", "llamacpp", "openai", "transformers"}
