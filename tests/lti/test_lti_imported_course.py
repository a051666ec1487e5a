"""The LTI flow on a real imported course (OATutor's OpenStax College Algebra), not only the small test course:
the content picker lists it, a student's launch into one of its concepts enrols them (placement first, as the
course asks), and their mastery of that concept reaches the LMS gradebook."""

from __future__ import annotations

import pytest

from tests.conftest import oatutor_course
from tests.lti.conftest import lti_launch
from tests.lti.lms_stub import INSTRUCTOR, Message
from tutor import selectors as tutor_selectors
from tutor.lti.models import LtiIdentity
from tutor.lti.tasks import lti_grades_push_task
from tutor.models import TutorSession
from tutor.services import concept_mastery

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def algebra(shared_data):
    return oatutor_course(shared_data, "openstax-college-algebra")


def test_an_imported_course_is_placed_launched_and_graded(client, lms, registered, algebra):
    concept = algebra.concepts.order_by("order")[3]
    picker = lti_launch(client, lms, Message(sub="t-1", roles=INSTRUCTOR, message_type="LtiDeepLinkingRequest"))
    assert f'value="{algebra.slug}/{concept.slug}"'.encode() in picker.content
    client.logout()

    response = lti_launch(client, lms, Message(custom={"tutor_course": algebra.slug, "tutor_concept": concept.slug},
                                               line_item=lms.line_item_create("course-101", label=concept.title)))
    assert response["Location"] == f"/lti/learn/{algebra.slug}/concept/{concept.slug}/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and concept.title.encode() in page.content
    student = LtiIdentity.objects.get(subject="lms-user-1").user
    session = TutorSession.objects.get(user=student, course=algebra)
    assert session.phase == TutorSession.Phase.PLACEMENT  # the imported course asks placement questions first
    assert client.get(f"/learn/{algebra.slug}/").status_code == 200

    assert lti_grades_push_task.apply(kwargs={"user_id": student.pk, "course_id": algebra.pk}).result == 1
    shown = concept_mastery(tutor_selectors.knowledge_state(user=student, course=algebra), algebra, concept.slug)
    assert lms.scores[0]["scoreGiven"] == pytest.approx(shown, abs=1e-4) and lms.scores[0]["userId"] == "lms-user-1"
