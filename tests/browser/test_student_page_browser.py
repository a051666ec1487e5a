"""The student's page as people meet it: maths typeset wherever a student sees it, one message area next to the
input, a tutoring loop done with the keyboard alone with focus landing on the new content, no sideways scrolling
on a phone, and axe-core on every page a student, a TA and a faculty member can reach."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.models import Item, Membership
from courses.params import CourseSettings
from courses.services import course_import, membership_set
from tests.browser.pages import (
    AxeReport,
    focused,
    log_in,
    session_ready,
    sideways_overflow,
    sticking_out,
    visible_text,
)
from tutor import services
from tutor.models import TAQuestion

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RAW_SOURCE = ("$", "\\frac", "**", "zoo")  # what a student must never read once the maths is typeset
PHONES = [(360, 740), (390, 844)]
LONG_TITLE = "Logarithms and exponents, read both ways, with a title long enough to wrap on the knowledge map"


def maths_course_spec() -> CourseSpec:
    """TeX in the guess choices, the multiple-choice options (inline and display), the hints, the feedback and the
    explanation (bold, display maths, a list), and a symbolic item whose echo sympy writes as Python."""
    explanation = (
        "There are **two** facts to hold on to. The first is the slope of a secant line, and the second is how "
        "a logarithm undoes an exponent, which we will need again and again in what follows.\n\n"
        "$$m = \\frac{f(b) - f(a)}{b - a}$$\n\n"
        "- the numerator $f(b) - f(a)$ is the **rise**\n"
        "- the denominator $b - a$ is the run\n\n"
        "So $\\log_2 8 = 3$ because $2^3 = 8$, and exponents add when powers of one base are multiplied: "
        "$x^2 \\cdot x^4 = x^{2+4} = x^6$. Take your time with each step, and say it aloud if that helps.")
    items = [
        ItemSpec(id="logs-mc", kind="multiple_choice", prompt="Which statement is true?",
                 answer="$$\\log_{2}\\left(8\\right)=3$$",
                 choices=["$$\\log_{2}\\left(8\\right)=3$$", "$$\\log_{3}\\left(8\\right)=2$$",
                          "The secant line through $(a, f(a))$ is vertical"],
                 hints=["Ask: $2$ to which power is $8$?"], difficulty=-0.5, solution="$2^3 = 8$"),
        ItemSpec(id="powers-sym", kind="symbolic", prompt="Simplify $x^2 \\cdot x^4$.", answer="x**6",
                 variables=["x"], hints=["Add the exponents: $2 + 4$."],
                 feedback={"x**8": "Multiply? No: **add** the exponents."}, difficulty=0.0,
                 solution="$x^{2+4} = x^6$"),
    ]
    return CourseSpec(
        slug="maths", title="Maths on the page", description="TeX everywhere.",
        settings=CourseSettings(placement_questions=0, teach_back="never"),
        concepts=[
            ConceptSpec(slug="logs", title=LONG_TITLE, lesson="Lesson: $\\log_b x = y$ means $b^y = x$.",
                        pain_first="Which is bigger: $\\log_2 8$ or $\\sqrt{8}$?",
                        guess_first="What is the derivative of $\\sin x$?",
                        guess_choices=["$\\cos x$", "$-\\cos x$", "$\\sin x$"], explanation=explanation, items=items),
            ConceptSpec(slug="next", title="What comes next", prerequisites=["logs"], lesson="Next.",
                        pain_first="Next pain.", guess_first="Guess?", explanation="Next explanation.",
                        items=[ItemSpec(id="next-num", kind="numeric", prompt="What is $2 + 2$?", answer=4,
                                        difficulty=-1.0)]),
        ],
    )


@pytest.fixture
def maths(db, alice):
    course = course_import(spec=maths_course_spec())
    services.enrollment_create(user=alice, course=course)
    return course


def _answer_key(item_id: int) -> tuple[str, str]:
    item = Item.objects.get(pk=item_id)
    return item.kind, str(item.answer)


def _choose(page, value: str) -> None:
    """Tick the choice whose value is `value` (TeX values hold backslashes, awkward in a CSS selector)."""
    page.evaluate("""(v) => { const r = [...document.querySelectorAll('#answer-form input[type=radio]')]
        .find(r => r.value === v); r.click(); }""", value)


def _item_on_screen(page) -> int:
    return int(page.locator("section.item").get_attribute("id").removeprefix("item-"))


def _assert_no_source(page, where: str, selector: str = "#stage") -> None:
    text = visible_text(page, selector)
    shown = [s for s in RAW_SOURCE if s in text]
    assert not shown, f"{where}: {shown} visible in {text!r}"


def test_maths_is_typeset_in_choices_explanation_and_echoes(live_server_url, browser_page, maths, test_output):
    page, base = browser_page, live_server_url
    log_in(page, base, "alice", "pw-alice-123")
    page.goto(f"{base}/learn/{maths.slug}/")
    session_ready(page)
    assert page.locator(".guess label.choice .katex").count() == 3
    _assert_no_source(page, "pain and guess")
    page.locator("label.choice").first.click()
    page.click("#commit-guess")

    # Mid-stream: finished paragraphs are typeset already, and the paragraph still arriving shows no TeX source.
    page.wait_for_selector("#explanation-typeset .katex-display")
    assert page.locator("#start-practice").count() == 0, "the stream ended before it could be seen mid-way"
    page.screenshot(path=test_output / "1-explanation-mid-stream.png", full_page=True)
    _assert_no_source(page, "mid-stream", "#explanation")
    formula = page.locator("#explanation .katex-display").bounding_box()
    page.wait_for_selector("#start-practice")
    after = page.locator("#explanation .katex-display").bounding_box()
    assert (after["x"], after["y"], after["height"]) == (formula["x"], formula["y"], formula["height"]), \
        "the finished explanation moved what was already typeset"
    page.screenshot(path=test_output / "2-explanation-done.png", full_page=True)
    _assert_no_source(page, "explanation done")
    assert page.locator("#explanation .katex-display").count() == 1
    assert page.locator("#explanation strong", has_text="two").count() == 1
    assert page.locator("#explanation li").count() == 2

    page.click("#start-practice")
    echoes: dict[str, str] = {}
    for _ in range(6):  # the policy picks the order of the two items: answer until both echoes were seen
        page.wait_for_selector('#stage[data-phase="practice"]')
        kind, key = _answer_key(_item_on_screen(page))
        if kind == "multiple_choice":
            assert page.locator("#answer-form label.choice .katex").count() >= 3
            _choose(page, key)
        else:
            page.fill("#answer-input", "1/0" if "symbolic" not in echoes else "x^2*x^4")
        page.click("#submit-answer")
        page.wait_for_selector("#feedback")
        assert page.locator("#feedback .echo .katex").count() >= 1, page.inner_html("#feedback")
        _assert_no_source(page, f"feedback on a {kind} item")
        echoes.setdefault(kind, page.inner_text("#feedback .echo"))
        page.screenshot(path=test_output / f"3-feedback-{kind}.png", full_page=True)
        if {"multiple_choice", "symbolic"} <= set(echoes):
            break
        page.click("#next")
    assert {"multiple_choice", "symbolic"} <= set(echoes), echoes


def _tab_to(page, selector: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(sel) => document.activeElement && document.activeElement.matches(sel)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}; focus is on {focused(page)}")


def _focus_is(page, selector: str) -> None:
    page.wait_for_function("(sel) => document.activeElement && document.activeElement.matches(sel)", arg=selector,
                           timeout=5000)


def test_a_whole_tutoring_loop_by_keyboard_alone(live_server_url, browser_page, maths, test_output):
    page, base = browser_page, live_server_url
    page.goto(f"{base}/accounts/login/")
    _tab_to(page, "#id_username")
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("pw-alice-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    _tab_to(page, f"a[href='/learn/{maths.slug}/']")
    page.keyboard.press("Enter")
    session_ready(page)

    # Guess: the radios are one group (Tab into it, Space to choose), then the button.
    _tab_to(page, "input[name=guess]")
    page.keyboard.press("Space")
    _tab_to(page, "#commit-guess")
    page.keyboard.press("Enter")
    _focus_is(page, "#explain-heading")
    page.wait_for_selector("#start-practice")
    _focus_is(page, "#explain-heading")  # the finished explanation replaced the stream, not the focus
    page.wait_for_function("document.querySelector('#announcer').textContent.includes('explanation is complete')")

    _tab_to(page, "#start-practice", limit=10)
    page.keyboard.press("Enter")
    for answered in range(10):
        page.wait_for_selector('#stage[data-phase="practice"]')
        kind, key = _answer_key(_item_on_screen(page))
        if kind == "multiple_choice":
            _focus_is(page, "#answer-form input[type=radio]")
            for _ in range(4):  # arrow keys move the choice within the group
                if page.evaluate("document.activeElement.value") == key:
                    break
                page.keyboard.press("ArrowDown")
            page.keyboard.press("Space")
        else:
            _focus_is(page, "#answer-input")
            if answered == 0:
                page.keyboard.type("(((")  # unreadable: one message next to the input, focus stays put
                page.keyboard.press("Enter")
                page.wait_for_selector("#notice:not(:empty)")
                message = page.inner_text("#notice")
                assert re.match(r"^[A-Z].*[.!?]$", message.strip()), message
                assert page.locator("[id=notice]").count() == 1
                _focus_is(page, "#answer-input")
                _tab_to(page, "#hint", limit=5)
                page.keyboard.press("Enter")
                _focus_is(page, "ol.hints li:last-child")
                assert page.inner_text("#notice") == "", "the next action clears the message"
                page.keyboard.press("Tab")
                _focus_is(page, "#answer-input")
                page.keyboard.press("Control+A")
            page.keyboard.type(key.replace("**", "^"))
        if kind == "multiple_choice":
            _tab_to(page, "#submit-answer", limit=5)
        page.keyboard.press("Enter")
        _focus_is(page, "#feedback-heading")
        page.wait_for_function("document.querySelector('#announcer').textContent.includes('Correct')")
        page.screenshot(path=test_output / f"feedback-{answered}.png", full_page=True)
        _tab_to(page, "#next", limit=10)
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#stage').dataset.phase !== 'feedback'")
        phase = page.get_attribute("#stage", "data-phase")
        if phase != "practice":
            break
    # On to the next concept: focus on its title, the top of the new content.
    assert phase == "pain", phase
    _focus_is(page, "#concept-title")
    assert "What comes next" in page.inner_text("#concept-title")


def _student_pages(course_slug: str) -> list[tuple[str, str]]:
    """Every student page but the session, as (label, url); the tests visit the session in each phase."""
    concept = f"/learn/{course_slug}/concept/logs/"
    return [("home", "/"), ("map", f"/learn/{course_slug}/map/"), ("ask the TA", f"/learn/{course_slug}/ask/"),
            ("concept page", concept), ("exercise page", concept + "items/powers-sym/"),
            ("account", "/account/"), ("delete account", "/account/delete/")]


def _ta_card(alice, course) -> None:
    """A TA reply with a long unbreakable link, display maths and a long question: what made the page wide."""
    TAQuestion.objects.create(
        user=alice, course=course, outcome="quoted", citations=[],
        question="Why is " + "very" * 30 + " long?",
        answer="From [the lesson](/learn/maths/concept/logs/#lesson): $$\\frac{d}{dx}\\left(x^{2} + 5x + "
               "\\frac{1}{x} + \\sqrt{x^{3} + 1} + \\log_{10}\\left(x^{4} + 7\\right)\\right)$$ see "
               "https://example.org/" + "a" * 120)


def test_no_student_page_scrolls_sideways_on_a_phone(live_server_url, browser_page, maths, test_output):
    page, base = browser_page, live_server_url
    wide: list[str] = []
    report = AxeReport(out=test_output / "axe-phone.txt")  # the narrowest phone: formulas and tables scroll there
    for width, height in PHONES:
        student = get_user_model().objects.create_user(f"phone{width}", password="pw-phone-123")
        services.enrollment_create(user=student, course=maths)
        _ta_card(student, maths)
        page.set_viewport_size({"width": width, "height": height})
        page.context.clear_cookies()
        for label, path in [("landing", "/"), ("log in", "/accounts/login/"), ("sign up", "/accounts/signup/")]:
            page.goto(base + path)
            if (over := sideways_overflow(page)) > 0:
                wide.append(f"{label} at {width}px: {over}px too wide: {sticking_out(page)}")
        log_in(page, base, student.username, "pw-phone-123")
        for label, path in _student_pages(maths.slug):
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if (over := sideways_overflow(page)) > 0:
                wide.append(f"{label} at {width}px: {over}px too wide: {sticking_out(page)}")
            page.screenshot(path=test_output / f"{width}-{label}.png", full_page=True)
            if width == PHONES[0][0]:
                report.audit(page, f"{label} at {width}px")
        page.goto(f"{base}/learn/{maths.slug}/")
        session_ready(page)
        steps = [("pain", None), ("explanation", "#commit-guess"), ("practice", "#start-practice"),
                 ("feedback", "#submit-answer")]
        for label, button in steps:
            if label == "explanation":
                page.locator("label.choice").first.click()
            if label == "feedback":
                kind, _ = _answer_key(_item_on_screen(page))
                if kind == "multiple_choice":
                    page.locator("#answer-form label.choice").last.click()
                else:
                    page.fill("#answer-input", "x^8")
            if button:
                page.click(button)
            page.wait_for_selector({"pain": "#stage[data-phase=pain]", "explanation": "#start-practice",
                                    "practice": "#stage[data-phase=practice]", "feedback": "#feedback"}[label])
            if (over := sideways_overflow(page)) > 0:
                wide.append(f"session ({label}) at {width}px: {over}px too wide: {sticking_out(page)}")
            page.screenshot(path=test_output / f"{width}-session-{label}.png", full_page=True)
            if width == PHONES[0][0]:
                report.audit(page, f"session ({label}) at {width}px")
        header = page.locator("header.top").bounding_box()
        assert header["height"] < 80, f"the header wraps to {header['height']}px at {width}px"
        logout = page.locator("header.top button", has_text="Log out").bounding_box()
        assert logout["x"] + logout["width"] <= width, "Log out is cut off"
        meter = page.locator(".mastery").bounding_box()
        assert meter["x"] + meter["width"] <= width, "the mastery bar runs off screen"
    assert not wide, "\n".join(wide)
    assert not report.blocking, report.summary()


def test_every_page_of_every_role_passes_axe(live_server_url, browser_page, maths, alice, test_output):
    page, base = browser_page, live_server_url
    users = get_user_model().objects
    ta = users.create_user("ta-maths", password="pw-ta-maths-123")
    membership_set(user=ta, course=maths, role=Membership.Role.TA)
    prof = users.create_user("prof-maths", password="pw-prof-maths-123")
    membership_set(user=prof, course=maths, role=Membership.Role.FACULTY)
    _ta_card(alice, maths)
    escalated = TAQuestion.objects.create(user=alice, course=maths, question="Who painted the Mona Lisa?",
                                          outcome="declined", escalated=True)
    item = Item.objects.get(slug="powers-sym")
    report = AxeReport(out=test_output / "axe.txt")

    # Visitors.
    for label, path in [("landing", "/"), ("log in", "/accounts/login/"), ("sign up", "/accounts/signup/")]:
        page.goto(base + path)
        report.audit(page, label)

    # The student, through the loop and every page around it.
    log_in(page, base, "alice", "pw-alice-123")
    report.audit(page, "student home")
    page.goto(f"{base}/learn/{maths.slug}/")
    session_ready(page)
    report.audit(page, "session: pain and guess")
    page.locator("label.choice").first.click()
    page.click("#commit-guess")
    page.wait_for_selector("#explanation-typeset .katex")
    report.audit(page, "session: explanation streaming")
    page.wait_for_selector("#start-practice")
    report.audit(page, "session: explanation done")
    page.click("#start-practice")
    page.wait_for_selector("#stage[data-phase=practice]")
    if page.locator("#hint").count():
        page.click("#hint")
        page.wait_for_selector("ol.hints li")
    kind, _ = _answer_key(_item_on_screen(page))
    if kind != "multiple_choice":
        page.fill("#answer-input", "(((")
        page.click("#submit-answer")
        page.wait_for_selector("#notice:not(:empty)")
    report.audit(page, "session: practice, hint and message")
    if kind == "multiple_choice":
        page.locator("#answer-form label.choice").last.click()
    else:
        page.fill("#answer-input", "x^8")
    page.click("#submit-answer")
    page.wait_for_selector("#feedback")
    report.audit(page, "session: feedback")
    for label, path in _student_pages(maths.slug):
        page.goto(base + path)
        report.audit(page, f"student {label}")

    # The TA, then the faculty member, on every teaching page.
    teaching = [("home", "/"), ("teach index", "/teach/"), ("course", f"/teach/{maths.slug}/"),
                ("review queue", f"/teach/{maths.slug}/review/"), ("dashboard", f"/teach/{maths.slug}/dashboard/"),
                ("students' questions", f"/teach/{maths.slug}/questions/"),
                ("history", f"/teach/{maths.slug}/history/"), ("item", f"/teach/{maths.slug}/items/{item.pk}/"),
                ("status", "/status/"), ("concept page", f"/learn/{maths.slug}/concept/logs/")]
    log_in(page, base, "ta-maths", "pw-ta-maths-123")
    for label, path in teaching:
        page.goto(base + path)
        report.audit(page, f"TA {label}")
    log_in(page, base, "prof-maths", "pw-prof-maths-123")
    faculty = [("settings", f"/teach/{maths.slug}/settings/"),
               ("new concept", f"/teach/{maths.slug}/concepts/new/"),
               ("concept", f"/teach/{maths.slug}/concepts/logs/"),
               ("new item", f"/teach/{maths.slug}/concepts/logs/items/new/"), ("import", "/teach/import/")]
    for label, path in teaching + faculty:
        page.goto(base + path)
        report.audit(page, f"faculty {label}")

    # Saving says so, and the message passes too.
    page.goto(f"{base}/teach/{maths.slug}/concepts/logs/")
    page.click("#save-concept")
    page.wait_for_selector("[role=status].saved")
    assert "Saved" in page.inner_text("[role=status].saved")
    report.audit(page, "faculty concept saved")
    page.goto(f"{base}/teach/{maths.slug}/questions/")
    page.locator(f"#ta-q-{escalated.pk} textarea").fill("Leonardo da Vinci.")
    page.locator(f"#ta-q-{escalated.pk} button[type=submit]").click()
    page.wait_for_selector("#ta-notice")
    report.audit(page, "faculty answered a question")

    summary = report.summary()
    print(summary)
    assert not report.blocking, summary


def test_dashboard_headers_are_full_titles_and_the_table_scrolls_in_its_own_box(live_server_url, browser_page,
                                                                                maths, alice, test_output):
    page, base = browser_page, live_server_url
    prof = get_user_model().objects.create_user("prof-maths", password="pw-prof-maths-123")
    membership_set(user=prof, course=maths, role=Membership.Role.FACULTY)
    log_in(page, base, "prof-maths", "pw-prof-maths-123")
    page.goto(f"{base}/teach/{maths.slug}/dashboard/")
    header = page.locator("#heatmap thead th[data-concept=logs]")
    assert LONG_TITLE in header.inner_text()  # the whole title, not cut, and read in full by screen readers
    assert header.get_attribute("scope") == "col"
    region = page.locator("#heatmap").locator("xpath=..")
    assert region.get_attribute("tabindex") == "0" and region.get_attribute("role") == "region"
    page.screenshot(path=test_output / "dashboard.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=test_output / "dashboard-390.png", full_page=True)
    assert sideways_overflow(page) <= 0, sticking_out(page)


def test_visitors_land_on_a_page_that_says_what_the_tutor_is(live_server_url, browser_page, test_output):
    page, base = browser_page, live_server_url
    page.goto(base + "/")
    assert "tutor" in page.inner_text("h1").lower()
    assert page.locator("main a[href='/accounts/signup/']").count() >= 1
    assert page.locator("main a[href='/accounts/login/']").count() >= 1
    assert page.request.get(base + "/favicon.ico").ok
    page.screenshot(path=test_output / "landing.png", full_page=True)


def test_the_demo_course_as_a_student_sees_it(live_server_url, browser_page, alice, settings, test_output):
    """The pictures in the README: the demo course on a phone, mid-explanation, and the map of a student part way
    (seven concepts mastered, without placement, so the tutor's next concept is the power rule)."""
    import dataclasses
    import time

    from courses.format import load_course
    from learner_model.knowledge import ConceptState, KnowledgeState
    from tutor.models import KnowledgeRecord

    page, base = browser_page, live_server_url
    spec = load_course(settings.TUTOR_DEMO_COURSE)
    demo = course_import(spec=dataclasses.replace(spec, settings=dataclasses.replace(
        spec.settings, placement_questions=0, teach_back="never")))
    known = ["slopes-of-lines", "average-rate-of-change", "limits-intuition", "limit-laws", "continuity",
             "derivative-definition", "derivative-function"]
    now = time.time()
    state = KnowledgeState(concepts={**{slug: ConceptState(0.97, 6, 5, now) for slug in known},
                                     "sum-constant-rules": ConceptState(0.45, 2, 1, now)})
    KnowledgeRecord.objects.create(user=alice, course=demo, blob=state.to_blob())
    services.enrollment_create(user=alice, course=demo)
    log_in(page, base, "alice", "pw-alice-123")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/learn/{demo.slug}/")
    session_ready(page)
    assert page.inner_text("#concept-title") == "The power rule"
    assert page.locator(".guess label.choice .katex").count() == 4
    page.screenshot(path=test_output / "session-390.png", full_page=True)
    assert sideways_overflow(page) <= 0, sticking_out(page)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=test_output / "session-pain-first.png", full_page=True)
    page.locator("label.choice").first.click()
    page.click("#commit-guess")
    page.wait_for_function("document.querySelectorAll('#explanation-typeset .md-block').length >= 3 &&"
                           " document.querySelector('#explanation-tail').textContent.length > 40")
    page.screenshot(path=test_output / "explanation-streaming.png")
    _assert_no_source(page, "mid-stream", "#explanation-typeset")
    page.goto(f"{base}/learn/{demo.slug}/map/")
    assert page.locator("#map-table tbody tr").count() == 15
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=test_output / "knowledge-map.png", full_page=True)
