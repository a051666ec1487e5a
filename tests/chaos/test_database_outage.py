"""A database error on a request or a socket message is answered cleanly: 503 + Retry-After, or a notice."""

from __future__ import annotations

import asyncio
import threading
import time

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


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_socket_connections_killed_by_the_database_fail_one_action_each_cleanly_then_reconnect(
        alice, course, monkeypatch):
    """What a PostgreSQL restart does to the socket's kept connections, without the per-action health check
    (settings: conn_health_checks off): each dead connection fails exactly one call, the first that uses it (a
    socket action gets the "try again" notice), and is replaced by the next; the socket stays open and nothing has to
    be restarted."""
    from channels.db import database_sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.db import close_old_connections, connection, transaction

    # channels.testing turns Channels' close_old_connections() around each database call into a no-op; the server
    # runs it (it is what ends an errored connection, and what would schedule a health check): run it here too.
    monkeypatch.setattr("channels.testing.application.no_op", close_old_connections)

    from tutor import services
    from tutor.consumers import db, db_pool
    from tutor.models import TutorSession
    from tutor.routing import websocket_urlpatterns

    if connection.vendor != "postgresql":
        pytest.skip("kills server connections: PostgreSQL only")
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False
    await database_sync_to_async(services.enrollment_create)(user=alice, course=course)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = alice
    assert (await communicator.connect())[0]
    await communicator.receive_from(timeout=5)
    for _ in range(2 * settings.TUTOR_DB_THREADS):  # let every database thread open its connection
        await communicator.send_json_to({"action": "hint", "shown": 0})
        assert "data-phase" in await communicator.receive_from(timeout=5)

    def own_backend(barrier: threading.Barrier) -> int | None:
        barrier.wait(timeout=5)  # every database thread holds one of these calls: each reports its own connection
        return connection.connection.info.backend_pid if connection.connection is not None else None

    barrier = threading.Barrier(settings.TUTOR_DB_THREADS)
    calls = [db_pool().submit(own_backend, barrier) for _ in range(settings.TUTOR_DB_THREADS)]
    kept = [pid for pid in (call.result(timeout=10) for call in calls) if pid is not None]
    assert kept

    def terminate(pids: list[int]) -> None:  # as a restart does to them: their server connections end
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
            for _ in range(100):  # pg_terminate_backend only signals: wait until they are gone, as after a restart
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s::int[])", [pids])
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.05)
            raise AssertionError("the terminated connections did not end")

    await database_sync_to_async(terminate)(kept)
    replies = []
    for _ in range(settings.TUTOR_DB_THREADS + 4):
        await communicator.send_json_to({"action": "hint", "shown": 0})
        replies.append(await communicator.receive_from(timeout=5))
    notices = [r for r in replies if "data-phase" not in r]
    assert all("try again" in r for r in notices), notices  # clean: a stage, or the notice to try again

    def query_on_this_thread(barrier: threading.Barrier) -> None:  # what an action does first, on every thread
        barrier.wait(timeout=5)
        with transaction.atomic():
            TutorSession.objects.filter(user_id=alice.pk).exists()

    async def on_every_database_thread() -> list:  # the socket's own wrapper: Channels' close_old_connections
        barrier = threading.Barrier(settings.TUTOR_DB_THREADS)  # around each call; one call per thread
        return await asyncio.gather(*(db(query_on_this_thread)(barrier) for _ in range(settings.TUTOR_DB_THREADS)),
                                    return_exceptions=True)

    # Which thread serves a message is the pool's choice: make every thread use its connection once, so that each
    # dead one has failed (at most once in all: in an action above, or here) and been replaced.
    failed = [r for r in await on_every_database_thread() if r is not None]
    assert all(isinstance(r, OperationalError) for r in failed), failed
    # Exactly one failure per killed connection: nothing pinged it first (the check is off), and none failed twice.
    assert len(notices) + len(failed) == len(kept)
    assert await on_every_database_thread() == [None] * settings.TUTOR_DB_THREADS  # every thread reconnected
    for _ in range(3):  # and the same socket works
        await communicator.send_json_to({"action": "hint", "shown": 0})
        assert "data-phase" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()
