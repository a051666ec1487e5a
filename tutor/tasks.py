"""Celery tasks. Thin: each one loads its arguments and calls one service.

Answers from offline or mobile clients arrive in batches through `POST /api/learn/<course>/answers`
(`tutor/api_views.py`), one task per answer. Delivery is at least once: `acks_late` keeps the message until
the task finished, a worker killed mid-task (SIGKILL) leaves it to be redelivered (`reject_on_worker_lost`, or
the broker's visibility timeout when the whole worker died), and the service is idempotent on the answer's
`client_id`, so a redelivered answer is stored once.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from courses import selectors as course_selectors
from tutor import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=1, retry_backoff_max=30, max_retries=20)
def attempt_ingest_task(*, user_id: int, course_id: int, client_id: str, item_id: int, answer: str) -> dict:
    """Record one queued answer; a database outage is retried with backoff (the answer is not lost)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    course = course_selectors.course_find(pk=course_id)
    if user is None or course is None:  # the account or course was deleted while the answer waited
        log.info("dropping queued answer %s: user %s or course %s no longer exists", client_id, user_id, course_id)
        return {"client_id": client_id, "status": "dropped"}
    try:
        outcome = services.attempt_record(user=user, course=course, client_id=uuid.UUID(client_id),
                                          item_id=item_id, answer=answer, offline=True)
    except services.SessionError as exc:
        log.info("queued answer %s rejected: %s", client_id, exc)
        return {"client_id": client_id, "status": "rejected", "reason": str(exc)}
    return {"client_id": client_id, "status": "recorded", "correct": outcome.attempt.correct,
            "duplicate": outcome.check is None}
