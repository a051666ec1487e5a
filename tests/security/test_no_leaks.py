"""Answer keys, worked solutions, unrevealed hints and other students' data never reach a student's browser.

Checked on what leaves the server (rendered pages and every websocket frame), not on view internals. The course
uses distinctive markers so that a leak cannot hide behind a common string like "4".
"""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from courses.params import CourseSettings
from courses.services import course_import
from tutor import services
from tutor.models import TutorSession
from tutor.routing import websocket_urlpatterns

SECRETS_BEFORE_ANSWER = ("SOLUTION-SECRET", "HINT-TWO-SECRET", "FEEDBACK-SECRET", "7919.25", "ACCEPT-SECRET",
                         "31337")
BOB_SECRETS = ("BOB-GUESS-SECRET", "BOB-ANSWER-SECRET")


def _spec() -> CourseSpec:
    common = {"hints": ["First hint.", "HINT-TWO-SECRET"], "solution": "SOLUTION-SECRET worked out."}
    items = [
        ItemSpec(id="n", kind="numeric", prompt="How many?", answer=7919.25, tolerance=0.001,
                 feedback={"1": "FEEDBACK-SECRET"}, **common),
        ItemSpec(id="s", kind="symbolic", prompt="Differentiate.", answer="31337*x**2", variables=["x"], **common),
        ItemSpec(id="t", kind="short_text", prompt="Name it.", answer="ACCEPT-SECRET", accept=["ACCEPT-SECRET"],
                 **common),
    ]
    # No placement: the test walks straight into the pain-first / explanation / practice loop.
    return CourseSpec(slug="leaky", title="Leak test", settings=CourseSettings(placement_questions=0), concepts=[
        ConceptSpec(slug="a", title="A", lesson="Lesson.", pain_first="Pain.", guess_first="Guess?",
                    explanation="Explained.", items=items)])


def _at_practice(user, course, guess: str = "my guess"):
    services.enrollment_create(user=user, course=course)
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text=guess)
    return services.practice_start(user=user, course=course)


def _assert_clean(text: str, secrets: tuple[str, ...], where: str) -> None:
    found = [s for s in secrets if s in text]
    assert not found, f"{where} leaks {found}"


@pytest.mark.django_db
def test_pages_show_no_answer_key_solution_or_unrevealed_hint(alice, bob):
    course = course_import(spec=_spec())
    _at_practice(bob, course, guess="BOB-GUESS-SECRET")
    short_text = course.concepts.get().items.get(slug="t")
    services.attempt_record(user=bob, course=course, client_id=uuid.uuid4(), item_id=short_text.pk,
                            answer="BOB-ANSWER-SECRET", offline=True)
    client = Client()
    client.force_login(alice)
    for item in course.concepts.get().items.all():  # every item kind on screen in turn
        _at_practice(alice, course)
        TutorSession.objects.filter(user=alice).update(item=item, phase=TutorSession.Phase.PRACTICE,
                                                       hints_shown=1)
        for url in (f"/learn/{course.slug}/", f"/learn/{course.slug}/map/", "/", "/account/", "/account/export/"):
            response = client.get(url)
            assert response.status_code == 200, url
            text = response.content.decode()
            _assert_clean(text, SECRETS_BEFORE_ANSWER + BOB_SECRETS, f"{url} with item {item.slug}")
        assert "First hint." in client.get(f"/learn/{course.slug}/").content.decode()  # the revealed hint is there


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_socket_frames_carry_no_key_before_the_answer_and_nothing_of_bob(alice, bob, settings):
    settings.TUTOR_STREAM_DELAY_S = 0.0
    course = await database_sync_to_async(course_import)(spec=_spec())
    await database_sync_to_async(_at_practice)(bob, course, "BOB-GUESS-SECRET")
    await database_sync_to_async(services.enrollment_create)(user=alice, course=course)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = alice
    assert (await communicator.connect())[0]
    frames = [await communicator.receive_from(timeout=5)]
    await communicator.send_json_to({"action": "guess", "client_id": str(uuid.uuid4()), "guess": "g"})
    while 'id="start-practice"' not in frames[-1]:
        frames.append(await communicator.receive_from(timeout=5))
    session = await database_sync_to_async(services.session_get)(user=alice, course=course)
    await communicator.send_json_to({"action": "practice", "step": str(session.step)})
    frames.append(await communicator.receive_from(timeout=5))
    await communicator.send_json_to({"action": "hint", "shown": 0})
    frames.append(await communicator.receive_from(timeout=5))
    before = "".join(frames)
    assert 'data-phase="practice"' in frames[-1] and "First hint." in frames[-1]
    _assert_clean(before, SECRETS_BEFORE_ANSWER + BOB_SECRETS, "frames before the answer")
    session = await database_sync_to_async(services.session_get)(user=alice, course=course)
    await communicator.send_json_to({"action": "answer", "client_id": str(uuid.uuid4()),
                                     "item": str(session.item_id), "answer": "1"})
    after = await communicator.receive_from(timeout=5)
    assert 'id="feedback"' in after and "SOLUTION-SECRET" in after  # the solution comes after the attempt
    _assert_clean(after, BOB_SECRETS, "feedback frame")
    await communicator.disconnect()


@pytest.mark.django_db
def test_course_media_path_traversal_is_refused(client):
    for path in ("../../tutor/settings.py", "..%2f..%2ftutor%2fsettings.py", "%2e%2e/%2e%2e/manage.py"):
        response = client.get(f"/media/courses/{path}")
        assert response.status_code in (400, 404), path
        assert b"SECRET_KEY" not in response.content
