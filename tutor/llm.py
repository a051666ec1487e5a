"""The tutor's one door to text generation: which backend, and what to ask it for a student right now.

The backend is built once per process from settings and wrapped by `inference.fallback.with_fallback`:
anything the model fails to deliver (down, slow to the first token, dead mid-stream) is completed with the
course's own authored text, so a dead model server never reaches the student as an error.
"""

from __future__ import annotations

import functools
import threading

from django.conf import settings

from courses.models import Concept
from inference import Backend, GenerationRequest, get_backend, prompts
from inference.fallback import with_fallback


@functools.cache
def authored_backend() -> Backend:
    return get_backend("authored", delay_s=settings.TUTOR_STREAM_DELAY_S)


@functools.cache
def backend() -> Backend:
    if settings.TUTOR_LLM == "authored":
        return authored_backend()
    options: dict = {}
    if settings.TUTOR_LLM_URL:
        options["base_url"] = settings.TUTOR_LLM_URL
    if settings.TUTOR_LLM_MODEL:
        options["model"] = settings.TUTOR_LLM_MODEL
    if settings.TUTOR_LLM_PATH:
        options["path"] = settings.TUTOR_LLM_PATH
    return with_fallback(get_backend(settings.TUTOR_LLM, **options), fallback=authored_backend(),
                         first_token_timeout_s=settings.TUTOR_LLM_TTFT_LIMIT_S)


def concept_brief(concept: Concept) -> prompts.ConceptBrief:
    return prompts.ConceptBrief(
        slug=concept.slug, title=concept.title, lesson=concept.lesson, explanation=concept.explanation,
        pain_first=concept.pain_first, guess_first=concept.guess_first,
        prerequisites=tuple(concept.prerequisites.values_list("title", flat=True)),
    )


def explanation_request(*, concept: Concept, known: list[str], shaky: list[str], guess: str | None,
                        cancel: threading.Event | None = None) -> GenerationRequest:
    """The explanation for this student: from what they know, after the guess they committed to."""
    ctx = prompts.StudentContext(concept=concept_brief(concept), known=tuple(known), shaky=tuple(shaky),
                                 question=f"(Before the lesson I guessed: {guess})" if guess else "")
    request = prompts.explanation(ctx)
    request.metadata["concept"] = concept.slug
    return GenerationRequest(**{**request.__dict__, "cancel": cancel})
