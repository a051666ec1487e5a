"""The TA's websocket: the answer arrives in several frames, then the finished card; strangers are refused."""

from __future__ import annotations

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from tests.tutor.test_ta_services import OUT_OF_COURSE, GatedEmbedder, calc_spec
from tutor import llm, services
from tutor.models import TAQuestion
from tutor.routing import websocket_urlpatterns
from tutor.ta import services as ta_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

app = URLRouter(websocket_urlpatterns)


@pytest.fixture
def calc(db, settings):
    from courses.services import course_import

    settings.TUTOR_STREAM_DELAY_S = 0.0
    settings.TUTOR_LLM = "authored"
    llm.backend.cache_clear()
    ta_services.index_cache_clear()
    yield course_import(spec=calc_spec())
    ta_services.index_cache_clear()


async def _connect(user, course):
    communicator = WebsocketCommunicator(app, f"/ws/learn/{course.slug}/ask/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def _receive_until(communicator, marker: str, limit: int = 2000) -> list[str]:
    frames = []
    for _ in range(limit):
        frame = await communicator.receive_from(timeout=30)  # the first question may load the embedding model
        frames.append(frame)
        if marker in frame:
            return frames
    raise AssertionError(f"{marker!r} never arrived")


async def test_the_answer_streams_in_several_frames_then_the_card_with_links(alice, calc, settings):
    from channels.db import database_sync_to_async

    settings.TUTOR_STREAM_DELAY_S = 0.02
    settings.TUTOR_STREAM_FLUSH_S = 0.0

    await database_sync_to_async(services.enrollment_create)(user=alice, course=calc)
    communicator, connected = await _connect(alice, calc)
    assert connected
    await communicator.send_json_to({"action": "ask", "question": "Why does the power rule work?"})
    frames = await _receive_until(communicator, 'hx-swap-oob="afterbegin"')
    pieces = [f for f in frames if 'id="ta-stream" hx-swap-oob="beforeend"' in f]
    assert len(pieces) > 5
    assert 'id="ta-current"' in frames[0]  # the question appears at once, before the answer
    assert "“Slopes of lines”" in frames[0]  # under a fresh form whose example is about this course
    assert 'href="/learn/calc/concept/power-rule/' in frames[-1]
    stored = await database_sync_to_async(TAQuestion.objects.get)(user=alice)
    assert stored.outcome == "quoted" and stored.answer
    await communicator.disconnect()


async def test_a_declined_question_offers_to_send_it_to_the_teacher(alice, calc):
    from channels.db import database_sync_to_async

    await database_sync_to_async(services.enrollment_create)(user=alice, course=calc)
    communicator, _ = await _connect(alice, calc)
    await communicator.send_json_to({"action": "ask", "question": OUT_OF_COURSE})
    frames = await _receive_until(communicator, 'hx-swap-oob="afterbegin"')
    assert "Send to my teacher" in frames[-1] and "cover this" in frames[-1]
    await communicator.disconnect()


async def test_a_student_not_enrolled_is_refused(bob, calc):
    communicator, connected = await _connect(bob, calc)
    assert not connected


async def test_while_the_embedding_model_loads_the_answer_streams_at_once_with_links(alice, calc, settings,
                                                                                      monkeypatch):
    from channels.db import database_sync_to_async

    await database_sync_to_async(ta_services.ta_index_rebuild)(course=calc)  # stored before this process began
    await database_sync_to_async(services.enrollment_create)(user=alice, course=calc)
    ta_services.index_cache_clear()
    settings.TUTOR_TA_EMBED_WAIT_S = 0.0
    embedder = GatedEmbedder()  # a question that waited for it would get no frame within the 30 s allowed
    monkeypatch.setattr(ta_services, "default_embedder", lambda: embedder)
    try:
        communicator, _ = await _connect(alice, calc)
        await communicator.send_json_to({"action": "ask", "question": "Why does the power rule work?"})
        frames = await _receive_until(communicator, 'hx-swap-oob="afterbegin"')
        assert 'data-outcome="quoted"' in frames[-1] and 'href="/learn/calc/concept/power-rule/' in frames[-1]
        stored = await database_sync_to_async(TAQuestion.objects.get)(user=alice)
        assert "lexical" in stored.reason and not embedder.loaded
        await communicator.disconnect()
    finally:
        embedder.abandoned = True
        embedder.gate.set()
