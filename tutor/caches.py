"""Every per-process cache of course content, and the one rule that invalidates them.

A web process keeps, per course, what every student's action reads and nobody's action writes: the course model
the learner model is built on (`course_model`: graph, published items, parameters, teaching settings) and the
course's own rows (`course_rows`: the course, its concepts and items, typed settings). Both are kept until the
course's *content version* changes. That version is a token in the shared cache (Redis when REDIS_URL is set),
replaced after the commit of any change to a course, concept, item or prerequisite (`content_changed`, connected
once by `signals_connect`), so every process sees an edit: at once in the process that made it, within
`CONTENT_VERSION_TTL_S` in the others. What else a package keeps per process registers here: a listener for
content changes (`on_content_changed`: the TA-bot's reindex) and a way to forget (`on_clear`: the TA-bot's search
indexes, the refitted model's predictors, the answer checker's memo), so there is one rule and `clear()` forgets
everything (tests).

Item difficulty calibrated online (`courses.services.item_calibrate`, a queryset update) does not change the
version: a process keeps the difficulties it read until the content changes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from redis.exceptions import RedisError

from courses import selectors as course_selectors
from courses.models import Concept, Course, Item
from courses.params import CourseSettings
from learner_model.knowledge import BKTParams
from learner_model.policy import CourseModel, TeachingSettings
from learner_model.select import assessable_graph

log = logging.getLogger(__name__)

# How long a process trusts the content version it last read, so that an action costs no cache round trip. A
# change made in this process is seen at once (`content_changed` forgets the version); one made in another
# process within this many seconds.
CONTENT_VERSION_TTL_S = 1.0

T = TypeVar("T")

_versions: dict[int, tuple[float, str]] = {}  # course id -> (time.monotonic() when read from the cache, version)
_stores: list[dict[int, tuple[str, Any]]] = []  # each: course id -> (content version it was built at, value)
# called after a course's content changed, with its id, the model class saved and the fields it saved (None: all)
_listeners: list[Callable[[int, type, frozenset[str] | None], None]] = []
_forgetters: list[Callable[[], None]] = []


def per_content_version(build: Callable[[Course], T]) -> Callable[[Course], T]:
    """`build(course)`, kept per course until the course's content version changes: no query when nothing
    changed, and at most one shared-cache read a second."""
    store: dict[int, tuple[str, Any]] = {}
    _stores.append(store)

    def cached(course: Course) -> T:
        version = content_version(course.pk)  # read before the rows: a change committed meanwhile rebuilds again
        hit = store.get(course.pk)
        if hit is not None and hit[0] == version:
            return hit[1]  # type: ignore[no-any-return]
        value = build(course)
        store[course.pk] = (version, value)
        return value

    cached.__doc__ = build.__doc__
    return cached


def on_content_changed(listener: Callable[[int, type, frozenset[str] | None], None]) -> None:
    """Call `listener(course_id, model, update_fields)` when a change to a course's content is saved, inside the
    change's transaction (so that what it writes rolls back with the change, and it can act once per transaction
    with `transaction.on_commit`). Other processes' caches see the change through the content version."""
    _listeners.append(listener)


def on_clear(forget: Callable[[], None]) -> None:
    """Call `forget()` from `clear()`: a per-process cache kept elsewhere."""
    _forgetters.append(forget)


def clear() -> None:
    """Forget every per-process cache (tests; a process that must not trust what it read)."""
    _versions.clear()
    for store in _stores:
        store.clear()
    for forget in _forgetters:
        forget()


# --- the course as the session reads it ----------------------------------------------------------------


def teaching_settings(settings: CourseSettings) -> TeachingSettings:
    return TeachingSettings(band=settings.target_band, mastery=settings.mastery_threshold,
                            review_retention=settings.review_retention)


@per_content_version
def course_model(course: Course) -> CourseModel:
    """Graph (of the concepts with published items), published item bank, each concept's BKT parameters and the
    teaching settings."""
    rows = course_rows(course)
    items = []
    for concept in rows.concepts.values():
        items.extend(course_selectors.item_choices(concept=concept))
    graph = assessable_graph(course_selectors.concept_graph(course=rows.course), {i.concept for i in items})
    published = {i.id for i in items}
    worked = frozenset(str(pk) for pk, item in rows.items.items()
                       if str(pk) in published and course_selectors.worked_in_lesson(item=item))
    return CourseModel(graph=graph, items=tuple(items), params=dict(rows.params),
                       settings=teaching_settings(rows.settings), worked=worked)


@dataclass(frozen=True)
class CourseRows:
    """The course's own rows, as one process shares them between its students' actions (read-only)."""

    course: Course
    settings: CourseSettings
    concepts: dict[int, Concept]
    concepts_by_slug: dict[str, Concept]
    params: dict[str, BKTParams]  # concept slug -> its BKT parameters (its own, or the defaults)
    items: dict[int, Item]  # every item of the course, whatever its status, its `concept` loaded


@per_content_version
def course_rows(course: Course) -> CourseRows:
    """The course row (fresh: the caller's may be old), its settings, concepts and items."""
    fresh = course_selectors.course_get(pk=course.pk)
    concepts = {c.pk: c for c in course_selectors.course_concepts(course=fresh)}
    for concept in concepts.values():
        concept.course = fresh
    items = {}
    for item in course_selectors.course_items(course=fresh):
        item.concept = concepts[item.concept_id]
        items[item.pk] = item
    return CourseRows(course=fresh, settings=course_selectors.course_settings(course=fresh), concepts=concepts,
                      concepts_by_slug={c.slug: c for c in concepts.values()},
                      params={c.slug: course_selectors.concept_params(concept=c).effective_bkt
                              for c in concepts.values()},
                      items=items)


def course_item(course: Course, item_id: int) -> Item:
    """An item of the course, its concept loaded, from the rows (or the database, if it is newer than them)."""
    item = course_rows(course).items.get(item_id)
    return item if item is not None else course_selectors.item_get(pk=item_id)


# --- the content version -------------------------------------------------------------------------------


def _version_key(course_id: int) -> str:
    return f"course-content-version:{course_id}"


def content_version(course_id: int) -> str:
    """A token that changes whenever the course's content changes, shared by every process through the cache.

    If the cache is unreachable the token is new on every call, so everything is rebuilt from the database:
    slower, never stale."""
    now = time.monotonic()
    known = _versions.get(course_id)
    if known is not None and now - known[0] < CONTENT_VERSION_TTL_S:
        return known[1]
    key = _version_key(course_id)
    try:
        version = cache.get(key)
        if version is None:  # never changed since the cache started, or the cache lost it: start a token
            cache.add(key, uuid.uuid4().hex, timeout=None)
            version = cache.get(key)
    except RedisError as exc:
        log.warning("cache unavailable, rebuilding the course from the database: %s", exc)
        return uuid.uuid4().hex
    if version is None:  # a cache that keeps nothing (DummyCache): never trust what was built
        return uuid.uuid4().hex
    _versions[course_id] = (now, version)
    return str(version)


def content_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    """Receiver for saves and deletions of courses, concepts and items, and prerequisite changes."""
    action = kwargs.get("action")  # m2m_changed only: act once, after the prerequisites changed
    if action is not None and not action.startswith("post_"):
        return
    if isinstance(instance, Course):
        course_id = instance.pk
    elif isinstance(instance, Concept):
        course_id = instance.course_id
    else:  # an Item
        course_id = course_selectors.concept_course_id(concept_id=instance.concept_id)
    if course_id is None:
        return
    _versions.pop(course_id, None)
    update_fields = kwargs.get("update_fields")
    for listener in _listeners:
        listener(course_id, type(instance), frozenset(update_fields) if update_fields is not None else None)

    def bump() -> None:
        cache.set(_version_key(course_id), uuid.uuid4().hex, timeout=None)
        _versions.pop(course_id, None)

    # After the commit: a process rebuilding in between would otherwise keep the old rows under the new token.
    # Robust: the change is committed either way; a cache that is down is logged, not turned into a failed edit.
    transaction.on_commit(bump, robust=True)


def signals_connect() -> None:
    """Connect `content_changed` (once, from `TutorConfig.ready`)."""
    for model in (Course, Concept, Item):
        post_save.connect(content_changed, sender=model, dispatch_uid=f"course-content-save-{model.__name__}")
        post_delete.connect(content_changed, sender=model, dispatch_uid=f"course-content-delete-{model.__name__}")
    m2m_changed.connect(content_changed, sender=Concept.prerequisites.through, dispatch_uid="course-content-graph")
