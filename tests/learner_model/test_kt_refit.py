"""Refitting the learner model from the tutor's own attempt log: versioned, switched only when no worse."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def attempt_log(course):
    """40 students answering the course's items; abilities and item difficulties drive their answers."""
    from django.contrib.auth import get_user_model

    from courses.models import Item
    from tutor.models import Attempt

    rng = np.random.default_rng(0)
    items = list(Item.objects.filter(concept__course=course).select_related("concept"))
    difficulty = {it.pk: d for it, d in zip(items, np.linspace(-1.5, 1.5, len(items)), strict=True)}
    # bulk, no password hashing: only the attempt log matters here
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"student{s}") for s in range(40)])
    attempts = []
    for user in users:
        ability = rng.normal(0, 1)
        for _ in range(25):
            item = items[int(rng.integers(0, len(items)))]
            correct = rng.random() < 1 / (1 + np.exp(-(ability - difficulty[item.pk])))
            attempts.append(Attempt(client_id=uuid.uuid4(), user=user, item=item, concept=item.concept,
                                    answer="x", correct=bool(correct)))
    Attempt.objects.bulk_create(attempts)
    return course


def test_first_refit_writes_version_one_and_switches(attempt_log, settings, tmp_path) -> None:
    from tutor.learner.selectors import learner_model_current, learner_model_online
    from tutor.learner.services import learner_model_refit

    settings.LEARNER_MODEL_DIR = tmp_path
    steps: list[float] = []
    outcome = learner_model_refit(model_name="best-lr", n_folds=3, progress=lambda m, f: steps.append(f))
    assert outcome.switched and outcome.version == 1
    assert outcome.answers == 1000 and outcome.students == 40
    assert outcome.cv_auc > 0.6  # ability and difficulty are learnable from 1000 answers
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert learner_model_current()["file"] == "kt-v1-best-lr.pt"
    online = learner_model_online()
    item = attempt_log.concepts.first().items.first()
    assert 0 < online.predict(None, item.concept_id, item.pk) < 1


def test_refit_switches_only_when_no_worse_than_the_model_in_use(attempt_log, settings, tmp_path) -> None:
    from tutor.learner.selectors import learner_model_current
    from tutor.learner.services import learner_model_refit

    settings.LEARNER_MODEL_DIR = tmp_path
    learner_model_refit(model_name="best-lr", n_folds=3)
    outcome = learner_model_refit(model_name="bkt", n_folds=3)
    assert outcome.current_cv_auc is not None
    assert outcome.switched == (outcome.cv_auc >= outcome.current_cv_auc)
    assert learner_model_current()["version"] == (2 if outcome.switched else 1)


def test_too_few_students_leaves_the_model_alone(course, settings, tmp_path) -> None:
    from tutor.learner.selectors import learner_model_current
    from tutor.learner.services import learner_model_refit

    settings.LEARNER_MODEL_DIR = tmp_path
    outcome = learner_model_refit(model_name="best-lr")
    assert not outcome.switched and "too few students" in outcome.reason
    assert learner_model_current() is None


def test_management_command_reports_the_outcome(attempt_log, settings, tmp_path) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.LEARNER_MODEL_DIR = tmp_path
    out = StringIO()
    call_command("refit_learner_model", "--model", "pfa", "--folds", "3", stdout=out)
    assert "switched" in out.getvalue() and (tmp_path / "kt-v1-pfa.pt").exists()
