"""Reads of the curriculum, shaped for the tutor and the pages."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from courses.models import Concept, Course, Item, Membership
from learner_model.select import ConceptNode, ItemChoice


def course_list() -> QuerySet[Course]:
    return Course.objects.order_by("title")


def course_get(*, slug: str) -> Course:
    return Course.objects.get(slug=slug)


def membership_role(*, user: AbstractBaseUser, course: Course) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, course=course).values_list("role", flat=True).first()


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
    return concept.items.filter(status=Item.Status.PUBLISHED).order_by("order")


def item_choices(*, concept: Concept) -> list[ItemChoice]:
    return [ItemChoice(id=str(i.pk), concept=concept.slug, difficulty=i.difficulty)
            for i in published_items(concept=concept)]
