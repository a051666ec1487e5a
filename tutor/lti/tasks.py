"""Celery tasks for LTI. Thin: each calls one service. The platform's failures are retried with backoff; a task
that runs again is harmless (a score equal to the one sent is not sent again; the roster is replaced whole)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from tutor.lti import services
from tutor.lti.tool import ServiceError

RETRIED = (ServiceError, OperationalError, InterfaceError)  # the platform or our database failed: try again later


@shared_task(acks_late=True, autoretry_for=RETRIED, retry_backoff=2, retry_backoff_max=600, max_retries=8)
def lti_grades_push_task(*, user_id: int, course_id: int) -> int:
    """Send a student's changed mastery to the LMS gradebook."""
    return services.grades_push(user_id=user_id, course_id=course_id)


@shared_task(acks_late=True, autoretry_for=RETRIED, retry_backoff=5, retry_backoff_max=600, max_retries=4)
def lti_roster_sync_task(*, context_id: int) -> int:
    """Refresh an LMS course's roster from Names and Roles."""
    return services.roster_sync(context_id=context_id)


@shared_task(acks_late=True, autoretry_for=RETRIED, retry_backoff=5, retry_backoff_max=600, max_retries=6)
def lti_line_item_ensure_task(*, link_id: int) -> bool:
    """Find or create a link's gradebook column."""
    return services.line_item_ensure(link_id=link_id) is not None
