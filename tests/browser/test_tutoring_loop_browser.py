"""A new student signs up, enrolls, and goes through one full loop of the tutor in a real browser."""

import pytest

from courses.models import Item
from tests.browser.pages import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _map_mastery(page, base: str, course: str, concept: str) -> int:
    page.goto(f"{base}/learn/{course}/map/")
    return int(page.locator(f'#knowledge-map g.node[data-slug="{concept}"]').get_attribute("data-mastery"))


def test_new_student_completes_a_tutoring_loop(live_server_url, browser_page, course, test_output):
    page, base = browser_page, live_server_url
    # An explanation of a real one's length (~1.2 s at the test's 0.03 s a word): with frames at most every 0.1 s,
    # the count of increments shows streaming, not how busy the machine was (nine words gave 4 or 5).
    course.concepts.filter(slug="a").update(explanation=" ".join(
        ["The derivative of $x^2$ is $2x$: bring the exponent down and lower it by one."] * 3))
    sign_up(page, base, "carol")
    page.click(f"form[action='/courses/{course.slug}/enroll/'] button")
    page.wait_for_url(f"{base}/learn/{course.slug}/")

    # 1. pain-first problem, 2. guess first
    page.wait_for_selector('#stage[data-phase="pain"]')
    page.wait_for_function("(window.tutorFrames || 0) >= 1")  # the socket's stage has replaced the page's
    assert "Pain" in page.inner_text(".pain")
    page.screenshot(path=test_output / "1-pain-and-guess.png", full_page=True)
    page.check("input[name=guess][value=yes]")
    page.click("#commit-guess")

    # 3. the explanation streams in over the websocket, in several increments
    page.wait_for_selector('#stage[data-phase="explain"]')
    page.wait_for_function("(window.tutorStreamChunks || 0) >= 3")
    page.screenshot(path=test_output / "2-explanation-streaming.png", full_page=True)
    page.wait_for_selector("#start-practice")
    chunks = page.evaluate("window.tutorStreamChunks")
    assert chunks >= 5, f"explanation arrived in {chunks} increments"
    page.screenshot(path=test_output / "3-explanation-done.png", full_page=True)
    before = _map_mastery(page, base, course.slug, "a")
    page.screenshot(path=test_output / "4-map-before.png", full_page=True)

    # 4. a practice item at calibrated difficulty, 5. answered, checked, with a hint on request
    page.goto(f"{base}/learn/{course.slug}/")
    page.click("#start-practice")
    page.wait_for_selector('#stage[data-phase="practice"]')
    if page.locator("#hint").count():
        page.click("#hint")
        page.wait_for_selector("ol.hints li")
    item_pk = int(page.locator("section.item").get_attribute("id").removeprefix("item-"))
    item = Item.objects.get(pk=item_pk)
    if item.kind == "multiple_choice":
        page.check(f"input[name=answer][value='{item.answer}']")
    else:
        page.fill("#answer-input", str(item.answer))
    page.screenshot(path=test_output / "5-practice.png", full_page=True)
    page.click("#submit-answer")
    page.wait_for_selector("#feedback")
    assert "Correct" in page.inner_text("#feedback")
    page.screenshot(path=test_output / "6-feedback.png", full_page=True)

    # 6. the knowledge state changed, and the map shows it
    after = _map_mastery(page, base, course.slug, "a")
    page.screenshot(path=test_output / "7-map-after.png", full_page=True)
    assert after > before

    # back to 4: the next item
    page.goto(f"{base}/learn/{course.slug}/")
    page.click("#next")
    page.wait_for_selector('#stage[data-phase="practice"]')
