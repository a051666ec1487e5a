"""Registering an LMS with the tool (management command, admin), the tool's keys and their rotation, and the
configuration an LMS administrator pastes into Canvas or Moodle."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.lti.lms_stub import FakeLMS
from tutor.lti import selectors, services
from tutor.lti.models import LtiKey, LtiPlatform

pytestmark = pytest.mark.django_db


def _register_args(lms: FakeLMS) -> list[str]:
    reg = lms.registration()
    return ["--name", "Canvas test", "--issuer", reg["issuer"], "--client-id", reg["client_id"],
            "--deployment-id", "dep-1", "--deployment-id", "dep-2", "--keyset-url", reg["key_set_url"],
            "--login-url", reg["auth_login_url"], "--token-url", reg["auth_token_url"],
            "--frame-origin", "https://school.instructure.com"]


def test_the_command_registers_a_platform_once_and_prints_what_to_paste(lms):
    out = StringIO()
    call_command("lti_platform_register", *_register_args(lms), "--site", "https://tutor.example.edu", stdout=out)
    call_command("lti_platform_register", *_register_args(lms), "--deployment-id", "dep-3", stdout=StringIO())
    platform = LtiPlatform.objects.get()
    assert sorted(platform.deployments.values_list("deployment_id", flat=True)) == ["dep-1", "dep-2", "dep-3"]
    assert platform.framing_origins() == sorted([lms.base, "https://school.instructure.com"])
    text = out.getvalue()
    assert "login URL:  https://tutor.example.edu/lti/login/" in text
    assert "launch URL: https://tutor.example.edu/lti/launch/" in text
    assert "keyset URL: https://tutor.example.edu/lti/jwks/" in text
    assert LtiKey.objects.count() == 1  # the keyset has a key before the LMS first asks


def test_the_command_refuses_a_bad_url(lms):
    args = _register_args(lms)
    args[args.index("--keyset-url") + 1] = "not a url"
    with pytest.raises(CommandError, match="key_set_url"):
        call_command("lti_platform_register", *args, stdout=StringIO())
    assert not LtiPlatform.objects.exists()


def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published_for_a_while(client):
    first = services.key_active()
    assert client.get("/lti/jwks/").json()["keys"] == [first.public_jwk]
    out = StringIO()
    call_command("lti_key_rotate", stdout=out)
    second = services.key_active()
    assert second != first and second.kid in out.getvalue()
    published = {k["kid"] for k in client.get("/lti/jwks/").json()["keys"]}
    assert published == {first.kid, second.kid}
    LtiKey.objects.filter(pk=first.pk).update(retired_at=timezone.now() - selectors.RETIRED_KEY_PUBLISHED
                                              - timedelta(minutes=1))
    assert [k["kid"] for k in client.get("/lti/jwks/").json()["keys"]] == [second.kid]
    jwk = client.get("/lti/jwks/").json()["keys"][0]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig" and "d" not in jwk


def test_a_deep_linking_answer_verifies_against_the_published_keyset(lms, registered, course):
    from tutor.lti.tool import DeepLinkSettings

    services.key_rotate()
    answer = services.deep_link_answer(
        platform_id=registered.pk, deployment_id="deployment-1", launch_url="https://tutor.example.edu/lti/launch/",
        settings=DeepLinkSettings(return_url=lms.base + "/deep_link_return", accept_targets=("iframe",)),
        course_slug=course.slug)
    kid = jwt.get_unverified_header(answer.jwt)["kid"]
    assert kid == services.key_active().kid
    [jwk] = [k for k in selectors.jwks()["keys"] if k["kid"] == kid]
    body = jwt.decode(answer.jwt, jwt.algorithms.RSAAlgorithm.from_jwk(jwk), algorithms=["RS256"],
                      audience=lms.issuer)
    assert body["iss"] == registered.client_id


def test_the_configuration_page_is_for_staff_and_shows_the_urls_ready_to_paste(client, alice, lms, registered):
    client.force_login(alice)
    assert client.get("/lti/configuration/").status_code == 302  # to the admin login
    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    page = client.get("/lti/configuration/").content.decode()
    for url in ("http://testserver/lti/login/", "http://testserver/lti/launch/", "http://testserver/lti/jwks/",
                "http://testserver/lti/canvas.json", lms.issuer, "deployment-1"):
        assert url in page
    # the admin's platform page, and the keys without their private halves
    assert client.get(f"/admin/lti/ltiplatform/{registered.pk}/change/").status_code == 200
    assert client.get("/admin/lti/ltiplatform/add/").status_code == 200
    key_page = client.get(f"/admin/lti/ltikey/{services.key_active().pk}/change/").content.decode()
    assert "PRIVATE KEY" not in key_page


def test_canvas_reads_the_tools_json_configuration(client):
    config = client.get("/lti/canvas.json").json()
    assert config["oidc_initiation_url"] == "http://testserver/lti/login/"
    assert config["target_link_uri"] == "http://testserver/lti/launch/"
    assert config["public_jwk_url"] == "http://testserver/lti/jwks/"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    placements = config["extensions"][0]["settings"]["placements"]
    assert {p["placement"] for p in placements} == {"link_selection", "assignment_selection"}
    assert all(p["message_type"] == "LtiDeepLinkingRequest" for p in placements)
