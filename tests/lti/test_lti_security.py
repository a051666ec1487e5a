"""What the tool refuses: each a clear 4xx page and a log line, never a 500, never a signed-in session, and
nothing written (no user, no enrolment)."""

from __future__ import annotations

import base64
import logging

import pytest
from django.contrib.auth import get_user_model

from tests.lti.conftest import launch_form, lti_launch
from tests.lti.lms_stub import LEARNER, MEMBERSHIP, Message
from tutor.lti.models import LtiIdentity
from tutor.models import TutorSession

pytestmark = pytest.mark.django_db


def _refused(response, caplog, status: int, words: str) -> None:
    assert response.status_code == status, response.content[:800]
    page = response.content.decode()
    assert 'id="lti-refused"' in page and words in page, page[:1500]
    assert any(r.name == "tutor.lti.views" and r.levelno == logging.WARNING and "refused" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def _nothing_opened(client) -> None:
    assert "_auth_user_id" not in client.session
    assert not LtiIdentity.objects.exists() and not TutorSession.objects.exists()
    assert not get_user_model().objects.exists()


def _course(course) -> dict[str, str]:
    return {"tutor_course": course.slug}


@pytest.mark.parametrize("tamper, status, words", [
    ({"sign_with_other_key": True}, 403, "signature is not the platform"),
    ({"audience": "someone-elses-tool"}, 403, "not issued to this tool"),
    ({"audience": ["tutor-client", "someone-elses-tool"]}, 403, "not issued to this tool"),  # no azp
    ({"expires_in": -120}, 403, "expired"),
    ({"issuer": "https://unknown-lms.example"}, 403, "not issued to this tool"),
    ({"deployment_id": "deployment-unknown"}, 403, "deployment"),
    ({"drop_roles": True}, 400, "could not be verified"),
    ({"roles": []}, 403, "role in this LMS course is not one"),
    ({"roles": [MEMBERSHIP + "Mentor"]}, 403, "role in this LMS course is not one"),
    ({"roles": ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"]}, 403, "is not one"),
    ({"roles": ["urn:made-up:role"]}, 403, "is not one"),
])
def test_a_tampered_or_unservable_launch_is_refused(client, lms, registered, course, caplog, tamper, status, words):
    response = lti_launch(client, lms, Message(custom=_course(course), **tamper))
    _refused(response, caplog, status, words)
    _nothing_opened(client)


def test_a_replayed_launch_is_refused(client, lms, registered, course, caplog):
    action, fields = launch_form(client, lms, Message(custom=_course(course)))
    assert client.post(action, fields).status_code == 302
    client.logout()
    _refused(client.post(action, fields), caplog, 403, "already used")
    assert "_auth_user_id" not in client.session


def test_a_launch_from_another_browser_than_the_login_is_refused(client, lms, registered, course, caplog):
    from django.test import Client

    action, fields = launch_form(client, lms, Message(custom=_course(course)))
    stranger = Client()  # has not the state cookie of the login
    _refused(stranger.post(action, fields), caplog, 403, "did not come from a login this browser started")
    _nothing_opened(stranger)


def test_an_unknown_lms_is_refused_at_login(client, lms, registered, caplog):
    params = {**lms.login_params(Message()), "iss": "https://unknown-lms.example"}
    _refused(client.post("/lti/login/", params), caplog, 403, "not registered")
    params = {**lms.login_params(Message()), "client_id": "not-our-client"}
    _refused(client.get("/lti/login/", params), caplog, 403, "not registered")
    _refused(client.get("/lti/login/", {"login_hint": "x"}), caplog, 400, "missing its issuer")


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'"a string"', b"not json"])
def test_a_malformed_id_token_is_a_400_not_a_500(client, lms, registered, course, caplog, body):
    action, fields = launch_form(client, lms, Message(custom=_course(course)))
    header, _, signature = fields["id_token"].split(".")
    fields["id_token"] = ".".join([header, base64.urlsafe_b64encode(body).decode().rstrip("="), signature])
    response = client.post(action, fields)
    assert response.status_code == 400, response.content[:500]
    _nothing_opened(client)


def test_a_launch_that_is_not_a_jwt_is_a_400(client, lms, registered, course, caplog):
    action, fields = launch_form(client, lms, Message(custom=_course(course)))
    _refused(client.post(action, {**fields, "id_token": "not-a-jwt"}), caplog, 400, "could not be verified")
    _refused(client.post(action, {"state": fields["state"]}), caplog, 400, "could not be verified")


def test_a_student_cannot_use_the_teachers_content_picker(client, lms, registered, course, caplog):
    response = lti_launch(client, lms, Message(message_type="LtiDeepLinkingRequest", roles=LEARNER))
    _refused(response, caplog, 403, "Only a teacher")
    _nothing_opened(client)
    # nor answer the LMS's picker from an ordinary student session
    lti_launch(client, lms, Message(custom=_course(course)))
    forged = client.post("/lti/deep-link/", {"choice": course.slug})
    assert forged.status_code == 400 and lms.deep_link_responses == []


def test_a_link_to_a_course_the_tutor_does_not_have_is_a_404_page(client, lms, registered, course, caplog):
    _refused(lti_launch(client, lms, Message(custom={"tutor_course": "no-such-course"})), caplog, 404, "does not have")
    _refused(lti_launch(client, lms, Message(resource_link_id="unbound")), caplog, 404, "does not say which course")
    _nothing_opened(client)


def test_other_sites_may_not_frame_the_tool_outside_a_launch(client, lms, registered, alice, course):
    client.force_login(alice)
    page = client.get("/")
    assert page["X-Frame-Options"] == "DENY" and "Content-Security-Policy" not in page
    login = client.get("/lti/login/", lms.login_params(Message()))
    assert login["Content-Security-Policy"] == f"frame-ancestors {lms.base}"


def test_a_deactivated_platform_cannot_launch(client, lms, registered, course, caplog):
    registered.is_active = False
    registered.save()
    _refused(client.post("/lti/login/", lms.login_params(Message())), caplog, 403, "not registered")


def test_the_launch_page_does_not_need_a_csrf_token_but_the_picker_does(lms, registered, course):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/lti/launch/", {"id_token": "x", "state": "y"}).status_code in (400, 403)
    picker = strict.post("/lti/deep-link/", {"choice": course.slug})
    assert picker.status_code in (302, 403)  # login required, or CSRF: never answered
