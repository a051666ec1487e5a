"""Reads for LTI: registrations, the tool's public keys, framing origins, the LMS roster, links' scores."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from courses import selectors as course_selectors
from courses.models import Course
from tutor import selectors as tutor_selectors
from tutor.lti.models import (
    LtiContext,
    LtiDeployment,
    LtiGrade,
    LtiIdentity,
    LtiKey,
    LtiPlatform,
    LtiRosterMember,
)
from tutor.services import concept_mastery, course_settings

# A retired key stays in the JWKS this long: platforms cache key sets (Canvas for hours), and a message signed
# just before a rotation must still verify there.
RETIRED_KEY_PUBLISHED = timedelta(days=7)


def platform_find(*, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The active registration for this issuer and client id; without a client id (some platforms omit it at
    login), the issuer's only one, if it has exactly one."""
    platforms = LtiPlatform.objects.filter(issuer=issuer, is_active=True)
    if client_id:
        return platforms.filter(client_id=client_id).first()
    found = list(platforms[:2])
    return found[0] if len(found) == 1 else None


def deployment_known(*, platform: LtiPlatform, deployment_id: str) -> bool:
    return LtiDeployment.objects.filter(platform=platform, deployment_id=deployment_id).exists()


def jwks() -> dict[str, list[dict]]:
    """The tool's public keys: the signing key and those retired within RETIRED_KEY_PUBLISHED."""
    since = timezone.now() - RETIRED_KEY_PUBLISHED
    keys = LtiKey.objects.filter(Q(retired_at__isnull=True) | Q(retired_at__gte=since))
    return {"keys": [key.public_jwk for key in keys]}


def framing_origins_all() -> list[str]:
    """Every origin an active platform may frame the tool from (the LTI login and launch pages)."""
    origins: set[str] = set()
    for platform in LtiPlatform.objects.filter(is_active=True):
        origins.update(platform.framing_origins())
    return sorted(origins)


@dataclass(frozen=True)
class ToolUrls:
    """What an LMS administrator pastes into the LMS: one set for every platform."""

    login: str  # OIDC login initiation URL
    launch: str  # redirect URI, target link URI, deep linking URL
    jwks: str  # public keyset URL
    canvas_config: str  # Canvas: developer key "Enter URL"


def tool_urls(*, base: str) -> ToolUrls:
    """`base`: the site's scheme and host as platforms reach it, e.g. https://tutor.example.edu."""
    from django.urls import reverse

    base = base.rstrip("/")
    return ToolUrls(login=base + reverse("lti:login"), launch=base + reverse("lti:launch"),
                    jwks=base + reverse("lti:jwks"), canvas_config=base + reverse("lti:canvas_config"))


@dataclass(frozen=True)
class CourseChoice:
    slug: str
    title: str
    concepts: list[tuple[str, str]]  # (slug, title) in course order


def deep_link_choices(*, platform_id: int) -> list[CourseChoice]:
    """What a teacher of this LMS may place in their LMS course: a course its registration allows, or one of its
    concepts."""
    platform = LtiPlatform.objects.get(pk=platform_id)
    courses = course_selectors.course_list() if platform.any_course else platform.courses.order_by("title")
    return [CourseChoice(slug=c.slug, title=c.title,
                         concepts=list(c.concepts.order_by("order").values_list("slug", "title")))
            for c in courses]


def grade_score(*, grade: LtiGrade) -> tuple[float, bool]:
    """(score 0..1, complete) for a graded link, as the student's own pages show it: one concept's mastery as the
    session's mastery bar shows it, or the share of concepts mastered, as the knowledge map counts them."""
    link, user = grade.link, grade.user
    if link.concept is not None:
        state = tutor_selectors.knowledge_state(user=user, course=link.course)
        p = concept_mastery(state, link.course, link.concept.slug)
        return p, p >= course_settings(link.course).mastery_threshold
    course_map = tutor_selectors.knowledge_map(user=user, course=link.course)
    total = course_map["total"]
    share = course_map["mastered_count"] / total if total else 0.0
    return share, total > 0 and course_map["mastered_count"] == total


@dataclass(frozen=True)
class RosterRow:
    name: str
    email: str
    role: str  # student, ta, faculty, or "" for an LMS role the tool does not serve
    status: str  # Active, Inactive (Names and Roles' own word)
    contexts: str  # the LMS course(s) listing them
    username: str  # their account here, "" until they launch


@dataclass(frozen=True)
class Roster:
    rows: list[RosterRow]
    synced_at: object  # the oldest sync among the course's LMS contexts, or None
    errors: list[str]


def lms_roster(*, course: Course) -> Roster | None:
    """The LMS courses' members (Names and Roles) for every LMS course that links to `course`, each person once,
    with their account here if they have launched; None when no LMS course links here."""
    contexts = list(LtiContext.objects.filter(links__course=course).distinct()
                    .select_related("deployment__platform"))
    if not contexts:
        return None
    members = (LtiRosterMember.objects.filter(context__in=contexts)
               .select_related("context__deployment__platform").order_by("name", "subject"))
    pairs = {(m.context.deployment.platform.issuer, m.subject) for m in members}
    subjects = {s for _, s in pairs}
    usernames = {(i.issuer, i.subject): i.user.username
                 for i in LtiIdentity.objects.filter(subject__in=subjects).select_related("user")
                 if (i.issuer, i.subject) in pairs}
    seen: dict[tuple[str, str], RosterRow] = {}
    for m in members:
        key = (m.context.deployment.platform.issuer, m.subject)
        title = str(m.context)
        if key in seen:
            prior = seen[key]
            seen[key] = replace(prior, contexts=f"{prior.contexts}, {title}")
            continue
        seen[key] = RosterRow(name=m.name or m.subject, email=m.email, role=m.role, status=m.status, contexts=title,
                              username=usernames.get(key, ""))
    synced = [c.roster_synced_at for c in contexts]
    return Roster(rows=list(seen.values()), synced_at=None if None in synced else min(synced),
                  errors=[f"{c}: {c.roster_error}" for c in contexts if c.roster_error])


def identity_of(*, user: AbstractBaseUser) -> LtiIdentity | None:
    return LtiIdentity.objects.filter(user=user).first() if user.is_authenticated else None
