"""Deep linking (a teacher picks a course or a concept in the LMS's "add external tool" dialog) and Names and
Roles (the class dashboard lists the LMS roster, including students who have not launched yet)."""

from __future__ import annotations

import pytest
import requests

from tests.lti.conftest import lti_launch
from tests.lti.lms_stub import INSTRUCTOR, LEARNER, TA, FakeLMS, Member, Message, form_of
from tutor.lti import hooks, selectors, services
from tutor.lti.models import LtiRosterMember

DL = "LtiDeepLinkingRequest"


def test_a_teacher_picks_a_concept_and_the_lms_gets_a_signed_link_with_a_gradebook_column(
        client, lms, registered, course):
    picker = lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, message_type=DL))
    assert picker.status_code == 200
    page = picker.content.decode()
    assert 'id="lti-picker"' in page and f'value="{course.slug}/b"' in page and "in a new window" in page
    assert picker["Content-Security-Policy"] == f"frame-ancestors {lms.base}"

    answer = client.post("/lti/deep-link/", {"choice": f"{course.slug}/b", "target": "window"})
    assert answer.status_code == 200
    action, fields = form_of(answer.content.decode())
    assert action == lms.base + "/deep_link_return"
    assert requests.post(action, data=fields, timeout=10).status_code == 200  # the browser returns to the LMS

    [response] = lms.deep_link_responses  # verified there with the tool's published key
    assert response["iss"] == "tutor-client" and response["aud"] == [lms.issuer]
    assert response["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert response["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-42"  # echoed unchanged
    [item] = response["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["type"] == "ltiResourceLink" and item["url"] == "http://testserver/lti/launch/"
    assert item["custom"] == {"tutor_course": course.slug, "tutor_concept": "b"} and "window" in item
    assert item["lineItem"]["scoreMaximum"] == 1 and item["lineItem"]["resourceId"] == f"{course.slug}/b"
    assert client.post("/lti/deep-link/", {"choice": course.slug}).status_code == 400  # answered once only

    # the LMS makes the link and its column; a student's launch of it lands on that concept
    line_item = lms.line_item_create("course-101", **item["lineItem"])
    client.logout()
    launch = lti_launch(client, lms, Message(sub="s-1", custom=item["custom"], line_item=line_item,
                                             document_target="window", resource_link_id="dl-link"))
    assert launch["Location"] == f"/lti/learn/{course.slug}/concept/b/"


def test_a_teacher_can_place_the_whole_course(client, lms, registered, course):
    lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, message_type=DL, deep_link_targets=["iframe"]))
    answer = client.post("/lti/deep-link/", {"choice": course.slug})
    action, fields = form_of(answer.content.decode())
    requests.post(action, data=fields, timeout=10)
    [item] = lms.deep_link_responses[0]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"] == {"tutor_course": course.slug} and "iframe" in item


def test_a_bad_pick_is_asked_again(client, lms, registered, course):
    lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, message_type=DL))
    again = client.post("/lti/deep-link/", {"choice": f"{course.slug}/no-such-concept"})
    assert again.status_code == 400 and b"Pick a course or one of its concepts" in again.content
    assert lms.deep_link_responses == []


@pytest.mark.django_db
def test_a_teaching_assistant_cannot_place_links(client, lms, registered, course):
    response = lti_launch(client, lms, Message(sub="ta-1", roles=TA, message_type=DL))
    assert response.status_code == 403


def _roster(lms: FakeLMS) -> None:
    lms.members = [Member("t-1", "Prof Tee", "tee@school.example", INSTRUCTOR),
                   Member("s-1", "Sam Student", "sam@school.example", LEARNER),
                   Member("s-2", "Noor Notyet", "noor@school.example", LEARNER),
                   Member("s-3", "Dropped Dan", "dan@school.example", LEARNER, status="Inactive")]


def _rows(page: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'data-roster="([^"]+)" data-launched="(yes|no)"', page))


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_lists_the_lms_roster_including_students_who_never_launched(client, lms, course):
    services.platform_register(**lms.registration())
    lms.tool_jwks = selectors.jwks()
    _roster(lms)
    student = client.__class__()
    lti_launch(student, lms, Message(sub="s-1", name="Sam Student", custom={"tutor_course": course.slug}))
    dashboard = lti_launch(client, lms, Message(sub="t-1", name="Prof Tee", roles=INSTRUCTOR,
                                                custom={"tutor_course": course.slug}))
    hooks.wait_idle()  # the teacher's launch asked the LMS for the roster, two members a page
    assert [c for c in lms.calls if c[1] == "/nrps/course-101"] == [("GET", "/nrps/course-101")] * 2
    page = client.get(dashboard["Location"]).content.decode()
    assert 'id="lms-roster"' in page
    assert _rows(page) == {"Prof Tee": "yes", "Sam Student": "yes", "Noor Notyet": "no", "Dropped Dan": "no"}
    assert "noor@school.example" in page and "not launched yet" in page and "(inactive)" in page

    # Noor leaves the LMS course; the teacher refreshes the roster from the dashboard
    lms.members = [m for m in lms.members if m.user_id != "s-2"]
    assert client.post(f"/lti/roster/{course.slug}/refresh/").status_code == 302
    hooks.wait_idle()
    assert "Noor Notyet" not in _rows(client.get(dashboard["Location"]).content.decode())
    assert student.post(f"/lti/roster/{course.slug}/refresh/").status_code == 403  # not for students


@pytest.mark.django_db(transaction=True)
def test_a_roster_the_lms_will_not_give_says_so_on_the_dashboard(client, lms, course):
    services.platform_register(**lms.registration())
    lms.tool_jwks = selectors.jwks()
    _roster(lms)
    lms.fail_next["nrps"] = 1
    dashboard = lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, custom={"tutor_course": course.slug}))
    hooks.wait_idle()
    page = client.get(dashboard["Location"]).content.decode()
    assert "Could not read the roster" in page and not LtiRosterMember.objects.exists()


def test_a_course_no_lms_links_to_has_no_roster_section(client, prof, course):
    client.force_login(prof)
    page = client.get(f"/teach/{course.slug}/dashboard/")
    assert page.status_code == 200 and b'id="lms-roster"' not in page.content


def test_the_picker_offers_only_the_courses_the_lms_is_registered_for(client, lms, db, course, other_course):
    from tutor.lti import selectors, services

    services.platform_register(**{**lms.registration(), "any_course": False, "courses": [other_course.slug]})
    lms.tool_jwks = selectors.jwks()
    page = lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, message_type=DL, deep_link_targets=["iframe"]))
    assert other_course.title.encode() in page.content and course.title.encode() not in page.content
    picked = client.post("/lti/deep-link/", {"choice": course.slug})  # not on offer: asked again
    assert picked.status_code == 400 and lms.deep_link_responses == []
