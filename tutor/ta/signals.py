"""Reindex the TA's sources when course content changes: a listener of the one content-changed rule
(`tutor.caches.on_content_changed`), and of `courses.signals.course_imported`. It schedules
`ta_index_schedule`'s job, nothing more.

Only courses the TA has already indexed are scheduled on a change: a course never indexed is indexed when it is
imported, or by its first question. Many changes in one transaction schedule one reindex: the index row is marked
"queued" once, and a row already queued is left alone.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from courses.models import Concept, Course, Item
from tutor import caches
from tutor.models import TAIndex

# Fields whose change alters what the TA indexes (a difficulty calibration does not).
INDEXED_FIELDS: dict[type, set[str]] = {
    Concept: {"slug", "title", "lesson", "explanation"},
    Item: {"slug", "prompt", "choices", "hints", "solution", "status", "concept", "attribution"},
    Course: {"slug", "title"},
}


def content_changed(course_id: int, model: type, update_fields: frozenset[str] | None) -> None:
    if update_fields is not None and not (update_fields & INDEXED_FIELDS.get(model, set())):
        return
    marked = (TAIndex.objects.filter(course_id=course_id).exclude(status=TAIndex.Status.QUEUED)
              .update(status=TAIndex.Status.QUEUED, progress=0, message="Course content changed"))
    if marked:  # the first change of the transaction: one reindex once it has committed
        from courses.background import task_start
        from tutor.ta.tasks import ta_index_rebuild_task

        transaction.on_commit(lambda: task_start(ta_index_rebuild_task, course_id=course_id))


def course_imported(sender: type, course: Course, **kwargs: Any) -> None:
    """A course was (re)imported: index its texts now (a Celery worker, or a thread when there is none)."""
    from tutor.ta.services import ta_index_schedule

    ta_index_schedule(course=course)


def connect() -> None:
    from courses.signals import course_imported as imported

    imported.connect(course_imported, dispatch_uid="ta-index-course-imported")
    caches.on_content_changed(content_changed)
