"""Simulated students answer through the tutor's services, as the browser's socket calls them, and the live tutor
makes the same choices as the Django-free policy the simulator measures (benchmarks/policy_services.py drives them).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from learner_model.policy import make_policy
from learner_model.simulate import Classroom, make_course, make_population, simulate_policy

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("policy_services", REPO / "benchmarks" / "policy_services.py")
assert _spec is not None and _spec.loader is not None
policy_services = sys.modules["policy_services"] = importlib.util.module_from_spec(_spec)  # benchmarks/ is no package
_spec.loader.exec_module(policy_services)

SIM = make_course(8, seed=5, items_per_concept=5)
POPULATION = make_population(SIM, 3, seed=6)
MAX_ITEMS = 400
ITEMS_PER_DAY = 3  # a fast clock, so that reviews fall due within a short course
_courses = itertools.count()


def _course():
    from courses.services import course_import

    return course_import(spec=policy_services.course_spec(SIM, slug=f"sim-{next(_courses)}", placement_questions=6))


def _drive(s: int, *, seed: int = 11):
    """Student `s` of the population through the live services, in a course of its own."""
    from django.contrib.auth import get_user_model

    course = _course()
    user = get_user_model().objects.create_user(username=f"student-{next(_courses)}")
    room = Classroom.fresh(policy_services.student_population(POPULATION, s), seed=seed + s)
    run = policy_services.student_drive(user=user, course=course, answerer=policy_services.hidden_answerer(room),
                                        max_items=MAX_ITEMS, items_per_day=ITEMS_PER_DAY)
    return course, user, room, run


@pytest.fixture
def runs(db):
    return [_drive(s) for s in range(POPULATION.n_students)]


def test_live_tutor_shows_what_the_policy_chooses_for_the_same_answers(runs):
    for course, _, _, run in runs:
        model = policy_services.sim_course_model(SIM, course)
        shown, done = policy_services.policy_replay(model, policy_services.placement_settings(course), run.answers,
                                                    items_per_day=ITEMS_PER_DAY)
        assert run.shown == shown
        assert run.done == done
        assert run.guesses > 0  # the pain-first guess stage was part of the way
    assert any(kind == "review" for _, _, _, run in runs for kind, _, _ in run.shown)


def test_live_figures_equal_simulate_policy_on_the_same_hidden_student(runs):
    for s, (course, _, room, run) in enumerate(runs):
        model = policy_services.sim_course_model(SIM, course)
        one = policy_services.student_population(POPULATION, s)
        result = simulate_policy(one, make_policy("ours", model), model,
                                 placement=policy_services.placement_settings(course), seed=11 + s,
                                 items_per_day=ITEMS_PER_DAY, max_items=MAX_ITEMS)
        assert (run.items, run.done) == (int(result.items_to_declared[0]), bool(result.declared[0]))
        assert float(room.learned[0].mean()) == pytest.approx(float(result.hidden_share_at_declared[0]))


def test_every_concept_offered_for_learning_has_its_prerequisites_mastered_or_placed_out_of(runs):
    for _, _, _, run in runs:
        assert any(kind == "learn" for kind, _, _ in run.shown)
        assert run.unready_offers == []


def test_same_seed_same_run(db):
    _, _, _, first = _drive(1)
    _, _, _, again = _drive(1)
    assert (again.shown, again.answers, again.done) == (first.shown, first.answers, first.done)
    _, _, _, other = _drive(1, seed=12)
    assert other.answers != first.answers


def test_tutor_says_mastered_for_a_student_who_always_answers_right(db):
    from django.contrib.auth import get_user_model

    from tutor import services
    from tutor.models import TutorSession
    from tutor.selectors import knowledge_state

    course = _course()
    user = get_user_model().objects.create_user(username="always-right")
    run = policy_services.student_drive(user=user, course=course, answerer=lambda *_: True, max_items=MAX_ITEMS)
    assert run.done and all(run.answers)
    assert services.session_get(user=user, course=course).phase == TutorSession.Phase.DONE
    model = services.course_model(course)
    knowledge = knowledge_state(user=user, course=course)
    beliefs = np.array([knowledge.mastery(c.slug, model.params[c.slug]) for c in model.graph])
    assert (beliefs >= model.settings.mastery).all()
