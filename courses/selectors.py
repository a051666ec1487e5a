"""Reads of the curriculum, shaped for the tutor and the pages."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404

from courses.format import ITEM_STATUS_KEY, ConceptSpec, CourseSpec, ItemSpec, worked_in
from courses.models import Concept, ContentVersion, Course, ImportJob, Item, Membership
from courses.params import ConceptParams, CourseSettings
from courses.question_forms import prompt_expressions, written_expressions
from learner_model.select import ConceptNode, ItemChoice


def course_list() -> QuerySet[Course]:
    return Course.objects.order_by("title")


def course_exists(*, slug: str) -> bool:
    return Course.objects.filter(slug=slug).exists()


def course_asset_url(course: Course) -> str:
    """URL prefix of the course's files (figures), for relative paths in its Markdown."""
    return f"{settings.MEDIA_URL if settings.MEDIA_URL.startswith('/') else '/' + settings.MEDIA_URL}courses/{course.slug}/"


def course_asset_root(slug: str) -> Path:
    """Where a course's files (figures) live; rendered Markdown links relative paths here."""
    return Path(settings.MEDIA_ROOT) / "courses" / slug


def course_asset_files(*, course: Course) -> list[tuple[str, Path]]:
    """The course's files (figures, imported or uploaded) as (path relative to the course folder, file), for an
    export: the course folder format takes files beside course.yaml along (`courses.importers.load_folder`)."""
    root = course_asset_root(course.slug)
    return [(file.relative_to(root).as_posix(), file) for file in sorted(root.rglob("*")) if file.is_file()]


def course_get(*, slug: str | None = None, pk: int | None = None) -> Course:
    """The course with this slug (or primary key); Course.DoesNotExist if there is none."""
    return Course.objects.get(slug=slug) if slug is not None else Course.objects.get(pk=pk)


def course_find(*, slug: str | None = None, pk: int | None = None) -> Course | None:
    """The course with this slug (or primary key), or None."""
    found = Course.objects.filter(slug=slug) if slug is not None else Course.objects.filter(pk=pk)
    return found.first()


def courses_by_slug(*, slugs: list[str]) -> list[Course]:
    return list(Course.objects.filter(slug__in=slugs))


def course_concepts(*, course: Course) -> QuerySet[Concept]:
    return Concept.objects.filter(course=course)


def course_items(*, course: Course, published: bool = False) -> QuerySet[Item]:
    """The course's items (only the published ones with `published`), each with its concept."""
    items = Item.objects.filter(concept__course=course).select_related("concept")
    return items.filter(status=Item.Status.PUBLISHED) if published else items


def concept_by_pk(*, pk: int) -> Concept:
    return Concept.objects.get(pk=pk)


def concept_course_id(*, concept_id: int) -> int | None:
    return Concept.objects.filter(pk=concept_id).values_list("course_id", flat=True).first()


def item_get(*, pk: int) -> Item:
    return Item.objects.select_related("concept").get(pk=pk)


def items_by_pk(*, pks: list[int]) -> dict[int, Item]:
    """These items by primary key, each with its concept; missing ones are left out."""
    return Item.objects.select_related("concept").in_bulk(pks)


def membership_role(*, user: AbstractBaseUser, course: Course) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, course=course).values_list("role", flat=True).first()


def teaches(*, user: AbstractBaseUser, course: Course) -> bool:
    """Faculty or TA of the course: reads every hint and worked solution."""
    return membership_role(user=user, course=course) in (Membership.Role.FACULTY, Membership.Role.TA)


TEACHING_ROLES = (Membership.Role.FACULTY, Membership.Role.TA)


def course_taught(*, user: AbstractBaseUser, slug: str, roles: tuple[str, ...] = TEACHING_ROLES) -> tuple[Course, str]:
    """The course and the user's role in it, for a page that teachers in `roles` may open: Http404 if there is no
    such course, PermissionDenied if the user's role may not. Every app's teaching pages share this door."""
    course = Course.objects.filter(slug=slug).first()
    if course is None:
        raise Http404("No such course")
    role = membership_role(user=user, course=course)
    if role not in roles:
        raise PermissionDenied("You do not teach this course in a role that may do this.")
    return course, role


def courses_of(*, user: AbstractBaseUser) -> dict[int, str]:
    """course id -> role, for the user's memberships."""
    return dict(Membership.objects.filter(user=user).values_list("course_id", "role"))


def concept_graph(*, course: Course) -> list[ConceptNode]:
    """The course's concepts with their prerequisites, as the learner model's plain dataclasses."""
    concepts = list(course.concepts.prefetch_related("prerequisites").order_by("order"))
    return [ConceptNode(slug=c.slug, title=c.title, prerequisites=tuple(p.slug for p in c.prerequisites.all()),
                        order=c.order) for c in concepts]


def concept_get(*, course: Course, slug: str) -> Concept:
    return course.concepts.get(slug=slug)


def published_items(*, concept: Concept) -> QuerySet[Item]:
    """A concept's published items in the order its page lists and numbers them."""
    return concept.items.filter(status=Item.Status.PUBLISHED).order_by("order", "pk")


def item_choices(*, concept: Concept) -> list[ItemChoice]:
    return [ItemChoice(id=str(i.pk), concept=concept.slug, difficulty=i.difficulty)
            for i in published_items(concept=concept)]


def worked_solution(*, item: Item) -> str:
    """The item's worked solution as Markdown: its own, or else its hints as steps (OATutor's hints are the steps of
    a worked solution, and an imported item has no other); "" for an item with neither."""
    if item.solution:
        return item.solution
    return "\n\n".join(f"*Step {n}.* {hint}" for n, hint in enumerate(item.hints, start=1))


def question_expressions(*, item: Item) -> tuple[str, ...]:
    """What the item's question shows, in the checker's syntax: what a student could copy back as an answer."""
    return prompt_expressions(item.prompt)


def written_key(*, item: Item) -> tuple[str, ...]:
    """The key as the course writes it, in the checker's syntax, where the item keeps it (OATutor's answer as
    LaTeX: a numeric key is stored as its value, 3.547e14, and its form, 3.547 x 10^14, would be lost)."""
    written = (item.extra or {}).get("oatutor", {}).get("answer_latex") or []
    if not isinstance(written, list):
        return ()
    return written_expressions(tuple(tex for tex in written if isinstance(tex, str)))


def worked_in_lesson(*, item: Item) -> bool:
    """Whether the concept's own explanation or lesson works this item through (an imported concept's worked example
    is one of its items): its whole prompt is in them. A prompt under 40 characters may be there by chance."""
    return worked_in(item.prompt, item.concept.explanation, item.concept.lesson)


# --- Authoring ----------------------------------------------------------------------------------------



def course_spec(*, course: Course) -> CourseSpec:
    """The course as the folder format holds it (`dump_course` writes it out). Every item is kept; one not
    published carries `extra: {status: review|rejected}`, which the import job puts back (`ITEM_STATUS_KEY`)."""
    concepts = course.concepts.prefetch_related("prerequisites").order_by("order")
    items_by_concept: dict[int, list[ItemSpec]] = {}
    for item in Item.objects.filter(concept__course=course).order_by("order", "pk"):
        spec = item_spec(item=item)
        spec.extra.pop(ITEM_STATUS_KEY, None)
        if item.status != Item.Status.PUBLISHED:
            spec.extra[ITEM_STATUS_KEY] = item.status
        items_by_concept.setdefault(item.concept_id, []).append(spec)
    return CourseSpec(
        slug=course.slug, title=course.title, description=course.description,
        settings=course_settings(course=course), attribution=course.attribution,
        concepts=[ConceptSpec(
            slug=c.slug, title=c.title, prerequisites=sorted(p.slug for p in c.prerequisites.all()),
            lesson=c.lesson, pain_first=c.pain_first, guess_first=c.guess_first, guess_choices=list(c.guess_choices),
            guess_answer=c.guess_answer, explanation=c.explanation, prerequisites_inferred=c.prerequisites_inferred,
            params=concept_params(concept=c), key_ideas=list(c.key_ideas), misconceptions=list(c.misconceptions),
            misconception_ideas=dict(c.misconception_ideas), probes=list(c.probes), extra=dict(c.extra),
            items=items_by_concept.get(c.pk, []),
        ) for c in concepts],
    )


def course_settings(*, course: Course) -> CourseSettings:
    """The course's settings, typed. Rows are validated when written (`courses.services`), so this parses."""
    return CourseSettings.parse(course.settings)


def teach_back_ready(*, course: Course) -> tuple[int, int]:
    """(concepts with key ideas, all concepts): only the former are ever explained in a teach-back. An imported
    course starts at none."""
    concepts = course.concepts.all()
    return concepts.exclude(key_ideas=[]).count(), concepts.count()


def concept_params(*, concept: Concept) -> ConceptParams:
    """The concept's own learner-model parameters, typed (validated when written)."""
    return ConceptParams.parse(concept.params)


def item_spec(*, item: Item) -> ItemSpec:
    return ItemSpec(
        id=item.slug, kind=item.kind, prompt=item.prompt, answer=item.answer, choices=list(item.choices),
        tolerance=item.tolerance, units=item.units or None, variables=list(item.variables), accept=list(item.accept),
        params=dict(item.params), hints=list(item.hints), feedback=dict(item.feedback),
        difficulty=item.authored_difficulty, solution=item.solution, attribution=item.attribution,
        extra=dict(item.extra),
    )


@dataclass(frozen=True)
class GraphNode:
    slug: str
    title: str
    x: int
    y: int
    items: int  # published items
    review: int  # items waiting in the review queue


@dataclass(frozen=True)
class GraphEdge:
    prerequisite: str
    concept: str
    x1: int
    y1: int
    x2: int
    y2: int


GRAPH_NODE_W, GRAPH_NODE_H, GRAPH_GAP_X, GRAPH_GAP_Y = 170, 52, 60, 26


def concept_graph_layout(*, course: Course) -> dict:
    """The prerequisite graph laid out left to right: a concept one column right of its deepest prerequisite."""
    graph = concept_graph(course=course)
    by_slug = {c.slug: c for c in graph}
    depth: dict[str, int] = {}

    def visit(slug: str, seen: frozenset[str] = frozenset()) -> int:
        if slug not in depth:
            prereqs = [p for p in by_slug[slug].prerequisites if p in by_slug and p not in seen]
            depth[slug] = 1 + max((visit(p, seen | {slug}) for p in prereqs), default=-1)
        return depth[slug]

    counts: dict[tuple[str, str], int] = {
        (row["concept__slug"], row["status"]): row["n"]
        for row in Item.objects.filter(concept__course=course).values("concept__slug", "status").annotate(n=Count("pk"))
    }
    columns: dict[int, list[ConceptNode]] = {}
    for c in graph:
        columns.setdefault(visit(c.slug), []).append(c)
    nodes: dict[str, GraphNode] = {}
    for col, members in columns.items():
        for row, c in enumerate(members):
            nodes[c.slug] = GraphNode(
                slug=c.slug, title=c.title, x=20 + col * (GRAPH_NODE_W + GRAPH_GAP_X),
                y=20 + row * (GRAPH_NODE_H + GRAPH_GAP_Y), items=counts.get((c.slug, Item.Status.PUBLISHED), 0),
                review=counts.get((c.slug, Item.Status.REVIEW), 0))
    edges = [GraphEdge(p, c.slug, nodes[p].x + GRAPH_NODE_W, nodes[p].y + GRAPH_NODE_H // 2, nodes[c.slug].x,
                       nodes[c.slug].y + GRAPH_NODE_H // 2)
             for c in graph for p in c.prerequisites if p in nodes]
    return {"nodes": list(nodes.values()), "edges": edges,
            "width": 40 + (max(columns, default=0) + 1) * (GRAPH_NODE_W + GRAPH_GAP_X),
            "height": 40 + max((len(m) for m in columns.values()), default=1) * (GRAPH_NODE_H + GRAPH_GAP_Y),
            "node_w": GRAPH_NODE_W, "node_h": GRAPH_NODE_H}


def review_queue(*, course: Course) -> QuerySet[Item]:
    return (Item.objects.filter(concept__course=course, status=Item.Status.REVIEW)
            .select_related("concept").order_by("concept__order", "order"))


def content_versions(*, course: Course, kind: str | None = None, object_id: int | None = None,
                     limit: int = 100) -> QuerySet[ContentVersion]:
    qs = ContentVersion.objects.filter(course=course).select_related("user")
    if kind is not None:
        qs = qs.filter(kind=kind, object_id=object_id)
    return qs[:limit]


@dataclass(frozen=True)
class ReportLine:
    severity: str  # "error": left out; "warning": kept (in the review queue, or changed)
    category: str
    count: int


def import_report_summary(*, job: ImportJob) -> list[ReportLine]:
    """The importer's notes counted by what they are about, most first (the page lists them one by one below)."""
    counts = Counter((r.get("severity", "error"), r.get("category") or "other") for r in job.report)
    return [ReportLine(severity, category, n) for (severity, category), n in counts.most_common()]


def import_job_get(*, pk: int, user: AbstractBaseUser) -> ImportJob:
    return ImportJob.objects.select_related("course").defer("data").get(pk=pk, user=user)


def teaching_courses(*, user: AbstractBaseUser) -> QuerySet[Course]:
    return Course.objects.filter(memberships__user=user,
                                 memberships__role__in=[Membership.Role.FACULTY, Membership.Role.TA]).order_by("title")


def is_faculty_anywhere(*, user: AbstractBaseUser) -> bool:
    return Membership.objects.filter(user=user, role=Membership.Role.FACULTY).exists()
