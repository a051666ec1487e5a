"""Teach-back in the student's session: after mastery, explain the concept to a beginner, answer at most two of
the beginner's follow-up questions, and see which key ideas came across.

The session is in `TutorSession.Phase.TEACH` meanwhile; `TeachBack.status` says which step of it. Everything the
student writes is stored first (`TeachBackMessage`), then screened and scored outside any lock (the scorer takes
~0.1 s of CPU, a model's question longer), then the verdict is written if the session has not moved on.
A text the scorer turns away (empty, copied, off-topic, ...) is kept with its reason and gets a friendly redo.
"""

from __future__ import annotations

import functools
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from courses.models import Concept, Course
from inference import prompts
from inference.teachback import (
    REDO_MESSAGES,
    ConceptKey,
    ExplanationScore,
    ExplanationScorer,
    affirms,
    beginner_probe,
    doubts,
    mixup_probe,
    uses_words_of,
)
from inference.teachback_swaps import picks, swap_probe
from learner_model.policy import TutorPolicy
from tutor import llm, services
from tutor.caches import course_model
from tutor.models import Attempt, TAQuestion, TutorSession
from tutor.teachback.models import TeachBack, TeachBackMessage

MAX_FOLLOW_UPS = 2  # the beginner asks at most this many questions
MAX_STORED_CHARS = 100_000  # of one message; longer is cut when stored (and turned away as too long anyway)
TA_SOURCES = 30  # the student's latest TA-bot replies that an explanation must not be copied from
_YES = re.compile(r"\W*yes\b", re.IGNORECASE)  # a model's "Yes.", "**yes**", "YES, it does"
_NO = re.compile(r"\W*no\b", re.IGNORECASE)
CHECKS_AT_ONCE = 8  # a teach-back's yes/no questions to the model in flight together (up to 6 key ideas + misconceptions)


@functools.cache
def scorer() -> ExplanationScorer:
    """One scorer per process; it shares the process's embedding model with the TA-bot."""
    return ExplanationScorer(cache_dir=settings.TUTOR_CACHE_DIR)


def scorer_preload() -> None:
    """With `TUTOR_TEACHBACK_PRELOAD` (an ASGI process starting up): the scorer's model, before any request."""
    if settings.TUTOR_TEACHBACK_PRELOAD:
        scorer().load()


def teach_back_mode(course: Course) -> str:
    return services.course_settings(course).teach_back


def _mastered_on_screen(session: TutorSession) -> bool:
    attempt: Attempt | None = session.last_attempt
    return (session.phase == TutorSession.Phase.FEEDBACK and attempt is not None and session.concept is not None
            and (attempt.mastery_after or 0) >= services.course_settings(session.course).mastery_threshold)


def teach_back_offered(*, session: TutorSession) -> bool:
    """Whether the feedback on screen may lead into a teach-back: the concept was just mastered, it has key ideas,
    the course asks for teach-back, and the student has not yet explained this concept (or skipped it)."""
    if not _mastered_on_screen(session) or teach_back_mode(session.course) == "never":
        return False
    concept = session.concept
    assert concept is not None
    return bool(concept.key_ideas) and not TeachBack.objects.filter(
        user_id=session.user_id, concept=concept).exclude(status=TeachBack.Status.EXPLAINING).exists()


def _start(session: TutorSession) -> TutorSession:
    assert session.concept is not None
    TeachBack.objects.filter(user_id=session.user_id, concept=session.concept,
                             status=TeachBack.Status.EXPLAINING).delete()  # an unfinished earlier start
    TeachBack.objects.create(user_id=session.user_id, course=session.course, concept=session.concept)
    if settings.TUTOR_TEACHBACK_WARMUP:
        scorer().load_in_background()  # built while the student writes
    session.phase = TutorSession.Phase.TEACH
    session.step = uuid.uuid4()
    session.save(update_fields=["phase", "step", "updated_at"])
    return session


@transaction.atomic
def session_next(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """"Next" after feedback: into a teach-back when the course asks for one after mastery, else on as usual."""
    session = services.session_lock(user=user, course=course)
    if (step is None or step == session.step) and teach_back_mode(course) == "after_mastery" \
            and teach_back_offered(session=session):
        return _start(session)
    return services.session_advance(user=user, course=course, step=step)


@transaction.atomic
def teachback_start(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """The student asked to explain the concept they just mastered (courses with teach-back on request)."""
    session = services.session_lock(user=user, course=course)
    if teach_back_offered(session=session):
        return _start(session)
    return session


def _current(user: AbstractBaseUser, course: Course) -> tuple[TutorSession, TeachBack | None]:
    session = services.session_lock(user=user, course=course)
    if session.phase != TutorSession.Phase.TEACH or session.concept is None:
        return session, None
    teach_back = (TeachBack.objects.select_for_update().filter(user=user, concept=session.concept)
                  .order_by("-created_at").first())
    return session, teach_back


def concept_key(*, concept: Concept, user: AbstractBaseUser, explanation: str = "") -> ConceptKey:
    """What the explanation is scored against, and the texts it must not be copied from: the lesson, the
    explanation the tutor streamed, and the student's own TA-bot replies."""
    replies = TAQuestion.objects.filter(user=user, course_id=concept.course_id).exclude(answer="") \
        .order_by("-created_at").values_list("answer", flat=True)[:TA_SOURCES]
    sources = tuple(t for t in (concept.lesson, concept.explanation, explanation, *replies) if t)
    return ConceptKey(topic=concept.title, key_ideas=tuple(concept.key_ideas),
                      misconceptions=tuple(concept.misconceptions), sources=sources,
                      opposes=tuple(concept.misconception_ideas.items()))


def _store(user: AbstractBaseUser, course: Course, client_id: uuid.UUID, text: str,
           status: str, kind: str) -> tuple[TeachBack, TeachBackMessage] | None:
    """Keep what the student wrote before anything else happens to it; None if it is a resend or out of step."""
    with transaction.atomic():
        session, teach_back = _current(user, course)
        if teach_back is None or teach_back.status != status or \
                TeachBackMessage.objects.filter(client_id=client_id).exists():
            return None
        message = TeachBackMessage.objects.create(client_id=client_id, teach_back=teach_back, kind=kind,
                                                  text=text[:MAX_STORED_CHARS])
        return teach_back, message


def teachback_explain(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, text: str) -> TutorSession:
    """The student's explanation: stored, screened, scored; then the beginner's first question, or the verdict."""
    stored = _store(user, course, client_id, text, TeachBack.Status.EXPLAINING, TeachBackMessage.Kind.EXPLANATION)
    if stored is None:
        return services.session_get(user=user, course=course)
    teach_back, message = stored
    session_text = TutorSession.objects.filter(user=user, course=course).values_list("explanation", flat=True).first()
    key = concept_key(concept=teach_back.concept, user=user, explanation=session_text or "")
    verdict = scorer().assess(text, key)
    if verdict.score is None:
        return _apply(user, course, teach_back, message, verdict.redo, verdict.message, None, None)
    result, suspected = _confirmed(teach_back.concept, text, verdict.score)
    return _apply(user, course, teach_back, message, None, "", result, _question(teach_back, text, result, suspected))


def teachback_answer(*, user: AbstractBaseUser, course: Course, client_id: uuid.UUID, text: str) -> TutorSession:
    """The answer to the beginner's question: stored, screened, and the explanation with its answers re-scored."""
    stored = _store(user, course, client_id, text, TeachBack.Status.FOLLOW_UP, TeachBackMessage.Kind.ANSWER)
    if stored is None:
        return services.session_get(user=user, course=course)
    teach_back, message = stored
    key = concept_key(concept=teach_back.concept, user=user)
    redo = _screen_answer(text, key)
    if redo is not None:
        return _apply(user, course, teach_back, message, redo, REDO_MESSAGES[redo], None, None)
    accepted = list(teach_back.messages.filter(redo="").values_list("kind", "text"))
    combined = "\n\n".join(text for _, text in accepted)
    answers = [text for kind, text in accepted if kind == TeachBackMessage.Kind.ANSWER]
    mixups = replies(teach_back.questions, answers, "misconception")
    affirmed = [q["misconception"] for q, answer in mixups if affirms(answer, q["misconception"])]
    doubted = [q["idea"] for q, answer in mixups if not affirms(answer, q["misconception"]) and doubts(answer)]
    swaps = replies(teach_back.questions, answers, "swap")
    doubted += [q["idea"] for q, answer in swaps if doubts(answer)]
    swapped = [q["idea"] for q, answer in swaps if not doubts(answer) and swap_kept(q, answer) == "wrong"]
    result, suspected = _confirmed(teach_back.concept, combined, scorer().score(combined, key), affirmed, doubted,
                                   swapped)
    question = _question(teach_back, combined, result, suspected) \
        if len(teach_back.questions) < MAX_FOLLOW_UPS else None
    return _apply(user, course, teach_back, message, None, "", result, question)


def replies(questions: list[dict], answers: list[str], about: str) -> list[tuple[dict, str]]:
    """The beginner's questions of one kind, each with the student's reply, from a teach-back's questions and its
    accepted answers in order. `about`: "misconception" ("someone told me ...: is that right?") or "swap" ("you
    said ...: is that X or Y?")."""
    return [(q, answer) for q, answer in zip(questions, answers, strict=False) if q.get(about)]


def swap_kept(question: dict, answer: str) -> str | None:
    """Which term the student's reply to a swap question keeps: "right" (the key idea's), "wrong" (the one they
    first wrote), or None (neither, or both with no choice)."""
    swap = question["swap"]
    kept = picks(answer, swap["right"], swap["wrong"], exchanged=swap.get("kind") == "exchanged")
    return None if kept is None else "right" if kept == swap["right"] else "wrong"


def _screen_answer(text: str, key: ConceptKey) -> str | None:
    """Why an answer to the beginner's question is turned away, or None. Unlike an explanation, an answer may be a
    word or a formula: "Yes." to "someone told me ...: is that right?", "Zero.", "$x^2$"."""
    reason = scorer().screen(text, key)
    short = reason in ("too_short", "only_maths") and any(ch.isalnum() for ch in text)
    # A short answer has few of English's little words ("Other way round: differentiable implies continuous."); it is
    # in another language only if it uses none of the concept's words either.
    terse = reason == "other_language" and uses_words_of(text, (key.topic, *key.key_ideas, *key.sources))
    return None if short or terse else reason


def _confirmed(concept: Concept, explanation: str, result: ExplanationScore, affirmed: list[str] | None = None,
               doubted: list[str] | None = None, swapped: list[str] | None = None
               ) -> tuple[ExplanationScore, dict[str, str]]:
    """The verdict as a language model reads it, where one is configured: only the misconceptions it confirms the
    explanation claims and, with TUTOR_TEACHBACK_IDEA_CHECK, each key idea stated or not (the scorer's word vectors
    call a third of unstated ideas on a new course "clear"; a small model does worse: benchmarks/RESULTS.md,
    teachback_ideas.py --llm); plus the key ideas the scorer suspected of being contradicted. The scorer's suspicion
    alone accused a third of right explanations on a check set: without a model, or when it is down (it then answers
    nothing), the scorer's idea verdicts stand, and a suspected mix-up becomes the beginner's next question ("someone
    told me ...: is that right?"); it is asserted only if the student says yes to it (`affirmed`), and the key ideas
    of those the student was not sure about (`doubted`: "I don't know", "maybe") did not come across, whatever the
    scorer or a model made of the explanation. A key idea whose two swapped terms the student kept when the beginner
    asked which was meant (`swapped`) is contradicted. The suspicions come back as key idea -> misconception."""
    suspected = scorer().suspected_mixups(result)
    affirmed = affirmed or []
    unsure = dict.fromkeys(doubted or [], False)
    model = settings.TUTOR_LLM != "authored"
    ideas = [i.idea for i in result.ideas] if model and settings.TUTOR_TEACHBACK_IDEA_CHECK else []
    misconceptions = list(result.misconceptions_heard) if model else []
    if not ideas and not misconceptions:
        return scorer().confirmed(result, (), unsure, affirmed, swapped or ()), suspected
    brief = llm.concept_brief(concept)
    requests = [prompts.idea_check(brief, explanation, idea) for idea in ideas]
    requests += [prompts.misconception_check(brief, explanation, m) for m in misconceptions]
    # One yes/no each, sent together: a model server batches them (vLLM), so the student waits for about one.
    with ThreadPoolExecutor(max_workers=min(len(requests), CHECKS_AT_ONCE), thread_name_prefix="teachback-check") as pool:
        replies = list(pool.map(lambda request: "".join(llm.backend().stream(request)), requests))
    judged = {idea: bool(_YES.match(reply)) for idea, reply in zip(ideas, replies[:len(ideas)], strict=True)
              if _YES.match(reply) or _NO.match(reply)}
    confirmed = [m for m, reply in zip(misconceptions, replies[len(ideas):], strict=True) if _YES.match(reply)]
    return scorer().confirmed(result, confirmed, {**judged, **unsure}, affirmed, swapped or ()), suspected


def _question(teach_back: TeachBack, explanation: str, result: ExplanationScore,
              suspected: dict[str, str]) -> dict | None:
    """The beginner's next question, aimed at a key idea it has not asked about: one the scorer suspects the
    explanation got wrong first (an authored mix-up, then two swapped terms), then one not yet covered; or None when
    every idea came across. Without a model, a suspected idea is asked about as its mix-up ("someone told me ...: is
    that right?", `mixup_probe`); swapped terms always as "you said ...: is that X or Y?" (`swap_probe`), whose
    reply `swap_kept` reads; another idea by the authored probe that is about it (a probe is about the key idea
    closest to it in meaning), else by a beginner's question about a word of the idea the student never used
    (`beginner_probe`)."""
    asked = {q["idea"] for q in teach_back.questions}
    uncovered = [i.idea for i in result.ideas if i.status != "covered"]
    # a term said for another first: two words exchanged is the likelier misreading of a reworded sentence
    swaps = {result.ideas[s.idea].idea: s for s in sorted(result.swaps, key=lambda s: s.kind == "exchanged")}
    targets = [idea for idea in dict.fromkeys([*suspected, *swaps, *uncovered]) if idea not in asked]
    if not targets:
        return None
    concept = teach_back.concept
    used = {q["text"] for q in teach_back.questions}
    about = {p: concept.key_ideas[scorer().closest(p, concept.key_ideas)] for p in concept.probes if p not in used}
    if targets[0] in suspected or targets[0] in swaps:  # a suspected mix-up is asked about first, as itself
        idea, authored = targets[0], None
    else:
        idea, authored = next(((t, p) for t in targets for p, i in about.items() if i == t), (targets[0], None))
    mixup = suspected.get(idea)
    swap = swaps.get(idea) if mixup is None else None
    if mixup is not None:
        authored = mixup_probe(mixup)
    elif swap is not None:
        authored = swap_probe(swap)
    elif authored is None:  # no authored probe about a missing idea: a beginner's question about one of its words
        authored = beginner_probe(idea, explanation, [*concept.key_ideas, concept.lesson],
                                  [q["text"] for q in teach_back.questions], topic=concept.title)
    text = authored
    if settings.TUTOR_LLM != "authored" and swap is None:  # the reply to a swap question is read for its two words
        request = prompts.novice_follow_up(llm.concept_brief(concept), explanation, idea, authored,
                                           asked=tuple(q["text"] for q in teach_back.questions))
        # The backend falls back to the authored probe if the model is down or slow (tutor.llm.backend); a model
        # that repeats a question it already asked gets the probe instead.
        text = " ".join("".join(llm.backend().stream(request)).split())[:300]
        text = text if text and text not in used else authored
    question = {"text": text, "idea": idea}
    if mixup is not None and text == authored:  # the student's "yes" to this question holds the mix-up
        question["misconception"] = mixup
    if swap is not None:
        sentence = swap.sentence.rstrip(" ;:")  # quoted in the verdict's own sentence: its full stop goes, "..." stays
        sentence = sentence[:-1] if sentence.endswith(".") and not sentence.endswith("..") else sentence
        question["swap"] = {"sentence": sentence[:1].upper() + sentence[1:], "right": swap.right,
                            "wrong": swap.wrong, "kind": swap.kind}
    return question


@transaction.atomic
def _apply(user: AbstractBaseUser, course: Course, teach_back: TeachBack, message: TeachBackMessage,
           redo: str | None, notice: str, result: ExplanationScore | None, question: dict | None) -> TutorSession:
    session, current = _current(user, course)
    if current is None or current.pk != teach_back.pk or current.status != teach_back.status:
        return session  # the student moved on meanwhile (another tab): the message is kept, nothing else changes
    if redo is not None:
        message.redo = redo
        message.save(update_fields=["redo"])
        current.notice = notice
        current.save(update_fields=["notice"])
        return session
    assert result is not None
    current.notice = ""
    current.score = result.score
    current.ideas = [{"idea": i.idea, "status": i.status, "coverage": i.coverage} for i in result.ideas]
    current.misconceptions_heard = list(result.misconceptions_heard)
    if question is not None:
        current.questions = [*current.questions, question]
        current.status = TeachBack.Status.FOLLOW_UP
    else:
        current.status = TeachBack.Status.SCORED
        current.scored_at = datetime.now(UTC)
        _record_evidence(user, course, current, result)
    current.save()
    session.step = uuid.uuid4()
    session.save(update_fields=["step", "updated_at"])
    return session


def _record_evidence(user: AbstractBaseUser, course: Course, teach_back: TeachBack, result: ExplanationScore) -> None:
    """The verdict as weak evidence for the learner model, once per teach-back."""
    record, state = services.knowledge_load(user=user, course=course, for_update=True)
    TutorPolicy(course_model(course)).record_explanation(state, teach_back.concept.slug, result.share_covered,
                                                         datetime.now(UTC))
    services.knowledge_save(record=record, state=state)


@transaction.atomic
def teachback_skip(*, user: AbstractBaseUser, course: Course) -> TutorSession:
    """Not now: the teach-back is kept as skipped (no evidence either way) and the session goes on."""
    session, teach_back = _current(user, course)
    if teach_back is not None and teach_back.status in (TeachBack.Status.EXPLAINING, TeachBack.Status.FOLLOW_UP):
        teach_back.status = TeachBack.Status.SKIPPED
        teach_back.save(update_fields=["status"])
    return _continue(user, course, session)


@transaction.atomic
def teachback_continue(*, user: AbstractBaseUser, course: Course, step: uuid.UUID | None = None) -> TutorSession:
    """After the verdict: on with the course, where the feedback's "next" would have gone."""
    session, teach_back = _current(user, course)
    if (step is not None and step != session.step) or teach_back is None \
            or teach_back.status != TeachBack.Status.SCORED:
        return session
    return _continue(user, course, session)


def _continue(user: AbstractBaseUser, course: Course, session: TutorSession) -> TutorSession:
    if session.phase != TutorSession.Phase.TEACH:
        return session
    # Teach-back sits between the feedback and the next step: back to the feedback, then advance as usual.
    session.phase = TutorSession.Phase.FEEDBACK
    session.save(update_fields=["phase", "updated_at"])
    return services.session_advance(user=user, course=course)


# --- faculty -------------------------------------------------------------------------------------------------


def novice_questions(*, concept: Concept, n: int = 5) -> tuple[list[str], str]:
    """The questions a beginner would ask about the concept's lesson, from the model (questions, or an error to
    show). Without a configured model there are none: the panel says so rather than inventing any."""
    if settings.TUTOR_LLM == "authored":
        return [], "No language model is configured (TUTOR_LLM=authored), so no beginner's questions can be written."
    if not concept.lesson.strip():
        return [], "This concept has no lesson text yet."
    text = "".join(llm.backend().stream(prompts.novice_questions(llm.concept_brief(concept), n)))
    questions = [line.strip(" -*0123456789.)\t") for line in text.splitlines()]
    questions = [q for q in questions if len(q) > 8][:n]
    if not questions:
        return [], "The language model did not answer in time; try again in a moment."
    return questions, ""


def faq_from_question(*, user: AbstractBaseUser, course: Course, question_id: int, answer: str) -> TAQuestion:
    """Answer one question of a group as a FAQ entry: the student who asked gets the answer in their log, and the
    TA-bot cites it (without who asked) for the next student, as for an escalated question."""
    # Imported here: the TA's services import tutor.selectors, which imports this package for the stage.
    from tutor.ta import services as ta_services

    if not answer.strip():
        raise ta_services.TAError("Write the answer for the FAQ first.")
    with transaction.atomic():
        question = TAQuestion.objects.select_for_update().get(pk=question_id, course=course)
        if not question.escalated:
            question.escalated, question.escalated_at = True, datetime.now(UTC)
            question.save(update_fields=["escalated", "escalated_at", "updated_at"])
    return ta_services.ta_question_answer_by_faculty(user=user, course=course, question_id=question_id,
                                                     answer=answer, shared=True)
