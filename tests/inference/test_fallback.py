"""A dead or slow model server never reaches the student: they get the course's authored text, and the
status page learns of the outage."""

from __future__ import annotations

import threading

from inference import GenerationRequest, Message, get_backend, health_report, with_fallback
from inference.authored import AuthoredBackend
from inference.llamacpp_backend import LlamaCppServer

AUTHORED = "The derivative is the slope of the tangent line: how fast f changes at a point."


def explanation(max_tokens: int = 200, cancel: threading.Event | None = None) -> GenerationRequest:
    return GenerationRequest(kind="explanation", max_tokens=max_tokens, authored=AUTHORED, cancel=cancel,
                             messages=(Message("user", "Explain derivatives to me at length, with examples."),))


def test_student_gets_authored_text_when_the_server_dies_mid_stream(cuttable) -> None:  # type: ignore[no-untyped-def]
    backend = with_fallback(get_backend("openai", base_url=cuttable.base_url), first_token_timeout_s=20)
    received = []
    for chunk in backend.stream(explanation()):
        received.append(chunk)
        if len(received) == 3:
            cuttable.cut()
    text = "".join(received)
    # The model's start, then the course's text in full; no exception reached the consumer.
    assert text.endswith("\n\n" + AUTHORED)
    assert len(text) > len("\n\n" + AUTHORED)
    report = health_report()["openai"]
    assert report["up"] is False and report["fell_back"] == 1
    assert "stream broke" in report["last_error"]
    assert report["down_since"] is not None


def test_student_gets_authored_text_when_the_server_is_down(dead_url: str) -> None:
    backend = with_fallback(get_backend("openai", base_url=dead_url, model="m", max_retries=1, backoff_s=0.01))
    assert "".join(backend.stream(explanation())) == AUTHORED
    report = health_report()["openai"]
    assert report["up"] is False and "APIConnectionError" in report["last_error"]


def test_student_gets_authored_text_when_the_first_token_is_too_slow(llama_server: LlamaCppServer) -> None:
    backend = with_fallback(get_backend("openai", base_url=llama_server.base_url + "/v1"), first_token_timeout_s=0.001)
    assert "".join(backend.stream(explanation())) == AUTHORED
    assert health_report()["openai"]["last_error"] == "no first token within 0.001 s"


def test_after_an_outage_the_server_is_not_asked_again_until_retry_after(refusing_server) -> None:  # type: ignore[no-untyped-def]
    backend = with_fallback(get_backend("openai", base_url=refusing_server.url, model="m", max_retries=3,
                                        backoff_s=0.01), retry_after_s=60)
    assert "".join(backend.stream(explanation())) == AUTHORED
    asked = refusing_server.connections
    assert asked >= 4  # the first try and three retries
    assert "".join(backend.stream(explanation())) == AUTHORED
    assert refusing_server.connections == asked  # within retry_after: straight to authored text
    assert health_report()["openai"]["fell_back"] == 2


def test_a_recovered_server_is_marked_up_again(llama_server: LlamaCppServer) -> None:
    backend = with_fallback(get_backend("openai", base_url=llama_server.base_url + "/v1"),
                            first_token_timeout_s=0.001, retry_after_s=0)
    "".join(backend.stream(explanation(max_tokens=4)))
    assert health_report()["openai"]["up"] is False
    backend.first_token_timeout_s = 20  # type: ignore[attr-defined]
    text = "".join(backend.stream(explanation(max_tokens=4)))
    assert text and AUTHORED not in text
    report = health_report()["openai"]
    assert report["up"] is True and report["down_since"] is None and report["served"] == 1
    assert report["last_error"] == "no first token within 0.001 s"  # kept for the status page's history


def test_leaving_mid_stream_stops_without_authored_text(llama_server: LlamaCppServer) -> None:
    backend = with_fallback(get_backend("openai", base_url=llama_server.base_url + "/v1"), first_token_timeout_s=20)
    cancel = threading.Event()
    received = []
    for chunk in backend.stream(explanation(cancel=cancel)):
        received.append(chunk)
        if len(received) == 2:
            cancel.set()
    assert 2 <= len(received) <= 3 and AUTHORED not in "".join(received)
    assert health_report()["openai"]["up"] is True


def test_health_check_of_a_dead_server_is_reported(dead_url: str) -> None:
    backend = with_fallback(get_backend("openai", base_url=dead_url, model="m"))
    assert backend.health() is False
    assert health_report()["openai"]["last_error"] == "health check failed"


def test_the_authored_backend_is_not_wrapped() -> None:
    authored = AuthoredBackend()
    assert with_fallback(authored) is authored
