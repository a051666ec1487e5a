"""Mastery to the LMS gradebook (Assignment and Grade Services): the full flow from login initiation to a score
arriving at the platform, sent when mastery changes, by a Celery task that retries and never holds up the
session. Eager (the embedded default: a background thread) and, in the PostgreSQL + Redis suite, through Redis
to a real worker."""

from __future__ import annotations

import os
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.models import Item
from courses.services import course_import
from learner_model.knowledge import ConceptState, KnowledgeState
from tests.lti.conftest import lti_launch
from tests.lti.lms_stub import FakeLMS, Message
from tutor import selectors as tutor_selectors
from tutor import services as tutor_services
from tutor.lti import hooks, selectors, services
from tutor.lti.models import LtiGrade, LtiIdentity, LtiResourceLink
from tutor.lti.tasks import lti_grades_push_task
from tutor.models import KnowledgeRecord
from tutor.services import concept_mastery

ANSWERS = {Item.Kind.NUMERIC: "4", Item.Kind.MULTIPLE_CHOICE: "2x", Item.Kind.SYMBOLIC: "3*x**2"}


def _register(lms: FakeLMS):
    platform = services.platform_register(**lms.registration())
    lms.tool_jwks = selectors.jwks()
    return platform


def _answer_right(user, course) -> tutor_services.AttemptOutcome:
    """Through the pain-first screen and the explanation if needed, then answer the item on screen correctly."""
    session = tutor_services.session_get(user=user, course=course)
    if session.phase == "pain":
        tutor_services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="yes")
        session = tutor_services.session_get(user=user, course=course)
    if session.phase == "explain":
        session = tutor_services.practice_start(user=user, course=course)
    if session.phase == "feedback":
        session = tutor_services.session_advance(user=user, course=course)
    if session.phase == "pain":
        return _answer_right(user, course)
    return tutor_services.attempt_record(user=user, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                         answer=ANSWERS[session.item.kind])


def _student(lms: FakeLMS, sub: str = "lms-user-1"):
    return LtiIdentity.objects.get(issuer=lms.issuer, subject=sub).user


def _wait_for_scores(lms: FakeLMS, count: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(lms.scores) < count and time.monotonic() < deadline:
        hooks.wait_idle(timeout=timeout)
        time.sleep(0.05)
    return lms.scores


def _launched(client, lms: FakeLMS, course, **message):
    """A student's first launch of a graded link, and what it sent: their starting mastery."""
    _register(lms)
    response = lti_launch(client, lms, Message(**{"custom": {"tutor_course": course.slug, "tutor_concept": "a"},
                                                  **message}))
    assert response.status_code == 302
    hooks.wait_idle()
    student = _student(lms)
    assert len(lms.scores) == 1  # enrolment set the starting knowledge: the gradebook shows where they start
    return student


@pytest.mark.django_db(transaction=True)
def test_from_login_to_a_grade_arriving_at_the_lms(client, lms, course):
    student = _launched(client, lms, course)
    # the link had no gradebook column: the tool made one (scoreMaximum 1) through the context's line items
    link = LtiResourceLink.objects.get()
    assert link.line_item is not None and ("POST", "/ags/course-101/lineitems") in lms.calls
    assert lms.line_items[link.line_item.url]["scoreMaximum"] == 1
    start = lms.scores[0]["scoreGiven"]

    _answer_right(student, course)
    scores = _wait_for_scores(lms, 2)
    assert len(scores) == 2
    score = scores[1]
    shown = concept_mastery(tutor_selectors.knowledge_state(user=student, course=course), course, "a")
    assert score["line_item"] == link.line_item.url and score["userId"] == "lms-user-1"
    assert score["scoreGiven"] == pytest.approx(shown, abs=1e-4) and score["scoreGiven"] > start
    assert score["scoreMaximum"] == 1
    assert score["activityProgress"] == "InProgress" and score["gradingProgress"] == "FullyGraded"
    assert score["content_type"] == "application/vnd.ims.lis.v1.score+json"
    assert LtiGrade.objects.get(user=student).score == pytest.approx(shown)

    _answer_right(student, course)  # mastery moves again: another score
    assert len(_wait_for_scores(lms, 3)) == 3 and lms.scores[2]["scoreGiven"] > score["scoreGiven"]
    tutor_services.session_advance(user=student, course=course)  # no answer, no change: nothing sent
    hooks.wait_idle()
    assert len(lms.scores) == 3


@pytest.mark.django_db(transaction=True)
def test_a_course_link_sends_the_share_of_concepts_mastered(client, lms, course):
    student = _launched(client, lms, course, custom={"tutor_course": course.slug})
    assert lms.scores[0]["scoreGiven"] == 0
    while not tutor_selectors.knowledge_map(user=student, course=course)["mastered_count"]:
        _answer_right(student, course)
    hooks.wait_idle()
    course_map = tutor_selectors.knowledge_map(user=student, course=course)
    assert lms.scores[-1]["scoreGiven"] == pytest.approx(course_map["mastered_count"] / course_map["total"], abs=1e-4)
    assert len(lms.scores) == 2  # answers that left the share where it was sent nothing


@pytest.mark.django_db(transaction=True)
def test_a_slow_lms_does_not_slow_the_students_answer(client, lms, course):
    student = _launched(client, lms, course)
    lms.held["scores"] = threading.Event()  # the LMS takes the score only when the test lets it
    _answer_right(student, course)  # returns with the LMS still holding: it was not waited for
    assert len(lms.scores) == 1  # the score from the launch; this answer's is on its way
    lms.held["scores"].set()
    assert len(_wait_for_scores(lms, 2)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_dead_lms_loses_no_answer_and_the_next_change_sends_the_score(client, lms, course, caplog):
    student = _launched(client, lms, course)
    sent = LtiGrade.objects.get(user=student).score
    lms.fail_next["scores"] = 1
    outcome = _answer_right(student, course)
    assert outcome.attempt.pk is not None and outcome.check.correct  # the answer counted
    hooks.wait_idle()
    assert len(lms.scores) == 1 and LtiGrade.objects.get(user=student).score == sent
    assert any("lti_grades_push_task" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    _answer_right(student, course)
    assert len(_wait_for_scores(lms, 2)) == 2
    assert LtiGrade.objects.get(user=student).score == pytest.approx(lms.scores[1]["scoreGiven"], abs=1e-4)


def test_the_grade_task_retries_until_the_lms_takes_the_score(client, lms, registered, course):
    from tutor.celery import app

    lti_launch(client, lms, Message(custom={"tutor_course": course.slug, "tutor_concept": "a"},
                                    line_item=lms.line_item_create("course-101", label="Concept A")))
    student = _student(lms)
    lms.fail_next["scores"] = 2
    before, app.conf.task_eager_propagates = app.conf.task_eager_propagates, False  # as a worker runs it
    try:
        result = lti_grades_push_task.apply(kwargs={"user_id": student.pk, "course_id": course.pk})
    finally:
        app.conf.task_eager_propagates = before
    assert result.successful() and result.result == 1, result.result
    assert len(lms.scores) == 1 and lms.fail_next["scores"] == 0  # two refusals, then accepted
    # run again with nothing changed: nothing sent
    assert lti_grades_push_task.apply(kwargs={"user_id": student.pk, "course_id": course.pk}).result == 0


def test_a_link_made_by_deep_linking_uses_the_lms_line_item(client, lms, registered, course):
    url = lms.line_item_create("course-101", label="Mastery: Concept A")
    lti_launch(client, lms, Message(custom={"tutor_course": course.slug, "tutor_concept": "a"}, line_item=url))
    assert LtiResourceLink.objects.get().line_item.url == url
    assert ("POST", "/ags/course-101/lineitems") not in lms.calls


@pytest.fixture
def redis_worker(settings):
    """A real Celery worker in this process, consuming this test's own queue on the Redis broker."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: runs in the PostgreSQL + Redis suite")
    from celery.contrib.testing.worker import start_worker

    from tutor.celery import app

    queue = f"lti-test-{uuid.uuid4().hex[:8]}"
    before = (app.conf.task_always_eager, app.conf.task_routes)
    app.conf.task_always_eager = False
    app.conf.task_routes = {"tutor.lti.tasks.*": {"queue": queue}}
    _routes_reload(app)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        yield queue
    app.conf.task_always_eager, app.conf.task_routes = before
    _routes_reload(app)


def _routes_reload(app) -> None:
    """Celery keeps the router it made for the first task this process sent (an earlier test's): without this,
    the new route is ignored and the task goes to the default queue, where no worker of this test listens."""
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()


@pytest.mark.django_db(transaction=True)
def test_with_redis_a_worker_sends_the_grade(client, lms, course, redis_worker):
    _register(lms)
    lti_launch(client, lms, Message(custom={"tutor_course": course.slug, "tutor_concept": "a"}))
    student = _student(lms)
    deadline = time.monotonic() + 120  # a loaded machine: the worker's retries back off for seconds
    while len(lms.scores) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker made the line item and sent the starting mastery
    assert len(lms.scores) == 1, (lms.calls, list(LtiGrade.objects.values()))
    lms.fail_next["scores"] = 1  # the next push is refused once: the worker retries it after its backoff
    _answer_right(student, course)
    while len(lms.scores) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(lms.scores) == 2, (lms.calls, list(LtiGrade.objects.values()))
    assert lms.scores[1]["userId"] == "lms-user-1" and lms.fail_next["scores"] == 0
    shown = concept_mastery(tutor_selectors.knowledge_state(user=student, course=course), course, "a")
    assert lms.scores[1]["scoreGiven"] == pytest.approx(shown, abs=1e-4)


def test_a_course_link_is_complete_when_every_concept_with_questions_is_mastered(alice, db):
    # An imported course has lesson objectives without questions (18 in Intro Stats): nobody can master those, so a
    # share counted over every concept never reached 1 and the LMS never saw the course complete.
    course = course_import(spec=CourseSpec(slug="holes", title="Holes", concepts=[
        ConceptSpec(slug="a", title="A", lesson="L.", items=[ItemSpec(id="a-1", kind="numeric", prompt="1?", answer=1)]),
        ConceptSpec(slug="empty", title="No questions", lesson="L.", prerequisites=["a"])]))
    tutor_services.enrollment_create(user=alice, course=course)
    state = KnowledgeState(concepts={"a": ConceptState(p_known=0.99, attempts=4, correct=4)})
    KnowledgeRecord.objects.filter(user=alice, course=course).update(blob=state.to_blob())
    grade = SimpleNamespace(link=SimpleNamespace(course=course, concept=None), user=alice)
    assert selectors.grade_score(grade=grade) == (1.0, True)
