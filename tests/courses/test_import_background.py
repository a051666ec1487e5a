"""A web import answers at once and runs in the background (a thread when there is no Celery worker), the course
is usable as soon as it is committed (the TA-bot answers by keyword search until its index is built), what the
tutor cannot check waits in the review queue, and the course card counts what the job counts."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from courses.background import jobs_wait
from courses.models import Course, ImportJob, Item
from courses.selectors import review_queue
from tests.courses.test_authoring import oatutor_tarball
from tutor import services
from tutor.models import TAIndex

pytestmark = pytest.mark.django_db(transaction=True)

MATRIX = {"problemType": "TextBox", "answerType": "arithmetic", "stepAnswer": ["$$\\begin{bmatrix} 1 & 2 \\end{bmatrix}$$"]}
NUMERIC = {"problemType": "TextBox", "answerType": "arithmetic", "stepAnswer": ["$$4$$"]}


def _tarball() -> bytes:
    """A two-step OATutor source: a numeric step, and a matrix step the tutor cannot check."""
    return oatutor_tarball(MATRIX)


@pytest.fixture
def background(settings):
    """Jobs run as in `make run`: eager Celery, no worker, so on a thread of the server's process."""
    settings.TUTOR_BACKGROUND_INLINE = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    # The jobs an import starts after itself (the TA-bot's index) must end before the test's tables are emptied:
    # a job still writing then deadlocked PostgreSQL's flush (seen in CI).
    jobs_wait(timeout=300)


def _faculty(client: Client) -> None:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("importer", is_staff=True))


def _wait(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the background job did not finish"
        time.sleep(0.1)


def test_a_web_import_answers_at_once_and_finishes_in_the_background(client, background, monkeypatch):
    from courses import services as course_services

    go_on = threading.Event()  # the import waits for the test: the page must answer before it is done
    run = course_services.import_job_run
    monkeypatch.setattr(course_services, "import_job_run", lambda **kw: (go_on.wait(60), run(**kw))[1])
    _faculty(client)
    response = client.post(reverse("teach:import"),
                           {"file": SimpleUploadedFile("tiny.tar.gz", _tarball())})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == "queued"
    assert "Waiting" in client.get(response.url).content.decode()  # the progress page, while it runs
    go_on.set()
    _wait(lambda: ImportJob.objects.get(pk=job.pk).status in ("done", "failed"))
    job.refresh_from_db()
    assert job.status == "done", job.error
    page = client.get(reverse("teach:import_job", args=[job.pk])).content.decode()
    assert 'id="ta-index"' in page and "keyword search" in page


def test_imported_questions_the_tutor_cannot_check_wait_in_the_review_queue(client, background):
    _faculty(client)
    client.post(reverse("teach:import"), {"file": SimpleUploadedFile("tiny.tar.gz", _tarball())})
    _wait(lambda: ImportJob.objects.filter(status="done").exists())
    course = Course.objects.get()
    queued = list(review_queue(course=course))
    assert [i.slug for i in queued] == ["p1b"]
    page = client.get(reverse("teach:review", args=[course.slug])).content.decode()
    assert "cannot check this answer" in page and "Nothing to review" not in page


def test_the_course_card_counts_what_the_import_job_counts(client, background):
    _faculty(client)
    client.post(reverse("teach:import"), {"file": SimpleUploadedFile("tiny.tar.gz", _tarball())})
    _wait(lambda: ImportJob.objects.filter(status="done").exists())
    job = ImportJob.objects.get()
    published = Item.objects.filter(concept__course=job.course, status="published").count()
    assert f"1 concepts, {published} items" in job.message
    assert f"1 concepts and {published} questions" in job.course.description


def test_a_student_can_enrol_and_ask_the_ta_before_its_index_is_built(client, background, django_user_model):
    _faculty(client)
    client.post(reverse("teach:import"), {"file": SimpleUploadedFile("tiny.tar.gz", _tarball())})
    _wait(lambda: ImportJob.objects.filter(status="done").exists())
    course = Course.objects.get()
    student = django_user_model.objects.create_user("newcomer")
    browser = Client()
    browser.force_login(student)
    assert browser.post(reverse("enroll", args=[course.slug])).status_code == 302
    assert browser.get(reverse("session", args=[course.slug])).status_code == 200
    from tutor.ta import services as ta_services

    question = ta_services.ta_question_answer(user=student, course=course, question="How do I add the numbers?")
    assert question.answer.strip()
    _wait(lambda: TAIndex.objects.filter(course=course, status="done").exists(), seconds=300)
    assert services.session_get(user=student, course=course).phase in ("placement", "pain", "explain")
