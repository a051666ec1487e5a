"""Teach-back in the session: after mastery the student explains the concept to a beginner, answers at most two
follow-up questions, and sees which key ideas came across; bad input gets a redo and is kept; faculty see what
beginners ask, anonymised."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import reverse

from courses.models import Concept
from courses.services import course_import
from inference.base import GenerationRequest
from inference.teachback import mixup_probe
from tests.conftest import oatutor_course, oatutor_import, small_course_spec
from tutor import services
from tutor.models import TAQuestion, TutorSession
from tutor.selectors import knowledge_state, stage_context
from tutor.teachback import selectors
from tutor.teachback import services as teachback
from tutor.teachback.models import TeachBack, TeachBackMessage

pytestmark = pytest.mark.django_db

LESSON = (
    "Computing every derivative from the limit definition is slow. Fortunately the results follow patterns. The "
    "first and most important is the power rule. In words: bring the exponent down in front, then lower the "
    "exponent by one. Two special cases: the derivative of x is 1, and the derivative of any constant is 0."
)
KEY_IDEAS = [
    "The derivative of x to the n is n times x to the n minus one.",
    "Bring the exponent down in front as a factor, then lower the exponent by one.",
    "The derivative of a constant is zero, because its graph is a flat line.",
    "It works for negative and fractional exponents once roots and reciprocals are written as powers.",
]
PROBES = ["What happens with a constant, like 7?", "Does this work for the square root of x?",
          "Why does the exponent come down in front?"]
PARTIAL = "You bring the exponent down in front and then lower the exponent by one, like x^3 turns into 3x^2."
RIGHT = {"numeric": "4", "multiple_choice": "2x", "symbolic": "3*x**2"}


@pytest.fixture
def course(db):
    spec = small_course_spec()
    first = spec.concepts[0]
    first.title, first.lesson = "The power rule", LESSON
    first.key_ideas, first.probes = KEY_IDEAS, PROBES
    first.misconceptions = ["You raise the exponent by one and divide by the new exponent."]
    return course_import(spec=spec)


def _mastered(user, course) -> TutorSession:
    """Enrol, guess, read, and answer right until concept "a" is mastered: the feedback that says so is on screen."""
    services.enrollment_create(user=user, course=course)
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="yes")
    session = services.practice_start(user=user, course=course)
    for _ in range(30):
        outcome = services.attempt_record(user=user, course=course, client_id=uuid.uuid4(), item_id=session.item_id,
                                          answer=RIGHT[session.item.kind])
        if outcome.mastered:
            return outcome.session
        session = services.session_advance(user=user, course=course)
    raise AssertionError("never mastered")


def _explaining(user, course) -> TutorSession:
    session = _mastered(user, course)
    return teachback.session_next(user=user, course=course, step=session.step)


def _stage(session: TutorSession) -> str:
    return render_to_string("tutor/partials/stage.html", stage_context(session=session))


def test_after_mastery_next_asks_the_student_to_explain_the_concept(alice, course):
    session = _explaining(alice, course)
    assert session.phase == TutorSession.Phase.TEACH
    assert TeachBack.objects.get(user=alice).status == TeachBack.Status.EXPLAINING
    page = _stage(services.session_get(user=alice, course=course))
    assert "Explain it to a beginner" in page and 'name="action" value="teach_explain"' in page


def test_starting_an_explanation_builds_the_scorers_model_while_the_student_writes(alice, course, settings,
                                                                                    monkeypatch):
    settings.TUTOR_TEACHBACK_WARMUP = True
    started = []
    monkeypatch.setattr(teachback.scorer(), "load_in_background", lambda: started.append(True))
    _explaining(alice, course)
    assert started == [True]


def test_a_partial_explanation_gets_follow_ups_then_a_verdict_with_a_lesson_link(alice, course):
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    tb = TeachBack.objects.get(user=alice)
    assert tb.status == TeachBack.Status.FOLLOW_UP
    assert tb.questions[0]["text"] in PROBES and tb.questions[0]["idea"] != KEY_IDEAS[1]
    page = _stage(services.session_get(user=alice, course=course))
    assert tb.questions[0]["text"] in page and PARTIAL in page
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(),
                               text="A constant like 7 has derivative zero, because its graph is a flat line.")
    tb.refresh_from_db()
    if tb.status == TeachBack.Status.FOLLOW_UP:  # a second question, at most
        assert len(tb.questions) == 2
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(),
                                   text="Yes: write the square root of x as x to the one half, a fractional power.")
        tb.refresh_from_db()
    assert tb.status == TeachBack.Status.SCORED and len(tb.questions) <= 2
    statuses = {i["idea"]: i["status"] for i in tb.ideas}
    assert statuses[KEY_IDEAS[1]] == "covered" and statuses[KEY_IDEAS[2]] == "covered"
    page = _stage(services.session_get(user=alice, course=course))
    assert "key ideas came across clearly" in page and "Clear:" in page
    assert f"/learn/{course.slug}/concept/a/#lesson" in page or "Every key idea came across" in page
    session = teachback.teachback_continue(user=alice, course=course, step=services.session_get(
        user=alice, course=course).step)
    assert session.phase != TutorSession.Phase.TEACH and session.concept.slug == "b"


def test_without_authored_probes_the_beginner_asks_about_a_word_the_student_never_used_and_never_repeats(
        alice, course):
    # As on an imported course: key ideas added by faculty, no probes written.
    course.concepts.filter(slug="a").update(probes=[])
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    first = TeachBack.objects.get(user=alice).questions[0]
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="I am not sure about that.")
    questions = TeachBack.objects.get(user=alice).questions
    assert len(questions) == 2 and questions[0]["text"] != questions[1]["text"]
    for q in questions:
        word = q["text"].split("\u201c")[1].split("\u201d")[0]  # I keep hearing the word "constant" ...
        assert word in q["idea"].lower() and word not in PARTIAL.lower()
    assert first["idea"] != KEY_IDEAS[1]  # PARTIAL says that one


def test_key_ideas_with_maths_are_typeset_in_the_verdict_and_for_faculty(client, alice, prof, course):
    ideas = [r"The derivative of $x^n$ is $n x^{n-1}$.", *KEY_IDEAS[1:]]
    course.concepts.filter(slug="a").update(key_ideas=ideas)
    _scored(alice, course)
    page = _stage(services.session_get(user=alice, course=course))
    assert '<span class="math inline">x^n</span>' in page and "$x^n$" not in page
    client.force_login(prof)
    for url in (reverse("teachback_beginners", args=[course.slug, "a"]), reverse("teachback_coverage", args=[course.slug])):
        shown = client.get(url).content.decode()
        assert '<span class="math inline">x^n</span>' in shown and "$x^n$" not in shown, url


def test_the_verdict_is_weak_evidence_and_missing_ideas_bring_review_forward(alice, course):
    session = _explaining(alice, course)
    record, state = services.knowledge_load(user=alice, course=course)
    due_before = state.reviews.cards["a"].due
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    for text in ("I am not sure, maybe it stays the same number.", "I do not know about roots, sorry."):
        if TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
            teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text=text)
    tb = TeachBack.objects.get(user=alice)
    assert tb.status == TeachBack.Status.SCORED and any(i["status"] != "covered" for i in tb.ideas)
    _, state = services.knowledge_load(user=alice, course=course)
    assert state.reviews.cards["a"].due < due_before
    threshold = services.course_settings(course).mastery_threshold
    assert knowledge_state(user=alice, course=course).mastery("a") >= threshold  # never un-mastered by this alone
    assert session.concept.slug == "a"


BAD_INPUTS = [
    ("   ", "empty", "nothing to read"),
    ("x" * 50_000, "too_long", "longer than a beginner"),
    (LESSON, "copied", "copied"),
    ("Man nimmt den Exponenten nach vorne und verringert ihn dann um eins, so wird aus x hoch drei drei x "
     "Quadrat.", "other_language", "in English"),
    ("d/dx x^n = n*x^(n-1); d/dx c = 0", "only_maths", "not only symbols"),
    ("My favourite football team won on Saturday because their goalkeeper saved two penalties late in the "
     "match.", "off_topic", "not seem to be about"),
]


@pytest.mark.parametrize(("text", "reason", "says"), BAD_INPUTS, ids=[r for _, r, _ in BAD_INPUTS])
def test_bad_input_is_kept_and_gets_a_friendly_redo_not_a_score(alice, course, text, reason, says):
    _explaining(alice, course)
    session = teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=text)
    message = TeachBackMessage.objects.get(teach_back__user=alice)
    assert message.text == text and message.redo == reason
    tb = TeachBack.objects.get(user=alice)
    assert tb.status == TeachBack.Status.EXPLAINING and tb.score is None and tb.ideas == []
    assert session.phase == TutorSession.Phase.TEACH
    assert says in _stage(services.session_get(user=alice, course=course))


def test_pasting_the_ta_bots_reply_is_recognised_as_copied(alice, course):
    reply = ("The power rule says that you multiply by the exponent and subtract one from it, which is why the "
             "derivative of x cubed is three x squared.")
    TAQuestion.objects.create(user=alice, course=course, question="power rule?", answer=reply, concepts=["a"])
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=reply)
    assert TeachBackMessage.objects.get(teach_back__user=alice).redo == "copied"


def test_a_resent_explanation_is_stored_once(alice, course):
    _explaining(alice, course)
    client_id = uuid.uuid4()
    teachback.teachback_explain(user=alice, course=course, client_id=client_id, text=PARTIAL)
    teachback.teachback_explain(user=alice, course=course, client_id=client_id, text=PARTIAL)
    assert TeachBackMessage.objects.filter(teach_back__user=alice).count() == 1


def test_a_concept_without_key_ideas_goes_straight_on(alice, course):
    Concept.objects.filter(course=course, slug="a").update(key_ideas=[])
    from tutor.caches import clear

    clear()
    session = _mastered(alice, course)
    session = teachback.session_next(user=alice, course=course, step=session.step)
    assert session.phase != TutorSession.Phase.TEACH and not TeachBack.objects.exists()


def test_a_course_that_never_asks_goes_straight_on(alice, course):
    course.settings = {**course.settings, "teach_back": "never"}
    course.save()
    session = _mastered(alice, course)
    assert "teach_start" not in _stage(session)
    session = teachback.session_next(user=alice, course=course, step=session.step)
    assert session.phase != TutorSession.Phase.TEACH


def test_on_request_the_feedback_offers_it_and_the_student_may_start(alice, course):
    course.settings = {**course.settings, "teach_back": "on_request"}
    course.save()
    session = _mastered(alice, course)
    assert "teach_start" in _stage(session)
    session = teachback.teachback_start(user=alice, course=course)
    assert session.phase == TutorSession.Phase.TEACH


def test_skipping_moves_on_and_the_concept_is_not_asked_again(alice, course):
    _explaining(alice, course)
    session = teachback.teachback_skip(user=alice, course=course)
    assert session.phase != TutorSession.Phase.TEACH
    assert TeachBack.objects.get(user=alice).status == TeachBack.Status.SKIPPED


def test_the_beginner_asks_with_the_model_when_one_is_configured(alice, course, settings, monkeypatch):
    asked: list[GenerationRequest] = []

    class Novice:  # stands in for the model server, outside this process
        name = "fake"

        def stream(self, request):
            asked.append(request)
            yield "But what do you do when there is just a number like 7?"

        def health(self):
            return True

    settings.TUTOR_LLM = "openai"
    monkeypatch.setattr(teachback.llm, "backend", lambda: Novice())
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    tb = TeachBack.objects.get(user=alice)
    assert tb.questions[0]["text"] == "But what do you do when there is just a number like 7?"
    novice = next(r for r in asked if r.kind == "novice_follow_up")
    assert novice.authored in PROBES and PARTIAL in novice.messages[-1].content


WRONG = ("To find the derivative you raise the exponent by one and then divide by the new exponent, so x squared "
         "becomes x cubed over three.")


class Checker:  # stands in for the model server, outside this process: answers the misconception check
    name = "fake"

    def __init__(self, verdict: str) -> None:
        self.verdict, self.asked = verdict, []

    def stream(self, request):
        self.asked.append(request)
        yield self.verdict if request.kind == "misconception_check" else "But what happens with just a number?"

    def health(self):
        return True


def test_without_a_model_a_suspected_misconception_is_not_asserted_but_the_beginner_asks_about_it(alice, course):
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=WRONG)
    tb = TeachBack.objects.get(user=alice)
    assert tb.misconceptions_heard == [] and all(i["status"] != "contradicted" for i in tb.ideas)
    assert tb.questions[0]["idea"] in KEY_IDEAS[:2]  # the idea the suspected misconception opposes
    misconception = course.concepts.get(slug="a").misconceptions[0]
    assert tb.questions[0]["text"] == mixup_probe(misconception)  # asked about, as a beginner's doubt
    assert "someone told me" in _stage(services.session_get(user=alice, course=course))
    while TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="I am not sure.")
    assert TeachBack.objects.get(user=alice).misconceptions_heard == []
    stage = _stage(services.session_get(user=alice, course=course))
    assert "sounds like a common mix-up" not in stage  # not said to be theirs ...
    assert f"{misconception.rstrip('.')}\u201d: it is a common mix-up, and it is not right." in stage  # ... nor left
    assert "You weren't sure about what the beginner had been told" in stage


def test_a_mix_up_the_author_tied_to_a_key_idea_is_asked_about_and_marked_on_that_idea(alice, course):
    # By meaning the misconception is nearest "Bring the exponent down ..."; the author says it gets the formula wrong.
    concept = course.concepts.get(slug="a")
    concept.misconception_ideas = {concept.misconceptions[0]: KEY_IDEAS[0]}
    concept.save()
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=WRONG)
    tb = TeachBack.objects.get(user=alice)
    assert tb.questions[0]["idea"] == KEY_IDEAS[0] and tb.questions[0]["misconception"] == concept.misconceptions[0]
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="Yes, that's how it works.")
    while TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="I am not sure.")
    statuses = {i["idea"]: i["status"] for i in TeachBack.objects.get(user=alice).ideas}
    assert statuses[KEY_IDEAS[0]] == "contradicted" and statuses[KEY_IDEAS[1]] != "contradicted"


@pytest.mark.parametrize(("answer", "held", "status"), [
    ("Yes.", True, "contradicted"), ("yep", True, "contradicted"), ("No.", False, None), ("Maybe", False, "missing"),
    ("idk", False, "missing"),
])
def test_a_one_word_answer_to_the_beginners_mix_up_question_is_taken_not_sent_back(alice, course, answer, held,
                                                                                  status):
    # "Yes." to "someone told me ...: is that right?" was turned away as "A beginner needs words, not only
    # symbols" (fewer than three words), so a student could never say yes or no in one word.
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=WRONG)
    idea = TeachBack.objects.get(user=alice).questions[0]["idea"]
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text=answer)
    tb = TeachBack.objects.get(user=alice)
    assert tb.notice == "" and not tb.messages.exclude(redo="").exists()
    for short in ("Zero.", "0"):  # a word or a number answers a beginner's question too
        if tb.status == TeachBack.Status.FOLLOW_UP:
            teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text=short)
            tb = TeachBack.objects.get(user=alice)
    assert tb.status == TeachBack.Status.SCORED and not tb.messages.exclude(redo="").exists()
    assert (tb.misconceptions_heard != []) is held
    if status:
        assert next(i["status"] for i in tb.ideas if i["idea"] == idea) == status


# Right, then a suspected mix-up: the scorer hears both the idea (coverage 0.8) and the misconception against it.
SUSPECT = PARTIAL + " People also say you raise the exponent by one and divide by the new exponent, and that works too."


@pytest.mark.parametrize(("answer", "status"), [
    ("I'm not sure.", "missing"), ("Hmm, maybe? I don't know.", "missing"), ("No idea, honestly.", "missing"),
    ("No, you bring the exponent down in front and lower it by one.", "covered"),
    ("That is not right: you lower the exponent, you don't raise it.", "covered"),
])
def test_a_student_unsure_of_the_beginners_mix_up_is_not_told_the_idea_it_opposes_came_across(alice, course, answer,
                                                                                              status):
    # A student who cannot say whether the mix-up is right has not got the idea it opposes, however many of its
    # words the explanation used; they are not told they hold the mix-up either (they did not say yes to it).
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=SUSPECT)
    tb = TeachBack.objects.get(user=alice)
    idea = tb.questions[0]["idea"]
    assert tb.questions[0]["misconception"] and next(i["status"] for i in tb.ideas if i["idea"] == idea) == "covered"
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text=answer)
    while TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(),
                                   text="A constant has a flat graph, so its derivative is zero.")
    tb = TeachBack.objects.get(user=alice)
    assert next(i["status"] for i in tb.ideas if i["idea"] == idea) == status
    assert tb.misconceptions_heard == []
    stage = _stage(services.session_get(user=alice, course=course))
    assert ("You weren't sure about what the beginner had been told" in stage) is (status == "missing")
    assert "is a common mix-up" in stage and "sounds like a common mix-up" not in stage


@pytest.mark.parametrize(("answer", "asserted"), [
    ("Yes, that's how it works.", True),
    ("Right: add one to the exponent, then divide by it.", True),
    ("No. You bring the exponent down in front and lower it by one.", False),
    ("Right, that is not how it works.", False),
])
def test_without_a_model_the_students_yes_to_the_beginners_mix_up_question_holds_it(alice, course, answer, asserted):
    # Seen on imported Intro Stats: an explanation stating the concept's authored misconception word for word was
    # told "Every key idea came across. Nicely explained." The scorer alone may not assert a mix-up (it suspects a
    # third of right explanations), so the beginner asks; the student's own yes is the evidence.
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=WRONG)
    teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text=answer)
    while TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="I am not sure.")
    tb = TeachBack.objects.get(user=alice)
    misconception = course.concepts.get(slug="a").misconceptions[0]
    assert (tb.misconceptions_heard == [misconception]) is asserted
    assert (next(i["status"] for i in tb.ideas if i["idea"] == tb.questions[0]["idea"]) == "contradicted") is asserted
    stage = _stage(services.session_get(user=alice, course=course))
    assert ("sounds like a common mix-up" in stage) is asserted
    assert "Nicely explained" not in stage or not asserted
    # said no, or unsure: the verdict still tells them the beginner's claim was wrong
    assert ("is a common mix-up: it is not right" in stage) is not asserted


def _with_key_ideas(course, ideas: list[str]):
    """Concept "a" with these key ideas and nothing authored to ask about."""
    concept = course.concepts.get(slug="a")
    concept.key_ideas, concept.misconceptions, concept.probes = ideas, [], []
    concept.save()
    return concept


def _answer_until_scored(user, course, first: str, then: str = "I am not sure.") -> TeachBack:
    """The student answers the beginner's first question with `first` and any other with `then`."""
    teachback.teachback_answer(user=user, course=course, client_id=uuid.uuid4(), text=first)
    while TeachBack.objects.get(user=user).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=user, course=course, client_id=uuid.uuid4(), text=then)
    return TeachBack.objects.get(user=user)


SAMPLING_IDEAS = [
    "A population is the whole group of people or things that we want to learn about.",
    "A sample is a subset of the population from which data are actually collected.",
    "A parameter is a number that describes the population, such as the mean of the whole population.",
    "A statistic is a number calculated from a sample, such as the sample mean.",
]
SWAPPED = ("The population is the whole group of people we want to learn about, and a sample is the subset of it "
           "we actually collect data from. A parameter is a number calculated from a sample, like the sample mean.")


@pytest.mark.parametrize(("answer", "status", "says"), [
    ("Parameter.", "contradicted", "When the beginner asked, you kept \u201cparameter\u201d"),
    ("Oh, I meant statistic, not parameter.", None, "You meant \u201cstatistic\u201d"),
    ("I'm not sure.", "missing", "You weren't sure whether"),
])
def test_two_swapped_terms_are_asked_about_and_the_reply_decides(alice, course, answer, status, says):
    # Seen on imported Intro Stats: "a parameter is what you work out from the sample" kept the statistic idea
    # "Clear" (the right words, in the wrong places). Now the beginner asks which term was meant.
    _with_key_ideas(course, SAMPLING_IDEAS)
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=SWAPPED)
    question = TeachBack.objects.get(user=alice).questions[0]
    assert question["idea"] == SAMPLING_IDEAS[3] and question["swap"]["wrong"] == "parameter"
    assert question["text"].startswith("Wait, you said \u201cA parameter is a number calculated from a sample")
    assert "Is that \u201cparameter\u201d or \u201cstatistic\u201d?" in question["text"]
    assert "Is that" in _stage(services.session_get(user=alice, course=course))
    tb = _answer_until_scored(alice, course, answer, then="A parameter describes the whole population, like its mean.")
    verdict = next(i["status"] for i in tb.ideas if i["idea"] == SAMPLING_IDEAS[3])
    assert verdict == status if status else verdict != "contradicted"
    assert says in _stage(services.session_get(user=alice, course=course))


DIFFERENTIABLE_IDEAS = [
    "A function is differentiable at a point when its derivative exists there.",
    "If a function is differentiable at a point, then it is continuous at that point, but not the other way round.",
    "The absolute value function is continuous at zero and has a corner there, so it has no derivative at zero.",
]


@pytest.mark.parametrize(("answer", "status", "says"), [
    ("Oh, it's the other way round: differentiable implies continuous.", None, "You meant it the other way round"),
    ("No, continuous implies differentiable, like I said.", "contradicted", "The course has it the other way round"),
])
def test_two_words_in_each_others_places_are_asked_about_the_other_way_round(alice, course, answer, status, says):
    _with_key_ideas(course, DIFFERENTIABLE_IDEAS)
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=(
        "Differentiable means the derivative exists at the point. Remember that if a function is continuous at a "
        "point, then it is differentiable at that point. "
        "The absolute value function is continuous at zero but has a corner there, so no derivative at zero."))
    question = TeachBack.objects.get(user=alice).questions[0]
    assert question["idea"] == DIFFERENTIABLE_IDEAS[1] and question["swap"]["kind"] == "exchanged"
    assert "Or is it the other way round?" in question["text"]
    tb = _answer_until_scored(alice, course, answer)
    verdict = next(i["status"] for i in tb.ideas if i["idea"] == DIFFERENTIABLE_IDEAS[1])
    assert verdict == status if status else verdict != "contradicted"
    stage = _stage(services.session_get(user=alice, course=course))
    assert says in stage, stage[stage.find("teachback-result"):]


def test_faculty_see_which_terms_students_swapped_and_kept(client, alice, bob, prof, course):
    concept = _with_key_ideas(course, SAMPLING_IDEAS)
    for user, answer in ((alice, "The parameter."), (bob, "Hmm, not sure. Maybe statistic?")):
        _explaining(user, course)
        teachback.teachback_explain(user=user, course=course, client_id=uuid.uuid4(), text=SWAPPED)
        _answer_until_scored(user, course, answer)
    [row] = selectors.mixup_answers(concept=concept)
    assert (row.misconception, row.asked, row.held, row.unsure) == (
        "Said \u201cparameter\u201d for \u201cstatistic\u201d", 2, 1, 1)
    client.force_login(prof)
    page = client.get(reverse("teachback_beginners", args=[course.slug, "a"])).content.decode()
    assert "Said \u201cparameter\u201d for \u201cstatistic\u201d" in page and "alice" not in page


@pytest.mark.parametrize(("verdict", "asserted"), [("Yes.", True), ("**yes**", True), ("no", False),
                                                    ("Not yet", False), ("", False)])
def test_a_model_confirms_a_suspected_misconception_before_the_student_is_told(alice, course, settings,
                                                                              monkeypatch, verdict, asserted):
    checker = Checker(verdict)
    settings.TUTOR_LLM = "openai"
    monkeypatch.setattr(teachback.llm, "backend", lambda: checker)
    _scored(alice, course, text=WRONG)
    tb = TeachBack.objects.get(user=alice)
    check = next(r for r in checker.asked if r.kind == "misconception_check")
    assert WRONG in check.messages[-1].content and course.concepts.get(slug="a").misconceptions[0] in \
        check.messages[-1].content
    assert (tb.misconceptions_heard == ["You raise the exponent by one and divide by the new exponent."]) is asserted
    assert any(i["status"] == "contradicted" for i in tb.ideas) is asserted
    assert ("mix-up" in _stage(services.session_get(user=alice, course=course))) is asserted


def test_a_right_explanation_is_not_sent_to_the_model_for_a_misconception_check(alice, course, settings,
                                                                               monkeypatch):
    checker = Checker("yes")
    settings.TUTOR_LLM = "openai"
    monkeypatch.setattr(teachback.llm, "backend", lambda: checker)
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    assert not [r for r in checker.asked if r.kind == "misconception_check"]
    assert TeachBack.objects.get(user=alice).misconceptions_heard == []


class Judge:  # stands in for the model server: says which key ideas the explanation states
    name = "fake"

    def __init__(self, stated: set[int], key_ideas: list[str], reply: str | None = None) -> None:
        self.stated, self.key_ideas, self.reply, self.asked = stated, key_ideas, reply, []

    def stream(self, request):
        self.asked.append(request)
        if request.kind != "idea_check":
            yield "But what happens with just a number?"
            return
        if self.reply is not None:  # the same reply to every idea ("" as a model that is down)
            yield self.reply
            return
        idea = next(i for n, i in enumerate(self.key_ideas) if f"Key idea: {i}" in request.messages[-1].content)
        yield "Yes." if self.key_ideas.index(idea) in self.stated else "No."

    def health(self):
        return True


def test_with_a_model_each_key_idea_is_marked_as_the_model_reads_the_explanation(alice, course, settings,
                                                                                  monkeypatch):
    ideas = course.concepts.get(slug="a").key_ideas
    judge = Judge({0, 2}, ideas)  # not what the word vectors say about PARTIAL (idea 1 covered, idea 2 missing)
    settings.TUTOR_LLM, settings.TUTOR_TEACHBACK_IDEA_CHECK = "openai", True
    monkeypatch.setattr(teachback.llm, "backend", lambda: judge)
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    tb = TeachBack.objects.get(user=alice)
    checks = [r for r in judge.asked if r.kind == "idea_check"]
    assert len(checks) == len(ideas) and all(PARTIAL in r.messages[-1].content for r in checks)
    assert [i["status"] for i in tb.ideas] == ["covered" if n in (0, 2) else "missing" for n in range(len(ideas))]
    assert tb.questions and tb.questions[0]["idea"] not in (ideas[0], ideas[2])  # the beginner asks about a missing one


def test_the_model_is_not_asked_about_key_ideas_unless_the_setting_says_so(alice, course, settings, monkeypatch):
    judge = Judge(set(), [], reply="No.")
    settings.TUTOR_LLM = "openai"
    monkeypatch.setattr(teachback.llm, "backend", lambda: judge)
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    assert not [r for r in judge.asked if r.kind == "idea_check"]
    assert "covered" in [i["status"] for i in TeachBack.objects.get(user=alice).ideas]


@pytest.mark.parametrize("reply", ["", "Maybe", "I think the student"])
def test_a_model_that_gives_no_clear_yes_or_no_leaves_the_scorers_verdict(alice, bob, course, settings, monkeypatch,
                                                                          reply):
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    settings.TUTOR_LLM, settings.TUTOR_TEACHBACK_IDEA_CHECK = "openai", True
    monkeypatch.setattr(teachback.llm, "backend", lambda: Judge(set(), [], reply=reply))
    _explaining(bob, course)
    teachback.teachback_explain(user=bob, course=course, client_id=uuid.uuid4(), text=PARTIAL)
    without_model, with_model = ([i["status"] for i in TeachBack.objects.get(user=u).ideas] for u in (alice, bob))
    assert with_model == without_model and "covered" in without_model


# --- privacy and the faculty side ----------------------------------------------------------------------------


def _scored(user, course, text=PARTIAL):
    _explaining(user, course)
    teachback.teachback_explain(user=user, course=course, client_id=uuid.uuid4(), text=text)
    while TeachBack.objects.get(user=user).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=user, course=course, client_id=uuid.uuid4(), text="I am not sure about that.")


def test_bob_never_sees_alices_explanation(alice, bob, course):
    _scored(alice, course, text=PARTIAL + " Alice's own words here.")
    session = _explaining(bob, course)
    assert "Alice's own words" not in _stage(session)


def test_faculty_see_grouped_questions_missing_ideas_and_wrong_answers_without_names(client, alice, bob, prof,
                                                                                     course):
    for user, question in ((alice, "Why does the exponent come down in front?"),
                           (bob, "Why does the exponent come down to the front?"),
                           (alice, "What is the derivative of a constant?")):
        TAQuestion.objects.create(user=user, course=course, question=question, answer="...", concepts=["a"])
    TAQuestion.objects.create(user=bob, course=course, question="What is a ratio?", concepts=["b"])
    _scored(alice, course)
    client.force_login(prof)
    page = client.get(reverse("teachback_beginners", args=[course.slug, "a"])).content.decode()
    assert "2 student questions" in page and "1 student question" in page and "What is a ratio" not in page
    assert "Key ideas missing" in page and KEY_IDEAS[3] in page
    assert "alice" not in page and "bob" not in page
    assert "No language model is configured" in page


def test_faculty_see_how_often_students_held_or_were_unsure_of_each_mix_up(client, alice, bob, prof, course):
    carol = get_user_model().objects.create_user(username="carol", password="pw-carol-123")
    misconception = course.concepts.get(slug="a").misconceptions[0]
    for user, answer in ((alice, "Yes, that's how it works."), (bob, "Hmm, I'm not sure."),
                         (carol, "No, you bring the exponent down and lower it by one.")):
        _explaining(user, course)
        teachback.teachback_explain(user=user, course=course, client_id=uuid.uuid4(), text=WRONG)
        assert TeachBack.objects.get(user=user).questions[0]["misconception"] == misconception
        teachback.teachback_answer(user=user, course=course, client_id=uuid.uuid4(), text=answer)
        for _ in range(3):
            if TeachBack.objects.get(user=user).status == TeachBack.Status.FOLLOW_UP:
                teachback.teachback_answer(user=user, course=course, client_id=uuid.uuid4(),
                                           text="The derivative of a constant is zero because its graph is flat.")
        assert TeachBack.objects.get(user=user).status == TeachBack.Status.SCORED
    [row] = selectors.mixup_answers(concept=course.concepts.get(slug="a"))
    assert (row.misconception, row.asked, row.held, row.unsure) == (misconception, 3, 1, 1)
    client.force_login(prof)
    page = client.get(reverse("teachback_beginners", args=[course.slug, "a"])).content.decode()
    assert "Mix-ups the beginner asked about" in page and misconception in page
    assert "<td>3</td><td>1</td><td>1</td>" in page and "alice" not in page


def test_students_cannot_open_the_faculty_panel(client, alice, course):
    services.enrollment_create(user=alice, course=course)
    client.force_login(alice)
    assert client.get(reverse("teachback_beginners", args=[course.slug, "a"])).status_code == 403
    assert client.get(reverse("teachback_coverage", args=[course.slug])).status_code == 403


def test_a_group_of_questions_becomes_a_faq_entry(client, alice, prof, course):
    question = TAQuestion.objects.create(user=alice, course=course, question="Why does the exponent come down?",
                                         answer="...", concepts=["a"])
    client.force_login(prof)
    url = reverse("teachback_faq", args=[course.slug, "a", question.pk])
    assert client.post(url, {"answer": ""}).status_code == 302
    question.refresh_from_db()
    assert not question.faculty_answer and not question.escalated
    client.post(url, {"answer": "Expand (x + h)^n: the n comes from the binomial theorem."})
    question.refresh_from_db()
    assert question.faculty_answer.startswith("Expand") and question.shared


def test_novice_questions_about_the_lesson_come_from_the_model(client, prof, course, settings, monkeypatch):
    class Novice:
        name = "fake"

        def stream(self, request):
            yield "1. What is a derivative?\n2. Why is the constant's derivative zero?\n"

        def health(self):
            return True

    client.force_login(prof)
    url = reverse("teachback_novice", args=[course.slug, "a"])
    assert "No language model is configured" in client.post(url).content.decode()
    settings.TUTOR_LLM = "openai"
    monkeypatch.setattr(teachback.llm, "backend", lambda: Novice())
    page = client.post(url).content.decode()
    assert "<li>What is a derivative?</li>" in page and "<li>Why is the constant&#x27;s derivative zero?</li>" in page


def test_the_dashboard_shows_the_share_of_explanations_covering_each_key_idea(client, alice, prof, course):
    _scored(alice, course)
    client.force_login(prof)
    page = client.get(reverse("teachback_coverage", args=[course.slug])).content.decode()
    assert "1 explanation" in page and KEY_IDEAS[1] in page and "100%" in page


@pytest.mark.django_db(transaction=True)  # the consumer works on its own database thread
def test_the_session_socket_takes_an_explanation(alice, course):
    """The consumer's teach actions reach the services (a thin check; the browser test drives the page)."""
    from asgiref.sync import async_to_sync

    from tutor.consumers import SessionConsumer

    _explaining(alice, course)
    sent: list[str] = []
    consumer = SessionConsumer()
    consumer.scope = {"user": alice}
    consumer.course = course

    async def send(text_data=None, **kwargs):
        sent.append(text_data)

    consumer.send = send
    async_to_sync(consumer.receive_json)({"action": "teach_explain", "client_id": str(uuid.uuid4()), "text": "  "})
    assert "nothing to read" in sent[-1]
    assert TeachBackMessage.objects.get().redo == "empty"




@pytest.mark.slow
def test_on_an_imported_oatutor_course_without_key_ideas_teach_back_is_skipped(alice, shared_data):
    """OATutor has nothing like key ideas, so the importer leaves them empty: the session goes on as before."""

    archive = shared_data / "oatutor" / "openstax-college-algebra.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    result = oatutor_import(archive)
    assert all(not c.key_ideas and not c.probes for c in result.spec.concepts)
    algebra = course_import(spec=result.spec, assets=result.assets)
    services.enrollment_create(user=alice, course=algebra)
    session = services.placement_skip(user=alice, course=algebra)
    if session.phase != TutorSession.Phase.PRACTICE:
        services.guess_record(user=alice, course=algebra, client_id=uuid.uuid4(), text="no idea")
        session = services.practice_start(user=alice, course=algebra)
    outcome = services.attempt_record(user=alice, course=algebra, client_id=uuid.uuid4(), item_id=session.item_id,
                                      answer="0")
    # As if that answer had mastered the concept: the point is what teach-back does with no key ideas.
    type(outcome.attempt).objects.filter(pk=outcome.attempt.pk).update(mastery_after=0.99)
    session = services.session_get(user=alice, course=algebra)
    assert not teachback.teach_back_offered(session=session)
    assert "teach_start" not in _stage(session)
    after = teachback.session_next(user=alice, course=algebra, step=session.step)
    assert after.phase != TutorSession.Phase.TEACH and not TeachBack.objects.exists()


# Key ideas a teacher might write for the first concepts of OpenStax Introductory Statistics (the importer leaves
# them empty), and an explanation a student might give.
STATS_KEY_IDEAS = {  # concept -> (key ideas, misconceptions, the explanation, what the follow-ups are answered with)
    "key-terms": (
        ["The population is the whole group we want to know about, and a sample is the part of it we actually study.",
         "A parameter is a number that describes the population, and a statistic is a number computed from the "
         "sample.",
         "A variable is the characteristic measured on each individual, and the data are its actual values.",
         "A statistic from a good sample is used to estimate the population's parameter."],
        ["A statistic describes the whole population, and a parameter describes the sample.",
         "The sample and the population are the same group."],
        "Say you want to know how much first year students at a college spend on school supplies. All the first "
        "year students there are the population, the whole group you care about, but you cannot ask everyone, so "
        "you survey a sample of 100 of them. The average spending of all first year students is a parameter, a "
        "number about the population, and the average of your 100 students is a statistic, a number you work out "
        "from the sample.",
        "The variable is what you measure on each student, here the money they spent, and the data are the actual "
        "amounts, like 150 or 200 dollars. You use the statistic from your sample as an estimate of the parameter "
        "for the whole population."),
}


@pytest.mark.slow
def test_on_an_imported_oatutor_course_with_key_ideas_added_a_student_explains_and_is_scored(alice, prof,
                                                                                              shared_data):
    """Teach-back on content nobody here wrote: Introductory Stats imported, its teacher adds key ideas to the
    concept the student meets first, the student masters it by answering real items with their keys, explains it,
    and gets each key idea scored."""
    from courses.services import concept_update
    from tutor.smoke import right_answer

    stats = oatutor_course(shared_data, "openstax-introductory-stats")
    services.enrollment_create(user=alice, course=stats)
    session = services.placement_skip(user=alice, course=stats)
    slug = session.concept.slug
    # the course's first concept: nothing known of the student, so the course's own order (the policy's NEAR_TIE)
    assert slug == "key-terms", f"the session starts on {slug!r}, not on the course's first concept"
    ideas, misconceptions, explanation, follow_up = STATS_KEY_IDEAS[slug]
    concept_update(concept=session.concept, user=prof, fields={"key_ideas": ideas, "misconceptions": misconceptions})
    for _ in range(40):
        session = services.session_get(user=alice, course=stats)
        if session.phase == TutorSession.Phase.PAIN:
            services.guess_record(user=alice, course=stats, client_id=uuid.uuid4(), text="no idea")
            session = services.practice_start(user=alice, course=stats)
        elif session.phase == TutorSession.Phase.EXPLAIN:
            session = services.practice_start(user=alice, course=stats)
        outcome = services.attempt_record(user=alice, course=stats, client_id=uuid.uuid4(), item_id=session.item_id,
                                          answer=right_answer(session.item, session.item_seed))
        assert outcome.check.correct, f"{session.item.slug}: its own key graded wrong"
        if outcome.mastered:
            break
        services.session_advance(user=alice, course=stats)
    else:
        raise AssertionError(f"{slug} never mastered")
    session = teachback.session_next(user=alice, course=stats, step=outcome.session.step)
    assert session.phase == TutorSession.Phase.TEACH and "teach_start" not in _stage(session)
    teachback.teachback_explain(user=alice, course=stats, client_id=uuid.uuid4(), text=explanation)
    tb = TeachBack.objects.get(user=alice)
    while tb.status == TeachBack.Status.FOLLOW_UP:  # at most two: nothing was authored to ask, so the ideas are asked
        assert len(tb.questions) <= 2
        teachback.teachback_answer(user=alice, course=stats, client_id=uuid.uuid4(), text=follow_up)
        tb.refresh_from_db()
    assert tb.status == TeachBack.Status.SCORED
    statuses = {i["idea"]: i["status"] for i in tb.ideas}
    assert set(statuses) == set(ideas)
    assert statuses[ideas[0]] == "covered" and statuses[ideas[1]] == "covered"
    # the explanation left the variable, the data and the estimate out, and said idea 1 in its own words; the
    # swapped-terms misconception shares every word with idea 1, so the scorer may suspect it: with no model to
    # confirm it, a suspicion only becomes the beginner's question. The novice asked, and the answer counted for the
    # ideas it states.
    assert tb.questions and {q["idea"] for q in tb.questions} <= {ideas[1], ideas[2], ideas[3]}
    assert statuses[ideas[2]] == "covered" and statuses[ideas[3]] == "covered"
    page = _stage(services.session_get(user=alice, course=stats))
    assert "Clear:" in page and explanation in page
    # no model, and the student did not say yes to it: no misconception is held against them
    assert tb.misconceptions_heard == [] and "sounds like a common mix-up" not in page
