"""A guess-first answer is evidence of prior knowledge when the course names the right guess, and only then.

The student is never told the guess was wrong; the tutor's belief moves, by less than a practice answer would.
"""

import uuid

import pytest

from courses.models import Concept
from learner_model.knowledge import KnowledgeState, observe, posterior
from tutor import services
from tutor.models import Guess, TutorSession
from tutor.selectors import knowledge_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def right_guess_yes(course):
    """Concept A (choices yes / no) says that "yes" is the right guess."""
    Concept.objects.filter(course=course, slug="a").update(guess_answer="yes")
    return course


def _guess(user, course, text: str, client_id: uuid.UUID | None = None) -> TutorSession:
    return services.guess_record(user=user, course=course, client_id=client_id or uuid.uuid4(), text=text)


def _p_known(user, course, slug: str = "a") -> float | None:
    seen = knowledge_state(user=user, course=course).concepts.get(slug)
    return None if seen is None else seen.p_known


def test_a_right_guess_raises_p_known_less_than_a_right_practice_answer_and_teaches_nothing(alice, right_guess_yes):
    course = right_guess_yes
    services.enrollment_create(user=alice, course=course)
    model = services.course_model(course)
    params, weight = model.params["a"], model.settings.guess_first_weight

    session = _guess(alice, course, "yes")

    assert session.phase == TutorSession.Phase.EXPLAIN  # the guess is never refused or marked
    after_guess = _p_known(alice, course)
    assert after_guess > params.p_init
    # half-weight evidence and no learning transition: a guess before the lesson is not a practice opportunity
    assert after_guess == pytest.approx(posterior(params.p_init, True, params, weight))
    practice = KnowledgeState()
    observe(practice, "a", True, params)  # a right answer to an average practice item, with its learning step
    assert after_guess < practice.concepts["a"].p_known
    assert session.knowledge.concepts["a"].p_known == after_guess  # the render reads what was saved


def test_a_wrong_guess_lowers_p_known_and_still_opens_the_explanation(alice, right_guess_yes):
    course = right_guess_yes
    services.enrollment_create(user=alice, course=course)

    session = _guess(alice, course, "no")

    assert session.phase == TutorSession.Phase.EXPLAIN
    assert _p_known(alice, course) < services.course_model(course).params["a"].p_init


def test_a_resent_guess_is_stored_once_and_counted_once(alice, bob, right_guess_yes):
    course = right_guess_yes
    for user in (alice, bob):
        services.enrollment_create(user=user, course=course)
    cid = uuid.uuid4()
    _guess(alice, course, "yes", cid)
    _guess(alice, course, "yes", cid)  # the same message resent
    _guess(alice, course, "yes")  # a second click from the stale guess screen
    _guess(bob, course, "yes")

    assert Guess.objects.filter(user=alice).count() == 1
    assert knowledge_state(user=alice, course=course).concepts["a"].attempts == 1
    assert _p_known(alice, course) == _p_known(bob, course)


def test_a_guess_on_a_concept_without_a_right_guess_changes_no_belief(alice, course):
    services.enrollment_create(user=alice, course=course)

    session = _guess(alice, course, "yes")

    assert session.phase == TutorSession.Phase.EXPLAIN
    assert _p_known(alice, course) is None
    assert session.knowledge is None  # nothing was loaded: the render reads the record


def test_free_text_that_is_none_of_the_choices_changes_no_belief(alice, right_guess_yes):
    course = right_guess_yes
    services.enrollment_create(user=alice, course=course)

    session = _guess(alice, course, "I think it's yes")

    assert session.phase == TutorSession.Phase.EXPLAIN
    assert Guess.objects.get(user=alice).text == "I think it's yes"
    assert _p_known(alice, course) is None
