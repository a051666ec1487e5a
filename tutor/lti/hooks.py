"""How the student session tells LTI that a student's mastery may have changed: `mastery_changed`, called by
`tutor.services` whenever it saves a knowledge state. The grade push is queued after the commit and never waited
for: with a broker it is one message to Redis; embedded (eager Celery) the task runs on this module's one
background thread, so a slow or dead LMS never holds up an answer.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None  # eager mode only; made on first use


def mastery_changed(*, user_id: int, course_id: int) -> None:
    """Queue a grade push for this student and course once the caller's transaction commits, if the student came
    from an LMS link that is graded. A failure to queue is logged, never raised into the session."""
    transaction.on_commit(partial(_queue, user_id, course_id), robust=True)


def _queue(user_id: int, course_id: int) -> None:
    from tutor.lti.models import LtiGrade
    from tutor.lti.tasks import lti_grades_push_task

    if not LtiGrade.objects.filter(user_id=user_id, course_id=course_id).exists():
        return
    if lti_grades_push_task.app.conf.task_always_eager:
        _background().submit(_push_eagerly, user_id, course_id)
    else:
        lti_grades_push_task.delay(user_id=user_id, course_id=course_id)


def _background() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lti-grades")
    return _pool


def _push_eagerly(user_id: int, course_id: int) -> None:
    from tutor.lti.tasks import lti_grades_push_task

    try:
        lti_grades_push_task.delay(user_id=user_id, course_id=course_id)  # eager: runs here, retries included
    except Exception:
        # This thread has no caller to raise to; the score stays unsent and goes with the next change.
        log.exception("LTI grade push for user %s in course %s failed", user_id, course_id)
    finally:
        close_old_connections()


def wait_idle(timeout: float = 30.0) -> None:
    """Block until the eager pushes queued so far have run (tests, and a clean process exit)."""
    if _pool is not None:
        marker: Future = _pool.submit(lambda: None)
        marker.result(timeout=timeout)
