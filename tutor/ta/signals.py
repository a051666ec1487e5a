"""Reindex the TA's sources when course content changes. An edge: it schedules `ta_index_schedule`, nothing more.

Only courses the TA has already indexed are scheduled here: a course just imported is indexed by the first
question (or the Reindex button), so importing a course in a test does not load the embedding model. Many
changes in one transaction (an import) schedule one reindex: the index row is set to "queued" once, and a row
already queued is left alone (a rollback undoes the mark together with the changes).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from courses.models import Concept, Course, Item
from tutor.models import TAIndex

# Fields whose change alters what the TA indexes (a difficulty calibration does not).
INDEXED_FIELDS = {
    Concept: {"slug", "title", "lesson", "explanation"},
    Item: {"slug", "prompt", "choices", "hints", "solution", "status", "concept", "attribution"},
    Course: {"slug", "title"},
}


def _course_id(instance: Any) -> int | None:
    if isinstance(instance, Course):
        return instance.pk
    if isinstance(instance, Concept):
        return instance.course_id
    if isinstance(instance, Item):
        return Concept.objects.filter(pk=instance.concept_id).values_list("course_id", flat=True).first()
    return None


def content_changed(sender: type, instance: Any, update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
    if update_fields is not None and not (set(update_fields) & INDEXED_FIELDS[sender]):
        return
    course_id = _course_id(instance)
    if course_id is None:
        return
    marked = (TAIndex.objects.filter(course_id=course_id).exclude(status=TAIndex.Status.QUEUED)
              .update(status=TAIndex.Status.QUEUED, progress=0, message="Course content changed"))
    if marked:
        from django.db import transaction

        from courses.background import task_start
        from tutor.ta.tasks import ta_index_rebuild_task

        transaction.on_commit(lambda: task_start(ta_index_rebuild_task, course_id=course_id))


def course_imported(sender: type, course: Course, **kwargs: Any) -> None:
    """A course was (re)imported: index its texts now (a Celery worker, or inline when Celery runs eagerly)."""
    from tutor.ta.services import ta_index_schedule

    ta_index_schedule(course=course)


def connect() -> None:
    from courses.signals import course_imported as imported

    imported.connect(course_imported, dispatch_uid="ta-index-course-imported")
    for model in (Course, Concept, Item):
        post_save.connect(content_changed, sender=model, dispatch_uid=f"ta-reindex-save-{model.__name__}")
        post_delete.connect(content_changed, sender=model, dispatch_uid=f"ta-reindex-delete-{model.__name__}")
