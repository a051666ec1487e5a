"""Reads for the student's pages: the stage of the loop, the knowledge map. Never exposes an answer key early."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from courses import selectors as course_selectors
from courses.models import Concept, Course
from courses.rendering import render_markdown
from courses.selectors import course_asset_url
from learner_model.knowledge import KnowledgeState
from learner_model.select import ConceptNode
from tutor.caches import course_model, course_rows, per_content_version
from tutor.display import UNPRACTISED_FILL, choice, echo_html
from tutor.models import Attempt, KnowledgeRecord, TutorSession
from tutor.services import concept_mastery, course_settings, item_variant
from tutor.teachback.selectors import stage_context as teachback_stage_context


def enrolled_course(*, user: AbstractBaseUser, slug: str) -> Course | None:
    """The course, if `user` is enrolled in it: a role in the course and a session there (the socket, the TA page,
    the batch API and the session page all ask this one question). None otherwise, or with no such course."""
    course = course_selectors.course_find(slug=slug)
    if course is None or not user.is_authenticated or course_selectors.membership_role(user=user, course=course) is None:
        return None
    return course if TutorSession.objects.filter(user=user, course=course).exists() else None


def knowledge_state(*, user: AbstractBaseUser, course: Course) -> KnowledgeState:
    return _knowledge_state(user.pk, course.pk)


def _knowledge_state(user_id: int, course_id: int) -> KnowledgeState:
    blob = KnowledgeRecord.objects.filter(user_id=user_id, course_id=course_id).values_list("blob", flat=True).first()
    return KnowledgeState.from_blob(blob or "")


def stage_context(*, session: TutorSession) -> dict:
    """Everything the stage template needs for the session's current phase. Answer keys only after an attempt.

    The mastery bar uses `session.knowledge` when the service that returned the session carried it (the socket
    renders what a service returned), else reads the student's KnowledgeRecord (a page load)."""
    concept = session.concept
    ctx: dict = {
        "session": session,
        "phase": session.phase,
        "course": session.course,
        "concept": concept,
        "reason": session.reason,
        "client_id": uuid.uuid4(),  # the id this form's submission will carry; resends reuse it
        "step": session.step,
    }
    if concept is None:
        return ctx
    state = session.knowledge if session.knowledge is not None \
        else _knowledge_state(session.user_id, session.course_id)  # by ids: the user row is not needed
    ctx["mastery"] = round(100 * concept_mastery(state, session.course, concept.slug))
    ctx["mastery_target"] = round(100 * course_settings(session.course).mastery_threshold)
    ctx["progress"] = _course_progress(state, session.course, concept)
    assets = course_asset_url(session.course)  # the course's own figures, which its texts name by relative path
    if session.phase == TutorSession.Phase.PAIN:
        ctx["pain_html"] = render_markdown(concept.pain_first, asset_base=assets)
        ctx["guess_html"] = render_markdown(concept.guess_first, asset_base=assets)
        ctx["guess_choices"] = concept.guess_choices
        ctx["guess_options"] = [choice(c) for c in concept.guess_choices]
    if session.phase == TutorSession.Phase.EXPLAIN:
        ctx["explanation_html"] = render_markdown(session.explanation, asset_base=assets) if session.explanation \
            else ""
        ctx["lesson_html"] = render_markdown(concept.lesson, asset_base=assets)
    if session.phase in (TutorSession.Phase.PRACTICE, TutorSession.Phase.FEEDBACK, TutorSession.Phase.PLACEMENT) \
            and session.item:
        item = session.item
        ctx["item"] = item
        variant = item_variant(item, session.item_seed)
        ctx["item_html"] = render_markdown(variant.prompt if variant else item.prompt, asset_base=assets)
        ctx["choices"] = item.choices if item.kind == "multiple_choice" else []
        ctx["answer_options"] = [choice(c) for c in ctx["choices"]]
        ctx["hints_html"] = [render_markdown(h, asset_base=assets) for h in item.hints[: session.hints_shown]]
        ctx["more_hints"] = session.hints_shown < len(item.hints)
        ctx["attribution"] = item.attribution
    if session.phase == TutorSession.Phase.FEEDBACK and session.last_attempt:
        attempt: Attempt = session.last_attempt
        ctx["attempt"] = attempt
        ctx["feedback_html"] = render_markdown(attempt.feedback, asset_base=assets) if attempt.feedback else ""
        # The attempt is on the item on screen (loaded with the session): no second fetch of the same row.
        attempted = session.item if session.item and session.item.pk == attempt.item_id else attempt.item
        solution = course_selectors.worked_solution(item=attempted)
        ctx["solution_html"] = render_markdown(solution, asset_base=assets) if solution else ""
        ctx["echo_html"] = echo_html(normalized=attempt.normalized, answer=attempt.answer, kind=attempted.kind)
        # a choice that is a sentence brings its own full stop ("(-6, 1) is a solution to the system.")
        ctx["echo_stop"] = "" if attempted.kind == "multiple_choice" and attempt.answer.rstrip()[-1:] in ".!?" else "."
        ctx["mastered"] = (attempt.mastery_after or 0) >= course_settings(session.course).mastery_threshold
        if attempt.mastery_after is not None:
            ctx["mastery"] = round(100 * attempt.mastery_after)  # what this answer left, as the service computed it
        ctx["mastery_note"] = _mastery_note(attempt)
        ctx["reason"] = ""  # it was about the question just answered; the feedback speaks now
    ctx.update(teachback_stage_context(session=session))  # the teach phase, or the offer to explain after mastery
    return ctx


@dataclass(frozen=True)
class CourseProgress:
    position: int  # the concept on screen, counted in the course's order (1-based)
    total: int  # concepts in the course
    mastered: int  # of them, mastered


@dataclass(frozen=True)
class _CourseOrder:
    position: dict[int, int]  # concept pk -> its place among the taught concepts in the course's order, from 1
    taught: frozenset[str]  # the concepts with published questions (the map counts these too)
    mastered_unseen: frozenset[str]  # taught concepts whose prior alone is at the mastery threshold


@per_content_version
def _course_order(course: Course) -> _CourseOrder:
    rows = course_rows(course)
    taught = frozenset(c.slug for c in course_model(course).graph)
    ordered = sorted((c for c in rows.concepts.values() if c.slug in taught), key=lambda c: (c.order, c.pk))
    threshold = rows.settings.mastery_threshold
    return _CourseOrder(position={c.pk: n for n, c in enumerate(ordered, 1)}, taught=taught,
                        mastered_unseen=frozenset(s for s, p in rows.params.items()
                                                  if p.p_init >= threshold and s in taught))


def _course_progress(state: KnowledgeState, course: Course, concept: Concept) -> CourseProgress:
    """Where the student is in the course: "concept 3 of 15, 2 mastered", mastery as `concept_mastery` gives it,
    among the concepts the tutor teaches (those with questions). Every stage shows it, so it reads only the
    concepts the student has met: the rest are at their prior."""
    rows, order = course_rows(course), _course_order(course)
    threshold = rows.settings.mastery_threshold
    met = [slug for slug in state.concepts if slug in order.taught]
    mastered = sum(state.concepts[slug].p_known >= threshold for slug in met)
    return CourseProgress(position=order.position.get(concept.pk, 1), total=len(order.taught),
                          mastered=mastered + len(order.mastered_unseen.difference(met)))


def _mastery_note(attempt: Attempt) -> str:
    """Why the bar moved the way it did, when that would surprise a student."""
    before, after = attempt.mastery_before, attempt.mastery_after
    if before is None or after is None or attempt.correct or round(100 * after) <= round(100 * before):
        return ""
    return ("Your mastery still went up a little: working through a question and then its worked solution is "
            "practice too, even when the answer was wrong.")


@dataclass(frozen=True)
class MapNode:
    slug: str
    title: str
    lines: tuple[str, ...]  # the title, wrapped to the node's width: whole, never cut
    mastery: int  # percent
    mastered: bool
    ready: bool
    state: str  # mastered, ready to learn, or which prerequisites come first: the same words the list shows
    practised: bool  # it has published questions; a concept without any is shown, not counted or asked for
    x: int
    y: int
    height: int
    colour: str


@dataclass(frozen=True)
class MapEdge:
    x1: int
    y1: int
    x2: int
    y2: int


# The map's geometry, in SVG units (CSS pixels at natural size). A layer wider than MAP_COLUMNS wraps onto more
# rows, so a course of hundreds of concepts grows down the page instead of thousands of pixels sideways; a narrow
# graph gets wider nodes, so the map fills a page's width either way.
MAP_W, MAP_COLUMNS, NODE_W_MAX = 960, 4, 400
GAP_X, GAP_Y, MARGIN = 24, 40, 20
CHAR_W, TEXT_X = 8, 12  # a 13px bold title's widest average character; the text's inset in its node
LINE_H, PAD_TOP, PCT_H = 16, 20, 22  # a title line; above the first line; the mastery line below the title


def _layers(graph: list[ConceptNode]) -> dict[str, int]:
    """Longest-path layering: a concept sits one row below its deepest prerequisite."""
    by_slug = {c.slug: c for c in graph}
    depth: dict[str, int] = {}

    def visit(slug: str) -> int:
        if slug not in depth:
            prereqs = [p for p in by_slug[slug].prerequisites if p in by_slug]
            depth[slug] = 1 + max((visit(p) for p in prereqs), default=-1)
        return depth[slug]

    for c in graph:
        visit(c.slug)
    return depth


def _colour(p: float) -> str:
    """Red (unknown) through amber to green (mastered)."""
    hue = int(120 * max(0.0, min(1.0, p)))
    return f"hsl({hue}, 65%, 72%)"


NO_QUESTIONS = "No practice questions yet"


def _state(concept: ConceptNode, prerequisites: tuple[str, ...] | None, mastered: set[str],
           titles: dict[str, str]) -> str:
    """`prerequisites`: those the tutor asks for first (`assessable_graph`); None: the concept has no questions."""
    if prerequisites is None:
        return NO_QUESTIONS
    if concept.slug in mastered:
        return "Mastered"
    waiting = [titles[p] for p in prerequisites if p in titles and p not in mastered]
    if not waiting:
        return "Ready to learn"
    more = f" and {len(waiting) - 2} more" if len(waiting) > 2 else ""
    return "First: " + ", ".join(waiting[:2]) + more


def knowledge_map(*, user: AbstractBaseUser, course: Course) -> dict:
    """The concept graph laid out in layers (a concept below its prerequisites), coloured by mastery, and the same
    concepts in course order with mastery and state: the map's text alternative."""
    graph = sorted(course_selectors.concept_graph(course=course), key=lambda c: c.order)
    state = knowledge_state(user=user, course=course)
    threshold = course_settings(course).mastery_threshold
    layers = _layers(graph)
    # The concepts the tutor teaches (with published questions), each after the taught concepts it rests on, as
    # the tutor orders them: one without questions can never be mastered, so it neither counts nor blocks.
    asks_first = {c.slug: c.prerequisites for c in course_model(course).graph}
    mastery = {c.slug: concept_mastery(state, course, c.slug) for c in graph}
    mastered = {slug for slug, p in mastery.items() if p >= threshold and slug in asks_first}
    titles = {c.slug: c.title for c in graph}
    rows: list[list[ConceptNode]] = []
    for layer in sorted(set(layers.values())):
        members = [c for c in graph if layers[c.slug] == layer]
        rows.extend(members[i:i + MAP_COLUMNS] for i in range(0, len(members), MAP_COLUMNS))
    columns = max((len(r) for r in rows), default=1)
    node_w = min(NODE_W_MAX, (MAP_W - 2 * MARGIN + GAP_X) // columns - GAP_X)
    nodes: dict[str, MapNode] = {}
    y = MARGIN
    for members in rows:
        wrapped = [tuple(textwrap.wrap(c.title, (node_w - 2 * TEXT_X) // CHAR_W)) or (c.slug,) for c in members]
        height = PAD_TOP + LINE_H * max(len(lines) for lines in wrapped) + PCT_H
        indent = (columns - len(members)) * (node_w + GAP_X) // 2  # centre each row
        for col, (c, lines) in enumerate(zip(members, wrapped, strict=True)):
            p, first = mastery[c.slug], asks_first.get(c.slug)
            nodes[c.slug] = MapNode(
                slug=c.slug, title=c.title, lines=lines, mastery=round(100 * p), mastered=c.slug in mastered,
                ready=first is not None and c.slug not in mastered and all(q in mastered for q in first),
                state=_state(c, first, mastered, titles), practised=first is not None,
                x=MARGIN + indent + col * (node_w + GAP_X), y=y, height=height,
                colour=_colour(p / threshold) if first is not None else UNPRACTISED_FILL)
        y += height + GAP_Y
    edges = [MapEdge(nodes[p].x + node_w // 2, nodes[p].y + nodes[p].height, nodes[c.slug].x + node_w // 2,
                     nodes[c.slug].y)
             for c in graph for p in c.prerequisites if p in nodes]
    width = 2 * MARGIN + columns * (node_w + GAP_X) - GAP_X
    return {"nodes": list(nodes.values()), "in_order": [nodes[c.slug] for c in graph], "edges": edges,
            "width": width, "height": max(y - GAP_Y + MARGIN, 2 * MARGIN), "node_w": node_w, "line_h": LINE_H,
            "mastered_count": len(mastered), "total": len(asks_first), "unpractised": len(graph) - len(asks_first)}


def attempts_stored(*, user: AbstractBaseUser, course: Course, client_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `client_ids` are stored as this user's attempts in this course (the batch API's resend check).

    An id stored for someone else, or in another course, reads as not stored: the answer reveals nothing
    beyond the caller's own answers."""
    return set(Attempt.objects.filter(user=user, concept__course=course, client_id__in=list(client_ids))
               .values_list("client_id", flat=True))
