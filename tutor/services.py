"""The student session: enrolment and placement, the guess, the practice item, the graded answer, the next step.

Every write goes through here, inside a transaction. Consumers and views parse input and call one of these.
The learner model is called with plain dataclasses (`learner_model.placement`, `learner_model.policy`); this
module turns rows into them and persists what comes back:

    KnowledgeRecord.blob    the KnowledgeState (per-concept P(known)), read by the knowledge map and dashboards
    KnowledgeRecord.policy  the rest of the policy's LearnerState: review cards, concept in progress, recent items,
                            and the learned predictor's state (`model`, `model_version`) once a refit is in use

Item choice goes through the policy's predictor: the refitted model in use (tutor.learner_selectors), else BKT.
Every graded answer, placement included, updates it; a student whose stored predictor state belongs to an older
model version is replayed from their attempt log once, on the next load.
    TutorSession.placement  the placement diagnostic while it runs
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from redis.exceptions import RedisError

from courses import selectors as course_selectors
from courses.checking import CheckResult, check_answer
from courses.item_templates import Variant, instantiate
from courses.models import Concept, Course, Item, Membership
from courses.services import item_calibrate, membership_set
from learner_model.knowledge import BKTParams, KnowledgeState
from learner_model.placement import Placement, PlacementSettings
from learner_model.policy import (
    CourseModel,
    LearnedPredictor,
    LearnerState,
    Step,
    TeachingSettings,
    TutorPolicy,
    diagnostic_item,
)
from learner_model.review import DEFAULT_RETENTION, ReviewSchedule
from tutor.learner_selectors import course_predictor
from tutor.models import Attempt, Guess, KnowledgeRecord, TutorSession


class SessionError(ValueError):
    """The request does not fit the session's state (e.g. an answer for an item no longer on screen)."""


# --- the course as the learner model sees it ---------------------------------------------------------


def bkt_params(concept: Concept) -> BKTParams:
    raw = concept.extra.get("bkt") if isinstance(concept.extra, dict) else None
    return BKTParams(**raw) if raw else BKTParams()


def course_band(course: Course) -> tuple[float, float]:
    lo, hi = course.settings.get("target_band", [0.70, 0.85])
    return float(lo), float(hi)


def course_mastery(course: Course) -> float:
    return float(course.settings.get("mastery_threshold", 0.95))


log = logging.getLogger(__name__)

_MODELS: dict[int, tuple[str, CourseModel]] = {}  # course id -> (content version it was built at, model)
_VERSIONS: dict[int, tuple[float, str]] = {}  # course id -> (time.monotonic() when read from the cache, version)
# How long a process trusts the content version it last read, so that an action costs no cache round trip either
# (they were 14% of the busy time at 100 students). A change made in this process is seen at once (the receiver
# below forgets the version); one made in another process within this many seconds.
CONTENT_VERSION_TTL_S = 1.0


def _per_content_version(store: dict[int, tuple[str, Any]], course: Course, build: Callable[[], Any]) -> Any:
    """`build()` for this course, kept in `store` until the course's content version changes. No query when
    nothing changed, and at most one cache read a second (`course_content_version`)."""
    version = course_content_version(course.pk)  # read before the rows: a change committed meanwhile rebuilds again
    cached = store.get(course.pk)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = build()
    store[course.pk] = (version, value)
    return value


def course_model(course: Course) -> CourseModel:
    """Graph, published item bank and BKT parameters; cached per process until the course's content changes."""
    return _per_content_version(_MODELS, course, lambda: _course_model_build(course))


def _course_model_build(course: Course) -> CourseModel:
    concepts = list(course.concepts.all())
    items = []
    for concept in concepts:
        items.extend(course_selectors.item_choices(concept=concept))
    settings = Course.objects.values_list("settings", flat=True).get(pk=course.pk)  # the caller's row may be old
    return CourseModel(graph=tuple(course_selectors.concept_graph(course=course)), items=tuple(items),
                       params={c.slug: bkt_params(c) for c in concepts},
                       settings=TeachingSettings.from_course(settings))


@dataclass(frozen=True)
class CourseRows:
    """The course's own rows, as one process shares them between its students' actions (read-only)."""

    course: Course
    concepts: dict[int, Concept]
    concepts_by_slug: dict[str, Concept]
    items: dict[int, Item]  # every item of the course, whatever its status, its `concept` loaded


_ROWS: dict[int, tuple[str, CourseRows]] = {}  # course id -> (content version it was read at, rows)


def course_rows(course: Course) -> CourseRows:
    """The course row, its concepts and items; cached per process until the course's content changes, like
    `course_model`. An action takes its session's concept and item from here instead of joining them into its
    locked read: building that query and its rows was 15% of the server's CPU at 100 students."""
    return _per_content_version(_ROWS, course, lambda: _course_rows_build(course))


def _course_rows_build(course: Course) -> CourseRows:
    fresh = Course.objects.get(pk=course.pk)
    concepts = {c.pk: c for c in Concept.objects.filter(course=fresh)}
    for concept in concepts.values():
        concept.course = fresh
    items = {}
    for item in Item.objects.filter(concept__course=fresh):
        item.concept = concepts[item.concept_id]
        items[item.pk] = item
    return CourseRows(course=fresh, concepts=concepts, concepts_by_slug={c.slug: c for c in concepts.values()},
                      items=items)


def _row_item(course: Course, item_id: int) -> Item:
    item = course_rows(course).items.get(item_id)
    # an item added since the rows were read (another process's change, within CONTENT_VERSION_TTL_S)
    return item if item is not None else Item.objects.select_related("concept").get(pk=item_id)


def _content_version_key(course_id: int) -> str:
    return f"course-content-version:{course_id}"


def course_content_version(course_id: int) -> str:
    """A token that changes whenever the course's concepts, items, prerequisites or settings change (the signal
    receivers connected by `course_model_signals_connect`), shared by every process through the cache (Redis when REDIS_URL is set).

    Item difficulty calibrated online (`item_calibrate`, a queryset update) does not change it: a process keeps
    the difficulties it read until the content changes, as before. If the cache is unreachable the token is new
    on every call, so the model is rebuilt from the database: slower, never stale."""
    now = time.monotonic()
    known = _VERSIONS.get(course_id)
    if known is not None and now - known[0] < CONTENT_VERSION_TTL_S:
        return known[1]
    key = _content_version_key(course_id)
    try:
        version = cache.get(key)
        if version is None:  # never changed since the cache started, or the cache lost it: start a token
            cache.add(key, uuid.uuid4().hex, timeout=None)
            version = cache.get(key)
    except RedisError as exc:
        log.warning("cache unavailable, rebuilding the course model from the database: %s", exc)
        return uuid.uuid4().hex
    if version is None:  # a cache that keeps nothing (DummyCache): never trust a cached model
        return uuid.uuid4().hex
    _VERSIONS[course_id] = (now, version)
    return version


def _course_content_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    action = kwargs.get("action")  # m2m_changed only: act once, after the prerequisites changed
    if action is not None and not action.startswith("post_"):
        return
    if isinstance(instance, Course):
        course_id = instance.pk
    elif isinstance(instance, Concept):
        course_id = instance.course_id
    else:  # an Item
        course_id = Concept.objects.filter(pk=instance.concept_id).values_list("course_id", flat=True).first()
    if course_id is None:
        return
    _VERSIONS.pop(course_id, None)

    def bump() -> None:
        cache.set(_content_version_key(course_id), uuid.uuid4().hex, timeout=None)
        _VERSIONS.pop(course_id, None)

    # After the commit: a process rebuilding in between would otherwise keep the old rows under the new token.
    # Robust: the change is committed either way; a cache that is down is logged, not turned into a failed edit.
    transaction.on_commit(bump, robust=True)


def course_model_signals_connect() -> None:
    """Bump a course's content version whenever its content changes (called once, from `TutorConfig.ready`)."""
    for model in (Course, Concept, Item):
        post_save.connect(_course_content_changed, sender=model, dispatch_uid=f"course-model-save-{model.__name__}")
        post_delete.connect(_course_content_changed, sender=model,
                            dispatch_uid=f"course-model-delete-{model.__name__}")
    m2m_changed.connect(_course_content_changed, sender=Concept.prerequisites.through,
                        dispatch_uid="course-model-graph")


def _policy(course: Course) -> TutorPolicy:
    return TutorPolicy(course_model(course), predictor=course_predictor(course))


def _now() -> datetime:
    return datetime.now(UTC)


# --- knowledge: load and save the learner state ------------------------------------------------------


def knowledge_load(*, user: AbstractBaseUser, course: Course, for_update: bool = False) -> tuple[KnowledgeRecord, LearnerState]:
    qs = KnowledgeRecord.objects.select_for_update() if for_update else KnowledgeRecord.objects
    record, _ = qs.get_or_create(user=user, course=course)
    extra = record.policy or {}
    state = LearnerState(
        knowledge=KnowledgeState.from_blob(record.blob),
        reviews=ReviewSchedule.from_dict(extra["reviews"]) if extra.get("reviews")
        else ReviewSchedule(desired_retention=float(course.settings.get("review_retention", DEFAULT_RETENTION))),
        current=extra.get("current"), recent=list(extra.get("recent", [])),
        model=extra.get("model"), model_version=extra.get("model_version"),
    )
    predictor = course_predictor(course)
    if predictor is not None and state.model_version != predictor.version:
        _predictor_replay(state, predictor, user=user, course=course)
    return record, state


def _predictor_replay(state: LearnerState, predictor: LearnedPredictor, *, user: AbstractBaseUser,
                      course: Course) -> None:
    """Rebuild the predictor's state from the student's attempt log (a new model version is in use)."""
    state.model, state.model_version = None, predictor.version
    answers = (Attempt.objects.filter(user=user, concept__course=course).order_by("created_at", "id")
               .values_list("concept__slug", "item_id", "correct"))
    for concept, item, correct in answers:
        state.model = predictor.update(state.model, concept, str(item), correct)


def _knowledge_save(record: KnowledgeRecord, state: LearnerState) -> None:
    record.blob = state.knowledge.to_blob()
    record.policy = {"reviews": state.reviews.to_dict(), "current": state.current, "recent": state.recent,
                     "model": state.model, "model_version": state.model_version}
    record.save(update_fields=["blob", "policy", "updated_at"])


def _with_knowledge(session: TutorSession, record: KnowledgeRecord) -> TutorSession:
    """`session`, carrying the knowledge state as this transaction leaves it, for the stage the socket renders next
    (`stage_context`), which then reads no KnowledgeRecord. `record.blob` is the row's blob: as loaded, or as
    `_knowledge_save` last wrote it; parsed from it, the state is exactly what a read after the commit gives."""
    session.knowledge = KnowledgeState.from_blob(record.blob)
    return session


# --- enrolment and placement -------------------------------------------------------------------------


def placement_budget(course: Course) -> int:
    return int(course.settings.get("placement_questions", 15))


@transaction.atomic
def enrollment_create(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """Enrol a student (idempotent) and start the placement diagnostic, or teaching if the course has none."""
    if course_selectors.membership_role(user=user, course=course) is None:
        membership_set(user=user, course=course, role=Membership.Role.STUDENT)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    session, created = TutorSession.objects.get_or_create(user=user, course=course)
    if created:
        budget = placement_budget(course)
        if budget > 0 and course_model(course).items:
            session.placement = Placement(list(course_model(course).graph), course_model(course).params,
                                          PlacementSettings(max_questions=budget, seed=user.pk or 0)).to_dict()
            _placement_next(session, record)
        else:
            _teach_next(session, record, state)
        session.save()
    return _with_knowledge(session, record)


def _placement(session: TutorSession) -> Placement:
    model = course_model(session.course)
    return Placement.from_dict(session.placement, list(model.graph), model.params)


def _placement_next(session: TutorSession, record: KnowledgeRecord, placement: Placement | None = None) -> None:
    """Ask the next diagnostic question, or, when placement is over, seed the knowledge state and teach.

    `placement` is the session's placement when the caller has it already (rebuilding it replays every answer)."""
    placement = placement if placement is not None else _placement(session)
    concept = placement.next_question()
    model = course_model(session.course)
    if concept is None:
        state = LearnerState.from_placement(placement, model, _now())
        extra = record.policy or {}  # the predictor has seen the diagnostic answers (`_attempt_record`)
        state.model, state.model_version = extra.get("model"), extra.get("model_version")
        session.placement = None
        _knowledge_save(record, state)
        _teach_next(session, record, state)
        placed = sum(1 for s in model.graph if state.knowledge.mastery(s.slug) >= model.settings.mastery)
        session.reason = (f"Placement done after {placement.asked} questions: you already know {placed} of "
                          f"{len(model.graph)} concepts. " + session.reason)
        return
    items = model.items
    if any(asked == concept for asked, _, _ in placement.answers):  # asked again: another item, if it has one
        shown = {str(pk) for pk in Attempt.objects.filter(user_id=session.user_id, concept__course=session.course,
                                                            concept__slug=concept).values_list("item_id", flat=True)}
        items = tuple(i for i in model.items if i.concept == concept and i.id not in shown) or model.items
    choice = diagnostic_item(items, concept, model.params[concept])
    _show_item(session, _row_item(session.course, int(choice.id)), None, "placement")
    session.phase = TutorSession.Phase.PLACEMENT
    session.reason = (f"Placement question {placement.asked + 1} (at most {placement.settings.max_questions}): "
                      f"it tells the tutor what you already know, so you skip what you don't need.")


@transaction.atomic
def placement_skip(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """The student stops the diagnostic; the tutor works with what it learned so far."""
    session = _locked_session(user, course)
    if session.phase != TutorSession.Phase.PLACEMENT or not session.placement:
        return session
    placement = _placement(session)
    placement.stop()
    session.placement = placement.to_dict()
    record, _ = knowledge_load(user=user, course=course, for_update=True)
    _placement_next(session, record, placement)
    session.save()
    return _with_knowledge(session, record)


# --- teaching ----------------------------------------------------------------------------------------


def _show_item(session: TutorSession, item: Item, p: float | None, kind: str) -> None:
    session.concept = item.concept
    session.item = item
    session.item_p_correct = p
    session.step_kind = kind
    session.hints_shown = 0
    session.last_attempt = None
    session.step = uuid.uuid4()
    session.item_seed = session.step.int % 2**31  # a fresh variant of a template item each time it is shown


def _teach_next(session: TutorSession, record: KnowledgeRecord, state: LearnerState) -> None:
    """Ask the policy for the next step; introduce a new concept (pain first, guess, explanation) before practice."""
    step = _policy(session.course).next_step(state, _now())
    _knowledge_save(record, state)  # the policy remembers the concept in progress
    session.explanation = ""
    if step.kind == "done" or step.concept is None:
        session.concept, session.item, session.phase, session.reason = None, None, TutorSession.Phase.DONE, step.reason
        session.step = uuid.uuid4()
        return
    concept = session.concept if session.concept is not None and session.concept.slug == step.concept \
        else course_rows(session.course).concepts_by_slug.get(step.concept) or session.course.concepts.get(slug=step.concept)
    if step.kind == "learn" and concept.slug not in session.introduced:
        session.concept, session.item, session.last_attempt = concept, None, None
        session.phase = TutorSession.Phase.PAIN if concept.pain_first or concept.guess_first \
            else TutorSession.Phase.EXPLAIN
        session.reason = step.reason
        session.step = uuid.uuid4()
        return
    if step.item is None:
        raise SessionError(f"concept {concept.slug!r} has no published items")
    _show_item(session, _row_item(session.course, int(step.item)), step.p_correct, step.kind)
    session.phase = TutorSession.Phase.PRACTICE
    chance = f"about {round(100 * step.p_correct)}% chance you get this one right" if step.p_correct is not None else ""
    session.reason = f"{step.reason} {chance[:1].upper() + chance[1:]}." if chance else step.reason


def session_get(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    return TutorSession.objects.select_related("concept", "item", "last_attempt", "course").get(user=user, course=course)


def _locked_session(user: AbstractBaseUser, course: Course) -> TutorSession:
    """The student's session row, locked until the transaction ends; its course, concept and item come from the
    process's `course_rows`, not from joins."""
    session = TutorSession.objects.select_for_update().get(user=user, course=course)
    rows = course_rows(course)
    session.course = rows.course
    if session.concept_id is not None:
        concept = rows.concepts.get(session.concept_id)
        session.concept = concept if concept is not None else Concept.objects.get(pk=session.concept_id)
    if session.item_id is not None:
        session.item = _row_item(course, session.item_id)
    return session


@transaction.atomic
def guess_record(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, text: str) -> TutorSession:
    """Record the guess-first prediction and move on to the explanation. A resent guess is stored once.

    The student is never told a guess is wrong. When the course names the right guess (`Concept.guess_answer`) and
    the student picked one of the choices, the guess also counts, once, as weak evidence of prior knowledge."""
    session = _locked_session(user, course)
    if Guess.objects.filter(client_id=client_id).exists():
        return session
    if session.phase != TutorSession.Phase.PAIN or session.concept is None:
        return session  # a stale click from an earlier screen: nothing to do
    text = text.strip()[:500]
    if not text:
        raise SessionError("Commit to a guess first: any answer is fine, it's not graded.")
    Guess.objects.create(client_id=client_id, user=user, concept=session.concept, text=text)
    session.phase = TutorSession.Phase.EXPLAIN
    session.step = uuid.uuid4()
    session.save(update_fields=["phase", "step", "updated_at"])
    concept = session.concept
    if not concept.guess_answer or text not in {c.strip() for c in concept.guess_choices}:
        return session  # free text, or a course that does not say which guess is right: ungraded
    record, state = knowledge_load(user=user, course=course, for_update=True)
    step = Step("learn", concept.slug, None, None, False, "")
    _policy(course).record(state, step, text == concept.guess_answer.strip(), _now(), guess_first=True)
    _knowledge_save(record, state)
    return _with_knowledge(session, record)


@transaction.atomic
def explanation_store(*, user: AbstractBaseUser, course: Course, concept_id: int, text: str) -> None:
    """Keep the explanation that was streamed, so a reload shows it instead of generating it again."""
    TutorSession.objects.filter(user=user, course=course, concept_id=concept_id,
                                phase=TutorSession.Phase.EXPLAIN).update(explanation=text)


@transaction.atomic
def practice_start(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """From the explanation to a practice item at calibrated difficulty."""
    session = _locked_session(user, course)
    if step is not None and step != session.step:
        return session  # already moved on
    if session.phase != TutorSession.Phase.EXPLAIN or session.concept is None:
        return session
    session.introduced = sorted(set(session.introduced) | {session.concept.slug})
    record, state = knowledge_load(user=user, course=course, for_update=True)
    _teach_next(session, record, state)
    session.save()
    return _with_knowledge(session, record)


@transaction.atomic
def hint_reveal(*, user: AbstractBaseUser, course: Course, shown: int) -> TutorSession:
    """Show the next hint. `shown` is how many the page displayed, so a double click reveals one, not two."""
    session = _locked_session(user, course)
    if session.phase == TutorSession.Phase.PRACTICE and session.item and shown == session.hints_shown \
            and session.hints_shown < len(session.item.hints):
        session.hints_shown += 1
        session.save(update_fields=["hints_shown", "updated_at"])
    return session


def item_variant(item: Item, seed: int) -> Variant | None:
    """The concrete variant of a template item for this seed (prompt with numbers, key computed by sympy)."""
    if item.kind != Item.Kind.TEMPLATE:
        return None
    return instantiate(course_selectors.item_spec(item=item), seed)


def item_check(item: Item, answer: str, *, seed: int = 0) -> CheckResult:
    """Grade an answer to an item; a template item is graded against the variant the student saw."""
    variant = item_variant(item, seed)
    key = variant.answer if variant else item.answer
    variables = list(variant.variables) if variant else item.variables
    return check_answer(item.kind, key, answer, tolerance=item.tolerance, units=item.units or None,
                        variables=variables, accept=item.accept, feedback=item.feedback)


@dataclass(frozen=True)
class AttemptOutcome:
    attempt: Attempt
    check: CheckResult | None  # None when the attempt had already been recorded (a resend)
    mastered: bool
    # The live session as this answer left it, its concept, item, last attempt and course loaded (what
    # `session_get` would read, without the query) and its knowledge state (`session.knowledge`, what the stage's
    # mastery bar would read); None for a resend and for an answer recorded off screen.
    session: TutorSession | None = None


def attempt_record(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                   answer: str) -> AttemptOutcome:
    """Grade an answer, store it exactly once, and update the knowledge state (or the placement).

    Idempotent on `client_id`: a resent answer returns the stored attempt and changes nothing.
    An unreadable answer (bad syntax) raises SessionError and is not counted.
    """
    # Insert first: the unique client_id decides, so a new answer costs no look-up. A resend almost always finds
    # the session moved on (SessionError) and, rarely, the same item asked again (the insert fails and the whole
    # transaction rolls back); either way it gets the stored attempt, as a look-up beforehand would have given.
    try:
        with transaction.atomic():
            return _attempt_record(user, course, client_id, item_id, answer)
    except IntegrityError:
        # A resend, or the same client_id raced in on another connection and won: that one is the stored attempt.
        existing = Attempt.objects.select_related("item").get(client_id=client_id)
        return _outcome_for_existing(existing, user)
    except SessionError:
        existing = Attempt.objects.filter(client_id=client_id).select_related("item").first()
        if existing is None:
            raise
        return _outcome_for_existing(existing, user)


def attempt_ingest(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                   answer: str) -> AttemptOutcome:
    """An answer sent later, in a batch, by an offline or mobile client (through a Celery task).

    Graded against its own item, stored exactly once (idempotent on `client_id`, like `attempt_record`) and
    counted in the knowledge state. If the item is the one on screen in the live session, this is exactly
    `attempt_record`; otherwise the session stays where it is. An unknown item or unreadable answer raises
    SessionError.
    """
    existing = Attempt.objects.filter(client_id=client_id).select_related("item").first()
    if existing is not None:
        return _outcome_for_existing(existing, user)
    try:
        with transaction.atomic():
            # Locking the session serialises this student's writes, so knowledge updates never interleave.
            session = _locked_session(user, course)
            if session.phase == TutorSession.Phase.PRACTICE and session.item_id == item_id:
                return _attempt_record(user, course, client_id, item_id, answer)
            return _attempt_ingest_offscreen(user, course, client_id, item_id, answer)
    except IntegrityError:
        existing = Attempt.objects.select_related("item").get(client_id=client_id)
        return _outcome_for_existing(existing, user)


def _attempt_ingest_offscreen(user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                              answer: str) -> AttemptOutcome:
    item = Item.objects.select_related("concept").filter(
        pk=item_id, concept__course=course, status=Item.Status.PUBLISHED).first()
    if item is None:
        raise SessionError("unknown item")
    result = item_check(item, answer[:300])  # a template item answered offline is graded on variant 0
    if result.error:
        raise SessionError(result.error)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    step = Step(kind="learn", concept=item.concept.slug, item=str(item.pk), p_correct=None, in_band=False, reason="")
    _policy(course).record(state, step, result.correct, _now())
    mastery = state.knowledge.mastery(item.concept.slug)
    _knowledge_save(record, state)
    attempt = Attempt.objects.create(
        client_id=client_id, user=user, item=item, concept=item.concept, answer=answer[:300],
        normalized=result.normalized[:300], correct=result.correct, mastery_after=mastery,
        feedback=result.feedback,
    )
    return AttemptOutcome(attempt=attempt, check=result, mastered=mastery >= course_mastery(course))


def _outcome_for_existing(attempt: Attempt, user: AbstractBaseUser) -> AttemptOutcome:
    if attempt.user_id != user.pk:
        raise SessionError("unknown answer id")
    return AttemptOutcome(attempt=attempt, check=None, mastered=False)


def _attempt_record(user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                    answer: str) -> AttemptOutcome:
    session = _locked_session(user, course)
    if session.phase not in (TutorSession.Phase.PRACTICE, TutorSession.Phase.PLACEMENT) or session.item_id != item_id:
        raise SessionError("That question is no longer on screen.")
    item = session.item
    assert item is not None and session.concept is not None
    result = item_check(item, answer[:300], seed=session.item_seed)
    if result.error:
        raise SessionError(result.error)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    attempt = Attempt(client_id=client_id, user=user, item=item, concept=session.concept, answer=answer[:300],
                      normalized=result.normalized[:300], correct=result.correct, hints_used=session.hints_shown,
                      p_correct_before=session.item_p_correct, feedback=result.feedback)
    if session.phase == TutorSession.Phase.PLACEMENT:
        # A diagnostic answer moves the placement belief; teaching starts from it when placement ends.
        placement = _placement(session)
        # the difficulty the question was chosen by (the course model's, as teaching uses), not the row's: online
        # calibration moves the row, and a placement replayed in another process must weigh the answer the same
        placement.record(session.concept.slug, result.correct, difficulty=_model_difficulty(course, item))
        session.placement = placement.to_dict()
        policy = _policy(course)
        if policy.predictor is not None:
            policy.model_observe(state, session.concept.slug, str(item.pk), result.correct)
            _knowledge_save(record, state)
        attempt.save()
        _placement_next(session, record, placement)
        session.save()
        return AttemptOutcome(attempt=attempt, check=result, mastered=False, session=_with_knowledge(session, record))
    step = Step(kind=session.step_kind or "learn", concept=session.concept.slug, item=str(item.pk),
                p_correct=session.item_p_correct, in_band=False, reason="")
    _policy(course).record(state, step, result.correct, _now(), hints_used=session.hints_shown)
    mastery = state.knowledge.mastery(session.concept.slug)
    state.knowledge.concepts[session.concept.slug].last_seen = time.time()
    _knowledge_save(record, state)
    attempt.mastery_after = mastery
    attempt.save()
    if session.item_p_correct is not None and session.hints_shown == 0:
        item_calibrate(item_id=item.pk, predicted=session.item_p_correct, correct=result.correct)
    session.phase = TutorSession.Phase.FEEDBACK
    session.last_attempt = attempt
    session.step = uuid.uuid4()
    session.save(update_fields=["phase", "last_attempt", "step", "updated_at"])
    return AttemptOutcome(attempt=attempt, check=result, mastered=mastery >= course_mastery(course),
                          session=_with_knowledge(session, record))


def _model_difficulty(course: Course, item: Item) -> float:
    choice = next((i for i in course_model(course).items_by_concept.get(item.concept.slug, ()) if i.id == str(item.pk)),
                  None)
    return item.difficulty if choice is None else choice.difficulty  # an item published since the model was read


@transaction.atomic
def session_advance(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """After feedback: another item, a review, or, at mastery, the next concept, as the policy decides."""
    session = _locked_session(user, course)
    if step is not None and step != session.step:
        return session
    if session.phase not in (TutorSession.Phase.FEEDBACK, TutorSession.Phase.DONE):
        return session
    record, state = knowledge_load(user=user, course=course, for_update=True)
    _teach_next(session, record, state)
    session.save()
    return _with_knowledge(session, record)
