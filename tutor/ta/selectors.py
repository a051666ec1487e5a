"""Reads for the TA-bot's pages: a student's own question log, the faculty's queue, and the read-only places the
TA's citations link to (a concept's lesson, an exercise, a faculty answer, an uploaded document)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from courses import selectors as course_selectors
from courses.models import Concept, Course, Item, Membership
from courses.rendering import display_maths_inline, render_markdown
from courses.selectors import course_asset_url
from inference.retrieval import slugify
from tutor.models import Attempt, TAChunk, TADocument, TAIndex, TAQuestion, TutorSession
from tutor.ta.privacy import Finding


def may_read_course(*, user: AbstractBaseUser, course: Course) -> bool:
    """Students, TAs and faculty of the course read its lessons and the TA's sources."""
    return user.is_authenticated and Membership.objects.filter(user=user, course=course).exists()


def ask_placeholder(*, user: AbstractBaseUser, course: Course) -> str:
    """An example question about what the student is learning in this course (one fixed calculus example read
    oddly on a statistics course)."""
    session = TutorSession.objects.filter(user=user, course=course).select_related("concept").first()
    concept = session.concept if session is not None and session.concept is not None \
        else course.concepts.order_by("order", "id").first()
    return f"e.g. Can you explain “{concept.title}” in another way?" if concept else "e.g. What does this course start with?"


def student_questions(*, user: AbstractBaseUser, course: Course, limit: int = 50) -> QuerySet[TAQuestion]:
    """The student's own log, newest first. Nobody else's, whatever the caller passes."""
    return (TAQuestion.objects.filter(user=user, course=course, hidden_by_student=False)
            .select_related("answered_by").order_by("-created_at", "-pk")[:limit])


def faculty_questions(*, course: Course, show: str = "escalated", limit: int = 200) -> QuerySet[TAQuestion]:
    """For faculty and TAs of the course: "escalated" (waiting first), "answered" or "all" questions."""
    qs = TAQuestion.objects.filter(course=course).select_related("user", "answered_by")
    if show == "escalated":
        qs = qs.filter(escalated=True, answered_at__isnull=True).order_by("escalated_at", "pk")
    elif show == "answered":
        qs = qs.filter(escalated=True, answered_at__isnull=False).order_by("-answered_at", "-pk")
    else:
        qs = qs.order_by("-created_at", "-pk")
    return qs[:limit]


def question_topics(*, course: Course, recent: int = 500, top: int = 8) -> list[tuple[str, int]]:
    """(concept title, questions) over the course's last `recent` questions: what students ask the TA about,
    by the concept its best passages came from (the light evidence each question leaves)."""
    titles = dict(course.concepts.values_list("slug", "title"))
    counts: dict[str, int] = {}
    for concepts in TAQuestion.objects.filter(course=course).order_by("-created_at").values_list("concepts", flat=True)[:recent]:
        if concepts:
            counts[concepts[0]] = counts.get(concepts[0], 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [(titles.get(slug, slug), n) for slug, n in ranked]


def waiting_count(*, course: Course) -> int:
    return TAQuestion.objects.filter(course=course, escalated=True, answered_at__isnull=True).count()


def ta_index_state(*, course: Course) -> TAIndex | None:
    return TAIndex.objects.filter(course=course).first()


def ta_documents_list(*, course: Course) -> list[TADocument]:
    """The course's uploads, newest first, each with `masked_findings`: the personal data found, shown in part."""
    documents = list(TADocument.objects.filter(course=course).defer("data").order_by("-created_at"))
    for d in documents:
        d.masked_findings = [Finding(f["kind"], f["text"]).masked() for f in d.findings if f.get("kind") != "name_grade"]
    return documents


@dataclass(frozen=True)
class QuestionCard:
    question: TAQuestion
    answer_html: str
    faculty_html: str


def question_card(*, question: TAQuestion) -> QuestionCard:
    return QuestionCard(question=question, answer_html=render_markdown(question.answer),
                        faculty_html=render_markdown(question.faculty_answer) if question.faculty_answer else "")


_HEADING = re.compile(r"<h([1-6])>(.*?)</h\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def with_anchors(rendered: str) -> str:
    """Give each heading of sanitised HTML the id the TA's chunk links use (retrieval.slugify of its text)."""

    def anchor(match: re.Match[str]) -> str:
        text = html.unescape(_TAG.sub("", match.group(2)))
        return f'<h{match.group(1)} id="{html.escape(slugify(text))}">{match.group(2)}</h{match.group(1)}>'

    return _HEADING.sub(anchor, rendered)


def concept_page(*, course: Course, concept: Concept) -> dict:
    """The lesson and explanation as the TA indexes them ("## Lesson", "## Explanation"), and the exercises."""
    asset_base = course_asset_url(course)
    sections = [(kind, heading, with_anchors(render_markdown(f"## {heading}\n\n{text}", asset_base=asset_base)))
                for kind, heading, text in (("lesson", "Lesson", concept.lesson),
                                            ("explanation", "Explanation", concept.explanation)) if text.strip()]
    return {"course": course, "concept": concept, "sections": sections,
            "items": course_selectors.published_items(concept=concept)}


def protected_items(*, user: AbstractBaseUser, course: Course) -> tuple[Item | None, list[Item]]:
    """The item on the student's screen (practice or placement) and the other published items of its concept,
    which the tutor may serve next: the TA will not solve them, and their pages hide hints and solutions."""
    session = TutorSession.objects.select_related("item__concept").filter(user=user, course=course).first()
    if session is None or session.item is None or session.phase not in (TutorSession.Phase.PRACTICE,
                                                                        TutorSession.Phase.PLACEMENT):
        return None, []
    siblings = course_selectors.published_items(concept=session.item.concept).exclude(pk=session.item.pk)
    return session.item, list(siblings)


HINT_HELD = ("*This hint gives away the answer to an exercise you have not answered yet: it shows here once you "
             "have, in practice.*")
HINT_UNCHECKED = "*This hint shows once it has been checked for answers it gives away (the course changed a moment ago).*"
_HINT_TITLE = re.compile(r"› Hint (\d+)$")


def hints_reveal(*, course: Course, item: Item) -> dict[int, frozenset[str] | None]:
    """Per hint of the exercise (numbered from 1), the exercises whose key it states or computes, as the TA's index
    judged it (`TAChunk.reveals`, `tutor.ta.sources.passage_reveals`); None for a hint the stored index has not
    judged as it reads now (no index yet, or edited since), which the TA too treats as giving its exercise away."""
    judged: dict[int, list[tuple[str, list[str]]]] = {}
    for title, text, reveals in TAChunk.objects.filter(course=course, doc_id=f"item/{item.slug}#hints",
                                                       kind="hint").values_list("title", "text", "reveals"):
        match = _HINT_TITLE.search(title)
        if match:
            judged.setdefault(int(match.group(1)), []).append((text, reveals))
    out: dict[int, frozenset[str] | None] = {}
    for n, hint in enumerate(item.hints, start=1):
        chunks = judged.get(n, [])
        fresh = bool(chunks) and all(text in str(hint) for text, _ in chunks)
        out[n] = frozenset(slug for _, reveals in chunks for slug in reveals) if fresh else None
    return out


def item_page(*, user: AbstractBaseUser, course: Course, item: Item) -> dict:
    """An exercise's stem, hints and worked solution (never the key); for an exercise the student is on or may be
    served next, only the stem (the same rule the TA follows when it searches). `number`: its place in its concept's
    list, as the concept's page and the TA's citations name it."""
    asset_base = course_asset_url(course)
    stem = item.prompt
    if item.choices:
        # a choice's display maths (imported courses write "$$-2$$") set inline, as the practice page's radios do
        stem += "\n\n" + "\n".join(f"- {display_maths_inline(str(choice))}" for choice in item.choices)
    parts = [f"## Exercise\n\n{stem}"]
    current, siblings = protected_items(user=user, course=course)
    protected = item.pk in {i.pk for i in siblings} | ({current.pk} if current else set())
    teaches = course_selectors.teaches(user=user, course=course)
    answered = set() if teaches else set(Attempt.objects.filter(user=user, concept__course=course)
                                         .values_list("item__slug", flat=True))
    # A hint giving away the key of an exercise the student has not answered waits for that answer, as in the TA's
    # replies (`inference.ta.StudentState.may_quote`): OATutor's scaffolds end with theirs ("Answer: 9.09").
    judged = {} if teaches or protected else hints_reveal(course=course, item=item)
    held = {n: HINT_UNCHECKED if reveals is None else HINT_HELD for n, reveals in judged.items()
            if reveals is None or not reveals <= answered}
    if not protected:
        parts += [f"## Hint {n}\n\n{held.get(n, hint)}" for n, hint in enumerate(item.hints, start=1)]
        # A worked solution carries the key: a student sees it once they have answered this exercise.
        if item.solution.strip() and (teaches or item.slug in answered):
            parts.append(f"## Worked solution\n\n{item.solution}")
    listed = list(course_selectors.published_items(concept=item.concept).values_list("pk", flat=True))
    return {"course": course, "concept": item.concept, "item": item, "protected": protected,
            "number": listed.index(item.pk) + 1 if item.pk in listed else item.slug,
            "on_screen": current is not None and current.pk == item.pk,
            "body_html": with_anchors(render_markdown("\n\n".join(parts), asset_base=asset_base))}


def faq_entry(*, course: Course, pk: int) -> TAQuestion:
    """A faculty answer shared with the class: the question and the answer, never who asked."""
    return TAQuestion.objects.get(pk=pk, course=course, shared=True, escalated=True, answered_at__isnull=False)


def ta_document_get(*, course: Course, pk: int, user: AbstractBaseUser | None = None) -> TADocument:
    """A document of the course; one held for its personal data only for the course's teachers (`user` given)."""
    document = TADocument.objects.get(pk=pk, course=course)
    if document.held and (user is None or not course_selectors.teaches(user=user, course=course)):
        raise TADocument.DoesNotExist(pk)
    return document
