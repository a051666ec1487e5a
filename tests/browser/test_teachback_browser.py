"""Teach-back in a real browser: a student masters a concept, explains it to a beginner (a redo first, for an empty
explanation), answers the beginner's follow-up and sees their key ideas scored; faculty see what beginners ask."""

from __future__ import annotations

import functools
import uuid

import pytest

from courses.models import Item
from courses.services import course_import
from tests.browser.pages import AxeReport, log_in, session_ready
from tests.conftest import small_course_spec
from tutor import services
from tutor.models import TAQuestion
from tutor.teachback import services as teachback
from tutor.teachback.models import TeachBack, TeachBackMessage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LESSON = ("The power rule: bring the exponent down in front, then lower the exponent by one. The derivative of x is "
          "1, and the derivative of any constant is 0, because its graph is a flat line.")
KEY_IDEAS = [
    "The derivative of x to the n is n times x to the n minus one.",
    "Bring the exponent down in front as a factor, then lower the exponent by one.",
    "The derivative of a constant is zero, because its graph is a flat line.",
    "It works for negative and fractional exponents once roots and reciprocals are written as powers.",
]
PROBES = ["What happens with a constant, like 7?", "Does this work for the square root of x?"]
RIGHT = {"numeric": "4", "multiple_choice": "2x", "symbolic": "3*x**2"}


@pytest.fixture
def course(transactional_db):
    spec = small_course_spec()
    first = spec.concepts[0]
    first.title, first.lesson, first.key_ideas, first.probes = "The power rule", LESSON, KEY_IDEAS, PROBES
    return course_import(spec=spec)


def _explaining(user, course) -> None:
    """Enrol, guess, answer right until concept "a" is mastered, and go on into its teach-back (by the services: the
    page is tested on what comes after)."""
    services.enrollment_create(user=user, course=course)
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="yes")
    session = services.practice_start(user=user, course=course)
    for _ in range(30):
        outcome = services.attempt_record(user=user, course=course, client_id=uuid.uuid4(),
                                          item_id=session.item_id, answer=RIGHT[session.item.kind])
        if outcome.mastered:
            break
        session = services.session_advance(user=user, course=course)
    teachback.session_next(user=user, course=course, step=outcome.session.step)


class ConfirmingModel:  # stands in for the model server: confirms the suspected mix-up, asks a plain question
    name = "fake"

    def stream(self, request):
        yield "yes" if request.kind == "misconception_check" else "Wait, so what do you do with the exponent?"

    def health(self):
        return True


def test_a_mix_up_a_model_confirms_is_named_gently_with_the_idea_to_check(
        live_server_url, browser_page, course, alice, test_output, settings, monkeypatch):
    Concept = course.concepts.model
    Concept.objects.filter(pk=course.concepts.get(slug="a").pk).update(
        misconceptions=["You raise the exponent by one and divide by the new exponent."])
    settings.TUTOR_LLM = "openai"
    # cached like the real one: the live server's teardown clears it
    monkeypatch.setattr(teachback.llm, "backend", functools.cache(ConfirmingModel))
    _explaining(alice, course)
    teachback.teachback_explain(user=alice, course=course, client_id=uuid.uuid4(), text=(
        "To find the derivative you raise the exponent by one and then divide by the new exponent, so x squared "
        "becomes x cubed over three."))
    while TeachBack.objects.get(user=alice).status == TeachBack.Status.FOLLOW_UP:
        teachback.teachback_answer(user=alice, course=course, client_id=uuid.uuid4(), text="I am not sure.")

    page, base = browser_page, live_server_url
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{course.slug}/")
    page.wait_for_selector("#teachback-result")
    result = page.inner_text("#teachback-result")
    assert "Check this:" in result and "sounds like a common mix-up" in result
    assert "You raise the exponent by one and divide by the new exponent." in result
    asked = [q["text"] for q in TeachBack.objects.get(user=alice).questions]
    assert len(asked) == len(set(asked)) == 2  # the model repeated itself: its second question is a probe instead
    page.screenshot(path=test_output / "mix-up-named.png", full_page=True)
    axe = AxeReport(out=test_output / "axe.txt")
    axe.audit(page, "teach-back verdict with a mix-up")
    assert not axe.blocking, "\n".join(axe.blocking)


def test_student_masters_a_concept_explains_it_answers_a_follow_up_and_sees_key_ideas_scored(
        live_server_url, browser_page, course, alice, test_output):
    page, base = browser_page, live_server_url
    services.enrollment_create(user=alice, course=course)
    services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    services.practice_start(user=alice, course=course)
    # The embedding model loads once per process (seconds): before the clock of the page's waits starts.
    teachback.scorer().score("warm up", teachback.concept_key(concept=course.concepts.get(slug="a"), user=alice))
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{course.slug}/")
    session_ready(page)

    # Practice until the tutor says the concept is mastered, answering in the page.
    for _ in range(30):
        page.wait_for_selector('#stage[data-phase="practice"]')
        item = Item.objects.get(pk=int(page.locator("section.item").get_attribute("id").removeprefix("item-")))
        if item.kind == "multiple_choice":
            page.check(f"input[name=answer][value='{RIGHT[item.kind]}']")
        else:
            page.fill("#answer-input", RIGHT[item.kind])
        page.click("#submit-answer")
        page.wait_for_selector("#feedback")
        if page.locator("#feedback .mastered").count():
            break
        page.click("#next")
        page.wait_for_selector('#stage[data-phase="practice"]')
    assert "You've mastered The power rule" in page.inner_text("#feedback")
    page.screenshot(path=test_output / "1-mastered.png", full_page=True)

    # Asked to explain it to a beginner.
    page.click("#next")
    page.wait_for_selector('#stage[data-phase="teach"]')
    assert "Explain it to a beginner" in page.inner_text("#teachback")
    page.screenshot(path=test_output / "2-asked-to-explain.png", full_page=True)

    # An empty explanation gets a friendly redo and is kept.
    page.fill("#teachback-text", "   ")
    page.click("#teachback-submit")
    page.wait_for_function("document.querySelector('#notice') && "
                           "document.querySelector('#notice').innerText.includes('nothing to read')")
    page.screenshot(path=test_output / "3-redo.png", full_page=True)
    assert TeachBackMessage.objects.get(redo="empty").text == "   "

    # A partial explanation: the beginner asks about what it left out.
    page.fill("#teachback-text", "You bring the exponent down in front and then lower the exponent by one, like "
                                 "x^3 turns into 3x^2.")
    page.click("#teachback-submit")
    page.wait_for_selector(".turn-novice")
    question = page.inner_text(".turn-novice")
    assert any(p in question for p in PROBES)
    page.screenshot(path=test_output / "4-follow-up.png", full_page=True)
    page.fill("#teachback-text", "A constant like 7 has derivative zero, because its graph is a flat line, so it "
                                 "does not change.")
    page.click("#teachback-submit")
    page.wait_for_selector("#teachback-result, .turn-novice >> nth=1")
    if not page.locator("#teachback-result").count():
        page.fill("#teachback-text", "Yes: write the square root of x as x to the one half, and one over x cubed as "
                                     "x to the minus three; then the rule works for those powers too.")
        page.click("#teachback-submit")
    page.wait_for_selector("#teachback-result")
    result = page.inner_text("#teachback-result")
    assert "key ideas came across clearly" in result and "Clear:" in result
    page.screenshot(path=test_output / "5-key-ideas-scored.png", full_page=True)
    teach_back = TeachBack.objects.get(user=alice)
    assert teach_back.status == TeachBack.Status.SCORED and 1 <= len(teach_back.questions) <= 2

    page.click("#teachback-continue")
    page.wait_for_function("document.querySelector('#stage').dataset.phase !== 'teach'")
    page.screenshot(path=test_output / "6-on-to-the-next-concept.png", full_page=True)


def test_faculty_see_what_beginners_ask_on_the_concept_page(live_server_url, browser_page, course, alice, bob, prof,
                                                            test_output):
    page, base = browser_page, live_server_url
    for user, question in ((alice, "Why does the exponent come down in front?"),
                           (bob, "Why does the exponent come down to the front?"),
                           (bob, "Why does the exponent move in front of the x?"),
                           (alice, "What is the derivative of a constant like 7?")):
        TAQuestion.objects.create(user=user, course=course, question=question, answer="...", concepts=["a"])
    log_in(page, base, "prof", "pw-prof-123")
    page.goto(f"{base}/teach/{course.slug}/concepts/a/")
    page.wait_for_selector("#beginners .question-group")
    panel = page.inner_text("#beginners")
    assert "What students asked the TA-bot" in panel and "3 student questions" in panel
    assert "alice" not in panel and "bob" not in panel
    assert "No language model is configured" in panel
    page.click("#beginners .question-group >> nth=0")
    page.locator("#beginners").scroll_into_view_if_needed()
    page.screenshot(path=test_output / "beginners-panel.png", full_page=True)


REAL_NUMBERS = [
    r"A rational number can be written as a fraction $\frac{p}{q}$ of integers with $q \neq 0$.",
    "Written as a decimal, a rational number terminates or repeats.",
    r"An irrational number, such as $\sqrt{2}$ or $\pi$, has a decimal that neither terminates nor repeats.",
    "Every real number is either rational or irrational, never both.",
]


def test_on_an_imported_course_a_student_explains_and_sees_maths_typeset_and_word_questions(
        live_server_url, browser_page, shared_data, alice, test_output):
    """OATutor's College Algebra as imported (no probes), with key ideas in maths added as faculty would: the student
    masters its first concept on its real items, explains it, gets the beginner's questions about words they never
    used, and sees the key ideas typeset."""
    from tests.conftest import oatutor_course

    algebra = oatutor_course(shared_data, "openstax-college-algebra")
    concept = algebra.concepts.get(slug="classifying-a-real-number")
    algebra.concepts.filter(pk=concept.pk).update(key_ideas=REAL_NUMBERS, probes=[])
    concept.refresh_from_db()
    services.enrollment_create(user=alice, course=algebra)
    services.placement_skip(user=alice, course=algebra)
    teachback.scorer().score("warm up", teachback.concept_key(concept=concept, user=alice))
    page, base = browser_page, live_server_url
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{algebra.slug}/")
    session_ready(page)

    def act(selector: str) -> None:
        """Click, and wait for the socket's answer to it."""
        before = page.evaluate("window.tutorFrames || 0")
        page.click(selector)
        page.wait_for_function("(n) => (window.tutorFrames || 0) > n", arg=before)
        page.wait_for_timeout(200)  # the rest of a burst (a stage, then a streamed explanation) lands

    for _ in range(40):  # the imported items, answered with their keys, until the tutor says it is mastered
        phase = page.get_attribute("#stage", "data-phase")
        if phase == "explain":
            page.wait_for_selector("#start-practice")
            act("#start-practice")
        elif phase == "practice":
            item = Item.objects.get(pk=int(page.locator("section.item").get_attribute("id").removeprefix("item-")))
            if item.kind == "multiple_choice":
                page.check(f"#answer-form input[name=answer][value='{item.answer}']")
            else:
                page.fill("#answer-input", str(item.answer))
            act("#submit-answer")
            page.wait_for_selector("#feedback")
            if page.locator("#feedback .mastered").count():
                break
            act("#next")
    assert "You've mastered Classifying a real number" in page.inner_text("#feedback")
    page.click("#next")
    page.wait_for_selector('#stage[data-phase="teach"]')

    said = "A rational number is one you can write as a fraction of two whole numbers, like 3/4, if the bottom isn't 0."
    page.fill("#teachback-text", said)
    page.click("#teachback-submit")
    page.wait_for_selector(".turn-novice")
    asked = TeachBack.objects.get(user=alice).questions[0]
    word = asked["text"].split("\u201c")[1].split("\u201d")[0]  # I keep hearing the word "..."
    assert word in asked["idea"].lower() and word not in said.lower()
    page.screenshot(path=test_output / "imported-1-word-question.png", full_page=True)
    for answer in ("Numbers like pi or the square root of 2 are irrational: their decimals never end and never repeat.",
                   "Every real number is one or the other, rational or irrational, never both."):
        if page.locator("#teachback-result").count():
            break
        page.fill("#teachback-text", answer)
        page.click("#teachback-submit")
        page.wait_for_selector("#teachback-result, .turn-novice >> nth=1")
    page.wait_for_selector("#teachback-result .katex")
    result = page.inner_text("#teachback-result")
    assert "key ideas came across clearly" in result and "\\frac" not in result and "$" not in result
    page.screenshot(path=test_output / "imported-2-verdict.png", full_page=True)


SAMPLING_IDEAS = [
    "A population is the whole group of people or things that we want to learn about.",
    "A sample is a subset of the population from which data are actually collected.",
    "A parameter is a number that describes the population, such as the mean of the whole population.",
    "A statistic is a number calculated from a sample, such as the sample mean.",
]


def test_a_student_who_swaps_two_terms_is_asked_which_one_and_keeping_it_is_marked(
        live_server_url, browser_page, course, alice, test_output):
    course.concepts.filter(slug="a").update(key_ideas=SAMPLING_IDEAS, probes=[], title="Key terms")
    _explaining(alice, course)
    teachback.scorer().score("warm up", teachback.concept_key(concept=course.concepts.get(slug="a"), user=alice))

    page, base = browser_page, live_server_url
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{course.slug}/")
    page.wait_for_selector('#stage[data-phase="teach"]')
    session_ready(page)
    page.fill("#teachback-text", (
        "The population is everyone we want to learn about, and the sample is the part of it we actually ask. "
        "A parameter is a number calculated from a sample, like the average of our 80 answers."))
    page.click("#teachback-submit")
    page.wait_for_selector(".turn-novice")
    question = page.inner_text(".turn-novice")
    assert "Is that \u201cparameter\u201d or \u201cstatistic\u201d?" in question
    page.screenshot(path=test_output / "swap-1-asked.png", full_page=True)
    page.fill("#teachback-text", "The parameter.")
    page.click("#teachback-submit")
    page.wait_for_selector("#teachback-result, .turn-novice >> nth=1")
    if not page.locator("#teachback-result").count():
        page.fill("#teachback-text", "I am not sure.")
        page.click("#teachback-submit")
    page.wait_for_selector("#teachback-result")
    result = page.inner_text("#teachback-result")
    assert "Check this: A statistic is a number calculated from a sample" in result
    assert "you kept \u201cparameter\u201d" in result
    page.screenshot(path=test_output / "swap-2-verdict.png", full_page=True)
