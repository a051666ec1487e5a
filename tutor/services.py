"""The student session: enrolment, the guess, the practice item, the graded answer, the next step.

Every write goes through here, inside a transaction. Consumers and views parse input and call one of these.
The learner model is called with plain dataclasses; this module turns rows into them and persists the result.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from courses import selectors as course_selectors
from courses.checking import CheckResult, check_answer
from courses.models import Concept, Course, Item, Membership
from courses.services import membership_set
from learner_model.knowledge import BKTParams, KnowledgeState, observe
from learner_model.select import choose_item, next_concept
from tutor.models import Attempt, Guess, KnowledgeRecord, TutorSession

# An answer given after k hints is weaker evidence of knowing: weight 1, 0.6, 0.35, 0.2 ...
HINT_EVIDENCE_WEIGHT = (1.0, 0.6, 0.35, 0.2)


class SessionError(ValueError):
    """The request does not fit the session's state (e.g. an answer for an item no longer on screen)."""


def bkt_params(concept: Concept) -> BKTParams:
    raw = concept.extra.get("bkt") if isinstance(concept.extra, dict) else None
    return BKTParams(**raw) if raw else BKTParams()


def course_band(course: Course) -> tuple[float, float]:
    lo, hi = course.settings.get("target_band", [0.70, 0.85])
    return float(lo), float(hi)


def course_mastery(course: Course) -> float:
    return float(course.settings.get("mastery_threshold", 0.95))


def knowledge_load(*, user: AbstractBaseUser, course: Course, for_update: bool = False) -> tuple[KnowledgeRecord, KnowledgeState]:
    qs = KnowledgeRecord.objects.select_for_update() if for_update else KnowledgeRecord.objects
    record, _ = qs.get_or_create(user=user, course=course)
    return record, KnowledgeState.from_blob(record.blob)


@transaction.atomic
def enrollment_create(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """Enrol a student (idempotent) and open their session on the first concept the tutor picks."""
    if course_selectors.membership_role(user=user, course=course) is None:
        membership_set(user=user, course=course, role=Membership.Role.STUDENT)
    KnowledgeRecord.objects.get_or_create(user=user, course=course)
    session, created = TutorSession.objects.get_or_create(user=user, course=course)
    if created:
        _choose_concept(session, KnowledgeState.from_blob(""))
        session.save()
    return session


def _choose_concept(session: TutorSession, state: KnowledgeState) -> None:
    course = session.course
    graph = course_selectors.concept_graph(course=course)
    current = session.concept.slug if session.concept else None
    decision = next_concept(graph, state, course_mastery(course), BKTParams(), current=current)
    session.reason = decision.reason
    session.item = None
    session.item_p_correct = None
    session.hints_shown = 0
    session.last_attempt = None
    session.explanation = ""
    session.step = uuid.uuid4()
    if decision.concept is None:
        session.concept = None
        session.phase = TutorSession.Phase.DONE
    else:
        session.concept = course_selectors.concept_get(course=course, slug=decision.concept)
        session.phase = TutorSession.Phase.PAIN if session.concept.pain_first or session.concept.guess_first \
            else TutorSession.Phase.EXPLAIN


def _choose_item(session: TutorSession, state: KnowledgeState) -> None:
    concept = session.concept
    assert concept is not None
    params = bkt_params(concept)
    recent = set(Attempt.objects.filter(user=session.user, concept=concept)
                 .order_by("-created_at").values_list("item_id", flat=True)[:3])
    choices = course_selectors.item_choices(concept=concept)
    exclude = frozenset(str(pk) for pk in recent) if len(choices) > len(recent) else frozenset()
    decision = choose_item(choices, state.mastery(concept.slug, params), params, course_band(session.course), exclude)
    if decision is None:
        raise SessionError(f"concept {concept.slug!r} has no published items")
    session.item = Item.objects.get(pk=int(decision.item))
    session.item_p_correct = decision.p_correct
    session.hints_shown = 0
    session.phase = TutorSession.Phase.PRACTICE
    session.step = uuid.uuid4()
    session.reason = (f"This one should be a fair challenge: about {round(decision.p_correct * 100)}% "
                      f"chance you get it right.")


def session_get(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    return TutorSession.objects.select_related("concept", "item", "last_attempt", "course").get(user=user, course=course)


def _locked_session(user: AbstractBaseUser, course: Course) -> TutorSession:
    return TutorSession.objects.select_for_update(of=("self",)).select_related("concept", "item", "course").get(user=user, course=course)


@transaction.atomic
def guess_record(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, text: str) -> TutorSession:
    """Record the guess-first prediction and move on to the explanation. A resent guess is stored once."""
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
    return session


@transaction.atomic
def explanation_store(*, user: AbstractBaseUser, course: Course, concept_id: int, text: str) -> None:
    """Keep the explanation that was streamed, so a reload shows it instead of generating it again."""
    TutorSession.objects.filter(user=user, course=course, concept_id=concept_id,
                                phase=TutorSession.Phase.EXPLAIN).update(explanation=text)


@transaction.atomic
def practice_start(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """From the explanation (or after feedback) to a practice item at calibrated difficulty."""
    session = _locked_session(user, course)
    if step is not None and step != session.step:
        return session  # already moved on
    if session.phase not in (TutorSession.Phase.EXPLAIN, TutorSession.Phase.FEEDBACK):
        return session
    _, state = knowledge_load(user=user, course=course)
    _choose_item(session, state)
    session.save()
    return session


@transaction.atomic
def hint_reveal(*, user: AbstractBaseUser, course: Course, shown: int) -> TutorSession:
    """Show the next hint. `shown` is how many the page displayed, so a double click reveals one, not two."""
    session = _locked_session(user, course)
    if session.phase == TutorSession.Phase.PRACTICE and session.item and shown == session.hints_shown \
            and session.hints_shown < len(session.item.hints):
        session.hints_shown += 1
        session.save(update_fields=["hints_shown", "updated_at"])
    return session


@dataclass(frozen=True)
class AttemptOutcome:
    attempt: Attempt
    check: CheckResult | None  # None when the attempt had already been recorded (a resend)
    mastered: bool


def attempt_record(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                   answer: str) -> AttemptOutcome:
    """Grade an answer, store it exactly once, and update the knowledge state.

    Idempotent on `client_id`: a resent answer returns the stored attempt and changes nothing.
    An unreadable answer (bad syntax) raises SessionError and is not counted.
    """
    existing = Attempt.objects.filter(client_id=client_id).select_related("item").first()
    if existing is not None:
        return _outcome_for_existing(existing, user)
    try:
        with transaction.atomic():
            return _attempt_record(user, course, client_id, item_id, answer)
    except IntegrityError:
        # The same client_id raced in on another connection and won: that one is the stored attempt.
        existing = Attempt.objects.select_related("item").get(client_id=client_id)
        return _outcome_for_existing(existing, user)


def _outcome_for_existing(attempt: Attempt, user: AbstractBaseUser) -> AttemptOutcome:
    if attempt.user_id != user.pk:
        raise SessionError("unknown answer id")
    return AttemptOutcome(attempt=attempt, check=None, mastered=False)


def _attempt_record(user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                    answer: str) -> AttemptOutcome:
    session = _locked_session(user, course)
    if session.phase != TutorSession.Phase.PRACTICE or session.item_id != item_id:
        raise SessionError("That question is no longer on screen.")
    item = session.item
    assert item is not None and session.concept is not None
    result = check_answer(item.kind, item.answer, answer[:300], tolerance=item.tolerance,
                          units=item.units or None, variables=item.variables, accept=item.accept,
                          feedback=item.feedback)
    if result.error:
        raise SessionError(result.error)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    params = bkt_params(session.concept)
    weight = HINT_EVIDENCE_WEIGHT[min(session.hints_shown, len(HINT_EVIDENCE_WEIGHT) - 1)]
    concept_state = observe(state, session.concept.slug, result.correct, params, weight=weight, at=time.time())
    record.blob = state.to_blob()
    record.save(update_fields=["blob", "updated_at"])
    attempt = Attempt.objects.create(
        client_id=client_id, user=user, item=item, concept=session.concept, answer=answer[:300],
        normalized=result.normalized[:300], correct=result.correct, hints_used=session.hints_shown,
        p_correct_before=session.item_p_correct, mastery_after=concept_state.p_known, feedback=result.feedback,
    )
    session.phase = TutorSession.Phase.FEEDBACK
    session.last_attempt = attempt
    session.step = uuid.uuid4()
    session.save(update_fields=["phase", "last_attempt", "step", "updated_at"])
    mastered = concept_state.p_known >= course_mastery(course)
    return AttemptOutcome(attempt=attempt, check=result, mastered=mastered)


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
    result = check_answer(item.kind, item.answer, answer[:300], tolerance=item.tolerance,
                          units=item.units or None, variables=item.variables, accept=item.accept,
                          feedback=item.feedback)
    if result.error:
        raise SessionError(result.error)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    concept_state = observe(state, item.concept.slug, result.correct, bkt_params(item.concept), at=time.time())
    record.blob = state.to_blob()
    record.save(update_fields=["blob", "updated_at"])
    attempt = Attempt.objects.create(
        client_id=client_id, user=user, item=item, concept=item.concept, answer=answer[:300],
        normalized=result.normalized[:300], correct=result.correct, mastery_after=concept_state.p_known,
        feedback=result.feedback,
    )
    return AttemptOutcome(attempt=attempt, check=result, mastered=concept_state.p_known >= course_mastery(course))


@transaction.atomic
def session_advance(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """After feedback: another item on this concept, or, at mastery, on to the next concept."""
    session = _locked_session(user, course)
    if step is not None and step != session.step:
        return session
    if session.phase != TutorSession.Phase.FEEDBACK:
        return session
    _, state = knowledge_load(user=user, course=course)
    assert session.concept is not None
    if state.mastery(session.concept.slug, bkt_params(session.concept)) >= course_mastery(course):
        _choose_concept(session, state)
    else:
        _choose_item(session, state)
    session.save()
    return session
