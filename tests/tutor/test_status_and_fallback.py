"""A dead model server never reaches the student: they get the authored text, and faculty see the outage."""

import socket
import uuid

import pytest

from inference.fallback import reset_health
from tutor import llm, services
from tutor.models import TutorSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_model_server(settings):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.TUTOR_LLM = "openai"
    settings.TUTOR_LLM_URL = f"http://127.0.0.1:{port}/v1"
    settings.TUTOR_LLM_MODEL = "tiny"
    settings.TUTOR_STREAM_DELAY_S = 0.0
    settings.TUTOR_LLM_TTFT_LIMIT_S = 2.0
    llm.backend.cache_clear()
    llm.authored_backend.cache_clear()
    reset_health()
    yield
    llm.backend.cache_clear()
    llm.authored_backend.cache_clear()
    reset_health()


def test_student_gets_the_authored_explanation_when_the_model_server_is_dead(dead_model_server, alice, course):
    services.enrollment_create(user=alice, course=course)
    session = services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    request = llm.explanation_request(concept=session.concept, known=[], shaky=[], guess="yes")
    text = "".join(llm.backend().stream(request))
    assert text == session.concept.explanation
    assert TutorSession.objects.get(user=alice).phase == TutorSession.Phase.EXPLAIN


def test_faculty_see_the_outage_on_the_status_page(dead_model_server, client, prof, alice, course):
    services.enrollment_create(user=alice, course=course)
    session = services.guess_record(user=alice, course=course, client_id=uuid.uuid4(), text="yes")
    "".join(llm.backend().stream(llm.explanation_request(concept=session.concept, known=[], shaky=[], guess=None)))
    client.force_login(prof)
    page = client.get("/status/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<strong>down</strong>" in body
    assert "openai" in body


def test_students_cannot_open_the_status_page(client, alice, course):
    services.enrollment_create(user=alice, course=course)
    client.force_login(alice)
    assert client.get("/status/").status_code == 403
