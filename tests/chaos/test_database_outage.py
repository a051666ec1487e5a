"""A database error on a request or a socket message is answered cleanly: 503 + Retry-After, or a notice."""

from __future__ import annotations

import asyncio
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


@pytest.mark.django_db
def test_a_page_whose_session_cannot_be_read_is_a_503_through_every_middleware(client, alice, course, monkeypatch):
    """A PostgreSQL restart as a signed-in student's page load sees it: the session row cannot be read (by the
    view, then by the middlewares on the way out, such as the LTI framing one)."""
    from django.contrib.sessions.backends.db import SessionStore

    client.force_login(alice)

    def database_gone(self):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(SessionStore, "load", database_gone)
    response = client.get(f"/learn/{course.slug}/")
    assert response.status_code == 503 and response["Retry-After"] == "5"


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


@pytest.fixture
def test_thread_backend(alice) -> int | None:
    """The PostgreSQL backend of the test's own connection (its fixtures and teardown use it): not the server's."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_socket_connections_killed_by_the_database_fail_one_action_each_cleanly_then_reconnect(
        alice, course, monkeypatch, test_thread_backend):
    """What a PostgreSQL restart does to the connections a server process keeps (its pool's; each thread's with
    DATABASE_POOL=0), without the per-action health check (settings: conn_health_checks off): a dead connection
    fails at most one call, the first that uses it (a socket action gets the "try again" notice), and is replaced;
    the socket stays open and nothing has to be restarted."""
    from channels.db import database_sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.db import close_old_connections, connection, transaction

    # channels.testing turns Channels' close_old_connections() around each database call into a no-op; the server
    # runs it (it is what ends an errored connection, or hands a connection back to the pool): run it here too.
    monkeypatch.setattr("channels.testing.application.no_op", close_old_connections)

    from tutor import services
    from tutor.consumers import db
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
    for _ in range(2 * settings.TUTOR_DB_THREADS):  # the database threads have used (and kept) connections
        await communicator.send_json_to({"action": "hint", "shown": 0})
        assert "data-phase" in await communicator.receive_from(timeout=5)

    def terminate_the_others() -> list[int]:  # as a restart does: every kept server connection ends
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND pid <> %s", [test_thread_backend])
            pids = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
            for _ in range(100):  # pg_terminate_backend only signals: wait until they are gone, as after a restart
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s::int[])", [pids])
                if cursor.fetchone()[0] == 0:
                    return pids
                time.sleep(0.05)
            raise AssertionError("the terminated connections did not end")

    killed = await database_sync_to_async(terminate_the_others)()
    assert killed
    replies = []
    for _ in range(len(killed) + 4):
        await communicator.send_json_to({"action": "hint", "shown": 0})
        replies.append(await communicator.receive_from(timeout=5))
    notices = [r for r in replies if "data-phase" not in r]
    assert all("try again" in r for r in notices), notices  # clean: a stage, or the notice to try again

    def one_query() -> None:  # what an action does first
        with transaction.atomic():
            TutorSession.objects.filter(user_id=alice.pk).exists()

    async def on_the_database_threads() -> list:  # the socket's own wrapper: Channels' close_old_connections
        return await asyncio.gather(*(db(one_query)() for _ in range(settings.TUTOR_DB_THREADS)),
                                    return_exceptions=True)

    # Which connection serves a call is the pool's (or the thread pool's) choice: call until every dead one has
    # been taken once, failed (in an action above, or here) and been replaced.
    failed = []
    for _ in range(len(killed) + 2):
        failed += [r for r in await on_the_database_threads() if r is not None]
    assert all(isinstance(r, OperationalError) for r in failed), failed
    # None failed twice. (Usually at least one call meets a dead connection, as the check is off; but the connection
    # that ran the kill comes from the same pool and lives on, and the pool may hand out only it: not asserted.)
    assert len(notices) + len(failed) <= len(killed)
    assert await on_the_database_threads() == [None] * settings.TUTOR_DB_THREADS  # every call works again

    def backend() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    serving = await asyncio.gather(*(db(backend)() for _ in range(settings.TUTOR_DB_THREADS)))
    assert not set(serving) & set(killed), (serving, killed)  # what serves now are new connections
    for _ in range(3):  # and the same socket works
        await communicator.send_json_to({"action": "hint", "shown": 0})
        assert "data-phase" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()
