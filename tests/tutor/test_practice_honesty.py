"""Practice a student can trust: a question whose worked solution was shown does not come back while the concept
has others, a repeat says so and counts for less, the page shows one mastery figure and explains a rise after a
wrong answer, and a concept without questions does not block what comes after it."""

from __future__ import annotations

import uuid

import pytest

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.params import ConceptParams, CourseSettings
from courses.services import course_import
from learner_model.knowledge import BKTParams
from tutor import services
from tutor.models import Attempt, TutorSession
from tutor.selectors import stage_context

pytestmark = pytest.mark.django_db


def _items(prefix: str, n: int) -> list[ItemSpec]:
    return [ItemSpec(id=f"{prefix}-{k}", kind="numeric", prompt=f"What is ${k} + {k}$?", answer=2 * k,
                     difficulty=-1.0 + 0.1 * k, solution=f"${k} + {k} = {2 * k}$") for k in range(1, n + 1)]


def _course(n_items: int, slug: str = "practice") -> CourseSpec:
    return CourseSpec(slug=slug, title="Practice", settings=CourseSettings(placement_questions=0), concepts=[
        ConceptSpec(slug="a", title="Adding", lesson="Add.", explanation="Add them.", items=_items("a", n_items)),
        ConceptSpec(slug="b", title="Doubling", prerequisites=["a"], lesson="Double.", explanation="Double it.",
                    items=_items("b", 2)),
    ])


def _practice(user, course) -> TutorSession:
    services.enrollment_create(user=user, course=course)
    return services.practice_start(user=user, course=course)


def _answer(user, course, session: TutorSession, *, right: bool) -> services.AttemptOutcome:
    key = session.item.answer
    return services.attempt_record(user=user, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                   answer=str(key if right else key + 100))


def test_a_question_whose_solution_was_shown_does_not_come_back_while_others_remain(alice):
    course = course_import(spec=_course(4))
    session = _practice(alice, course)
    shown = []
    for _ in range(4):
        shown.append(session.item_id)
        _answer(alice, course, session, right=False)
        session = services.session_advance(user=alice, course=course)
    assert len(set(shown)) == 4, f"served {shown}: a question came back while unseen ones remained"


def _imported_style(n_items: int) -> CourseSpec:
    """As OATutor's courses import: items of one difficulty with hints that are worked steps and no solution of
    their own, and the concept's explanation working the first one through."""
    items = [ItemSpec(id=f"a-{k}", kind="numeric", prompt=f"A baker has {k} trays of 12 rolls. How many rolls?",
                      answer=12 * k, hints=[f"Each tray holds 12 rolls, and there are {k} trays.",
                                            f"$12 \\times {k} = {12 * k}$"]) for k in range(1, n_items + 1)]
    spec = _course(1, slug="imported-style")
    spec.concepts[0].items = items
    spec.concepts[0].explanation = f"A worked example.\n\n{items[0].prompt}\n\n*Step 1.* {items[0].hints[0]}"
    return spec


def test_on_an_imported_concept_every_question_comes_once_and_the_worked_example_after_them(alice):
    course = course_import(spec=_imported_style(6))
    session = _practice(alice, course)
    shown = []
    for k in range(6):
        shown.append(session.item.slug)
        _answer(alice, course, session, right=k % 2 == 0)
        session = services.session_advance(user=alice, course=course)
    assert sorted(shown[:5]) == ["a-2", "a-3", "a-4", "a-5", "a-6"], f"served {shown}"
    assert shown[5] == shown[0]  # then the one answered longest ago; the one the explanation works through is last


def test_a_wrong_answer_to_an_item_without_a_solution_shows_its_hints_as_the_worked_steps(alice):
    course = course_import(spec=_imported_style(3))
    session = _practice(alice, course)
    outcome = _answer(alice, course, session, right=False)
    html = stage_context(session=outcome.session)["solution_html"]
    k = int(session.item.slug.split("-")[1])
    assert "Step 1." in html and "Step 2." in html and f"there are {k} trays" in html
    # its hints were shown before too: it comes back after the others as an ordinary question, not a weak repeat
    assert str(session.item_id) not in services.knowledge_load(user=alice, course=course)[1].solved


def test_when_only_solved_questions_remain_the_repeat_is_said_and_counts_for_less(alice):
    course = course_import(spec=_course(1))
    session = _practice(alice, course)
    first = _answer(alice, course, session, right=True)
    session = services.session_advance(user=alice, course=course)
    assert session.item_repeat and "counts for less" in session.reason
    again = _answer(alice, course, session, right=True)
    gained_first = first.attempt.mastery_after - first.attempt.mastery_before
    gained_again = again.attempt.mastery_after - again.attempt.mastery_before
    assert 0 < gained_again < gained_first


def test_feedback_shows_the_mastery_this_answer_left_and_no_stale_figure(alice):
    course = course_import(spec=_course(4))
    session = _practice(alice, course)
    outcome = _answer(alice, course, session, right=False)
    ctx = stage_context(session=outcome.session)
    assert ctx["mastery"] == round(100 * outcome.attempt.mastery_after)
    assert ctx["reason"] == ""  # the policy's line was about the question just answered


def test_a_rise_after_a_wrong_answer_is_explained_in_plain_words(alice):
    spec = _course(4)
    spec.concepts[0].params = ConceptParams(bkt=BKTParams(p_init=0.05))  # new to it: one wrong answer teaches
    course = course_import(spec=spec)
    session = _practice(alice, course)
    outcome = _answer(alice, course, session, right=False)
    attempt = outcome.attempt
    assert attempt.mastery_after > attempt.mastery_before  # BKT's learning step after the observation
    assert "worked solution is practice too" in stage_context(session=outcome.session)["mastery_note"]
    right = _answer(alice, course, services.session_advance(user=alice, course=course), right=True)
    assert stage_context(session=right.session)["mastery_note"] == ""


def test_a_concept_without_questions_does_not_block_the_concepts_after_it(alice):
    spec = _course(2)
    spec.concepts.insert(1, ConceptSpec(slug="between", title="Reading only", prerequisites=["a"], lesson="Read."))
    spec.concepts[2].prerequisites = ["between"]
    course = course_import(spec=spec)
    graph = {c.slug: c.prerequisites for c in services.course_model(course).graph}
    assert graph == {"a": (), "b": ("a",)}
    session = _practice(alice, course)
    for _ in range(30):
        if session.concept.slug == "b":
            break
        if session.phase == TutorSession.Phase.PRACTICE:
            _answer(alice, course, session, right=True)
            session = services.session_advance(user=alice, course=course)
        else:
            session = services.practice_start(user=alice, course=course)
    assert session.concept.slug == "b"
    assert Attempt.objects.filter(user=alice, concept__slug="between").count() == 0


def test_a_course_that_writes_decimal_commas_reads_them(alice):
    spec = _course(4)
    spec.settings = CourseSettings(placement_questions=0, decimal_comma=True)
    spec.concepts[0].items[0].answer = 0.25
    spec.concepts[0].items[0].tolerance = 0.001
    course = course_import(spec=spec)
    session = _practice(alice, course)
    while session.item.slug != "a-1":
        _answer(alice, course, session, right=False)
        session = services.session_advance(user=alice, course=course)
    outcome = services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                      answer="0,25")
    assert outcome.attempt.correct


def test_elsewhere_a_decimal_comma_is_refused_with_what_to_type(alice):
    course = course_import(spec=_course(4))
    session = _practice(alice, course)
    with pytest.raises(services.SessionError, match="0.25"):
        services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                answer="0,25")
