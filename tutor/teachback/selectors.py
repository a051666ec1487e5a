"""Reads for teach-back: the student's stage, the faculty's "What beginners ask" panel, the dashboard's coverage.

Privacy: a student's own text is shown to that student only. Faculty see explanations and questions without
names, ids or dates, a few at a time ("anonymised examples").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.urls import reverse

from courses.models import Concept, Course
from inference.teachback import doubts
from tutor.dashboard import ItemWrongAnswers, common_wrong_answers
from tutor.models import TAQuestion, TutorSession
from tutor.teachback import services
from tutor.teachback.models import TeachBack, TeachBackMessage

EXAMPLES = 5  # anonymised examples shown per group
RECENT_QUESTIONS = 300  # of a course's latest TA-bot questions, those about the concept are grouped
GROUP_SIMILARITY = 0.6  # cosine of sentence embeddings at which two questions are "the same question"
EXCERPT_CHARS = 280

PLAIN = {  # how each verdict reads to the student
    "covered": "Clear",
    "missing": "Missing",
    "contradicted": "Check this",
}


def lesson_url(concept: Concept, course: Course) -> str:
    return reverse("concept_page", args=[course.slug, concept.slug]) + "#lesson"


def stage_context(*, session: TutorSession) -> dict:
    """What the teach-back partial shows: in the teach phase, the exchange so far and (when scored) the verdict; on
    a mastered concept's feedback in a course with teach-back on request, the offer."""
    if session.phase == TutorSession.Phase.FEEDBACK:
        mode = services.teach_back_mode(session.course)
        offered = mode != "never" and services.teach_back_offered(session=session)
        # after mastery, "next" leads into the teach-back (after_mastery) or the student may ask for it (on_request)
        return {"teachback_offer": offered and mode == "on_request",
                "teachback_next": offered and mode == "after_mastery"}
    if session.phase != TutorSession.Phase.TEACH or session.concept is None:
        return {}
    teach_back = TeachBack.objects.filter(user_id=session.user_id, concept=session.concept) \
        .order_by("-created_at").first()
    if teach_back is None:
        return {}
    accepted = list(teach_back.messages.filter(redo="").values_list("text", flat=True))
    turns: list[tuple[str, str]] = []  # (who, text): the student's messages with the novice's questions between
    for n, text in enumerate(accepted):
        turns.append(("you", text))
        if n < len(teach_back.questions):
            turns.append(("novice", teach_back.questions[n]["text"]))
    if teach_back.status == TeachBack.Status.FOLLOW_UP and len(accepted) < len(teach_back.questions):
        turns.append(("novice", teach_back.questions[-1]["text"]))
    ideas = [{"plain": PLAIN[i["status"]], **i} for i in teach_back.ideas]
    covered = sum(i["status"] == "covered" for i in teach_back.ideas)
    return {
        "reason": "",  # the line about the last practice item no longer applies
        "teachback": teach_back,
        "teachback_turns": turns,
        "teachback_ideas": ideas,
        "teachback_summary": f"{covered} of {len(ideas)} key ideas came across clearly." if ideas else "",
        "teachback_complete": bool(ideas) and covered == len(ideas),
        "teachback_lesson_url": lesson_url(session.concept, session.course),
        # a mix-up the beginner asked about ("someone told me ...") and the student did not say yes to: told that it
        # is one, whatever they answered (one they said yes to is named as theirs, above it), and whether they were
        # unsure of it
        "teachback_mixups_asked": [(q["misconception"].rstrip(" ."), doubts(answer))
                                   for q, answer in services.replies(teach_back.questions, accepted[1:], "misconception")
                                   if q["misconception"] not in teach_back.misconceptions_heard]
        if teach_back.status == TeachBack.Status.SCORED else [],
        # two terms the beginner asked about ("you said ...: is that X or Y?"): which one the student kept
        "teachback_swaps_asked": [{**q["swap"], "kept": services.swap_kept(q, answer), "unsure": doubts(answer)}
                                  for q, answer in services.replies(teach_back.questions, accepted[1:], "swap")]
        if teach_back.status == TeachBack.Status.SCORED else [],
    }


# --- faculty -------------------------------------------------------------------------------------------------


@dataclass
class QuestionGroup:
    question: TAQuestion  # the group's first question: the one a FAQ entry answers
    examples: list[str] = field(default_factory=list)  # question texts, without who asked

    @property
    def size(self) -> int:
        return len(self.examples)


@dataclass(frozen=True)
class MissingIdea:
    idea: str
    missing: int  # explanations that left it out
    contradicted: int  # explanations that stated a misconception against it
    scored: int  # explanations scored
    examples: tuple[str, ...]  # anonymised excerpts of explanations that missed it


def concept_questions(*, concept: Concept) -> list[TAQuestion]:
    """The course's latest TA-bot questions that were about this concept (TAQuestion.concepts)."""
    recent = TAQuestion.objects.filter(course_id=concept.course_id).order_by("-created_at")[:RECENT_QUESTIONS]
    return [q for q in recent if concept.slug in (q.concepts or [])]


def question_groups(*, concept: Concept) -> list[QuestionGroup]:
    """Students' questions about the concept, grouped by meaning (greedy: each question joins the first group whose
    first question is close enough), largest groups first."""
    questions = concept_questions(concept=concept)
    if not questions:
        return []
    vectors = services.scorer().embed([q.question for q in questions])  # (n, 384), unit length
    groups: list[tuple[int, QuestionGroup]] = []
    for n, q in enumerate(questions):
        home = next((g for first, g in groups if float(vectors[first] @ vectors[n]) >= GROUP_SIMILARITY), None)
        if home is None:
            home = QuestionGroup(question=q)
            groups.append((n, home))
        home.examples.append(q.question)
    return sorted((g for _, g in groups), key=lambda g: -g.size)


def missing_ideas(*, concept: Concept) -> list[MissingIdea]:
    """Each key idea with how often scored explanations missed or contradicted it, most often missed first."""
    rows = list(TeachBack.objects.filter(concept=concept, status=TeachBack.Status.SCORED).values_list("pk", "ideas"))
    missing: Counter[str] = Counter()
    contradicted: Counter[str] = Counter()
    missed_by: dict[str, list[int]] = {}
    for pk, ideas in rows:
        for i in ideas:
            if i["status"] == "missing":
                missing[i["idea"]] += 1
            elif i["status"] == "contradicted":
                contradicted[i["idea"]] += 1
            if i["status"] != "covered":
                missed_by.setdefault(i["idea"], []).append(pk)
    first_texts = _first_explanations({pk for pks in missed_by.values() for pk in pks[:EXAMPLES]})
    out = [MissingIdea(idea=idea, missing=missing[idea], contradicted=contradicted[idea], scored=len(rows),
                       examples=tuple(_excerpt(first_texts[pk]) for pk in missed_by.get(idea, [])[:EXAMPLES]
                                      if pk in first_texts))
           for idea in concept.key_ideas]
    return sorted(out, key=lambda m: -(m.missing + m.contradicted))


@dataclass(frozen=True)
class MixupAnswers:
    misconception: str
    asked: int  # scored explanations in which the beginner asked about it ("someone told me ...: is that right?")
    held: int  # scored explanations that held it: the student said yes to it, or a model confirmed it
    unsure: int  # asked, and the student was not sure (`doubts`)


# a swap row: the terms the beginner asked about
SWAPPED_TERMS = {"substituted": "Said \u201c{wrong}\u201d for \u201c{right}\u201d",
                 "exchanged": "Said \u201c{wrong}\u201d and \u201c{right}\u201d the other way round"}


def mixup_answers(*, concept: Concept) -> list[MixupAnswers]:
    """Per authored misconception, and per pair of terms students swapped, how students met it in their teach-backs:
    asked about, held (said yes; kept the wrong term), unsure; only those met at all, most held first."""
    asked: Counter[str] = Counter()
    held: Counter[str] = Counter()
    unsure: Counter[str] = Counter()
    teach_backs = list(TeachBack.objects.filter(concept=concept, status=TeachBack.Status.SCORED))
    swaps: dict[str, None] = {}  # the pairs of terms asked about, in order
    answers: dict[int, list[str]] = {}
    for pk, text in TeachBackMessage.objects.filter(teach_back__in=teach_backs, redo="") \
            .order_by("created_at", "pk").values_list("teach_back_id", "text"):
        answers.setdefault(pk, []).append(text)
    for tb in teach_backs:
        held.update(set(tb.misconceptions_heard))
        replies = answers.get(tb.pk, [])[1:]  # the explanation first, then one answer per question
        for question, reply in services.replies(tb.questions, replies, "misconception"):
            mixup = question["misconception"]
            asked[mixup] += 1
            unsure[mixup] += mixup not in tb.misconceptions_heard and doubts(reply)
        for question, reply in services.replies(tb.questions, replies, "swap"):
            swap = SWAPPED_TERMS[question["swap"].get("kind", "substituted")].format(**question["swap"])
            swaps[swap] = None
            asked[swap] += 1
            unsure[swap] += doubts(reply)
            held[swap] += not doubts(reply) and services.swap_kept(question, reply) == "wrong"
    met = [m for m in concept.misconceptions if asked[m] or held[m]]
    met += [s for s in swaps if s not in met]
    rows = [MixupAnswers(m, asked[m], held[m], unsure[m]) for m in met]
    return sorted(rows, key=lambda r: (-r.held, -r.unsure, -r.asked))


def _first_explanations(teach_back_ids: set[int]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for pk, text in TeachBackMessage.objects.filter(teach_back_id__in=teach_back_ids, redo="",
                                                    kind=TeachBackMessage.Kind.EXPLANATION) \
            .order_by("created_at").values_list("teach_back_id", "text"):
        texts.setdefault(pk, text)
    return texts


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def wrong_answers(*, concept: Concept) -> list[ItemWrongAnswers]:
    """The concept's items' most common wrong answers with the misconception each suggests."""
    return [row for row in common_wrong_answers(course=concept.course) if row.item.concept_id == concept.pk]


def key_idea_coverage(*, course: Course) -> list[tuple[Concept, int, list[tuple[str, int]]]]:
    """For the class dashboard: per concept with scored explanations, how many, and per key idea the percentage of
    them that covered it."""
    by_concept: dict[int, list[list[dict]]] = {}
    for concept_id, ideas in TeachBack.objects.filter(course=course, status=TeachBack.Status.SCORED) \
            .values_list("concept_id", "ideas"):
        by_concept.setdefault(concept_id, []).append(ideas)
    out = []
    for concept in course.concepts.filter(pk__in=list(by_concept)).order_by("order"):
        verdicts = by_concept[concept.pk]
        covered: Counter[str] = Counter(i["idea"] for ideas in verdicts for i in ideas if i["status"] == "covered")
        out.append((concept, len(verdicts),
                    [(idea, round(100 * covered[idea] / len(verdicts))) for idea in concept.key_ideas]))
    return out
