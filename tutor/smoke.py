"""A course walk-through: simulated students go through a whole course the way a browser does, to find what would
break for a real one (`python manage.py course_smoke <course>`).

Each student signs up, enrols through the enrol page, and then acts only through the session websocket
(`tutor.consumers.SessionConsumer`, the same consumer and services a browser uses): one takes placement (right and
wrong answers), one skips it. For every concept the tutor brings, the first student goes through pain first, the
guess, the streamed explanation, and practice with a hint, a wrong answer and then right answers, until the
concept is mastered or its question bank runs out; then opens the knowledge map and asks the TA-bot a question.
What the student sees is read back from the database after each action: an answer must be stored exactly once and
the session must move on. Separately, every published question is answered with its own key, which the checker
must accept (a key it refuses is a content bug, listed with where it came from).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from courses import selectors as course_selectors
from courses.models import Course, Item
from tutor import services
from tutor.models import Attempt, TutorSession
from tutor.routing import websocket_urlpatterns

FRAME_TIMEOUT_S = 30.0


@dataclass
class ConceptWalk:
    slug: str
    title: str
    items: int = 0  # questions served
    right: int = 0
    wrong: int = 0
    hints: int = 0
    repeats: int = 0  # questions served again after their solution was shown
    explained: bool = False
    mastered: bool = False
    taught_back: str = ""  # the teach-back after mastery: "scored 3.2/5 after 1 follow-up", "skipped", ""
    bank_end: bool = False  # stopped without mastery: the question bank ran out


@dataclass
class UnanswerableKey:
    item: str
    concept: str
    source: str  # where the item came from: the course file, the OATutor step file, the GIFT question
    why: str


@dataclass
class SmokeReport:
    course: str
    concepts_total: int
    concepts_with_questions: int = 0  # the others have nothing to practise: the tutor never brings them
    concepts: list[ConceptWalk] = field(default_factory=list)
    placement_answers: int = 0
    placement_skipped: bool = False
    items_served: int = 0
    errors: list[str] = field(default_factory=list)
    unanswerable: list[UnanswerableKey] = field(default_factory=list)
    keys_checked: int = 0
    finished: bool = False  # the tutor said the course is done: every concept with questions mastered
    map_status: int | None = None
    ta_outcome: str = ""
    seconds: float = 0.0

    @property
    def concepts_reached(self) -> int:
        return len(self.concepts)

    def lines(self) -> list[str]:
        out = [f"course {self.course}: {self.concepts_total} concepts"]
        out.append(f"placement: {self.placement_answers} answers; a second student skipped it: "
                   f"{'yes' if self.placement_skipped else 'NO'}")
        for c in self.concepts:
            state = "mastered" if c.mastered else ("bank ran out" if c.bank_end else "not mastered")
            taught = f"; teach-back {c.taught_back}" if c.taught_back else ""
            out.append(f"  {c.slug}: explained={'yes' if c.explained else 'no'} items={c.items} right={c.right} "
                       f"wrong={c.wrong} hints={c.hints} repeats={c.repeats} -> {state}{taught}")
        out.append(f"knowledge map: HTTP {self.map_status}; TA-bot: {self.ta_outcome or 'not asked'}")
        out.append(f"keys: {self.keys_checked} published questions answered with their own key, "
                   f"{len(self.unanswerable)} refused by the checker")
        out.extend(f"  unanswerable {u.item} ({u.concept}) at {u.source}: {u.why}" for u in self.unanswerable)
        out.extend(f"  ERROR {e}" for e in self.errors)
        if self.finished:
            out.append(f"the tutor finished the course: {self.concepts_with_questions} concepts have questions, "
                       f"{self.concepts_with_questions - self.concepts_reached} of them known from placement")
        out.append(f"concepts reached {self.concepts_reached} of {self.concepts_total}, items served "
                   f"{self.items_served}, errors {len(self.errors)}, unanswerable keys {len(self.unanswerable)}, "
                   f"time {self.seconds:.1f} s")
        return out


# --- answers a student would type --------------------------------------------------------------------


def item_source(item: Item) -> str:
    """Where an item came from, for a content bug report."""
    extra = item.extra if isinstance(item.extra, dict) else {}
    if "oatutor" in extra:
        meta = extra["oatutor"]
        return f"content-pool/{meta.get('problem_id')}/steps/{meta.get('step_id')}/{meta.get('step_id')}.json"
    for key, label in (("gift", "GIFT"), ("latex", "LaTeX")):
        if key in extra:
            meta = extra[key]
            line = f", line {meta['line']}" if "line" in meta else ""
            return f"{label} question {meta.get('title') or item.slug}{line}"
    return f"concepts/{item.concept.slug}.md, item {item.slug}"


def right_answer(item: Item, seed: int) -> str:
    """The answer the item's own key gives, as a student would type it."""
    variant = services.item_variant(item, seed)
    key = variant.answer if variant is not None else item.answer
    if isinstance(key, list):
        key = key[0]
    return str(key)


def wrong_answer(item: Item, seed: int) -> str:
    key = right_answer(item, seed)
    if item.kind == Item.Kind.MULTIPLE_CHOICE:
        return next((c for c in item.choices if c != key), key)
    if item.kind == Item.Kind.NUMERIC:
        try:
            return str(float(key) * 3 + 1000)
        except ValueError:
            return "123456"
    if item.kind in (Item.Kind.SYMBOLIC, Item.Kind.TEMPLATE):
        left, equals, right = key.partition("=")  # an equation's key ("x^2/25+y^2/4=1"): a wrong right side
        return f"{left}=({right}) + 1000" if equals else f"({key}) + 1000"
    return "certainly not the answer"


def keys_check(course: Course, report: SmokeReport) -> None:
    """Every published item, answered with its own key, must be graded right."""
    for item in course_selectors.course_items(course=course, published=True):
        report.keys_checked += 1
        answer = right_answer(item, seed=0)
        result = services.item_check(item, answer, seed=0)
        if result.error or result.unchecked or not result.correct:
            why = result.error or ("its own key is too large to check" if result.unchecked
                                   else f"its own key {answer!r} is graded wrong")
            report.unanswerable.append(UnanswerableKey(item.slug, item.concept.slug, item_source(item), why))


# --- one student through the socket --------------------------------------------------------------------


class Student:
    """One simulated student: a user, a websocket and the frames it received."""

    def __init__(self, user: AbstractBaseUser, course: Course, report: SmokeReport) -> None:
        self.user, self.course, self.report = user, course, report
        self.socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/learn/{course.slug}/")
        self.socket.scope["user"] = user
        self.frames: list[str] = []

    async def connect(self) -> bool:
        connected, _ = await self.socket.connect(timeout=FRAME_TIMEOUT_S)
        if connected:
            await self._frame()  # the stage, sent on connect
        return bool(connected)

    async def close(self) -> None:
        await self.socket.disconnect()

    async def _frame(self, timeout: float = FRAME_TIMEOUT_S) -> str:
        frame = await self.socket.receive_from(timeout=timeout)
        self.frames.append(frame)
        return str(frame)

    async def send(self, action: str, **fields: Any) -> None:
        """Send an action and wait for what it leads to: the new stage, or a notice (streamed words of an
        explanation may arrive first)."""
        await self.socket.send_json_to({"action": action, **fields})
        if not await self.drain(_reply):
            raise TimeoutError(f"no reply to {action!r}")

    async def drain(self, until: Callable[[str], bool], limit_s: float = FRAME_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                frame = await self._frame(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                return False
            if until(frame):
                return True
        return False

    def last_words(self) -> str:
        """The text of the last frame, for an error report (what the student was shown)."""
        text = re.sub(r"<[^>]+>", " ", self.frames[-1] if self.frames else "")
        return " ".join(text.split())[:300]

    async def session(self) -> TutorSession:
        return await database_sync_to_async(services.session_get)(user=self.user, course=self.course)

    async def answer(self, session: TutorSession, text: str) -> Attempt | None:
        client_id = uuid.uuid4()
        await self.send("answer", client_id=str(client_id), item=session.item_id, answer=text)
        return await database_sync_to_async(Attempt.objects.filter(client_id=client_id).first)()


def _reply(frame: str) -> bool:
    """The new stage, or a message for the student; not a piece of a streamed explanation."""
    return frame.lstrip().startswith(('<div id="stage"', '<p id="notice"', '<div id="notice"'))


def _explanation_done(frame: str) -> bool:
    return 'value="practice"' in frame  # the form that starts practice comes with the finished explanation


async def _walk(student: Student, *, take_placement: bool, max_concepts: int, max_items: int,
                max_actions: int) -> None:
    report = student.report
    walks: dict[str, ConceptWalk] = {c.slug: c for c in report.concepts}
    for _ in range(max_actions):
        session = await student.session()
        phase = session.phase
        if phase == TutorSession.Phase.DONE:
            report.finished = report.finished or take_placement
            return
        if phase == TutorSession.Phase.PLACEMENT:
            if not take_placement:
                await student.send("skip_placement")
                after = await student.session()
                if after.phase == TutorSession.Phase.PLACEMENT:
                    report.errors.append("skipping placement left the student in placement")
                    return
                report.placement_skipped = True
                return  # the skipper has shown what it came to show
            right = report.placement_answers % 2 == 0
            item = session.item
            attempt = await student.answer(session, right_answer(item, session.item_seed) if right
                                           else wrong_answer(item, session.item_seed))
            if attempt is None:
                report.errors.append(f"placement answer to {item.slug} was not stored: {student.last_words()}")
                return
            report.placement_answers += 1
            continue
        concept = session.concept
        if concept.slug not in walks:
            if len(walks) >= max_concepts:
                return
            walks[concept.slug] = ConceptWalk(concept.slug, concept.title)
            report.concepts.append(walks[concept.slug])
        walk = walks[concept.slug]
        if phase == TutorSession.Phase.PAIN:
            choice = concept.guess_choices[0] if concept.guess_choices else "I think it works like the last one."
            await student.send("guess", client_id=str(uuid.uuid4()), guess=choice)
        elif phase == TutorSession.Phase.EXPLAIN:
            if not session.explanation and not await student.drain(_explanation_done):
                report.errors.append(f"{concept.slug}: the explanation never finished streaming")
                return
            walk.explained = True
            await student.send("practice", step=str((await student.session()).step))
        elif phase == TutorSession.Phase.PRACTICE:
            if walk.items >= max_items:
                walk.bank_end = True
                report.errors.append(f"{concept.slug}: not mastered after {walk.items} questions")
                return
            await _practise(student, session, walk)
        elif phase == TutorSession.Phase.TEACH:
            if not await _teach_back(student, session, walk, skip=not take_placement):
                return
            continue
        elif phase == TutorSession.Phase.FEEDBACK:
            walk.mastered = bool(session.last_attempt and session.last_attempt.mastery_after is not None
                                 and session.last_attempt.mastery_after
                                 >= services.course_settings(student.course).mastery_threshold)
            await student.send("next", step=str(session.step))
        moved = await student.session()
        if moved.step == session.step and moved.phase == session.phase:
            report.errors.append(f"{concept.slug}: the {phase} stage did not move on")
            return
    report.errors.append(f"gave up after {max_actions} actions")


async def _teach_back(student: Student, session: TutorSession, walk: ConceptWalk, *, skip: bool) -> bool:
    """One step of a teach-back: an empty explanation first (it must get a redo, not a score), then one made of
    half the concept's key ideas, answers to the beginner's follow-ups (the idea each asks about), and on. False
    (with an error) if it stuck."""
    from tutor.teachback.models import TeachBack

    def latest() -> TeachBack | None:
        return TeachBack.objects.filter(user=student.user, concept_id=session.concept_id).order_by("-pk").first()

    current = await database_sync_to_async(latest)()
    if current is None:
        student.report.errors.append(f"{walk.slug}: in the teach-back phase with no teach-back")
        return False
    messages = await database_sync_to_async(current.messages.count)()
    if skip and current.status != TeachBack.Status.SCORED:
        await student.send("teach_skip")
        walk.taught_back = "skipped"
    elif current.status == TeachBack.Status.EXPLAINING and messages == 0:
        await student.send("teach_explain", client_id=str(uuid.uuid4()), text="")
        if (await database_sync_to_async(latest)()).status != TeachBack.Status.EXPLAINING:
            student.report.errors.append(f"{walk.slug}: an empty explanation was scored instead of redone")
            return False
        half = session.concept.key_ideas[: (len(session.concept.key_ideas) + 1) // 2]  # the beginner asks the rest
        ideas = " ".join(f"{idea.rstrip('.')}." for idea in half)
        await student.send("teach_explain", client_id=str(uuid.uuid4()),
                           text=f"Imagine you are new to {session.concept.title.lower()}. {ideas} "
                                "That is the whole idea, and an example makes it stick.")
    elif current.status in (TeachBack.Status.EXPLAINING, TeachBack.Status.FOLLOW_UP):
        idea = current.questions[-1].get("idea") if current.questions else ""
        await student.send("teach_explain" if current.status == TeachBack.Status.EXPLAINING else "teach_answer",
                           client_id=str(uuid.uuid4()),
                           text=f"Good question. {idea or session.concept.key_ideas[0]} That is why it works.")
    else:
        score = f"{current.score:.1f}/5" if current.score is not None else "no score"
        walk.taught_back = f"scored {score} after {len(current.questions)} follow-up(s)"
        await student.send("teach_continue", step=str((await student.session()).step))
    after = await database_sync_to_async(latest)()
    moved = (await student.session()).phase != TutorSession.Phase.TEACH or after.status != current.status or \
        await database_sync_to_async(after.messages.count)() > messages
    if not moved:
        student.report.errors.append(f"{walk.slug}: the teach-back did not move on: {student.last_words()}")
    return moved


async def _practise(student: Student, session: TutorSession, walk: ConceptWalk) -> None:
    item = session.item
    report = student.report
    walk.items += 1
    report.items_served += 1
    walk.repeats += int(session.item_repeat)
    if never := await database_sync_to_async(_never_answered_if_again)(student.user, student.course, item):
        report.errors.append(f"{walk.slug}: {item.slug} came again while {never} of the concept's questions had "
                             "never been asked")
    first = walk.items == 1
    if first and item.hints:
        await student.send("hint", shown=session.hints_shown)
        if (await student.session()).hints_shown != session.hints_shown + 1:
            report.errors.append(f"{walk.slug}: a hint was asked for and not shown")
        walk.hints += 1
    seed = session.item_seed
    attempt = await student.answer(session, wrong_answer(item, seed) if first else right_answer(item, seed))
    if attempt is None and not first:  # the checker refused the item's own key: it is listed by keys_check
        attempt = await student.answer(session, wrong_answer(item, seed))
    if attempt is None:
        report.errors.append(f"{walk.slug}: the answer to {item.slug} was not stored: {student.last_words()}")
        return
    walk.right += int(attempt.correct)
    walk.wrong += int(not attempt.correct)


def _never_answered_if_again(user: AbstractBaseUser, course: Course, item: Item) -> int:
    """If the student has answered `item` before: how many of its concept's questions they have never answered (the
    one its worked example works through aside); 0 otherwise. Practice gives those first."""
    answered = set(Attempt.objects.filter(user=user, concept_id=item.concept_id).values_list("item_id", flat=True))
    if item.pk not in answered:
        return 0
    worked = services.course_model(course).worked
    return sum(1 for pk in course_selectors.published_items(concept=item.concept).values_list("pk", flat=True)
               if pk not in answered and str(pk) not in worked)


# --- the walk-through ----------------------------------------------------------------------------------


def _student(name: str) -> AbstractBaseUser:
    user = get_user_model().objects.create_user(username=f"smoke-{name}-{uuid.uuid4().hex[:8]}")
    return user


def _enrol(user: AbstractBaseUser, course: Course, report: SmokeReport) -> bool:
    client = Client(HTTP_HOST=_host())
    client.force_login(user)
    response = client.post(reverse("enroll", args=[course.slug]))
    if response.status_code != 302:
        report.errors.append(f"enrolment answered HTTP {response.status_code}")
        return False
    page = client.get(reverse("session", args=[course.slug]))
    if page.status_code != 200:
        report.errors.append(f"the session page answered HTTP {page.status_code}")
        return False
    return True


def _host() -> str:
    return next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")), "localhost")


async def _walk_student(user: AbstractBaseUser, course: Course, report: SmokeReport, **options: Any) -> None:
    student = Student(user, course, report)
    if not await student.connect():
        report.errors.append("the session socket refused an enrolled student")
        return
    try:
        await _walk(student, **options)
    except (TimeoutError, AssertionError) as exc:
        report.errors.append(f"the socket stopped answering ({type(exc).__name__})")
    finally:
        await student.close()


def course_smoke(*, course: Course, max_concepts: int | None = None, max_items: int = 60,
                 ask_ta: bool = True) -> SmokeReport:
    """Walk `course` as described in the module docstring and return what happened."""
    started = time.monotonic()
    report = SmokeReport(course=course.slug, concepts_total=course.concepts.count(),
                         concepts_with_questions=course.concepts.filter(
                             items__status=Item.Status.PUBLISHED).distinct().count())
    keys_check(course, report)
    limit = max_concepts if max_concepts is not None else report.concepts_total
    taker, skipper = _student("placement"), _student("skip")
    walk = {"max_concepts": limit, "max_items": max_items, "max_actions": 40 * (limit + 1) + 200}
    if _enrol(taker, course, report):
        asyncio.run(_walk_student(taker, course, report, take_placement=True, **walk))
        client = Client(HTTP_HOST=_host())
        client.force_login(taker)
        report.map_status = client.get(reverse("knowledge_map", args=[course.slug])).status_code
        if report.map_status != 200:
            report.errors.append(f"the knowledge map answered HTTP {report.map_status}")
        if ask_ta and report.concepts:
            report.ta_outcome = _ask_ta(taker, course, report)
    if _enrol(skipper, course, report):
        asyncio.run(_walk_student(skipper, course, report, take_placement=False,
                                  **{**walk, "max_concepts": limit + len(report.concepts)}))
    report.seconds = time.monotonic() - started
    return report


def _ask_ta(user: AbstractBaseUser, course: Course, report: SmokeReport) -> str:
    from tutor.ta import services as ta_services

    question = f"Can you explain {report.concepts[0].title.lower()} in simple words?"
    try:
        answered = ta_services.ta_question_answer(user=user, course=course, question=question)
    except ta_services.TAError as exc:
        report.errors.append(f"the TA-bot refused an ordinary question: {exc}")
        return "refused"
    if not answered.answer.strip():
        report.errors.append("the TA-bot gave an empty reply")
    return f"{answered.outcome} ({len(answered.answer.split())} words, {len(answered.citations)} citations)"
