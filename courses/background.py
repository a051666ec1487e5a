"""Start a Celery task without making the caller wait for it.

With a worker (REDIS_URL set, `CELERY_TASK_ALWAYS_EAGER` off) the task is queued for it. Without one (eager
Celery, the embedded default) it runs on a daemon thread of this process, so the page that started an import or
a reindex answers at once and shows the job's progress from its row, as it would with a worker. A thread is not a
queue: a job that dies with the process is left marked as running, and whoever reads its row must treat an old
one as stale. Tests and management commands set `TUTOR_BACKGROUND_INLINE` to run it before returning.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)
_THREAD_PREFIX = "job-"


def jobs_run_elsewhere() -> bool:
    """Whether a job started now runs after the caller returns (a worker, or a thread), not inside the call."""
    return not (settings.CELERY_TASK_ALWAYS_EAGER and settings.TUTOR_BACKGROUND_INLINE)


def task_start(task: Task, **kwargs: Any) -> None:
    """Run `task(**kwargs)` elsewhere: on a worker, or on a thread here when there is none."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.delay(**kwargs)
    elif settings.TUTOR_BACKGROUND_INLINE:
        task.apply(kwargs=kwargs, throw=True)
    else:
        threading.Thread(target=_run, args=(task, kwargs), name=f"{_THREAD_PREFIX}{task.name}", daemon=True).start()


def jobs_running() -> list[str]:
    """The jobs running on this process's threads, by task name."""
    return [t.name.removeprefix(_THREAD_PREFIX) for t in threading.enumerate() if t.name.startswith(_THREAD_PREFIX)]


def jobs_wait(timeout: float | None = 300.0) -> None:
    """Block until the jobs started on this process's threads have ended (tests, before their tables are emptied);
    `timeout` per job, None for as long as they take (a command must not end under one: the process aborts)."""
    for thread in threading.enumerate():
        if thread.name.startswith(_THREAD_PREFIX):
            thread.join(timeout=timeout)


def _run(task: Task, kwargs: dict[str, Any]) -> None:
    try:
        task.apply(kwargs=kwargs, throw=True)
    except Exception:
        # The job's own row records its failure for the page; a thread has nobody else to tell.
        log.exception("background job %s(%s) failed", task.name, kwargs)
    finally:
        connection.close()  # this thread's own connection
