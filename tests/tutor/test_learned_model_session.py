"""After a refit, the live session predicts and updates with the refitted model through one interface."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from courses.models import Item
from tutor import services
from tutor.learner.selectors import course_predictor
from tutor.models import Attempt, KnowledgeRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def refitted(course):
    """30 other students' answers, and a Best-LR model refitted on them and switched to (version 1)."""
    from django.contrib.auth import get_user_model

    from tutor.learner.services import learner_model_refit

    rng = np.random.default_rng(1)
    items = list(Item.objects.filter(concept__course=course).select_related("concept"))
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"s{k}") for k in range(30)])
    Attempt.objects.bulk_create([
        Attempt(client_id=uuid.uuid4(), user=u, item=it, concept=it.concept, answer="x", correct=bool(rng.random() < .6))
        for u in users for it in (items[int(rng.integers(0, len(items)))] for _ in range(20))])
    assert learner_model_refit(model_name="best-lr", n_folds=3).switched
    return course


def _to_practice(user, course):
    services.enrollment_create(user=user, course=course)
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="yes")
    return services.practice_start(user=user, course=course)


def _policy_extra(user, course) -> dict:
    return KnowledgeRecord.objects.get(user=user, course=course).policy


def test_the_practice_item_is_predicted_by_the_refitted_model(alice, refitted):
    session = _to_practice(alice, refitted)
    predictor = course_predictor(refitted)
    extra = _policy_extra(alice, refitted)
    assert predictor is not None and extra["model_version"] == 1
    [expected] = predictor.predict_many(extra["model"], session.concept.slug, [str(session.item_id)])
    assert session.item_p_correct == pytest.approx(expected)


def test_each_graded_answer_updates_the_refitted_models_state(alice, refitted):
    session = _to_practice(alice, refitted)
    predictor = course_predictor(refitted)
    before = _policy_extra(alice, refitted)["model"]
    services.attempt_record(user=alice, course=refitted, client_id=uuid.uuid4(), item_id=session.item_id,
                            answer="4")
    correct = Attempt.objects.get(user=alice).correct
    after = _policy_extra(alice, refitted)["model"]
    assert after == predictor.update(before, session.concept.slug, str(session.item_id), correct)


def test_a_student_is_replayed_from_the_attempt_log_when_the_model_version_changes(alice, refitted):
    session = _to_practice(alice, refitted)
    services.attempt_record(user=alice, course=refitted, client_id=uuid.uuid4(), item_id=session.item_id,
                            answer="4")
    services.session_advance(user=alice, course=refitted)
    record = KnowledgeRecord.objects.get(user=alice, course=refitted)
    record.policy = record.policy | {"model": None, "model_version": 0}  # written by an older model
    record.save()
    _, state = services.knowledge_load(user=alice, course=refitted)
    predictor = course_predictor(refitted)
    replayed = None
    for attempt in Attempt.objects.filter(user=alice).order_by("created_at", "id"):
        replayed = predictor.update(replayed, attempt.concept.slug, str(attempt.item_id), attempt.correct)
    assert (state.model, state.model_version) == (replayed, 1)


def test_without_a_refit_the_session_predicts_with_bkt(alice, course):
    session = _to_practice(alice, course)
    assert course_predictor(course) is None
    assert _policy_extra(alice, course)["model"] is None
    assert session.item_p_correct is not None


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_model_file_that_cannot_be_read_falls_back_to_bkt(alice, refitted, settings, damage):
    import json
    from pathlib import Path

    pointer = json.loads((Path(settings.LEARNER_MODEL_DIR) / "current.json").read_text())
    model_file = Path(settings.LEARNER_MODEL_DIR) / pointer["file"]
    if damage == "missing":
        model_file.unlink()
    else:
        model_file.write_bytes(b"not a model file")
    (Path(settings.LEARNER_MODEL_DIR) / "current.json").write_text(json.dumps(pointer | {"version": 2}))
    session = _to_practice(alice, refitted)
    assert course_predictor(refitted) is None
    assert session.item_p_correct is not None and _policy_extra(alice, refitted)["model"] is None
