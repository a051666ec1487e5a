"""Reads for the class dashboard: what faculty see of their students. Lives in tutor/ because it reads
students' knowledge and attempts; `courses/` knows nothing of them.

- heatmap: students x concepts, mastery from each student's knowledge blob
- stuck students: repeated failures on a concept with no mastery progress over their last N attempts
- common wrong answers per item, with the misconception the item's authored feedback names for them
- items whose observed difficulty (logit of the wrong rate) is far from the authored one
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from courses import selectors as course_selectors
from courses.models import Course, Item, Membership
from learner_model.knowledge import KnowledgeState
from tutor.caches import course_model
from tutor.display import UNPRACTISED_FILL, echo_html
from tutor.lti import selectors as lti_selectors
from tutor.models import Attempt, KnowledgeRecord
from tutor.services import concept_mastery, course_settings

STUCK_WINDOW = 6  # the last N attempts on a concept that are looked at
STUCK_MIN_FAILURES = 4  # at least this many of them wrong ...
STUCK_MIN_GAIN = 0.05  # ... and mastery rose by less than this across them
DRIFT_MIN_ATTEMPTS = 8  # an item's observed difficulty means something from this many answers on
DRIFT_THRESHOLD = 1.0  # logits between observed and authored difficulty worth a look


@dataclass(frozen=True)
class HeatCell:
    concept: str
    mastery: float  # P(known), 0..1
    attempts: int
    mastered: bool
    colour: str
    taught: bool = True  # the concept has published questions; without any, the tutor cannot teach it yet


@dataclass(frozen=True)
class HeatRow:
    student: str
    user_id: int
    cells: list[HeatCell]
    mastered: int


@dataclass(frozen=True)
class StuckStudent:
    student: str
    concept: str
    concept_title: str
    failures: int
    window: int
    mastery: float  # latest P(known)
    gain: float  # change of P(known) across the window


@dataclass(frozen=True)
class WrongAnswer:
    answer: str
    count: int
    misconception: str  # the item's authored feedback for this answer, or ""
    answer_html: str = ""  # the answer typeset as the student's page echoes it


@dataclass(frozen=True)
class ItemWrongAnswers:
    item: Item
    attempts: int
    wrong: int
    answers: list[WrongAnswer]


@dataclass(frozen=True)
class DifficultyDrift:
    item: Item
    attempts: int
    wrong_rate: float
    observed: float  # logit of the (smoothed) wrong rate
    authored: float
    gap: float  # observed - authored: positive means harder than the author thought


def _colour(p: float) -> str:
    hue = int(120 * max(0.0, min(1.0, p)))
    return f"hsl({hue}, 65%, 72%)"


def class_students(*, course: Course) -> list:
    """Students of the course: members with the student role, and anyone with a knowledge record."""
    ids = set(Membership.objects.filter(course=course, role=Membership.Role.STUDENT).values_list("user_id", flat=True))
    ids |= set(KnowledgeRecord.objects.filter(course=course).values_list("user_id", flat=True))
    staff = set(Membership.objects.filter(course=course).exclude(role=Membership.Role.STUDENT)
                .values_list("user_id", flat=True))
    return list(get_user_model().objects.filter(pk__in=ids - staff).order_by("username"))


def heatmap(*, course: Course) -> dict:
    concepts = list(course.concepts.order_by("order"))
    threshold = course_settings(course).mastery_threshold
    taught = {c.slug for c in course_model(course).graph}  # with published questions
    blobs = dict(KnowledgeRecord.objects.filter(course=course).values_list("user_id", "blob"))
    rows = []
    for student in class_students(course=course):
        state = KnowledgeState.from_blob(blobs.get(student.pk, ""))
        cells = []
        for c in concepts:
            p = concept_mastery(state, course, c.slug)
            attempts = state.concepts[c.slug].attempts if c.slug in state.concepts else 0
            cells.append(HeatCell(concept=c.slug, mastery=p, attempts=attempts,
                                  mastered=p >= threshold and c.slug in taught, taught=c.slug in taught,
                                  colour=_colour(p / threshold) if c.slug in taught else UNPRACTISED_FILL))
        rows.append(HeatRow(student=student.username, user_id=student.pk, cells=cells,
                            mastered=sum(cell.mastered for cell in cells)))
    return {"concepts": concepts, "rows": rows, "threshold": threshold, "taught": taught,
            "untaught": [c for c in concepts if c.slug not in taught]}


def stuck_students(*, course: Course, window: int = STUCK_WINDOW, min_failures: int = STUCK_MIN_FAILURES,
                   min_gain: float = STUCK_MIN_GAIN) -> list[StuckStudent]:
    """A student is stuck on a concept when, over their last `window` attempts on it, at least `min_failures`
    were wrong and mastery rose by less than `min_gain`, and the concept is not mastered."""
    threshold = course_settings(course).mastery_threshold
    titles = dict(course.concepts.values_list("slug", "title"))
    recent: dict[tuple[int, str], list[Attempt]] = defaultdict(list)
    # only each student's last `window` attempts per concept leave the database
    newest_first = [F("created_at").desc(), F("pk").desc()]
    attempts = (Attempt.objects.filter(concept__course=course, ungraded=False)
                .annotate(rank=Window(RowNumber(), partition_by=[F("user_id"), F("concept_id")], order_by=newest_first))
                .filter(rank__lte=window).select_related("user", "concept")
                .order_by("user_id", "concept_id", "-created_at", "-pk"))
    for a in attempts:
        recent[(a.user_id, a.concept.slug)].append(a)
    out = []
    for (_, slug), last in recent.items():
        failures = sum(not a.correct for a in last)
        if len(last) < min_failures or failures < min_failures:
            continue
        newest, oldest = last[0].mastery_after or 0.0, last[-1].mastery_after or 0.0
        gain = newest - oldest
        if newest >= threshold or gain >= min_gain:
            continue
        out.append(StuckStudent(student=last[0].user.username, concept=slug, concept_title=titles.get(slug, slug),
                                failures=failures, window=len(last), mastery=newest, gain=gain))
    return sorted(out, key=lambda s: (-s.failures, s.student))


def common_wrong_answers(*, course: Course, top: int = 3, min_count: int = 2) -> list[ItemWrongAnswers]:
    """Per item, the wrong answers given most often (as the checker read them), and what they suggest."""
    by_item: dict[int, Counter[str]] = defaultdict(Counter)
    feedback_seen: dict[tuple[int, str], str] = {}
    as_given: dict[tuple[int, str], str] = {}  # a choice as the student saw it, not the checker's TeX for it
    totals: Counter[int] = Counter()
    for item_id, correct, normalized, answer, feedback in Attempt.objects.filter(item__concept__course=course, ungraded=False) \
            .values_list("item_id", "correct", "normalized", "answer", "feedback"):
        totals[item_id] += 1
        if correct:
            continue
        key = (normalized or answer).strip()
        by_item[item_id][key] += 1
        as_given.setdefault((item_id, key), answer)
        if feedback:
            feedback_seen[(item_id, key)] = feedback
    items = course_selectors.items_by_pk(pks=list(by_item))
    out = []
    for item_id, counter in by_item.items():
        item = items[item_id]
        answers = [WrongAnswer(answer=a, count=n,
                               misconception=feedback_seen.get((item_id, a)) or item.feedback.get(a, ""),
                               answer_html=echo_html(normalized=a, answer=as_given[(item_id, a)], kind=item.kind))
                   for a, n in counter.most_common(top) if n >= min_count]
        if answers:
            out.append(ItemWrongAnswers(item=item, attempts=totals[item_id], wrong=sum(counter.values()),
                                        answers=answers))
    return sorted(out, key=lambda r: -r.wrong)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def difficulty_drift(*, course: Course, min_attempts: int = DRIFT_MIN_ATTEMPTS,
                     threshold: float = DRIFT_THRESHOLD) -> list[DifficultyDrift]:
    """Items whose observed difficulty, logit((wrong + 0.5) / (n + 1)), is `threshold` or more logits from
    the authored difficulty. Only first tries without hints count: hints make any item look easy."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # item -> [answers, wrong]
    for item_id, correct in Attempt.objects.filter(item__concept__course=course, hints_used=0, ungraded=False) \
            .values_list("item_id", "correct"):
        counts[item_id][0] += 1
        counts[item_id][1] += int(not correct)
    items = [i for i in course_selectors.items_by_pk(pks=list(counts)).values() if i.authored_difficulty is not None]
    out = []
    for item in items:
        n, wrong = counts[item.pk]
        if n < min_attempts:
            continue
        observed = _logit((wrong + 0.5) / (n + 1))
        gap = observed - float(item.authored_difficulty)
        if abs(gap) >= threshold:
            out.append(DifficultyDrift(item=item, attempts=n, wrong_rate=wrong / n, observed=observed,
                                       authored=float(item.authored_difficulty), gap=gap))
    return sorted(out, key=lambda d: -abs(d.gap))


def dashboard(*, course: Course) -> dict:
    return {"heat": heatmap(course=course), "stuck": stuck_students(course=course),
            "wrong_answers": common_wrong_answers(course=course), "drift": difficulty_drift(course=course),
            "review_count": course_selectors.review_queue(course=course).count(),
            "lms_roster": lti_selectors.lms_roster(course=course)}  # None unless an LMS course links here


def dashboard_csv_rows(*, course: Course) -> list[list[str]]:
    """One row per student and concept (a tidy table: pivot it in a spreadsheet), with stuck flags."""
    heat = heatmap(course=course)
    stuck = {(s.student, s.concept) for s in stuck_students(course=course)}
    rows = [["student", "concept", "mastery", "attempts", "mastered", "stuck"]]
    for row in heat["rows"]:
        for cell in row.cells:
            rows.append([row.student, cell.concept, f"{cell.mastery:.3f}", str(cell.attempts),
                         "yes" if cell.mastered else "no", "yes" if (row.student, cell.concept) in stuck else "no"])
    return rows
