"""How LTI work leaves the request that caused it. `mastery_changed` is called by `tutor.services` whenever a
student's knowledge state changes; `queue` is how `tutor.lti.services` hands the platform calls of a launch (the
roster, a line item) to Celery. Nothing here waits for an LMS: with a broker a task is one message to Redis;
embedded (eager Celery) it runs on this module's one background thread, so a slow or dead LMS never holds up an
answer or a launch.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from celery.exceptions import Retry
from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None  # eager mode only; made on first use


def mastery_changed(*, user_id: int, course_id: int) -> None:
    """Queue a grade push for this student and course once the caller's transaction commits (the caller knows the
    student came from a graded LMS link: `graded`). A failure to queue is logged, never raised into the session."""
    transaction.on_commit(partial(queue, "lti_grades_push_task", user_id=user_id, course_id=course_id), robust=True)


def graded(*, user_id: int, course_id: int) -> bool:
    """Whether a graded LMS link reaches this student in this course (asked when their knowledge record is made;
    a launch through a graded link marks an existing record)."""
    from tutor.lti.models import LtiGrade

    return LtiGrade.objects.filter(user_id=user_id, course_id=course_id).exists()


def queue(task_name: str, **kwargs: int) -> None:
    """Run the task `tutor.lti.tasks.<task_name>` elsewhere: a worker, or the background thread when eager."""
    from tutor.lti import tasks

    task = getattr(tasks, task_name)
    if task.app.conf.task_always_eager:
        _background().submit(_run_eagerly, task_name, kwargs).add_done_callback(_log_crash)
    else:
        task.delay(**kwargs)


def _background() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lti-tasks")
    return _pool


def _run_eagerly(task_name: str, kwargs: dict[str, int]) -> None:
    from tutor.lti import tasks

    try:
        getattr(tasks, task_name).apply(kwargs=kwargs, throw=True)
    except (Retry, *tasks.RETRIED) as exc:
        # Eager Celery would retry at once, which does nothing for an LMS that is down: one try here. A score not
        # sent goes with the next change of mastery; a roster or line item is asked for at the next launch. With
        # a worker (REDIS_URL) the task retries with backoff.
        log.warning("LTI task %s(%s) failed: %s", task_name, kwargs, exc)
    finally:
        close_old_connections()


def _log_crash(future: Future) -> None:
    exc = future.exception()
    if exc is not None:  # a bug, not the platform: nobody waits on this future, so say it here
        log.error("LTI task crashed", exc_info=exc)


def wait_idle(timeout: float = 30.0) -> None:
    """Block until the eager pushes queued so far have run (tests, and a clean process exit)."""
    if _pool is not None:
        marker: Future = _pool.submit(lambda: None)
        marker.result(timeout=timeout)
