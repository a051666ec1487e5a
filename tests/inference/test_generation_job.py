"""The item generation job: only verified keys can be published, and only when the course says so."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from courses.generation import GenerationUnavailable, item_generate_batch
from courses.models import Item
from inference import GenerationRequest
from inference.verify import verify

RIGHT = {"kind": "symbolic", "prompt": "Differentiate $x^5$ with respect to x.", "answer": "5*x**4",
         "check": "diff(x**5, x)", "variables": ["x"], "choices": [], "hints": ["Power rule."], "solution": "5x^4",
         "difficulty": "easy"}
WRONG = {**RIGHT, "prompt": "Differentiate $x^6$ with respect to x.", "answer": "6*x**6", "check": "diff(x**6, x)"}
FREE_TEXT = {**RIGHT, "kind": "short_text", "prompt": "Name the rule that gives the derivative of x^n.",
             "answer": "power rule", "check": "", "variables": []}
EXISTING = {**RIGHT, "prompt": "Differentiate $x^3$.", "answer": "3*x**2", "check": "diff(x**3, x)"}


class ScriptedModel:
    """A model that always answers with the same batch (the real ones are exercised in test_backends)."""

    name = "scripted"

    def __init__(self, items: list[dict]) -> None:
        self.text = json.dumps({"items": items})
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        yield from (self.text[i:i + 16] for i in range(0, len(self.text), 16))

    def health(self) -> bool:
        return True


@pytest.fixture
def concept(course):  # type: ignore[no-untyped-def]
    return course.concepts.get(slug="a")


def test_verified_items_wait_for_review_and_wrong_keys_are_never_stored(concept) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel([RIGHT, WRONG, FREE_TEXT, EXISTING])
    summary = item_generate_batch(concept_id=concept.pk, n=4, backend=model)
    generated = {i.prompt: i for i in concept.items.filter(origin=Item.Origin.GENERATED)}
    assert set(generated) == {RIGHT["prompt"], FREE_TEXT["prompt"]}
    assert {i.status for i in generated.values()} == {Item.Status.REVIEW}
    assert generated[RIGHT["prompt"]].extra["verdict"] == "verified"
    assert generated[FREE_TEXT["prompt"]].extra["verdict"] == "review"
    assert summary.reasons["wrong_key"] >= 1 and summary.reasons["near_duplicate"] >= 1
    # The model asked again for the two items still missing, and got the same batch: all duplicates now.
    assert summary.calls == 2 and summary.review == 2 and summary.published == 0
    progress = type(concept).objects.get(pk=concept.pk).extra["item_generation"]
    assert progress["percent"] == 100 and progress["review"] == 2


def test_verified_items_are_published_when_the_course_auto_publishes(concept) -> None:  # type: ignore[no-untyped-def]
    course = concept.course
    course.settings = {**course.settings, "auto_publish_verified": True}
    course.save(update_fields=["settings"])
    item_generate_batch(concept_id=concept.pk, n=2, backend=ScriptedModel([RIGHT, FREE_TEXT]))
    status = dict(concept.items.filter(origin=Item.Origin.GENERATED).values_list("prompt", "status"))
    assert status == {RIGHT["prompt"]: Item.Status.PUBLISHED, FREE_TEXT["prompt"]: Item.Status.REVIEW}


def test_generated_items_get_a_starting_difficulty_and_keep_their_check(concept) -> None:  # type: ignore[no-untyped-def]
    item_generate_batch(concept_id=concept.pk, n=1, backend=ScriptedModel([RIGHT]))
    item = concept.items.get(origin=Item.Origin.GENERATED)
    assert item.authored_difficulty is not None and item.difficulty == item.authored_difficulty
    assert item.extra["check"] == "diff(x**5, x)" and item.slug == "a-gen-1"


def test_generation_without_a_model_is_a_clear_error(concept, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TUTOR_LLM = "authored"
    with pytest.raises(GenerationUnavailable, match="needs a model"):
        item_generate_batch(concept_id=concept.pk, n=2)


@pytest.mark.slow
def test_the_celery_job_with_a_real_model_publishes_no_unverified_key(concept, settings) -> None:  # type: ignore[no-untyped-def]
    from courses.tasks import item_generate_batch_task
    from inference.llamacpp_backend import bundled_gguf

    settings.TUTOR_LLM, settings.TUTOR_LLM_PATH, settings.TUTOR_LLM_URL = "llamacpp", str(bundled_gguf()), ""
    course = concept.course
    course.settings = {**course.settings, "auto_publish_verified": True}
    course.save(update_fields=["settings"])
    # apply(): the task runs here through Celery's machinery, with or without a broker and worker (suite 2
    # has Redis as broker but no worker in the test process).
    summary = item_generate_batch_task.apply(args=(concept.pk, 2), kwargs={"seed": 3}).get()
    assert summary["calls"] >= 1
    for item in concept.items.filter(origin=Item.Origin.GENERATED):
        candidate = {"kind": item.kind, "prompt": item.prompt, "answer": item.answer, "choices": item.choices,
                     "variables": item.variables, "check": item.extra.get("check")}
        if item.status == Item.Status.PUBLISHED:
            assert verify(candidate).status == "verified"
        else:
            assert item.status == Item.Status.REVIEW
