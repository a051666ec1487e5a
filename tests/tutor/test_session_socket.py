"""The session websocket, through Channels' communicator against the real database."""

import html
import re
import uuid

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.params import CourseSettings
from courses.services import course_import
from tutor import llm, services
from tutor.models import Attempt, TutorSession
from tutor.routing import websocket_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

app = URLRouter(websocket_urlpatterns)


async def _connect(user, course):
    communicator = WebsocketCommunicator(app, f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def _receive_until(communicator, marker: str, limit: int = 500) -> list[str]:
    frames = []
    for _ in range(limit):
        frame = await communicator.receive_from(timeout=5)
        frames.append(frame)
        if marker in frame:
            return frames
    raise AssertionError(f"{marker!r} never arrived")


async def _at_practice(user, course):
    """Past the guess and the explanation: a practice item is on screen."""
    from channels.db import database_sync_to_async

    await database_sync_to_async(services.guess_record)(user=user, course=course, client_id=uuid.uuid4(), text="y")
    return await database_sync_to_async(services.practice_start)(user=user, course=course)


@pytest.fixture
def enrolled(alice, course, settings):
    settings.TUTOR_STREAM_DELAY_S = 0.0
    services.enrollment_create(user=alice, course=course)
    return alice


async def test_anonymous_socket_is_refused(course):
    from django.contrib.auth.models import AnonymousUser

    communicator, connected = await _connect(AnonymousUser(), course)
    assert not connected


async def test_student_not_enrolled_is_refused(bob, course):
    communicator, connected = await _connect(bob, course)
    assert not connected


@pytest.fixture
def paced_words(settings):
    """The authored backend yields a word every 30 ms, as a model generates them, and each goes out as soon as
    the event loop sees it (the backend is built once per process: rebuilt with this pace, then again after)."""
    settings.TUTOR_STREAM_DELAY_S = 0.03
    settings.TUTOR_STREAM_FLUSH_S = 0.0
    llm.authored_backend.cache_clear()
    llm.backend.cache_clear()
    yield
    llm.authored_backend.cache_clear()
    llm.backend.cache_clear()


async def test_guess_then_explanation_streams_in_several_increments(enrolled, course, paced_words):
    communicator, connected = await _connect(enrolled, course)
    assert connected
    first = await communicator.receive_from(timeout=5)
    assert 'data-phase="pain"' in first
    await communicator.send_json_to({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "yes"})
    frames = await _receive_until(communicator, 'id="start-practice"')
    chunks = [f for f in frames if 'id="explanation-stream"' in f and "hx-swap-oob" in f]
    assert len(chunks) >= 3
    assert "Explanation" in "".join(chunks)
    await communicator.disconnect()


async def test_answer_sent_twice_over_the_socket_is_stored_once(enrolled, course):
    from channels.db import database_sync_to_async

    session = await _at_practice(enrolled, course)
    communicator, _ = await _connect(enrolled, course)
    await communicator.receive_from(timeout=5)
    message = {"action": "answer", "client_id": str(uuid.uuid4()), "item": str(session.item_id), "answer": "4"}
    await communicator.send_json_to(message)
    await _receive_until(communicator, 'id="feedback"')
    await communicator.send_json_to(message)
    await communicator.receive_from(timeout=5)
    count = await database_sync_to_async(Attempt.objects.filter(user=enrolled).count)()
    assert count == 1
    await communicator.disconnect()


async def test_dropped_socket_loses_no_answer(enrolled, course):
    from channels.db import database_sync_to_async

    session = await _at_practice(enrolled, course)
    communicator, _ = await _connect(enrolled, course)
    await communicator.receive_from(timeout=5)
    message = {"action": "answer", "client_id": str(uuid.uuid4()), "item": str(session.item_id), "answer": "4"}
    await communicator.send_json_to(message)
    await communicator.disconnect()  # dropped before the feedback could be read
    # The browser's ws extension resends queued messages on reconnect: same client_id.
    again, _ = await _connect(enrolled, course)
    resumed = await again.receive_from(timeout=5)
    await again.send_json_to(message)
    await again.receive_from(timeout=5)
    attempts = await database_sync_to_async(lambda: list(Attempt.objects.filter(user=enrolled)))()
    assert len(attempts) == 1
    phase = await database_sync_to_async(lambda: TutorSession.objects.get(user=enrolled).phase)()
    assert phase == TutorSession.Phase.FEEDBACK
    assert 'data-phase="feedback"' in resumed or 'data-phase="practice"' in resumed
    await again.disconnect()


async def test_unreadable_answer_gets_a_notice_not_a_crash(enrolled, course):

    session = await _at_practice(enrolled, course)
    communicator, _ = await _connect(enrolled, course)
    await communicator.receive_from(timeout=5)
    await communicator.send_json_to({"action": "answer", "client_id": "not-a-uuid", "item": str(session.item_id),
                                     "answer": "4"})
    frame = await communicator.receive_from(timeout=5)
    assert 'id="notice"' in frame
    await communicator.disconnect()


async def test_moving_onto_a_concept_without_pain_first_streams_its_explanation_at_once(enrolled, course):
    from channels.db import database_sync_to_async

    from courses.models import Concept

    session = await _at_practice(enrolled, course)
    await database_sync_to_async(services.attempt_record)(user=enrolled, course=course, client_id=uuid.uuid4(),
                                                          item_id=session.item_id, answer="4")
    # The next concept the policy picks has no pain-first problem and has not been introduced.
    def drop_pain_first() -> None:  # saved one by one, as authoring does: the course's content version moves
        for concept in Concept.objects.filter(course=course):
            concept.pain_first = concept.guess_first = ""
            concept.save()

    await database_sync_to_async(drop_pain_first)()
    await database_sync_to_async(TutorSession.objects.filter(user=enrolled).update)(introduced=[])
    communicator, _ = await _connect(enrolled, course)
    await communicator.receive_from(timeout=5)
    session = await database_sync_to_async(services.session_get)(user=enrolled, course=course)
    await communicator.send_json_to({"action": "next", "step": str(session.step)})
    frames = await _receive_until(communicator, 'id="start-practice"')
    assert any('data-phase="explain"' in f for f in frames)
    assert any('id="explanation-stream"' in f for f in frames)
    await communicator.disconnect()


EXPLANATION = ("There are **two** facts.\n\n$$m = \\frac{f(b) - f(a)}{b - a}$$\n\n- the rise\n- the run\n\n"
               "So $\\log_2 8 = 3$.")


def _maths_course():
    return course_import(spec=CourseSpec(
        slug="maths", title="Maths", settings=CourseSettings(placement_questions=0, teach_back="never"),
        concepts=[ConceptSpec(slug="m", title="Slopes", pain_first="Pain.", guess_first="Guess?",
                              guess_choices=["$\\cos x$", "$\\sin x$"], explanation=EXPLANATION, lesson="L.",
                              items=[ItemSpec(id="m-sym", kind="symbolic", prompt="Simplify $x^2 x^4$.",
                                              answer="x**6", variables=["x"])])]))


async def test_the_explanation_streams_typeset_block_by_block_and_whole(alice, paced_words):
    from channels.db import database_sync_to_async

    course = await database_sync_to_async(_maths_course)()
    await database_sync_to_async(services.enrollment_create)(user=alice, course=course)
    communicator, _ = await _connect(alice, course)
    first = await communicator.receive_from(timeout=5)
    assert "server-timing" not in first  # pages never ask for the server's timing
    await communicator.send_json_to({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "$\\cos x$"})
    frames = await _receive_until(communicator, 'id="start-practice"')
    await communicator.disconnect()
    raw = "".join(html.unescape(m) for f in frames
                  for m in re.findall(r'<div id="explanation-stream" hx-swap-oob="beforeend">(.*?)</div>', f, re.S))
    assert raw == EXPLANATION  # every piece of text, in order, as generated
    blocks = [(int(n), body) for f in frames
              for n, body in re.findall(r'data-source-length="(\d+)">(.*?)</div></div>', f, re.S)]
    assert [n for n, _ in blocks] == [len("There are **two** facts.\n\n"),
                                      len("$$m = \\frac{f(b) - f(a)}{b - a}$$\n\n"), len("- the rise\n- the run\n\n")]
    assert "<strong>two</strong>" in blocks[0][1] and 'class="math block"' in blocks[1][1] and "<li>" in blocks[2][1]
    assert "math inline" in frames[-1] and "data-announce" in frames[-1]  # the whole, typeset, and said so


async def test_a_load_test_asks_for_the_servers_time_of_an_action(enrolled, course):
    communicator, _ = await _connect(enrolled, course)
    await communicator.receive_from(timeout=5)
    await communicator.send_json_to({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "yes",
                                     "server_timing": 1})
    frame = await communicator.receive_from(timeout=5)
    assert re.search(r"<!-- server-timing: app;dur=[\d.]+ -->", frame)
    await communicator.disconnect()


async def test_an_unknown_action_is_answered_with_an_error_not_silence(enrolled, course):
    communicator, connected = await _connect(enrolled, course)
    assert connected
    await communicator.receive_from(timeout=5)  # the stage on connect
    await communicator.send_json_to({"action": "teleport"})
    frame = await communicator.receive_from(timeout=5)
    assert "did not understand that request" in frame
    await communicator.send_json_to(["not", "a", "mapping"])
    assert "did not understand that request" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()
