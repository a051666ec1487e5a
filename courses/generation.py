"""Generated practice items for a concept: ask the model, verify every key, store for review.

`item_generate_batch` is the service behind the `courses.item_generate_batch` Celery task. The model work
(prompt, structured output, sympy verification, near-duplicate removal, starting difficulty) is
`inference.items`, which knows nothing of the database; this module turns a `Concept` into the
generator's input and the vetted candidates into `Item` rows:

- verified items are stored "review", or published at once when the course's `auto_publish_verified`
  setting is on;
- items whose key could not be recomputed (free text, no usable check) are stored "review": a person
  decides, they never reach students on the model's word;
- rejected items (wrong key, malformed, duplicates) are not stored; the summary counts them by reason.

Progress goes to `concept.extra["item_generation"]` (percent, message, counts), which a faculty page can
poll; the task holds no logic.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from courses import services
from courses.models import Concept, Item
from courses.selectors import course_settings
from inference import Backend, get_backend
from inference.items import GenerationFailed, Vetted, generate_items
from inference.prompts import ConceptBrief

BATCH = 4  # items per model call: small batches keep each structured answer short and well formed
MAX_CALLS_PER_ITEM = 2  # give up after 2 calls per requested item, whatever the model returns


class GenerationUnavailable(RuntimeError):
    """No model is configured (TUTOR_LLM=authored): there is nothing to generate with."""


@dataclass
class GenerationSummary:
    concept: str
    requested: int
    calls: int = 0
    candidates: int = 0
    published: int = 0
    review: int = 0
    rejected: int = 0
    failed_calls: int = 0  # model output that was not a batch of items
    reasons: dict[str, int] = field(default_factory=dict)
    item_slugs: list[str] = field(default_factory=list)


def generation_backend() -> Backend:
    """The configured model, without the authored fallback (authored text is not an item)."""
    if settings.TUTOR_LLM == "authored":
        raise GenerationUnavailable("item generation needs a model: set TUTOR_LLM (openai, llamacpp, transformers)")
    options: dict[str, Any] = {}
    if settings.TUTOR_LLM_URL:
        options["base_url"] = settings.TUTOR_LLM_URL
    if settings.TUTOR_LLM_MODEL:
        options["model"] = settings.TUTOR_LLM_MODEL
    if settings.TUTOR_LLM_PATH:
        options["path"] = settings.TUTOR_LLM_PATH
    return get_backend(settings.TUTOR_LLM, **options)


def _brief(concept: Concept) -> ConceptBrief:
    return ConceptBrief(slug=concept.slug, title=concept.title, lesson=concept.lesson, explanation=concept.explanation,
                        prerequisites=tuple(concept.prerequisites.values_list("title", flat=True)))


def _progress(concept: Concept, percent: int, message: str, summary: GenerationSummary) -> None:
    concept.extra = {**concept.extra, "item_generation": {
        "percent": percent, "message": message, "updated": time.time(), **asdict(summary)}}
    concept.save(update_fields=["extra"])


def _free_slug(concept: Concept, taken: set[str]) -> str:
    number = 1
    while f"{concept.slug}-gen-{number}" in taken:
        number += 1
    slug = f"{concept.slug}-gen-{number}"
    taken.add(slug)
    return slug


def _store(concept: Concept, vetted: Vetted, status: str, taken: set[str]) -> Item:
    spec = vetted.item
    fields = {
        "slug": _free_slug(concept, taken), "kind": spec["kind"], "prompt": spec["prompt"], "answer": spec["answer"],
        "choices": spec.get("choices", []), "tolerance": spec.get("tolerance"), "variables": spec.get("variables", []),
        "params": spec.get("params", {}), "hints": spec.get("hints", []), "solution": spec.get("solution", ""),
        "authored_difficulty": vetted.difficulty, "extra": spec.get("extra", {}),
        "status": status, "origin": Item.Origin.GENERATED,
    }
    return services.item_create(concept=concept, user=None, fields=fields)  # type: ignore[arg-type]


def item_generate_batch(*, concept_id: int, n: int, seed: int | None = None, backend: Backend | None = None,
                        on_progress: Callable[[int, str], None] | None = None) -> GenerationSummary:
    """Generate, verify and store up to `n` items for a concept. `BackendUnavailable` propagates (retry later)."""
    concept = Concept.objects.select_related("course").get(pk=concept_id)
    backend = backend or generation_backend()
    auto_publish = course_settings(course=concept.course).auto_publish_verified
    summary = GenerationSummary(concept=concept.slug, requested=n)
    reasons: Counter[str] = Counter()
    existing = tuple(concept.items.values_list("prompt", flat=True))
    taken = set(Item.objects.filter(concept__course=concept.course).values_list("slug", flat=True))
    stored = 0
    max_calls = max(1, math.ceil(n / BATCH) * MAX_CALLS_PER_ITEM)

    def report(message: str) -> None:
        percent = min(99, round(100 * stored / n)) if n else 99
        _progress(concept, percent, message, summary)
        if on_progress is not None:
            on_progress(percent, message)

    report(f"Asking the model for {n} items")
    while stored < n and summary.calls < max_calls:
        want = min(BATCH, n - stored)
        summary.calls += 1
        try:
            vetted = generate_items(backend, _brief(concept), want, existing=existing,
                                    seed=None if seed is None else seed + summary.calls, id_prefix=concept.slug)
        except GenerationFailed as exc:
            summary.failed_calls += 1
            reasons["unusable_output"] += 1
            report(f"Call {summary.calls}: the model's output was unusable ({exc})")
            continue
        summary.candidates += len(vetted)
        with transaction.atomic():
            for v in vetted:
                reasons.update(v.verdict.codes)
                if v.verdict.status == "rejected" or stored >= n:
                    summary.rejected += v.verdict.status == "rejected"
                    continue
                publish = v.verdict.status == "verified" and auto_publish
                item = _store(concept, v, Item.Status.PUBLISHED if publish else Item.Status.REVIEW, taken)
                summary.item_slugs.append(item.slug)
                summary.published += publish
                summary.review += not publish
                stored += 1
                existing = (*existing, item.prompt)
        summary.reasons = dict(reasons)
        report(f"Call {summary.calls}: {stored} of {n} items stored")
    summary.reasons = dict(reasons)
    _progress(concept, 100, f"Done: {summary.published} published, {summary.review} for review, "
                            f"{summary.rejected} rejected", summary)
    if on_progress is not None:
        on_progress(100, "done")
    return summary
