"""Who may open what: every URL pattern and websocket route against seven kinds of visitor, every cell asserted.

Patterns are enumerated from the URL resolver, so a new page without a row here fails
`test_every_url_pattern_has_an_expectation` until someone decides who may see it.

Outcomes: "ok" (2xx, a redirect that is not a refusal, or 400/409/422 = past the door, the input was wrong),
"login" (redirect to the login page), "admin-login" (redirect to the admin's login), "home" (redirect to /),
or an exact refusal status: "401", "403", "404".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from courses.models import Item, Membership
from courses.services import membership_set
from tutor import services

ROLES = ("anon", "student", "other_student", "ta", "faculty", "other_faculty", "admin")


@dataclass(frozen=True)
class Row:
    method: str
    outcomes: dict[str, str]
    kwargs: dict[str, str] = field(default_factory=dict)  # placeholders: {course}, {item}, {other_item}, {job}
    data: dict[str, str] = field(default_factory=dict)


def _all(outcome: str, **overrides: str) -> dict[str, str]:
    return {role: overrides.get(role, outcome) for role in ROLES}


LOGGED_IN = _all("ok", anon="login")
PUBLIC = _all("ok")
# Course pages for its own enrolled students; others are sent home (no session), anonymous to log in.
ENROLLED = _all("home", anon="login", student="ok")
# /teach/<course>/... open to the course's faculty and TAs; 403 for everyone else logged in.
STAFF = _all("403", anon="login", ta="ok", faculty="ok")
FACULTY = _all("403", anon="login", faculty="ok")
# Anyone with a role in the course (student, TA, faculty); a missing object past that door is a 404.
MEMBERS = _all("403", anon="login", student="ok", ta="ok", faculty="ok")
MEMBERS_404 = _all("403", anon="login", student="404", ta="404", faculty="404")
C = {"slug": "{course}"}

EXPECTATIONS: dict[str, Row] = {
    "": Row("GET", PUBLIC),  # a visitor sees the landing page, a member their courses
    "favicon.ico": Row("GET", PUBLIC),
    "accounts/signup/": Row("GET", PUBLIC),
    "accounts/login/": Row("GET", PUBLIC),
    "accounts/logout/": Row("POST", _all("login")),  # logs out (if in) and shows the login page
    "accounts/password_change/": Row("GET", LOGGED_IN),
    "accounts/password_change/done/": Row("GET", LOGGED_IN),
    "accounts/password_reset/": Row("GET", PUBLIC),
    "accounts/password_reset/done/": Row("GET", PUBLIC),
    "accounts/reset/<uidb64>/<token>/": Row("GET", PUBLIC, {"uidb64": "MQ", "token": "bad-token"}),
    "accounts/reset/done/": Row("GET", PUBLIC),
    "account/": Row("GET", LOGGED_IN),
    "account/export/": Row("GET", LOGGED_IN),
    "account/delete/": Row("GET", LOGGED_IN),
    "courses/<slug:slug>/enroll/": Row("POST", LOGGED_IN, C),  # enrolment is open to anyone with an account
    "learn/<slug:slug>/": Row("GET", ENROLLED, C),
    "learn/<slug:slug>/map/": Row("GET", ENROLLED, C),
    # The TA-bot: the ask page like the session; a question id that is not yours (none here) is a 404 for everyone.
    "learn/<slug:slug>/ask/": Row("GET", ENROLLED, C),
    "learn/<slug:slug>/ask/<int:pk>/escalate/": Row("POST", _all("404", anon="login"), {"slug": "{course}", "pk": "999999"}),
    "learn/<slug:slug>/ask/<int:pk>/delete/": Row("POST", _all("404", anon="login"), {"slug": "{course}", "pk": "999999"}),
    # Where the TA's citations link: readable by anyone in the course (students, TAs, faculty).
    "learn/<slug:slug>/concept/<slug:concept>/": Row("GET", MEMBERS, {"slug": "{course}", "concept": "a"}),
    "learn/<slug:slug>/concept/<slug:concept>/items/<str:item>/": Row(
        "GET", MEMBERS, {"slug": "{course}", "concept": "a", "item": "algebra-a-num"}),
    "learn/<slug:slug>/faq/<int:pk>/": Row("GET", MEMBERS_404, {"slug": "{course}", "pk": "999999"}),
    "learn/<slug:slug>/documents/<int:pk>/": Row("GET", MEMBERS_404, {"slug": "{course}", "pk": "999999"}),
    "api/learn/<slug:slug>/answers": Row("POST", _all("403", anon="401", student="ok"), C),
    "teach/<slug:slug>/dashboard/": Row("GET", STAFF, C),
    "teach/<slug:slug>/dashboard.csv": Row("GET", STAFF, C),
    "teach/<slug:slug>/dashboard/key-ideas/": Row("GET", STAFF, C),
    # "What beginners ask" on a concept's authoring page: the course's faculty and TAs; no question 999999.
    "teach/<slug:slug>/concepts/<slug:concept>/beginners/": Row("GET", STAFF, {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/concepts/<slug:concept>/beginners/novice/": Row("POST", STAFF,
                                                                      {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/concepts/<slug:concept>/beginners/faq/<int:pk>/": Row(
        "POST", STAFF, {"slug": "{course}", "concept": "a", "pk": "999999"}),  # no answer given: told so, on the page
    "teach/<slug:slug>/questions/": Row("GET", STAFF, C),
    "teach/<slug:slug>/questions/<int:pk>/answer/": Row("POST", _all("403", anon="login", ta="404", faculty="404"),
                                                        {"slug": "{course}", "pk": "999999"}),
    "teach/<slug:slug>/questions/reindex/": Row("POST", STAFF, C),
    "teach/<slug:slug>/questions/documents/": Row("POST", STAFF, C),
    "teach/<slug:slug>/questions/documents/<int:pk>/delete/": Row("POST", STAFF, {"slug": "{course}", "pk": "999999"}),
    "teach/<slug:slug>/questions/documents/<int:pk>/confirm/": Row("POST", _all("403", anon="login", ta="404", faculty="404"),
                                                                   {"slug": "{course}", "pk": "999999"}),
    "teach/": Row("GET", LOGGED_IN),
    # Importing a course: faculty anywhere, and staff accounts (is_staff) such as the admin.
    "teach/import/": Row("GET", _all("403", anon="login", faculty="ok", other_faculty="ok", admin="ok")),
    # An import job is visible to the person who started it only (the course's faculty here).
    "teach/import/<int:pk>/": Row("GET", _all("404", anon="login", faculty="ok"), {"pk": "{job}"}),
    "teach/<slug:slug>/": Row("GET", STAFF, C),
    "teach/<slug:slug>/graph/edge/": Row("POST", FACULTY, C),
    "teach/<slug:slug>/graph/edge/remove/": Row("POST", FACULTY, C, {"concept": "b", "prerequisite": "a"}),
    "teach/<slug:slug>/graph/confirm/": Row("POST", FACULTY, C),
    "teach/<slug:slug>/settings/": Row("GET", FACULTY, C),
    "teach/<slug:slug>/concepts/new/": Row("GET", FACULTY, C),
    "teach/<slug:slug>/concepts/<slug:concept>/": Row("GET", FACULTY, {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/concepts/<slug:concept>/delete/": Row("POST", FACULTY, {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/concepts/<slug:concept>/generate/": Row("GET", FACULTY, {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/concepts/<slug:concept>/items/new/": Row("GET", STAFF, {"slug": "{course}", "concept": "a"}),
    "teach/<slug:slug>/items/<int:pk>/": Row("GET", STAFF, {"slug": "{course}", "pk": "{item}"}),
    "teach/<slug:slug>/items/<int:pk>/delete/": Row("POST", STAFF, {"slug": "{course}", "pk": "{item}"}),
    "teach/<slug:slug>/try/": Row("POST", STAFF, C),
    "teach/<slug:slug>/preview/": Row("POST", STAFF, C),
    "teach/<slug:slug>/review/": Row("GET", STAFF, C),
    "teach/<slug:slug>/review/<int:pk>/": Row("POST", STAFF, {"slug": "{course}", "pk": "{item}"}),
    "teach/<slug:slug>/history/": Row("GET", STAFF, C),
    # No version 999999: past the role check it is a 404; a refusal is a 403 before the lookup.
    "teach/<slug:slug>/history/<int:pk>/revert/": Row("POST", _all("403", anon="login", ta="404", faculty="404"),
                                                      {"slug": "{course}", "pk": "999999"}),
    "teach/<slug:slug>/export/": Row("GET", FACULTY, C),
    # Course figures are public like any static file; nothing outside the course media folder is served.
    "media/courses/<path:path>": Row("GET", _all("404"), {"path": "no-such-figure.png"}),
    # The model server's health: faculty, TAs and staff accounts.
    "status/": Row("GET", _all("403", anon="login", ta="ok", faculty="ok", other_faculty="ok", admin="ok")),
    # LTI (tutor/lti): what an LMS posts to is open (without its parameters, a 400); the keyset and Canvas's JSON
    # are public; the configuration page is the admin's; a concept link's page is for the course's members.
    "lti/login/": Row("GET", PUBLIC),
    "lti/launch/": Row("POST", PUBLIC),
    "lti/jwks/": Row("GET", PUBLIC),
    "lti/canvas.json": Row("GET", PUBLIC),
    "lti/configuration/": Row("GET", _all("admin-login", faculty="ok", other_faculty="ok", admin="ok")),  # is_staff
    "lti/deep-link/": Row("POST", LOGGED_IN),  # no content request from an LMS pending: a 400 for everyone
    "lti/learn/<slug:slug>/concept/<slug:concept>/": Row("GET", MEMBERS, {"slug": "{course}", "concept": "a"}),
    "lti/roster/<slug:slug>/refresh/": Row("POST", STAFF, C),
}
# Routes that answer a second method, each checked like the rows above. The batch API's status read (GET, no ids:
# a 400 past the door) has the same door as sending answers: another student's ids are refused with them.
SECOND_METHOD: dict[str, Row] = {
    "api/learn/<slug:slug>/answers": Row("GET", _all("403", anon="401", student="ok"), C),
}
# Django's admin checks staff status and model permissions itself; its patterns are covered by sampling below.
PREFIX_EXPECTATIONS = {"admin/": "sampled in test_admin_site_is_for_staff_with_permissions"}

WEBSOCKETS = {
    "ws/learn/<slug:slug>/": {"anon": False, "student": True, "other_student": False, "ta": False,
                              "faculty": False, "other_faculty": False, "admin": False},
    "ws/learn/<slug:slug>/ask/": {"anon": False, "student": True, "other_student": False, "ta": False,
                                  "faculty": False, "other_faculty": False, "admin": False},
}


def _patterns(patterns=None, prefix: str = ""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _covered(route: str) -> bool:
    return route in EXPECTATIONS or any(route.startswith(p) for p in PREFIX_EXPECTATIONS)


def test_every_url_pattern_has_an_expectation():
    missing = sorted({route for route in _patterns() if not _covered(route)})
    assert not missing, f"URL patterns without a row in EXPECTATIONS (decide who may open them): {missing}"
    stale = sorted((set(EXPECTATIONS) | set(SECOND_METHOD)) - set(_patterns()))
    assert not stale, f"rows for URL patterns that no longer exist: {stale}"
    assert all(SECOND_METHOD[r].method != EXPECTATIONS[r].method for r in SECOND_METHOD), "same method twice"


def test_every_websocket_route_has_an_expectation():
    from tutor.routing import websocket_urlpatterns

    routes = {str(p.pattern) for p in websocket_urlpatterns}
    assert routes == set(WEBSOCKETS), f"websocket routes and expectations differ: {routes ^ set(WEBSOCKETS)}"


@pytest.fixture
def people(db, course, other_course):
    users_model = get_user_model()

    def make(name: str, **extra):  # no password: force_login needs none, and hashing is slow
        return users_model.objects.create(username=f"m-{name}", **extra)

    people = {"anon": None}
    people["student"] = make("student")
    services.enrollment_create(user=people["student"], course=course)
    people["other_student"] = make("other-student")
    services.enrollment_create(user=people["other_student"], course=other_course)
    people["ta"] = make("ta")
    membership_set(user=people["ta"], course=course, role=Membership.Role.TA)
    people["faculty"] = make("faculty", is_staff=True)
    membership_set(user=people["faculty"], course=course, role=Membership.Role.FACULTY)
    people["other_faculty"] = make("other-faculty", is_staff=True)
    membership_set(user=people["other_faculty"], course=other_course, role=Membership.Role.FACULTY)
    people["admin"] = make("admin", is_staff=True, is_superuser=True)
    return people


def _outcome(response) -> str:
    code = response.status_code
    if code in (301, 302, 303):
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return "admin-login"
        if location.startswith("/accounts/login/"):
            return "login"
        if location == "/":
            return "home"
        return "ok"
    if code < 300 or code in (400, 409, 422):
        return "ok"
    return str(code)


def _url(route: str, row: Row, values: dict[str, str]) -> str:
    """The route with each <converter:name> replaced by the row's value for it."""
    url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: row.kwargs[m.group(1)].format(**values), route)
    resolve(url)  # a row whose values do not fit its route is a bug in this test
    return url


# Cells that are wrong today, with the reason; the test xfails on exactly these and fails on anything else.
# (Found and fixed: a TA could open teach/import/, by courses.views._may_import matching any course with faculty.)
KNOWN_HOLES: dict[tuple[str, str], str] = {}


def test_url_authorization_matrix(people, course, other_course):
    from courses.models import ImportJob

    job = ImportJob.objects.create(user=people["faculty"], filename="c.zip", format="folder", data=b"")
    values = {"course": course.slug, "item": str(Item.objects.filter(concept__course=course).first().pk),
              "job": str(job.pk)}
    clients = {}
    for role in ROLES:
        clients[role] = Client()
        if people[role] is not None:
            clients[role].force_login(people[role])
    wrong = {}
    for route, row in sorted(EXPECTATIONS.items()) + sorted(SECOND_METHOD.items()):
        url = _url(route, row, values)
        for role in ROLES:
            with transaction.atomic():  # each visitor sees the same data: nothing a POST changed survives
                client = clients[role]
                response = client.post(url, row.data) if row.method == "POST" else client.get(url)
                transaction.set_rollback(True)
            outcome = _outcome(response)
            if route == "accounts/logout/" and people[role] is not None:
                client.force_login(people[role])  # logging out ended the session: back in for the next rows
            if outcome != row.outcomes[role]:
                wrong[(route, role, row.method)] = \
                    f"{row.method} {url} as {role}: {outcome}, expected {row.outcomes[role]}"
    unexpected = {cell: msg for cell, msg in wrong.items() if cell[:2] not in KNOWN_HOLES}
    assert not unexpected, "\n".join(unexpected.values())
    if wrong:
        pytest.xfail("; ".join(f"{msg} ({KNOWN_HOLES[cell[:2]]})" for cell, msg in wrong.items()))


def test_faculty_cannot_reach_another_courses_items_through_their_own_course(people, course, other_course):
    client = Client()
    client.force_login(people["faculty"])
    foreign = Item.objects.filter(concept__course=other_course).first()
    assert client.get(f"/teach/{course.slug}/items/{foreign.pk}/").status_code == 404
    assert client.post(f"/teach/{course.slug}/review/{foreign.pk}/").status_code == 404
    assert client.post(f"/teach/{course.slug}/items/{foreign.pk}/delete/").status_code in (403, 404)
    assert Item.objects.filter(pk=foreign.pk).exists()


def test_admin_site_is_for_staff_with_permissions(people):
    from django.contrib import admin

    urls = ["/admin/"] + [f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry]
    for url in urls:
        for role in ROLES:
            client = Client()
            if people[role] is not None:
                client.force_login(people[role])
            outcome = _outcome(client.get(url))
            if role == "admin":
                expected = "ok"
            elif role in ("faculty", "other_faculty"):  # is_staff without model permissions
                expected = "ok" if url == "/admin/" else "403"
            else:
                expected = "admin-login"
            assert outcome == expected, f"{role} GET {url}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_authorization_matrix(people, course):
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from tutor.routing import websocket_urlpatterns

    del AuthMiddlewareStack  # the scope's user is set directly, as the auth middleware would
    app = URLRouter(websocket_urlpatterns)
    for route, expected in WEBSOCKETS.items():
        path = "/" + route.replace("<slug:slug>", course.slug)
        seen = {}
        for role in ROLES:
            communicator = WebsocketCommunicator(app, path)
            communicator.scope["user"] = people[role] or AnonymousUser()
            connected, _ = await communicator.connect()
            seen[role] = connected
            await communicator.disconnect()
        assert seen == expected, route
