"""Celery task for the TA-bot's index. Thin: load the course, call the service. Registered from TutorConfig.ready."""

from __future__ import annotations

import logging

from celery import shared_task

from courses import selectors as course_selectors
from tutor.ta import services as ta_services

log = logging.getLogger(__name__)


@shared_task(name="tutor.ta_index_rebuild", acks_late=True)
def ta_index_rebuild_task(*, course_id: int) -> dict[str, int] | None:
    """Reindex one course's texts incrementally; progress is kept on its TAIndex row for the faculty page."""
    course = course_selectors.course_find(pk=course_id)
    if course is None:  # deleted while the task waited
        log.info("dropping TA reindex of course %s: it no longer exists", course_id)
        return None
    return ta_services.ta_index_rebuild(course=course).as_dict()
