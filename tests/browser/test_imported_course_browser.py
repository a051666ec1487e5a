"""The student's pages on a real imported course, not ours: OATutor's OpenStax College Algebra (282 concepts, ~1,900
items). The map stays readable and linked, progress counts the whole course, maths is typeset, nothing scrolls
sideways on a phone, and axe-core finds nothing serious."""

from __future__ import annotations

import pytest

from courses.models import Item
from tests.browser.pages import (
    AxeReport,
    log_in,
    session_ready,
    sideways_overflow,
    sticking_out,
    visible_text,
)
from tests.conftest import oatutor_course
from tutor import services

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def algebra(shared_data, alice):
    course = oatutor_course(shared_data, "openstax-college-algebra")
    services.enrollment_create(user=alice, course=course)
    return course


def test_an_imported_course_of_282_concepts_on_the_students_pages(live_server_url, browser_page, algebra,
                                                                   test_output):
    page, base = browser_page, live_server_url
    total = algebra.concepts.count()
    assert total == 282
    # the concepts the tutor can teach: 3 of College Algebra's objectives have no published question (one of them
    # because its only two questions have a formula KaTeX cannot typeset, and wait for faculty)
    taught = algebra.concepts.filter(items__status="published").distinct().count()
    assert taught == 279
    report = AxeReport(out=test_output / "axe.txt")
    log_in(page, base, "alice", "pw-alice-123")

    # The session: where the student is in the course, maths typeset, for a few steps of whatever comes.
    page.goto(f"{base}/learn/{algebra.slug}/")
    session_ready(page)
    assert f"of {taught}" in page.inner_text("#course-progress")
    report.audit(page, "session on arrival")
    def act(selector: str) -> None:
        """Click, and wait for the socket's answer to it."""
        before = page.evaluate("window.tutorFrames || 0")
        page.click(selector)
        page.wait_for_function("(n) => (window.tutorFrames || 0) > n", arg=before)
        page.wait_for_timeout(200)  # the rest of a burst (a stage, then a streamed explanation) lands

    seen: list[str] = []
    served: list[str] = []  # practice items, in order
    for step in range(12):
        phase = page.get_attribute("#stage", "data-phase")
        seen.append(phase)
        text = visible_text(page, "#stage")
        assert "\\frac" not in text and "**" not in text and "$$" not in text, (phase, text)
        assert page.locator("label.choice").count() == page.locator("label.choice .md-inline").count()
        page.screenshot(path=test_output / f"session-{step}-{phase}.png", full_page=True)
        if page.locator("#feedback").count():
            assert page.locator("#feedback .echo").count() == 1
            act("#next")
        elif phase in ("placement", "practice"):
            if phase == "practice":
                served.append(page.get_attribute("#answer-form input[name=item]", "value"))
            if page.locator("#answer-form label.choice").count():
                page.locator("#answer-form label.choice").first.click()
            else:
                page.fill("#answer-input", "2")
            act("#submit-answer")
            if page.locator("#skip-placement").count() and step >= 3:
                act("#skip-placement")
        elif phase == "pain":
            if page.locator("label.choice").count():
                page.locator("label.choice").first.click()
            else:
                page.fill("#guess-input", "no idea")
            act("#commit-guess")
        elif phase == "explain":
            page.wait_for_selector("#start-practice", timeout=60_000)
            report.audit(page, "session explanation")
            act("#start-practice")
        else:
            break
    assert "practice" in seen and any(p in seen for p in ("explain", "pain")), seen
    # A question comes back only once its concept has none left unanswered (two used to alternate on one concept)
    for pk in {pk for pk in served if served.count(pk) > 1}:
        concept = Item.objects.get(pk=pk).concept
        assert concept.items.filter(status=Item.Status.PUBLISHED).count() < len(served), (pk, served)
    for width, height in [(360, 740), (390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        assert sideways_overflow(page) <= 0, f"session at {width}px: {sticking_out(page)}"
    page.screenshot(path=test_output / "session-390.png", full_page=True)

    # The map: every concept linked, in a list with mastery and state, and drawn no wider than a page.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/learn/{algebra.slug}/map/")
    assert f"0 of {taught} concepts mastered ({total - taught} more have no practice questions yet" in \
        page.inner_text("main")
    assert page.locator("#map-table tbody tr").count() == total
    assert page.locator("#map-table tbody a[href*='/concept/']").count() == total
    assert page.locator("#knowledge-map a").count() == total
    drawn = page.evaluate("document.querySelector('#knowledge-map').getBoundingClientRect().width")
    assert drawn <= 1280, f"the map is {drawn}px wide"
    longest = max(algebra.concepts.values_list("title", flat=True), key=len)
    labels = page.evaluate("[...document.querySelectorAll('#knowledge-map a')].map(a => a.getAttribute('aria-label'))")
    assert any(label.startswith(longest) for label in labels)
    drawn_titles = page.evaluate("[...document.querySelectorAll('#knowledge-map text.title')]"
                                 ".map(t => [...t.querySelectorAll('tspan')].map(s => s.textContent).join(' '))")
    assert longest in drawn_titles
    page.screenshot(path=test_output / "map.png")
    report.audit(page, "map")
    for width, height in [(360, 740), (390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        assert sideways_overflow(page) <= 0, f"map at {width}px: {sticking_out(page)}"
    page.screenshot(path=test_output / "map-390.png")

    summary = report.summary()
    print(summary)
    assert not report.blocking, summary
