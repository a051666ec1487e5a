"""Placement at enrolment, then teaching chosen by the policy, through the session services."""

import re
import uuid
from dataclasses import replace

import pytest

from courses.services import course_import
from learner_model import placement as placement_module
from tests.conftest import small_course_spec
from tutor import services
from tutor.models import Attempt, TutorSession
from tutor.selectors import knowledge_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed_course(db):
    spec = small_course_spec("placed")
    spec.settings = replace(spec.settings, placement_questions=2)
    return course_import(spec=spec)


def _answer(user, course, session, correct=True):
    item = session.item
    key = str(item.answer) if correct else ("x" if item.kind == "multiple_choice" else "12345")
    return services.attempt_record(user=user, course=course, client_id=uuid.uuid4(), item_id=item.pk, answer=key)


def test_enrolment_starts_with_a_placement_question(alice, placed_course):
    session = services.enrollment_create(user=alice, course=placed_course)
    assert session.phase == TutorSession.Phase.PLACEMENT
    assert session.item is not None
    assert "Placement question 1" in session.reason


def test_placement_stops_at_its_question_budget_and_then_teaches(alice, placed_course):
    session = services.enrollment_create(user=alice, course=placed_course)
    asked = 0
    while session.phase == TutorSession.Phase.PLACEMENT:
        _answer(alice, placed_course, session)
        session = services.session_get(user=alice, course=placed_course)
        asked += 1
        assert asked <= 2
    assert session.phase in (TutorSession.Phase.PAIN, TutorSession.Phase.EXPLAIN, TutorSession.Phase.PRACTICE,
                             TutorSession.Phase.DONE)
    assert session.reason.startswith("Placement done after")
    assert Attempt.objects.filter(user=alice).count() == asked
    assert "of the 3 concepts." in session.reason


def test_placement_counts_the_concepts_it_can_place_and_says_so(alice):
    """An imported course has concepts with no published item: the page says "Concept 1 of 4", placement "of 3"."""
    from courses.format import ConceptSpec

    spec = small_course_spec("partly")
    spec.settings = replace(spec.settings, placement_questions=1)
    spec.concepts.append(ConceptSpec(slug="d", title="Concept D", prerequisites=["c"]))
    course = course_import(spec=spec)
    session = services.enrollment_create(user=alice, course=course)
    _answer(alice, course, session)
    session = services.session_get(user=alice, course=course)
    assert re.search(r"you already know \d of the 3 concepts with practice items\.", session.reason)


def test_right_placement_answers_raise_what_the_tutor_believes(alice, bob, placed_course):
    for user, correct in ((alice, True), (bob, False)):
        session = services.enrollment_create(user=user, course=placed_course)
        while session.phase == TutorSession.Phase.PLACEMENT:
            _answer(user, placed_course, session, correct=correct)
            session = services.session_get(user=user, course=placed_course)
    strong = knowledge_state(user=alice, course=placed_course)
    weak = knowledge_state(user=bob, course=placed_course)
    assert sum(c.p_known for c in strong.concepts.values()) > sum(c.p_known for c in weak.concepts.values())


def test_student_can_skip_the_rest_of_placement(alice, placed_course):
    services.enrollment_create(user=alice, course=placed_course)
    session = services.placement_skip(user=alice, course=placed_course)
    assert session.phase != TutorSession.Phase.PLACEMENT
    assert session.placement is None
    assert session.reason.startswith("Placement skipped: we start from the beginning.")
    assert "you already know 0" not in session.reason  # nothing was asked, so nothing is reported as known


def test_the_policy_never_offers_a_concept_whose_prerequisites_are_unmastered(alice, course):
    session = services.enrollment_create(user=alice, course=course)
    assert session.concept.slug == "a"  # b needs a, c needs b
    services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    session = services.practice_start(user=alice, course=course)
    for _ in range(6):
        assert session.concept.slug == "a"
        _answer(alice, course, session, correct=False)
        session = services.session_advance(user=alice, course=course)


def test_students_with_the_same_placement_answers_get_the_question_a_fresh_placement_chooses(alice, bob,
                                                                                            placed_course):
    placement_module._next_questions.clear()
    sessions = []
    for user in (alice, bob):
        session = services.enrollment_create(user=user, course=placed_course)
        _answer(user, placed_course, session, correct=False)
        sessions.append(services.session_get(user=user, course=placed_course))
    alices, bobs = sessions
    assert alices.phase == TutorSession.Phase.PLACEMENT and alices.item_id == bobs.item_id
    assert len(placement_module._next_questions) == 2  # the first question and the second, each chosen once for both
    fresh = services.Placement.from_dict(alices.placement, list(services.course_model(placed_course).graph),
                                         services.course_model(placed_course).params)
    assert fresh.next_question() == alices.concept.slug


def test_a_concept_asked_again_in_placement_gets_another_item(alice, db):
    from courses.models import Item

    spec = small_course_spec("placed-twice")
    spec.settings = replace(spec.settings, placement_questions=8)
    course = course_import(spec=spec)
    session = services.enrollment_create(user=alice, course=course)
    right = True
    while session.phase == TutorSession.Phase.PLACEMENT:
        _answer(alice, course, session, correct=right)
        right = not right  # mixed answers keep concepts uncertain, so some are asked twice
        session = services.session_get(user=alice, course=course)
    asked: dict[str, list[int]] = {}
    for concept, item in Attempt.objects.filter(user=alice).order_by("id").values_list("concept__slug", "item_id"):
        asked.setdefault(concept, []).append(item)
    repeated = {c: items for c, items in asked.items() if len(items) > 1}
    assert repeated, asked
    for concept, items in repeated.items():
        bank = Item.objects.filter(concept__course=course, concept__slug=concept, status=Item.Status.PUBLISHED).count()
        assert len(set(items)) == min(len(items), bank), (concept, items)


def test_the_answer_that_ends_placement_renders_the_seeded_knowledge_without_reading_it(alice, placed_course):
    """The last placement answer seeds the knowledge state (a new state, saved inside the placement's end) and
    starts teaching: the session it returns carries that state, and renders as a fresh read of the page does."""
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test.utils import CaptureQueriesContext

    from tutor.selectors import stage_context

    def html(session):
        context = stage_context(session=session)
        context["client_id"] = "the-form-id"  # a fresh id per render
        return render_to_string("tutor/partials/stage.html", context)

    session = services.enrollment_create(user=alice, course=placed_course)
    while session.phase == TutorSession.Phase.PLACEMENT:
        session = _answer(alice, placed_course, session).session
        with CaptureQueriesContext(connection) as render:
            page = html(session)
        assert len(render) == 0
        assert page == html(services.session_get(user=alice, course=placed_course))
    assert session.reason.startswith("Placement done after")
    assert session.knowledge.concepts == knowledge_state(user=alice, course=placed_course).concepts


def test_a_placement_answer_is_weighed_with_the_difficulty_its_question_was_chosen_by(alice, placed_course):
    """Online calibration moves an item's row; the course model the question was chosen by (and teaching uses)
    keeps its difficulty until the content changes, and the placement weighs the answer with that one, so the same
    answers give the same placement in every process."""
    from courses.models import Item
    from courses.services import item_calibrate

    session = services.enrollment_create(user=alice, course=placed_course)
    item = session.item
    chosen_by = next(i.difficulty for i in services.course_model(placed_course).items if i.id == str(item.pk))
    for _ in range(20):  # other students found it much harder than predicted
        item_calibrate(item_id=item.pk, predicted=0.9, correct=False)
    assert Item.objects.get(pk=item.pk).difficulty > chosen_by + 0.5
    session = _answer(alice, placed_course, session).session
    answers = (session.placement or {}).get("answers") or TutorSession.objects.get(pk=session.pk).placement["answers"]
    assert answers[0][2] == pytest.approx(chosen_by)


def test_a_right_placement_answer_the_tutor_is_not_yet_sure_of_is_told_not_only_known_zero(alice, placed_course):
    """One right answer can be a guess, so it does not reach mastery alone: the student who answered right is not
    told only "you already know 0 of the 3 concepts"."""
    session = services.enrollment_create(user=alice, course=placed_course)
    answered = session.item.concept.slug
    _answer(alice, placed_course, session)
    session = services.placement_skip(user=alice, course=placed_course)
    assert session.knowledge.mastery(answered) < 0.95
    assert "you already know 0 of the 3 concepts. One concept you answered right needs a right answer or two more" \
        in session.reason
