"""Fixtures for the LTI tests: a platform on loopback (`lms`), registered with the tool (`registered`), and
`lti_launch`, which walks a browser (Django's test client) through the OIDC flow as an LMS sends it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.lti.lms_stub import FakeLMS, Message, form_of


@pytest.fixture
def lms() -> Iterator[FakeLMS]:
    from tutor.lti import hooks

    platform = FakeLMS().start()
    yield platform
    hooks.wait_idle()  # what the test queued talks to this platform, and to this test's database
    platform.stop()


@pytest.fixture
def registered(lms, db):
    from tutor.lti import selectors, services

    platform = services.platform_register(**lms.registration())
    lms.tool_jwks = selectors.jwks()
    return platform


@pytest.fixture(autouse=True)
def celery_eager():
    """Tasks run in-process even when REDIS_URL points Celery at a broker, unless a test starts a real worker."""
    from tutor.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def login_start(client, lms: FakeLMS, message: Message, **params: str):
    """The LMS sends the browser to the tool's login; the tool's cookie check page reloads itself with
    lti1p3_new_window=1 once it sees cookies work (what its script does), then redirects to the LMS."""
    login = {**lms.login_params(message), **params}
    check = client.post("/lti/login/", login)
    if check.status_code != 200:
        return check
    assert b"lti1p3-new-tab-link" in check.content  # the cookie check page
    return client.get("/lti/login/", {**login, "lti1p3_new_window": "1"})


def lti_launch(client, lms: FakeLMS, message: Message, **params: str):
    """Login initiation, the LMS's authorization endpoint, then the launch POST: the tool's final response."""
    redirect = login_start(client, lms, message, **params)
    assert redirect.status_code == 302, redirect.content[:500]
    answer = requests.get(redirect["Location"], timeout=10)  # the browser follows to the LMS
    assert answer.status_code == 200, answer.text
    action, fields = form_of(answer.text)
    return client.post(action, fields)


def launch_form(client, lms: FakeLMS, message: Message) -> tuple[str, dict[str, str]]:
    """The id_token form the LMS would POST (not posted yet): to post twice, or to tamper with."""
    redirect = login_start(client, lms, message)
    assert redirect.status_code == 302, redirect.content[:500]
    return form_of(requests.get(redirect["Location"], timeout=10).text)
