"""Launches from an LMS (a platform on loopback, tests/lti/lms_stub.py) into a course or one concept, in an iframe
and a new window: who the user is, what role they get, where they land, and who may frame the pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from courses.models import Membership
from tests.lti.conftest import lti_launch
from tests.lti.lms_stub import INSTRUCTOR, TA, FakeLMS, Message
from tutor.lti.models import LtiIdentity, LtiResourceLink
from tutor.models import TutorSession

pytestmark = pytest.mark.django_db


def _user_of(sub: str, lms: FakeLMS):
    return LtiIdentity.objects.get(issuer=lms.issuer, subject=sub).user


def test_a_student_launch_in_an_iframe_enrols_them_and_opens_the_session(client, lms, registered, course):
    response = lti_launch(client, lms, Message(custom={"tutor_course": course.slug}))
    assert response.status_code == 302 and response["Location"] == f"/learn/{course.slug}/"
    user = _user_of("lms-user-1", lms)
    assert int(client.session["_auth_user_id"]) == user.pk
    assert Membership.objects.get(user=user, course=course).role == Membership.Role.STUDENT
    assert TutorSession.objects.filter(user=user, course=course).exists()
    # the launch, and then the session page, may be framed by this LMS only
    assert response["Content-Security-Policy"] == f"frame-ancestors {lms.base}"
    assert "X-Frame-Options" not in response
    page = client.get(f"/learn/{course.slug}/")
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == f"frame-ancestors {lms.base}" and "X-Frame-Options" not in page


def test_a_link_to_one_concept_in_a_new_window_lands_on_that_concept(client, lms, registered, course):
    response = lti_launch(client, lms, Message(custom={"tutor_course": course.slug, "tutor_concept": "b"},
                                               document_target="window", resource_link_id="link-b"))
    assert response.status_code == 302 and response["Location"] == f"/lti/learn/{course.slug}/concept/b/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"Concept B" in page.content and b'id="lti-practise"' in page.content
    link = LtiResourceLink.objects.get(resource_link_id="link-b")
    assert link.course == course and link.concept.slug == "b"


def test_a_second_launch_of_the_same_link_remembers_what_it_opens(client, lms, registered, course):
    lti_launch(client, lms, Message(custom={"tutor_course": course.slug}))
    client.logout()
    again = lti_launch(client, lms, Message(sub="lms-user-2", name="Grace Hopper"))  # no custom parameters now
    assert again.status_code == 302 and again["Location"] == f"/learn/{course.slug}/"


def test_a_teacher_lands_on_the_dashboard_as_faculty(client, lms, registered, course):
    response = lti_launch(client, lms, Message(sub="t-1", name="Prof Tee", roles=INSTRUCTOR,
                                               custom={"tutor_course": course.slug}))
    assert response.status_code == 302 and response["Location"] == f"/teach/{course.slug}/dashboard/"
    teacher = _user_of("t-1", lms)
    assert Membership.objects.get(user=teacher, course=course).role == Membership.Role.FACULTY
    assert not TutorSession.objects.filter(user=teacher).exists()
    assert client.get(response["Location"]).status_code == 200


def test_a_teaching_assistant_is_a_ta_of_the_course(client, lms, registered, course):
    lti_launch(client, lms, Message(sub="ta-1", roles=TA, custom={"tutor_course": course.slug}))
    assert Membership.objects.get(user=_user_of("ta-1", lms), course=course).role == Membership.Role.TA


def test_users_are_matched_by_issuer_and_subject_never_by_email(client, lms, registered, course):
    lti_launch(client, lms, Message(sub="a", email="same@school.example", custom={"tutor_course": course.slug}))
    client.logout()
    lti_launch(client, lms, Message(sub="b", email="same@school.example", custom={"tutor_course": course.slug}))
    client.logout()
    lti_launch(client, lms, Message(sub="a", email="changed@school.example", custom={"tutor_course": course.slug}))
    assert _user_of("a", lms) != _user_of("b", lms)
    assert LtiIdentity.objects.count() == 2 and get_user_model().objects.filter(lti_identity__isnull=False).count() == 2
    assert int(client.session["_auth_user_id"]) == _user_of("a", lms).pk
    assert _user_of("a", lms).email == ""  # the LMS's e-mail is never put on the account


def test_the_same_subject_at_another_lms_is_another_person(client, lms, registered, course):
    from tutor.lti import services

    other = FakeLMS(client_id="other-client").start()
    try:
        services.platform_register(**{**other.registration(), "name": "Other LMS"})
        other.tool_jwks = lms.tool_jwks
        lti_launch(client, lms, Message(sub="same-sub", custom={"tutor_course": course.slug}))
        client.logout()
        lti_launch(client, other, Message(sub="same-sub", custom={"tutor_course": course.slug}))
        assert LtiIdentity.objects.get(issuer=lms.issuer).user != LtiIdentity.objects.get(issuer=other.issuer).user
    finally:
        other.stop()


def test_an_lms_teacher_cannot_take_over_a_course_its_registration_does_not_list(client, lms, db, course,
                                                                                    other_course):
    from tutor.lti import selectors, services

    services.platform_register(**{**lms.registration(), "any_course": False, "courses": [other_course.slug]})
    lms.tool_jwks = selectors.jwks()
    refused = lti_launch(client, lms, Message(sub="t-9", roles=INSTRUCTOR, custom={"tutor_course": course.slug}))
    assert refused.status_code == 403 and b"not registered for the course" in refused.content
    assert "_auth_user_id" not in client.session
    assert not Membership.objects.filter(course=course, role=Membership.Role.FACULTY).exclude(
        user__username="prof").exists()
    allowed = lti_launch(client, lms, Message(sub="t-9", roles=INSTRUCTOR, resource_link_id="link-2",
                                              custom={"tutor_course": other_course.slug}))
    assert allowed.status_code == 302 and allowed["Location"] == f"/teach/{other_course.slug}/dashboard/"


@pytest.mark.slow
def test_launches_into_an_imported_course_and_one_of_its_concepts(client, lms, registered, shared_data):
    """Imported Intro Stats (never tuned on): a student's link to a concept whose slug the importer shortened with a
    hash, and the teacher's launch, land where they should."""
    from tests.conftest import oatutor_course

    stats = oatutor_course(shared_data, "openstax-introductory-stats")
    concept = next(c for c in stats.concepts.order_by("order") if len(c.slug) > 40 and c.items.exists())
    response = lti_launch(client, lms, Message(custom={"tutor_course": stats.slug, "tutor_concept": concept.slug},
                                               document_target="window", resource_link_id="link-stats"))
    assert response.status_code == 302 and response["Location"] == f"/lti/learn/{stats.slug}/concept/{concept.slug}/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and concept.title.encode() in page.content and b'id="lti-practise"' in page.content
    student = _user_of("lms-user-1", lms)
    assert Membership.objects.get(user=student, course=stats).role == Membership.Role.STUDENT
    assert client.get(f"/learn/{stats.slug}/").status_code == 200
    client.logout()
    teacher = lti_launch(client, lms, Message(sub="t-9", name="Prof Stats", roles=INSTRUCTOR,
                                              custom={"tutor_course": stats.slug}))
    assert teacher["Location"] == f"/teach/{stats.slug}/dashboard/"
    assert client.get(teacher["Location"]).status_code == 200
