"""Writes to the curriculum. Each service opens its own transaction."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from courses.format import CourseSpec, ItemSpec
from courses.models import Concept, Course, Item, Membership


def _item_fields(spec: ItemSpec, order: int) -> dict:
    return {
        "kind": spec.kind,
        "prompt": spec.prompt,
        "answer": spec.answer,
        "choices": spec.choices,
        "tolerance": spec.tolerance,
        "units": spec.units or "",
        "variables": spec.variables,
        "accept": spec.accept,
        "params": spec.params,
        "hints": spec.hints,
        "feedback": spec.feedback,
        "authored_difficulty": spec.difficulty,
        "solution": spec.solution,
        "attribution": spec.attribution,
        "extra": spec.extra,
        "order": order,
    }


@transaction.atomic
def course_import(*, spec: CourseSpec, origin: str = Item.Origin.AUTHORED) -> Course:
    """Create or update a course from a parsed spec. Idempotent: re-importing updates in place, never duplicates.

    Items and concepts that are no longer in the spec are removed; students' attempts on removed items go
    with them (the tutor keeps its knowledge state per concept slug).
    """
    course, _ = Course.objects.update_or_create(
        slug=spec.slug,
        defaults={"title": spec.title, "description": spec.description, "settings": spec.settings,
                  "attribution": spec.attribution},
    )
    concepts: dict[str, Concept] = {}
    for order, c in enumerate(spec.concepts):
        concept, _ = Concept.objects.update_or_create(
            course=course, slug=c.slug,
            defaults={"title": c.title, "order": order, "lesson": c.lesson, "pain_first": c.pain_first,
                      "guess_first": c.guess_first, "guess_choices": c.guess_choices, "explanation": c.explanation,
                      "prerequisites_inferred": c.prerequisites_inferred, "extra": c.extra},
        )
        concepts[c.slug] = concept
        keep = []
        for i, item in enumerate(c.items):
            fields = _item_fields(item, i)
            existing = Item.objects.filter(concept=concept, slug=item.id).first()
            if existing is None:
                fields["difficulty"] = item.difficulty or 0.0
                fields["origin"] = origin
                existing = Item.objects.create(concept=concept, slug=item.id, **fields)
            else:
                if existing.authored_difficulty != item.difficulty:
                    fields["difficulty"] = item.difficulty or 0.0
                for key, value in fields.items():
                    setattr(existing, key, value)
                existing.save()
            keep.append(existing.pk)
        concept.items.exclude(pk__in=keep).delete()
    course.concepts.exclude(slug__in=concepts).delete()
    for c in spec.concepts:
        concepts[c.slug].prerequisites.set([concepts[p] for p in c.prerequisites])
    return course


@transaction.atomic
def membership_set(*, user: AbstractBaseUser, course: Course, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, course=course, defaults={"role": role})
    return membership
