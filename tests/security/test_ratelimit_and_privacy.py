"""Rate limits (answers over HTTP, login failures, item generation), the batch API's status check, the privacy
pages and the retention purge, on the real DB."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tutor import services
from tutor.models import Attempt, Guess, KnowledgeRecord, TutorSession
from tutor.ratelimit import RateLimited, ratelimit_check, ratelimit_enforce

pytestmark = pytest.mark.django_db


def _practise(user, course):
    services.enrollment_create(user=user, course=course)
    services.guess_record(user=user, course=course, client_id=uuid.uuid4(), text="yes")
    return services.practice_start(user=user, course=course)


def test_limiter_allows_exactly_the_limit_then_refuses():
    assert [ratelimit_check(key="k", limit=3, period=60) for _ in range(5)] == [True, True, True, False, False]
    assert ratelimit_check(key="other", limit=3, period=60)
    with pytest.raises(RateLimited):
        ratelimit_enforce(key="k", limit=3, period=60)
    assert all(ratelimit_check(key="off", limit=0, period=60) for _ in range(100))


def test_queued_answers_are_recorded_once_even_when_resent(client, alice, course):
    session = _practise(alice, course)
    client.force_login(alice)
    batch = {"answers": [{"client_id": str(uuid.uuid4()), "item": session.item_id, "answer": "4"},
                         {"client_id": str(uuid.uuid4()), "item": session.item_id, "answer": "5"}]}
    url = reverse("api_answers", args=[course.slug])
    for _ in range(2):  # an offline client resends the whole batch after a timeout
        response = client.post(url, json.dumps(batch), content_type="application/json")
        assert response.status_code == 202
        assert "Server-Timing" in response
    # Suite 1 runs Celery eagerly; in suite 2 the tests have no worker, so run the queue's work inline.
    from django.conf import settings

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from tutor.tasks import attempt_ingest_task

        for answer in batch["answers"]:
            attempt_ingest_task.apply(kwargs={"user_id": alice.pk, "course_id": course.pk,
                                              "client_id": answer["client_id"], "item_id": session.item_id,
                                              "answer": answer["answer"]})
    assert Attempt.objects.filter(user=alice).count() == 2


def test_answer_api_refuses_strangers_and_garbage(client, alice, bob, course):
    _practise(alice, course)
    url = reverse("api_answers", args=[course.slug])
    body = json.dumps({"answers": [{"client_id": str(uuid.uuid4()), "item": 1, "answer": "4"}]})
    assert client.post(url, body, content_type="application/json").status_code == 401
    client.force_login(bob)
    assert client.post(url, body, content_type="application/json").status_code == 403
    client.force_login(alice)
    assert client.put(url, body, content_type="application/json").status_code == 405
    for garbage in ["not json", "[]", '{"answers": []}', '{"answers": [{"client_id": "x", "item": 1}]}',
                    json.dumps({"answers": [{"client_id": str(uuid.uuid4()), "item": "one", "answer": "4"}]})]:
        assert client.post(url, garbage, content_type="application/json").status_code == 400
    assert client.post(reverse("api_answers", args=["nope"]), body, content_type="application/json").status_code == 404


def test_answer_api_is_rate_limited(client, alice, course, settings):
    settings.TUTOR_RATELIMIT_ANSWERS = 3
    session = _practise(alice, course)
    client.force_login(alice)
    url = reverse("api_answers", args=[course.slug])
    codes = []
    for _ in range(5):
        body = json.dumps({"answers": [{"client_id": str(uuid.uuid4()), "item": session.item_id, "answer": "4"}]})
        codes.append(client.post(url, body, content_type="application/json").status_code)
    assert codes == [202, 202, 202, 429, 429]


def test_answer_status_lists_only_this_students_stored_answers(client, alice, bob, course):
    session = _practise(alice, course)
    mine, queued, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    services.attempt_record(user=alice, course=course, client_id=mine, item_id=session.item_id, answer="4")
    bobs = uuid.uuid4()
    services.attempt_record(user=bob, course=course, client_id=bobs, item_id=_practise(bob, course).item_id,
                            answer="4")
    client.force_login(alice)
    url = reverse("api_answers", args=[course.slug])
    response = client.get(url, {"ids": f"{queued},{mine},{bobs},{unknown},{mine}"})
    assert response.status_code == 200
    # Bob's id reads exactly like one never sent; repeats are answered once; the order is the one asked.
    assert response.json() == {"stored": [str(mine)], "missing": [str(queued), str(bobs), str(unknown)]}
    assert client.get(url, {"ids": [str(mine), str(unknown)]}).json()["stored"] == [str(mine)]  # ?ids=a&ids=b


def test_answer_status_refuses_strangers_and_malformed_ids(client, alice, bob, course):
    from tutor.api_views import MAX_STATUS_IDS

    _practise(alice, course)
    url = reverse("api_answers", args=[course.slug])
    ids = {"ids": str(uuid.uuid4())}
    assert client.get(url, ids).status_code == 401
    client.force_login(bob)
    assert client.get(url, ids).status_code == 403
    client.force_login(alice)
    assert client.get(reverse("api_answers", args=["nope"]), ids).status_code == 404
    too_many = ",".join(str(uuid.uuid4()) for _ in range(MAX_STATUS_IDS + 1))
    for query, message in [({}, "?ids="), ({"ids": ""}, "?ids="), ({"ids": f"{uuid.uuid4()},x-1"}, "'x-1'"),
                           ({"ids": too_many}, f"at most {MAX_STATUS_IDS}")]:
        response = client.get(url, query)
        assert response.status_code == 400 and message in response.json()["error"], query
    assert client.get(url, {"ids": ",".join(str(uuid.uuid4()) for _ in range(MAX_STATUS_IDS))}).status_code == 200


def test_faculty_starting_too_many_generation_jobs_is_told_when_to_retry(client, prof, course, settings, monkeypatch):
    from courses import views

    queued = []  # the job itself would call a model server: record what would be started instead
    monkeypatch.setattr(views, "task_start", lambda task, **kwargs: queued.append(kwargs))
    settings.TUTOR_LLM = "openai"
    settings.TUTOR_RATELIMIT_ITEM_GENERATIONS = 2
    client.force_login(prof)
    url = reverse("teach:concept_generation", args=[course.slug, "a"])
    assert [client.post(url, {"n": "3"}, HTTP_HX_REQUEST="true").status_code for _ in range(2)] == [200, 200]
    assert len(queued) == 2
    refused = client.post(url, {"n": "3"}, HTTP_HX_REQUEST="true")  # htmx swaps only 2xx: the message, in a 200
    assert refused.status_code == 200 and "2 generation jobs in the last hour" in refused.content.decode()
    page = client.post(url, {"n": "3"})
    assert page.status_code == 429 and 0 < int(page["Retry-After"]) <= 3601
    assert "you can start another in" in page.content.decode()
    assert len(queued) == 2


def test_login_is_throttled_after_repeated_failures(client, alice, settings):
    settings.TUTOR_RATELIMIT_LOGIN_FAILURES = 3
    url = reverse("login")
    codes = [client.post(url, {"username": "alice", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # Even the right password is refused while the username is locked: guessing cannot continue.
    response = client.post(url, {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert client.post(url, {"username": "bob", "password": "x"}).status_code == 200


def test_student_exports_all_their_data_and_nobody_elses(client, alice, bob, course):
    session = _practise(alice, course)
    services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id, answer="4")
    _practise(bob, course)
    client.force_login(alice)
    response = client.get(reverse("account_export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["account"]["username"] == "alice"
    records = data["records"]
    assert len(records["tutor.attempt"]) == 1 and len(records["tutor.guess"]) == 1
    assert len(records["tutor.knowledgerecord"]) == 1 and len(records["tutor.tutorsession"]) == 1
    assert len(records["courses.membership"]) == 1
    assert "bob" not in response.content.decode() and str(bob.pk) not in {
        str(row.get("user")) for rows in records.values() for row in rows}
    assert "password" not in data["account"]
    assert client.get(reverse("account")).status_code == 200


def test_student_deletes_account_with_password_and_everything_goes(client, alice, bob, course):
    session = _practise(alice, course)
    services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=session.item_id, answer="4")
    _practise(bob, course)
    client.force_login(alice)
    assert client.post(reverse("account_delete"), {"password": "wrong"}).status_code == 400
    assert Attempt.objects.filter(user=alice).exists()
    response = client.post(reverse("account_delete"), {"password": "pw-alice-123"})
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="alice").exists()
    for model in (Attempt, Guess, KnowledgeRecord, TutorSession):
        assert not model.objects.filter(user_id=alice.pk).exists()
    assert TutorSession.objects.filter(user=bob).exists()
    assert client.get(reverse("account")).status_code == 302  # logged out


def test_purge_deletes_only_attempts_past_retention(alice, course, settings):
    session = _practise(alice, course)
    outcome = services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(),
                                      item_id=session.item_id, answer="4")
    settings.TUTOR_ATTEMPT_RETENTION_DAYS = 0
    call_command("purge_expired")
    assert Attempt.objects.count() == 1  # 0 = keep forever
    settings.TUTOR_ATTEMPT_RETENTION_DAYS = 30
    Attempt.objects.filter(pk=outcome.attempt.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    services.session_advance(user=alice, course=course)
    fresh = services.session_get(user=alice, course=course)
    if fresh.phase == TutorSession.Phase.PRACTICE:
        services.attempt_record(user=alice, course=course, client_id=uuid.uuid4(), item_id=fresh.item_id, answer="4")
    kept = Attempt.objects.exclude(pk=outcome.attempt.pk).count()
    from tutor.accounts.tasks import retention_purge_task

    deleted = retention_purge_task.apply().get()
    assert deleted["tutor.Attempt"] == 1
    assert Attempt.objects.count() == kept
    assert not Attempt.objects.filter(pk=outcome.attempt.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_answers_over_the_socket_are_rate_limited(alice, course, settings):
    from channels.db import database_sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from tutor.routing import websocket_urlpatterns

    settings.TUTOR_RATELIMIT_ANSWERS = 2
    await database_sync_to_async(_practise)(alice, course)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/learn/{course.slug}/")
    communicator.scope["user"] = alice
    assert (await communicator.connect())[0]
    await communicator.receive_from(timeout=5)
    notices = []
    for _ in range(3):  # answers to an item not on screen: refused by the service, but still counted
        await communicator.send_json_to({"action": "answer", "client_id": str(uuid.uuid4()), "item": "0",
                                         "answer": "4"})
        notices.append(await communicator.receive_from(timeout=5))
    assert "no longer on screen" in notices[0] and "no longer on screen" in notices[1]
    assert "answering very fast" in notices[2]
    await communicator.disconnect()


def test_ta_conversations_are_purged_but_shared_faculty_answers_kept(alice, prof, course, settings, client):
    from tutor.accounts.services import retention_purge
    from tutor.models import TAQuestion

    old = timezone.now() - dt.timedelta(days=40)
    plain = TAQuestion.objects.create(user=alice, course=course, question="ALICE-PRIVATE-QUESTION")
    faq = TAQuestion.objects.create(user=alice, course=course, question="q", faculty_answer="a", shared=True,
                                    answered_by=prof)
    fresh = TAQuestion.objects.create(user=alice, course=course, question="new")
    TAQuestion.objects.filter(pk__in=[plain.pk, faq.pk]).update(created_at=old)
    settings.TUTOR_TA_RETENTION_DAYS = 30
    assert retention_purge()["tutor.TAQuestion"] == 1
    assert set(TAQuestion.objects.values_list("pk", flat=True)) == {faq.pk, fresh.pk}
    # The faculty member who answered does not get the student's questions in their own export.
    TAQuestion.objects.filter(pk=fresh.pk).update(answered_by=prof, question="ALICE-PRIVATE-QUESTION")
    client.force_login(prof)
    assert b"ALICE-PRIVATE-QUESTION" not in client.get(reverse("account_export")).content
