"""Snapshots of authored content as JSON, and putting a snapshot back.

A `ContentVersion` stores the snapshot before and after each change; reverting applies `before` (or
deletes what a creation made, or re-creates what a deletion removed). Only `courses/services.py` calls
`restore`; it records the revert as a new version.
"""

from __future__ import annotations

from typing import Any

from courses.format import find_cycle
from courses.models import Concept, ContentVersion, Course, Item

COURSE_FIELDS = ("title", "description", "settings", "attribution")
CONCEPT_FIELDS = ("slug", "title", "order", "lesson", "pain_first", "guess_first", "guess_choices", "guess_answer",
                  "explanation", "prerequisites_inferred", "key_ideas", "misconceptions", "misconception_ideas",
                  "probes", "extra")
# Fields added after versions were first recorded: an older snapshot lacks them, and restores them as empty.
_CONCEPT_ADDED: dict[str, object] = {"guess_answer": "", "key_ideas": [], "misconceptions": [], "probes": [],
                                     "misconception_ideas": {}}
ITEM_FIELDS = ("slug", "kind", "prompt", "answer", "choices", "tolerance", "units", "variables", "accept", "params",
               "hints", "feedback", "authored_difficulty", "difficulty", "solution", "attribution", "extra", "order",
               "status", "origin")


class ContentError(ValueError):
    """An authoring change that cannot be made as asked; the message is shown to the author."""


class PrerequisiteCycle(ContentError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("That would make a prerequisite cycle: " + " → ".join(cycle))


def snapshot(obj: Course | Concept | Item) -> dict[str, Any]:
    if isinstance(obj, Course):
        return {f: getattr(obj, f) for f in COURSE_FIELDS}
    if isinstance(obj, Concept):
        data = {f: getattr(obj, f) for f in CONCEPT_FIELDS}
        data["prerequisites"] = sorted(obj.prerequisites.values_list("slug", flat=True))
        return data
    data = {f: getattr(obj, f) for f in ITEM_FIELDS}
    data["concept"] = obj.concept.slug
    return data


def kind_of(obj: Course | Concept | Item) -> str:
    if isinstance(obj, Course):
        return ContentVersion.Kind.COURSE
    return ContentVersion.Kind.CONCEPT if isinstance(obj, Concept) else ContentVersion.Kind.ITEM


def label_of(obj: Course | Concept | Item) -> str:
    if isinstance(obj, Course):
        return f"course settings of {obj.slug}"
    return f"{kind_of(obj)} {obj.slug}"


def check_acyclic(course: Course, concept_slug: str, prerequisites: list[str]) -> None:
    """Raise PrerequisiteCycle, naming the cycle, if `concept_slug` may not have these prerequisites."""
    graph: dict[str, list[str]] = {c.slug: [] for c in course.concepts.all()}
    for slug, prereq in Concept.prerequisites.through.objects.filter(from_concept__course=course).values_list(
            "from_concept__slug", "to_concept__slug"):
        graph[slug].append(prereq)
    graph[concept_slug] = list(prerequisites)
    if concept_slug in prerequisites:
        raise PrerequisiteCycle([concept_slug, concept_slug])
    cycle = find_cycle(graph)
    if cycle:
        raise PrerequisiteCycle(cycle)


def restore(version: ContentVersion) -> Course | Concept | Item | None:
    """Make the object look like `version.before`. Returns the object, or None when it was deleted."""
    course = version.course
    target = version.before
    if version.kind == ContentVersion.Kind.COURSE:
        for f in COURSE_FIELDS:
            setattr(course, f, target[f])
        course.save()
        return course
    if version.kind == ContentVersion.Kind.CONCEPT:
        current = _current_concept(version)
        if target is None:
            if current is not None:
                current.delete()
            return None
        if current is None and course.concepts.filter(slug=target["slug"]).exists():
            raise ContentError(f"a concept named {target['slug']!r} exists again; rename it before reverting")
        known = set(course.concepts.values_list("slug", flat=True))
        prereqs = [p for p in target["prerequisites"] if p in known]
        check_acyclic(course, target["slug"], prereqs)
        concept = current or Concept(course=course)
        for f in CONCEPT_FIELDS:
            setattr(concept, f, target[f] if f in target else _CONCEPT_ADDED[f])
        concept.save()
        concept.prerequisites.set(course.concepts.filter(slug__in=prereqs))
        return concept
    current_item = _current_item(version)
    if target is None:
        if current_item is not None:
            current_item.delete()
        return None
    concept = course.concepts.filter(slug=target["concept"]).first()
    if concept is None:
        raise ContentError(f"concept {target['concept']!r} no longer exists; restore it first")
    item = current_item or Item(concept=concept)
    item.concept = concept
    for f in ITEM_FIELDS:
        setattr(item, f, target[f])
    item.save()
    return item


def _current_concept(version: ContentVersion) -> Concept | None:
    return Concept.objects.filter(course=version.course, pk=version.object_id).first() if version.object_id else None


def _current_item(version: ContentVersion) -> Item | None:
    if not version.object_id:
        return None
    return Item.objects.filter(concept__course=version.course, pk=version.object_id).first()
