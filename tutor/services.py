"""The student session: enrolment and placement, the guess, the practice item, the graded answer, the next step.

Every write goes through here, inside a transaction. Consumers and views parse input and call one of these.
The learner model is called with plain dataclasses (`learner_model.placement`, `learner_model.policy`); this
module turns rows into them and persists what comes back:

    KnowledgeRecord.blob    the KnowledgeState (per-concept P(known)), read by the knowledge map and dashboards
    KnowledgeRecord.policy  the rest of the policy's LearnerState: review cards, concept in progress, recent items,
                            and the learned predictor's state (`model`, `model_version`) once a refit is in use

Item choice goes through the policy's predictor: the refitted model in use (tutor.learner.selectors), else BKT.
Every graded answer, placement included, updates it; a student whose stored predictor state belongs to an older
model version is replayed from their attempt log once, on the next load.
    TutorSession.placement  the placement diagnostic while it runs
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from courses import selectors as course_selectors
from courses.checking import CheckResult, check_answer
from courses.item_templates import TemplateError, Variant, instantiate
from courses.models import Course, Item, Membership
from courses.params import CourseSettings
from courses.services import item_calibrate, membership_set
from learner_model.knowledge import KnowledgeState
from learner_model.placement import Placement, PlacementSettings
from learner_model.policy import (
    LearnedPredictor,
    LearnerState,
    Step,
    TutorPolicy,
    by_last_answer,
    diagnostic_item,
)
from learner_model.review import ReviewSchedule
from tutor.caches import course_item, course_model, course_rows
from tutor.learner.selectors import course_predictor
from tutor.lti import hooks as lti_hooks
from tutor.models import Attempt, Guess, KnowledgeRecord, TutorSession


class SessionError(ValueError):
    """The request does not fit the session's state (e.g. an answer for an item no longer on screen)."""


# --- the course as the learner model sees it ---------------------------------------------------------


def concept_mastery(knowledge: KnowledgeState, course: Course, slug: str) -> float:
    """The student's mastery of one concept, as every page shows it (P(known) by the concept's own parameters)."""
    params = course_rows(course).params.get(slug)
    return knowledge.mastery(slug, params)


def course_settings(course: Course) -> CourseSettings:
    return course_rows(course).settings


log = logging.getLogger(__name__)


def _policy(course: Course) -> TutorPolicy:
    return TutorPolicy(course_model(course), predictor=course_predictor(course))


def _now() -> datetime:
    return datetime.now(UTC)


# --- knowledge: load and save the learner state ------------------------------------------------------


def knowledge_load(*, user: AbstractBaseUser, course: Course, for_update: bool = False) -> tuple[KnowledgeRecord, LearnerState]:
    qs = KnowledgeRecord.objects.select_for_update() if for_update else KnowledgeRecord.objects
    record, _ = qs.get_or_create(user=user, course=course, defaults={
        "lms_graded": partial(lti_hooks.graded, user_id=user.pk, course_id=course.pk)})  # asked on creation only
    extra = record.policy or {}
    state = LearnerState(
        knowledge=KnowledgeState.from_blob(record.blob),
        reviews=ReviewSchedule.from_dict(extra["reviews"]) if extra.get("reviews")
        else ReviewSchedule(desired_retention=course_settings(course).review_retention),
        current=extra.get("current"), recent=list(extra.get("recent", [])), solved=list(extra.get("solved", [])),
        # a state saved before the tutor kept them: the attempt log has them
        answered=list(extra["answered"]) if "answered" in extra else _answered_items(user.pk, course),
        model=extra.get("model"), model_version=extra.get("model_version"),
    )
    predictor = course_predictor(course)
    if predictor is not None and state.model_version != predictor.version:
        _predictor_replay(state, predictor, user=user, course=course)
    return record, state


def _answered_items(user_id: int, course: Course) -> list[str]:
    """The items the student has answered in the course, each once, in the order of its last answer (oldest first),
    as `LearnerState.answered` keeps them."""
    return by_last_answer(str(pk) for pk in Attempt.objects.filter(
        user_id=user_id, concept__course=course, ungraded=False).order_by("created_at", "id").values_list("item_id", flat=True))


def _predictor_replay(state: LearnerState, predictor: LearnedPredictor, *, user: AbstractBaseUser,
                      course: Course) -> None:
    """Rebuild the predictor's state from the student's attempt log (a new model version is in use)."""
    state.model, state.model_version = None, predictor.version
    answers = (Attempt.objects.filter(user=user, concept__course=course, ungraded=False).order_by("created_at", "id")
               .values_list("concept__slug", "item_id", "correct"))
    for concept, item, correct in answers:
        state.model = predictor.update(state.model, concept, str(item), correct)


def _knowledge_save(record: KnowledgeRecord, state: LearnerState) -> None:
    blob = state.knowledge.to_blob()
    if blob != record.blob and record.lms_graded:  # mastery moved: the gradebook needs it (queued after the commit)
        lti_hooks.mastery_changed(user_id=record.user_id, course_id=record.course_id)
    record.blob = blob
    record.policy = {"reviews": state.reviews.to_dict(), "current": state.current, "recent": state.recent,
                     "solved": state.solved, "answered": state.answered, "model": state.model, "model_version": state.model_version}
    record.save(update_fields=["blob", "policy", "updated_at"])


def knowledge_lms_graded(*, user: AbstractBaseUser, course: Course) -> None:
    """A graded LMS link reaches this student in this course (tutor.lti, at each launch): their mastery goes to the
    gradebook now (the platform is sent it if it changed since last sent, e.g. where enrolment started them) and at
    every change from now on. Makes the knowledge record if the student has none yet."""
    KnowledgeRecord.objects.update_or_create(user=user, course=course, defaults={"lms_graded": True})
    lti_hooks.mastery_changed(user_id=user.pk, course_id=course.pk)


def knowledge_save(*, record: KnowledgeRecord, state: LearnerState) -> None:
    """Persist a state from `knowledge_load(for_update=True)`, for other packages of the app (tutor/teachback)."""
    _knowledge_save(record, state)


def _with_knowledge(session: TutorSession, record: KnowledgeRecord) -> TutorSession:
    """`session`, carrying the knowledge state as this transaction leaves it, for the stage the socket renders next
    (`stage_context`), which then reads no KnowledgeRecord. `record.blob` is the row's blob: as loaded, or as
    `_knowledge_save` last wrote it; parsed from it, the state is exactly what a read after the commit gives."""
    session.knowledge = KnowledgeState.from_blob(record.blob)
    return session


# --- enrolment and placement -------------------------------------------------------------------------


def placement_budget(course: Course) -> int:
    return course_settings(course).placement_questions


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
        state = LearnerState.from_placement(placement, model, _now(), asked=_answered_items(session.user_id,
                                                                                            session.course))
        extra = record.policy or {}  # the predictor has seen the diagnostic answers (`_attempt_record`)
        state.model, state.model_version = extra.get("model"), extra.get("model_version")
        session.placement = None
        _knowledge_save(record, state)
        _teach_next(session, record, state)
        placed = sum(1 for s in model.graph if state.knowledge.mastery(s.slug) >= model.settings.mastery)
        # the page counts every concept ("Concept 150 of 284"); the tutor places only those it has items for
        practised = "" if len(model.graph) == session.course.concepts.count() else " with practice items"
        if placement.asked:
            session.reason = (f"Placement done after {placement.asked} question{'' if placement.asked == 1 else 's'}: "
                              f"you already know {placed} of the {len(model.graph)} concepts{practised}. "
                              + _placement_right_not_placed(placement, state, model.settings.mastery) + session.reason)
        else:  # skipped before the first question: nothing was learnt about the student, so nothing to report
            session.reason = "Placement skipped: we start from the beginning. " + session.reason
        return
    items = model.items
    if any(asked == concept for asked, _, _ in placement.answers):  # asked again: another item, if it has one
        shown = {str(pk) for pk in Attempt.objects.filter(user_id=session.user_id, concept__course=session.course,
                                                            concept__slug=concept).values_list("item_id", flat=True)}
        items = tuple(i for i in model.items if i.concept == concept and i.id not in shown) or model.items
    choice = diagnostic_item(items, concept, model.params[concept], model.worked)
    _show_item(session, course_item(session.course, int(choice.id)), None, "placement")
    session.phase = TutorSession.Phase.PLACEMENT
    session.reason = (f"Placement question {placement.asked + 1} (at most {placement.settings.max_questions}): "
                      f"it tells the tutor what you already know, so you skip what you don't need.")


def _placement_right_not_placed(placement: Placement, state: LearnerState, mastery: float) -> str:
    """What the count of known concepts leaves out: concepts the student answered right in placement that the
    tutor is not yet sure of (one right answer can be a guess), so a student with ten right answers is not told
    only "you know 0 of 279"."""
    right = {concept for concept, correct, _ in placement.answers if correct}
    unsure = sum(1 for concept in right if state.knowledge.mastery(concept) < mastery)
    if not unsure:
        return ""
    if unsure == 1:
        return "One concept you answered right needs a right answer or two more before the tutor is sure of it. "
    return (f"{unsure} concepts you answered right need a right answer or two more each before the tutor is sure "
            "of them. ")


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
    session.item_repeat = False
    session.last_attempt = None
    session.step = uuid.uuid4()
    session.item_seed = _variant_seed(item, session.step.int % 2**31)  # a fresh variant each time it is shown


# Seeds tried for a template item before it is shown; verification checked many, but a draw may still fail.
VARIANT_TRIES = 8


def _variant_seed(item: Item, seed: int) -> int:
    """`seed`, or the next one whose variant of a template item can be computed (none fails: the page and the
    grading instantiate the same one)."""
    if item.kind != Item.Kind.TEMPLATE:
        return seed
    for candidate in range(seed, seed + VARIANT_TRIES):
        try:
            item_variant(item, candidate)
        except TemplateError:
            continue
        return candidate
    raise SessionError("This question could not be prepared; please tell your teacher. Ask for the next one.")


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
    _show_item(session, course_item(session.course, int(step.item)), step.p_correct, step.kind)
    session.item_repeat = step.repeat
    session.phase = TutorSession.Phase.PRACTICE
    chance = f"about {round(100 * step.p_correct)}% chance you get this one right" if step.p_correct is not None else ""
    session.reason = f"{step.reason} {chance[:1].upper() + chance[1:]}." if chance else step.reason
    if step.repeat:
        session.reason += (" You have seen this question's worked solution already and this concept has no other "
                           "question left, so it counts for less this time.")


def session_get(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    return TutorSession.objects.select_related("concept", "item", "last_attempt", "course").get(user=user, course=course)


def session_lock(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """The student's session, locked until the transaction ends (`_locked_session`), for other packages of the app."""
    return _locked_session(user, course)


def _locked_session(user: AbstractBaseUser, course: Course) -> TutorSession:
    """The student's session row, locked until the transaction ends; its course, concept and item come from the
    process's `course_rows`, not from joins."""
    session = TutorSession.objects.select_for_update().get(user=user, course=course)
    rows = course_rows(course)
    session.course = rows.course
    if session.concept_id is not None:
        concept = rows.concepts.get(session.concept_id)
        session.concept = concept if concept is not None else course_selectors.concept_by_pk(pk=session.concept_id)
    if session.item_id is not None:
        session.item = course_item(course, session.item_id)
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
    step = Step.answered(concept.slug, None)
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
    copied = not variant and item.kind in (Item.Kind.NUMERIC, Item.Kind.SYMBOLIC)  # what the question shows
    return check_answer(item.kind, key, answer, tolerance=item.tolerance, units=item.units or None,
                        variables=variables, accept=item.accept, feedback=item.feedback,
                        decimal_comma=course_settings(item.concept.course).decimal_comma,
                        shown=course_selectors.question_expressions(item=item) if copied else (),
                        written=course_selectors.written_key(item=item) if copied else ())


def answer_precheck(*, user: AbstractBaseUser, course: Course, item_id: int, answer: str) -> None:
    """Grade an answer to an item of `course` ahead of `attempt_record`, which then finds the grade in the
    checker's memo. Called off the database threads (the session socket does), so that a check that runs to the
    sandbox's time limit holds up its own student only, not the threads every student's answers wait for."""
    try:
        item = course_item(course, item_id)
    except Item.DoesNotExist:
        return
    if item.concept.course_id != course.pk or item.kind not in (Item.Kind.SYMBOLIC, Item.Kind.NUMERIC,
                                                                 Item.Kind.TEMPLATE):
        return
    seed = 0
    if item.kind == Item.Kind.TEMPLATE:  # graded against the student's variant, as `attempt_record` will
        seed = TutorSession.objects.filter(user=user, course=course, item_id=item_id).values_list(
            "item_seed", flat=True).first()
        if seed is None:
            return
    item_check(item, answer, seed=seed)


@dataclass(frozen=True)
class AttemptOutcome:
    attempt: Attempt
    check: CheckResult | None  # None when the attempt had already been recorded (a resend)
    mastered: bool
    # The live session as this answer left it, its concept, item, last attempt and course loaded (what
    # `session_get` would read, without the query) and its knowledge state (`session.knowledge`, what the stage's
    # mastery bar would read); None for a resend, for an answer recorded off screen, and for an answer too large to
    # check (`check.unchecked`: stored ungraded, the session did not move).
    session: TutorSession | None = None


def attempt_record(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                   answer: str, offline: bool = False) -> AttemptOutcome:
    """Grade an answer, store it exactly once, and count it: the one way an answer enters the tutor.

    The session socket answers the item on screen; the item then gets its feedback (or, in placement, the next
    diagnostic question). An offline or mobile client's batch (`offline=True`, through a Celery task) may answer
    an item that is no longer, or never was, on screen: it is graded against the item itself (a template on its
    first variant) and counted in the knowledge state, and the session stays where it is. Online, an item no
    longer on screen is refused. Idempotent on `client_id`: a resent answer returns the stored attempt and changes
    nothing. An unreadable answer raises SessionError and is not stored. An answer too large to check is stored
    as `ungraded`, counted neither way, and its item stays on screen.
    """
    # Insert first: the unique client_id decides, so a new answer costs no look-up. A resend almost always finds
    # the session moved on (SessionError) and, rarely, the same item asked again (the insert fails and the whole
    # transaction rolls back); either way it gets the stored attempt, as a look-up beforehand would have given.
    try:
        with transaction.atomic():
            # Locking the session serialises this student's writes, so knowledge updates never interleave.
            session = _locked_session(user, course)
            if session.phase in (TutorSession.Phase.PRACTICE, TutorSession.Phase.PLACEMENT) \
                    and session.item_id == item_id:
                return _answer_on_screen(user, session, client_id, answer)
            if not offline:
                raise SessionError("That question is no longer on screen.")
            return _answer_off_screen(user, course, client_id, item_id, answer)
    except IntegrityError:
        # A resend, or the same client_id raced in on another connection and won: that one is the stored attempt.
        return _outcome_for_existing(Attempt.objects.select_related("item").get(client_id=client_id), user)
    except SessionError:
        existing = Attempt.objects.filter(client_id=client_id).select_related("item").first()
        if existing is None:
            raise
        return _outcome_for_existing(existing, user)


def _outcome_for_existing(attempt: Attempt, user: AbstractBaseUser) -> AttemptOutcome:
    if attempt.user_id != user.pk:  # somebody else's id: say nothing about it
        raise SessionError("That answer could not be matched to you; please answer again.")
    return AttemptOutcome(attempt=attempt, check=None, mastered=False)


def _graded(item: Item, answer: str, seed: int) -> CheckResult:
    result = item_check(item, answer, seed=seed)  # the whole answer: a cut one would be graded
    if result.error:
        raise SessionError(result.error)
    return result


def _ungraded(user: AbstractBaseUser, client_id: uuid.UUID, item: Item, answer: str, result: CheckResult,
              session: TutorSession | None = None) -> AttemptOutcome:
    """Too large to check: kept, counted neither way (no knowledge update, no calibration)."""
    attempt = Attempt.objects.create(
        client_id=client_id, user=user, item=item, concept=item.concept, answer=answer[:300], correct=False,
        ungraded=True, hints_used=session.hints_shown if session else 0,
        p_correct_before=session.item_p_correct if session else None, feedback=result.feedback)
    return AttemptOutcome(attempt=attempt, check=result, mastered=False)


def _answer_off_screen(user: AbstractBaseUser, course: Course, client_id: uuid.UUID, item_id: int,
                       answer: str) -> AttemptOutcome:
    item = course_rows(course).items.get(item_id)
    if item is None or item.status != Item.Status.PUBLISHED:
        raise SessionError("That question is not part of this course any more.")
    result = _graded(item, answer, seed=0)
    if result.unchecked:
        return _ungraded(user, client_id, item, answer, result)
    record, state = knowledge_load(user=user, course=course, for_update=True)
    mastery_before = concept_mastery(state.knowledge, course, item.concept.slug)
    _policy(course).record(state, Step.answered(item.concept.slug, str(item.pk)), result.correct, _now())
    mastery = state.knowledge.mastery(item.concept.slug)
    _knowledge_save(record, state)
    attempt = Attempt.objects.create(
        client_id=client_id, user=user, item=item, concept=item.concept, answer=answer[:300],
        normalized=result.normalized[:300], correct=result.correct, mastery_before=mastery_before,
        mastery_after=mastery, feedback=result.feedback,
    )
    return AttemptOutcome(attempt=attempt, check=result, mastered=mastery >= course_settings(course).mastery_threshold)


def _answer_on_screen(user: AbstractBaseUser, session: TutorSession, client_id: uuid.UUID,
                      answer: str) -> AttemptOutcome:
    course, item = session.course, session.item
    assert item is not None and session.concept is not None
    result = _graded(item, answer, seed=session.item_seed)
    if result.unchecked:  # the item stays on screen
        return _ungraded(user, client_id, item, answer, result, session)
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
    step = Step.answered(session.concept.slug, str(item.pk), kind=session.step_kind or "learn",
                         p_correct=session.item_p_correct, repeat=session.item_repeat)
    attempt.mastery_before = concept_mastery(state.knowledge, course, session.concept.slug)
    _policy(course).record(state, step, result.correct, _now(), hints_used=session.hints_shown)
    mastery = state.knowledge.mastery(session.concept.slug)
    state.knowledge.concepts[session.concept.slug].last_seen = time.time()
    _solution_seen(state, item)
    _knowledge_save(record, state)
    attempt.mastery_after = mastery
    attempt.save()
    if session.item_p_correct is not None and session.hints_shown == 0:
        item_calibrate(item_id=item.pk, predicted=session.item_p_correct, correct=result.correct)
    session.phase = TutorSession.Phase.FEEDBACK
    session.last_attempt = attempt
    session.step = uuid.uuid4()
    session.save(update_fields=["phase", "last_attempt", "step", "updated_at"])
    return AttemptOutcome(attempt=attempt, check=result, mastered=mastery >= course_settings(course).mastery_threshold,
                          session=_with_knowledge(session, record))


def _solution_seen(state: LearnerState, item: Item) -> None:
    """The feedback shows the item's worked solution: practice should not come back to it (a template item is
    a fresh variant each time, so it may). Not an item whose feedback shows its hints as the steps (an imported one):
    it comes back after the concept's other questions, as before, at full weight. Counted as seen, a concept with one
    or two such questions took eight answers to the same one (course_smoke on Intro Stats: 386 items served, 270
    before), which teaches a student less than moving on does."""
    if item.solution and item.kind != Item.Kind.TEMPLATE and str(item.pk) not in state.solved:
        state.solved.append(str(item.pk))


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
