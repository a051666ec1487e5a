"""A student asks the TA something the course does not cover, sends it to the teacher, the teacher answers on
the faculty page, and the student sees the answer, in a real browser over the real websocket."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from courses.models import Membership
from courses.services import course_import, membership_set
from tests.browser.pages import log_in, socket_open
from tests.tutor.test_ta_services import OUT_OF_COURSE, calc_spec
from tutor import services
from tutor.ta import services as ta_services

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_declined_question_goes_to_the_teacher_and_the_answer_comes_back(live_server_url, browser_page, alice,
                                                                          settings, test_output):
    settings.TUTOR_LLM = "authored"
    page, base = browser_page, live_server_url
    ta_services.index_cache_clear()
    calc = course_import(spec=calc_spec())
    services.enrollment_create(user=alice, course=calc)
    prof = get_user_model().objects.create_user(username="prof-calc", password="pw-prof-calc-123")
    membership_set(user=prof, course=calc, role=Membership.Role.FACULTY)
    ta_services.ta_index_rebuild(course=calc)  # what the import's reindex would have done

    # The student finds the TA from the session page and asks a question from the course: quoted, with links.
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{calc.slug}/")
    page.click("#ask-ta")
    page.wait_for_url(f"{base}/learn/{calc.slug}/ask/")
    socket_open(page)
    page.fill("#ta-question", "Why does the power rule work?")
    page.click("#ta-ask")
    page.wait_for_selector("#ta-stream")
    page.wait_for_function("(window.taStreamChunks || 0) >= 3")
    page.screenshot(path=test_output / "1-answer-streaming.png", full_page=True)
    page.wait_for_selector("#ta-log article[data-outcome=quoted]")
    assert page.locator("#ta-log article[data-outcome=quoted] a[href*='/concept/']").count() >= 1
    assert page.evaluate("window.taStreamChunks") >= 5
    page.screenshot(path=test_output / "2-answer-with-sources.png", full_page=True)
    cited = page.locator("#ta-log article[data-outcome=quoted] a[href*='/concept/']").first.get_attribute("href")

    # Something the course does not cover, asked on the same page: declined, and sent to the teacher.
    page.fill("#ta-question", OUT_OF_COURSE)
    page.click("#ta-ask")
    declined = page.locator("#ta-log article[data-outcome=declined]")
    declined.wait_for()
    assert "The course materials don't cover this" in declined.inner_text() and "send your question" in declined.inner_text()
    page.screenshot(path=test_output / "4-declined.png", full_page=True)
    declined.locator("button.ta-escalate").click()
    page.wait_for_selector("#ta-log article[data-outcome=declined] .badge-waiting")
    page.screenshot(path=test_output / "5-sent-to-teacher.png", full_page=True)
    page.goto(f"{base}{cited}")
    assert page.locator(f"[id='{cited.partition('#')[2]}']").count() == 1
    page.screenshot(path=test_output / "3-cited-place.png", full_page=True)

    # The teacher answers on the faculty page.
    faculty = page.context.browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    log_in(faculty, base, "prof-calc", "pw-prof-calc-123")
    faculty.goto(f"{base}/teach/{calc.slug}/questions/")
    card = faculty.locator("#ta-questions article", has_text="Mona Lisa")
    card.wait_for()
    assert "alice" in card.inner_text()
    card.locator("textarea").fill("Leonardo da Vinci painted it; it hangs in the **Louvre**, in Paris.")
    faculty.screenshot(path=test_output / "6-faculty-answers.png", full_page=True)
    card.locator("button[type=submit]").click()
    faculty.wait_for_selector("#ta-notice")
    faculty.goto(f"{base}/teach/{calc.slug}/questions/?show=answered")
    faculty.screenshot(path=test_output / "7-faculty-answered.png", full_page=True)

    # The student sees the answer with a badge.
    page.goto(f"{base}/learn/{calc.slug}/ask/")
    answered = page.locator("#ta-log article", has_text="Mona Lisa")
    assert "Answered by your teacher" in answered.inner_text() and "Louvre" in answered.inner_text()
    page.screenshot(path=test_output / "8-student-sees-answer.png", full_page=True)


def test_a_short_answer_quotes_the_course_with_its_citation_and_typeset_maths(live_server_url, browser_page, alice,
                                                                             settings, test_output):
    settings.TUTOR_LLM = "authored"
    page, base = browser_page, live_server_url
    ta_services.index_cache_clear()
    calc = course_import(spec=calc_spec())
    services.enrollment_create(user=alice, course=calc)
    ta_services.ta_index_rebuild(course=calc)

    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{calc.slug}/ask/")
    socket_open(page)
    page.fill("#ta-question", "what does the power rule say about the derivative of x^n")
    page.click("#ta-ask")
    card = page.locator("#ta-log article[data-outcome=quoted]")
    card.wait_for()
    answer = card.locator(".ta-answer")
    assert len(answer.inner_text().split()) <= 120
    citations = answer.locator("a[href*='/concept/']")
    assert 1 <= citations.count() <= 3 and answer.locator("blockquote").count() >= 1
    assert answer.locator(".math").count() >= 1  # the course's maths, typeset in the page
    assert "the basics come first" not in answer.inner_text()
    card.screenshot(path=test_output / "short-answer-with-citation.png")
    page.screenshot(path=test_output / "short-answer-page.png", full_page=True)
    href = citations.first.get_attribute("href")
    citations.first.click()
    page.wait_for_url(f"{base}{href}")
    assert page.locator(f"[id='{href.partition('#')[2]}']").count() == 1
