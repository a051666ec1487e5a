"""A database error on a request or a socket message is answered cleanly: 503 + Retry-After, or a notice."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from tutor.middleware import DatabaseUnavailableMiddleware


def _raise(_request):
    raise AssertionError("not called")


def test_operational_error_becomes_503_with_retry_after():
    middleware = DatabaseUnavailableMiddleware(_raise)
    request = RequestFactory().get("/learn/algebra/")
    response = middleware.process_exception(request, OperationalError("server closed the connection unexpectedly"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert b"try again" in response.content
    api = middleware.process_exception(RequestFactory().post("/api/learn/x/answers"), OperationalError("gone"))
    assert api.status_code == 503 and api["Content-Type"] == "application/json"


def test_other_errors_are_not_hidden():
    middleware = DatabaseUnavailableMiddleware(_raise)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("a bug")) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_socket_survives_a_database_error_with_a_notice(alice, course, monkeypatch):
    from channels.db import database_sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from tutor import services
    from tutor.routing import websocket_urlpatterns

    await database_sync_to_async(services.enrollment_create)(user=alice, course=course)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = alice
    assert (await communicator.connect())[0]
    await communicator.receive_from(timeout=5)

    def database_gone(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(services, "hint_reveal", database_gone)  # the database, not our code, is what fails
    await communicator.send_json_to({"action": "hint", "shown": 0})
    frame = await communicator.receive_from(timeout=5)
    assert 'id="notice"' in frame and "try again" in frame
    monkeypatch.undo()
    await communicator.send_json_to({"action": "hint", "shown": 0})  # the same socket still works
    assert "data-phase" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()
