"""The tutor's one door to text generation: which backend, and what to ask it for a student right now.

The backend is built once per process from settings. Anything it fails to deliver is replaced by the
course's own authored text, so a dead model server never reaches the student as an error.
"""

from __future__ import annotations

import functools

from django.conf import settings

from courses.models import Concept
from inference import Backend, GenerationRequest, get_backend


@functools.cache
def backend() -> Backend:
    options: dict = {}
    if settings.TUTOR_LLM == "authored":
        options["delay_s"] = settings.TUTOR_STREAM_DELAY_S
    if settings.TUTOR_LLM_URL:
        options["base_url"] = settings.TUTOR_LLM_URL
    if settings.TUTOR_LLM_MODEL:
        options["model"] = settings.TUTOR_LLM_MODEL
    if settings.TUTOR_LLM_PATH:
        options["path"] = settings.TUTOR_LLM_PATH
    return get_backend(settings.TUTOR_LLM, **options)


@functools.cache
def authored_backend() -> Backend:
    return get_backend("authored", delay_s=settings.TUTOR_STREAM_DELAY_S)


def explanation_request(*, concept: Concept, known: list[str], guess: str | None) -> GenerationRequest:
    return GenerationRequest(
        kind="explanation",
        authored=concept.explanation or concept.lesson,
        max_tokens=600,
        metadata={"concept": concept.title, "known": known, "guess": guess or ""},
    )
