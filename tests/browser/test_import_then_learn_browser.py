"""A course nobody here wrote, end to end in the browser: a teacher imports OATutor College Algebra through the
import page (the page answers at once; the import runs in the background), then a new student signs up, enrols
from the home page, takes placement and works through a concept to mastery."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from courses.background import jobs_wait
from courses.models import Course, ImportJob, Item
from courses.signals import course_imported
from tests.browser.pages import log_in, session_ready, sign_up
from tutor import services
from tutor.ta import signals

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def background_jobs(settings):
    # As `make run` (eager Celery, no worker): the import runs on a thread of the server, in both suites (with
    # REDIS_URL set the settings would send it to a worker this test does not start).
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.TUTOR_BACKGROUND_INLINE = False
    settings.TUTOR_RATELIMIT_ANSWERS = 0  # the test answers faster than a person
    # The TA-bot's index of the imported course (minutes of embedding on a CPU) is not what this test is about,
    # and a thread still writing it when the test ends outlives the live server's database.
    course_imported.disconnect(dispatch_uid="ta-index-course-imported")
    yield
    course_imported.connect(signals.course_imported, dispatch_uid="ta-index-course-imported")
    jobs_wait(timeout=60)


def _key(item_id: int, user) -> str:
    """What the student types: the item's own key (a template's for the variant on their screen)."""
    item = Item.objects.select_related("concept").get(pk=item_id)
    session = services.session_get(user=user, course=item.concept.course)
    variant = services.item_variant(item, session.item_seed)
    key = variant.answer if variant is not None else item.answer
    return str(key[0] if isinstance(key, list) else key)


def test_a_teacher_imports_college_algebra_and_a_new_student_masters_a_concept(
        live_server_url, browser_page, background_jobs, shared_data, test_output):
    archive = shared_data / "oatutor" / "openstax-college-algebra.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    page, base = browser_page, live_server_url
    get_user_model().objects.create_user("teacher", password="pw-teacher-123", is_staff=True)

    # The teacher imports the archive through the page; it answers before the import is done.
    log_in(page, base, "teacher", "pw-teacher-123")
    page.goto(f"{base}/teach/import/")
    page.set_input_files("input[type=file]", str(archive))
    page.click("main button[type=submit]")
    page.wait_for_selector("#import-job")
    page.screenshot(path=test_output / "import-running.png", full_page=True)
    page.wait_for_selector("#import-job[data-status=done]", timeout=180_000)
    assert "282 concepts" in page.inner_text("#import-job")
    page.screenshot(path=test_output / "import-done.png", full_page=True)
    course = Course.objects.get(pk=ImportJob.objects.get().course_id)

    # A new student signs up and enrols from the home page.
    sign_up(page, base, "newcomer")
    page.locator("section.course", has_text=course.title).locator("button", has_text="Enrol").click()
    page.wait_for_url(f"{base}/learn/{course.slug}/")
    session_ready(page)
    student = get_user_model().objects.get(username="newcomer")

    def act(selector: str) -> None:
        before = page.evaluate("window.tutorFrames || 0")
        page.click(selector)
        page.wait_for_function("(n) => (window.tutorFrames || 0) > n", arg=before)
        page.wait_for_timeout(150)

    def answer_right() -> None:
        item_id = int(page.get_attribute("#answer-form input[name=item]", "value"))
        key = _key(item_id, student)
        radios = page.locator("#answer-form input[type=radio]")
        if radios.count():
            values = [radios.nth(n).get_attribute("value") for n in range(radios.count())]
            radios.nth(values.index(key)).check()
        else:
            page.fill("#answer-input", key)
        act("#submit-answer")

    placement, concept, mastered = 0, None, False
    deadline = time.monotonic() + 600
    while not mastered:
        assert time.monotonic() < deadline, "no concept mastered"
        phase = page.get_attribute("#stage", "data-phase")
        if page.locator("#feedback").count():
            mastered = page.locator("#feedback .mastered").count() > 0
            page.screenshot(path=test_output / f"feedback-{concept}.png", full_page=True)
            if not mastered:
                act("#next")
        elif phase == "placement":
            placement += 1
            answer_right()
        elif phase == "pain":
            concept = page.inner_text("#stage h1")
            page.screenshot(path=test_output / "pain.png", full_page=True)
            if page.locator("#stage label.choice").count():
                page.locator("#stage label.choice").first.click()
            else:
                page.fill("#guess-input", "no idea yet")
            act("#commit-guess")
        elif phase == "explain":
            concept = page.inner_text("#stage h1")
            page.wait_for_selector("#start-practice", timeout=60_000)
            page.screenshot(path=test_output / "explanation.png", full_page=True)
            act("#start-practice")
        elif phase == "practice":
            answer_right()
        else:
            pytest.fail(f"unexpected phase {phase!r}")
    assert placement >= 1
    assert "mastered" in page.inner_text("#feedback")
    assert page.get_attribute("#stage", "data-phase") == "feedback"
