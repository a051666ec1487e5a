"""Writes for LTI: registering a platform, the tool's keys, accepting a launch (identity, role, enrolment, link),
the deep-linking answer, and the calls out to the platform that Celery tasks make (grades, roster, line items).

A launch never waits for the platform: what needs its services (the roster, a line item) is queued after the
commit. Enrolment is the session's own (`tutor.services.enrollment_create`); roles are courses' memberships.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from courses import selectors as course_selectors
from courses.models import Concept, Course, Membership
from courses.services import membership_set
from tutor.lti import hooks, selectors, tool
from tutor.lti.models import (
    LtiContext,
    LtiDeployment,
    LtiGrade,
    LtiIdentity,
    LtiKey,
    LtiLineItem,
    LtiNonce,
    LtiPlatform,
    LtiResourceLink,
    LtiRosterMember,
)
from tutor.lti.tool import Launch, LaunchRefused
from tutor.services import enrollment_create, knowledge_lms_graded

log = logging.getLogger(__name__)

# Custom parameters that say what a link opens: set by our deep-linking answer, or typed into the LMS by hand.
CUSTOM_COURSE = "tutor_course"
CUSTOM_CONCEPT = "tutor_concept"
SCORE_EPSILON = 0.0005  # a score this close to the one last sent is not sent again
NONCE_SKEW = timedelta(minutes=5)  # nonce rows outlive their token by this much (platform clocks drift)


# --- registration and keys ----------------------------------------------------------------------------------


@transaction.atomic
def platform_register(*, name: str, issuer: str, client_id: str, auth_login_url: str, auth_token_url: str,
                      key_set_url: str, deployment_ids: list[str], auth_audience: str = "",
                      frame_origins: list[str] | None = None, courses: list[str] | None = None,
                      any_course: bool | None = None) -> LtiPlatform:
    """Register (or update) a platform and add its deployment ids, and the courses its teachers may link (by slug;
    `any_course`: every course). Raises ValidationError on a bad field or an unknown course."""
    platform = LtiPlatform.objects.filter(issuer=issuer, client_id=client_id).first() or \
        LtiPlatform(issuer=issuer, client_id=client_id)
    platform.name, platform.auth_login_url, platform.auth_token_url = name, auth_login_url, auth_token_url
    platform.key_set_url, platform.auth_audience, platform.is_active = key_set_url, auth_audience, True
    if frame_origins is not None:
        platform.frame_origins = frame_origins
    if any_course is not None:
        platform.any_course = any_course
    platform.full_clean()
    platform.save()
    if courses is not None:
        found = course_selectors.courses_by_slug(slugs=courses)
        missing = sorted(set(courses) - {c.slug for c in found})
        if missing:
            raise ValidationError({"courses": [f"no course {slug!r} on this tutor" for slug in missing]})
        platform.courses.set(found)
    for deployment_id in deployment_ids:
        LtiDeployment.objects.get_or_create(platform=platform, deployment_id=deployment_id)
    key_active()
    return platform


def _key_new() -> LtiKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    kid = uuid.uuid4().hex
    return LtiKey.objects.create(kid=kid, private_pem=private_pem, public_jwk=tool.jwk_public(public_pem, kid))


def key_active() -> LtiKey:
    """The key the tool signs with; the first one is made on first need."""
    key = LtiKey.objects.filter(retired_at__isnull=True).first()
    return key if key is not None else _key_new()


@transaction.atomic
def key_rotate() -> LtiKey:
    """A new signing key; the old ones stop signing now and leave the JWKS after RETIRED_KEY_PUBLISHED."""
    LtiKey.objects.filter(retired_at__isnull=True).update(retired_at=timezone.now())
    return _key_new()


# --- a launch -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchOutcome:
    user: AbstractBaseUser
    role: str
    next_url: str  # where the launch goes on ("" for deep linking: the view shows the picker)
    frame_origins: list[str]
    course: Course | None = None
    concept: Concept | None = None


def _nonce_use(launch: Launch) -> None:
    LtiNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            LtiNonce.objects.create(issuer=launch.issuer, nonce=launch.nonce, expires_at=launch.expires_at + NONCE_SKEW)
    except IntegrityError:
        raise LaunchRefused("This launch was already used: start again from the LMS.",
                            detail=f"replayed nonce from {launch.issuer}") from None


def _username(launch: Launch) -> str:
    """Readable on the class dashboard, unique by a hash of (issuer, subject), never derived from the e-mail."""
    digest = hashlib.sha256(f"{launch.issuer}\n{launch.subject}".encode()).hexdigest()
    stem = slugify(launch.name)[:40] or "lms-user"
    User = get_user_model()
    for length in (6, 12, 64):
        candidate = f"{stem}-{digest[:length]}"
        if not User.objects.filter(username=candidate).exists():
            return candidate
    raise RuntimeError("no free username for an LMS user")  # a SHA-256 collision


def _identity_user(launch: Launch) -> AbstractBaseUser:
    """The local user of (issuer, subject), created on their first launch. The e-mail is kept on the identity for
    faculty to read; it never selects a user, and it is not put on the account (password resets go by e-mail)."""
    identity = LtiIdentity.objects.select_related("user").filter(issuer=launch.issuer, subject=launch.subject).first()
    if identity is None:
        user = get_user_model().objects.create_user(username=_username(launch), password=None)
        identity = LtiIdentity.objects.create(issuer=launch.issuer, subject=launch.subject, user=user)
    identity.name, identity.email, identity.last_launch_at = launch.name, launch.email, timezone.now()
    identity.save(update_fields=["name", "email", "last_launch_at"])
    user = identity.user
    first, _, last = launch.name.partition(" ")
    if launch.name and (user.first_name, user.last_name) != (first[:150], last[:150]):
        user.first_name, user.last_name = first[:150], last[:150]
        user.save(update_fields=["first_name", "last_name"])
    return user


def _context(deployment: LtiDeployment, launch: Launch) -> LtiContext:
    context, _ = LtiContext.objects.get_or_create(deployment=deployment, context_id=launch.context_id)
    context.title, context.label = launch.context_title[:300], launch.context_label[:100]
    if launch.memberships_url:
        context.memberships_url = launch.memberships_url
    if launch.ags.lineitems:
        context.lineitems_url, context.ags_scopes = launch.ags.lineitems, list(launch.ags.scopes)
    elif launch.ags.scopes:
        context.ags_scopes = list(launch.ags.scopes)
    context.save()
    return context


def _target(launch: Launch) -> tuple[Course, Concept | None] | None:
    """What the launch's custom parameters point at; refuses a course or concept that does not exist."""
    slug = launch.custom.get(CUSTOM_COURSE, "").strip()
    if not slug:
        return None
    course = course_selectors.course_find(slug=slug)
    if course is None:
        raise LaunchRefused(f"This link opens the course {slug!r}, which the tutor does not have.", status=404)
    if not LtiPlatform.objects.get(pk=launch.platform_id).may_link(course):
        raise LaunchRefused(f"This LMS is not registered for the course {course.title!r}. The tutor's administrator "
                            "can add it to the LMS's registration.", status=403)
    concept_slug = launch.custom.get(CUSTOM_CONCEPT, "").strip()
    if not concept_slug:
        return course, None
    concept = course.concepts.filter(slug=concept_slug).first()
    if concept is None:
        raise LaunchRefused(f"This link opens the concept {concept_slug!r}, which {course.title} does not have.",
                            status=404)
    return course, concept


def _link(context: LtiContext, launch: Launch) -> LtiResourceLink:
    link = LtiResourceLink.objects.filter(context=context, resource_link_id=launch.resource_link_id).first()
    target = _target(launch)  # the platform's current placement wins over what an earlier launch stored
    if target is None and link is None:
        raise LaunchRefused("This link does not say which course to open. Add the tutor to your LMS course with "
                            "its content picker (deep linking), or give the link the custom parameter "
                            f"{CUSTOM_COURSE}=<course>.", status=404)
    if link is None:
        course, concept = target  # type: ignore[misc]
        link = LtiResourceLink.objects.create(context=context, resource_link_id=launch.resource_link_id,
                                              title=launch.resource_link_title[:300], course=course, concept=concept)
    elif target is not None and (link.course_id, link.concept_id) != (target[0].pk, target[1] and target[1].pk):
        link.course, link.concept, link.line_item = target[0], target[1], None
        link.save(update_fields=["course", "concept", "line_item"])
    if launch.ags.lineitem and (link.line_item is None or link.line_item.url != launch.ags.lineitem):
        item, _ = LtiLineItem.objects.get_or_create(url=launch.ags.lineitem,
                                                    defaults={"context": context, "label": link.title})
        link.line_item = item
        link.save(update_fields=["line_item"])
    return link


def launch_accept(*, launch: Launch) -> LaunchOutcome:
    """Accept a validated launch: use its nonce once, find or create the user by (issuer, subject), give them the
    LMS role in the linked course (students are enrolled and their session opened), and say where to go next.

    Deep linking is for teachers only. Nothing is written when a launch is refused."""
    with transaction.atomic():
        _nonce_use(launch)
        deployment = LtiDeployment.objects.select_related("platform").get(
            platform_id=launch.platform_id, deployment_id=launch.deployment_id)
        if launch.message_type == tool.DEEP_LINKING_REQUEST and launch.role != Membership.Role.FACULTY:
            raise LaunchRefused("Only a teacher of the LMS course can choose what the tutor link opens.",
                                detail=f"deep linking by roles {list(launch.roles)}")
        user = _identity_user(launch)
        context = _context(deployment, launch)
        origins = deployment.platform.framing_origins()
        link: LtiResourceLink | None = None
        if launch.message_type == tool.DEEP_LINKING_REQUEST:
            outcome = LaunchOutcome(user=user, role=launch.role, next_url="", frame_origins=origins)
        else:
            link = _link(context, launch)
            outcome = _enter(user, launch, link, origins)
    if launch.role != Membership.Role.STUDENT and context.memberships_url:
        transaction.on_commit(lambda: hooks.queue("lti_roster_sync_task", context_id=context.pk), robust=True)
    if link is not None and link.line_item_id is None and context.lineitems_url:
        transaction.on_commit(lambda: hooks.queue("lti_line_item_ensure_task", link_id=link.pk), robust=True)
    return outcome


def _enter(user: AbstractBaseUser, launch: Launch, link: LtiResourceLink, origins: list[str]) -> LaunchOutcome:
    course, concept = link.course, link.concept
    membership_set(user=user, course=course, role=launch.role)
    if launch.role == Membership.Role.STUDENT:
        enrollment_create(user=user, course=course)
        LtiGrade.objects.get_or_create(link=link, user=user, defaults={"course": course})
        knowledge_lms_graded(user=user, course=course)
        next_url = reverse("lti:concept", args=[course.slug, concept.slug]) if concept is not None \
            else reverse("session", args=[course.slug])
    else:
        next_url = reverse("dashboard", args=[course.slug])
    return LaunchOutcome(user=user, role=launch.role, next_url=next_url, frame_origins=origins, course=course,
                         concept=concept)


# --- deep linking ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepLinkAnswer:
    return_url: str
    jwt: str


def deep_link_answer(*, platform_id: int, deployment_id: str, settings: tool.DeepLinkSettings, launch_url: str,
                     course_slug: str, concept_slug: str = "", target: str = "iframe") -> DeepLinkAnswer:
    """The signed answer to the LMS's content picker: one link that opens the course (or one concept of it) and
    declares its gradebook column (scoreMaximum 1: the student's mastery)."""
    platform = LtiPlatform.objects.get(pk=platform_id)
    course = course_selectors.course_get(slug=course_slug)
    if not platform.may_link(course):
        raise LaunchRefused(f"This LMS is not registered for the course {course.title!r}.", status=403)
    concept = course.concepts.get(slug=concept_slug) if concept_slug else None
    if target not in settings.accept_targets:
        target = settings.accept_targets[0] if settings.accept_targets else "iframe"
    custom = {CUSTOM_COURSE: course.slug, **({CUSTOM_CONCEPT: concept.slug} if concept else {})}
    title = f"{concept.title} ({course.title})" if concept else course.title
    jwt = tool.deep_link_response_jwt(
        platform=platform, key=key_active(), deployment_id=deployment_id, settings=settings, url=launch_url,
        title=title, custom=custom, target=target, line_item_label=f"Mastery: {title}"[:300],
        resource_id=f"{course.slug}/{concept.slug}" if concept else course.slug)
    return DeepLinkAnswer(return_url=settings.return_url, jwt=jwt)


# --- calls out (run by Celery tasks) -------------------------------------------------------------------------


def roster_sync(*, context_id: int) -> int:
    """Store the LMS course's members from Names and Roles (everyone, launched or not); returns how many."""
    context = LtiContext.objects.select_related("deployment__platform").get(pk=context_id)
    if not context.memberships_url:
        return 0
    try:
        members = tool.nrps_members(platform=context.deployment.platform, key=key_active(),
                                    memberships_url=context.memberships_url)
    except tool.ServiceError as exc:
        LtiContext.objects.filter(pk=context.pk).update(roster_error=str(exc)[:300])
        raise
    with transaction.atomic():
        kept = []
        for m in members:
            subject = str(m.get("user_id") or "")
            if not subject:
                continue
            roles = [r for r in m.get("roles") or [] if isinstance(r, str)]
            name = str(m.get("name") or " ".join(str(m.get(k) or "") for k in ("given_name", "family_name")).strip())
            LtiRosterMember.objects.update_or_create(context=context, subject=subject, defaults={
                "name": name[:300], "email": str(m.get("email") or "")[:300], "roles": roles,
                "role": tool.course_role(roles) or "", "status": str(m.get("status") or "Active")[:20]})
            kept.append(subject)
        LtiRosterMember.objects.filter(context=context).exclude(subject__in=kept).delete()
        LtiContext.objects.filter(pk=context.pk).update(roster_synced_at=timezone.now(), roster_error="")
    return len(kept)


def roster_refresh(*, course: Course) -> int:
    """Queue a roster sync for every LMS course linking to `course`; returns how many were queued."""
    ids = list(LtiContext.objects.filter(links__course=course).exclude(memberships_url="")
               .values_list("pk", flat=True).distinct())
    for context_id in ids:
        hooks.queue("lti_roster_sync_task", context_id=context_id)
    return len(ids)


def line_item_ensure(*, link_id: int) -> LtiLineItem | None:
    """The link's gradebook column: found or created through the context's line items service; None when the
    platform offers none for this context."""
    link = LtiResourceLink.objects.select_related("context__deployment__platform", "line_item", "course",
                                                  "concept").get(pk=link_id)
    if link.line_item is not None:
        return link.line_item
    context = link.context
    if not context.lineitems_url or tool.SCOPE_LINEITEM not in context.ags_scopes:
        return None
    label = f"Mastery: {link.concept.title} ({link.course.title})" if link.concept else f"Mastery: {link.course.title}"
    url = tool.ags_line_item_find_or_create(
        platform=context.deployment.platform, key=key_active(), lineitems_url=context.lineitems_url,
        scopes=list(context.ags_scopes), resource_link_id=link.resource_link_id, label=label[:300],
        resource_id=f"{link.course.slug}/{link.concept.slug}" if link.concept else link.course.slug)
    item, _ = LtiLineItem.objects.get_or_create(url=url, defaults={"context": context, "label": label[:300]})
    LtiResourceLink.objects.filter(pk=link.pk).update(line_item=item)
    return item


def grades_push(*, user_id: int, course_id: int) -> int:
    """Send the student's mastery to every graded link of theirs in this course whose score changed since it was
    last sent; returns how many scores went out. A platform failure raises `tool.ServiceError` (the task retries)
    after the scores already sent are recorded."""
    identity = LtiIdentity.objects.filter(user_id=user_id).first()
    if identity is None:
        return 0
    sent = 0
    grades = LtiGrade.objects.filter(user_id=user_id, course_id=course_id).select_related(
        "user", "link__course", "link__concept", "link__line_item", "link__context__deployment__platform")
    for grade in grades:
        # read before the score: two pushes racing send their scores with their own times, and the platform keeps
        # the one with the later timestamp, which carries the later mastery
        at = timezone.now()
        score, completed = selectors.grade_score(grade=grade)
        if grade.score is not None and abs(grade.score - score) < SCORE_EPSILON:
            continue
        item = grade.link.line_item or line_item_ensure(link_id=grade.link_id)
        if item is None:
            log.info("LTI link %s has no gradebook column at its platform: mastery not sent", grade.link_id)
            continue
        context = grade.link.context
        if context.ags_scopes and tool.SCOPE_SCORE not in context.ags_scopes:
            log.info("LTI context %s did not grant the score scope: mastery not sent", context.pk)
            continue
        tool.ags_score_send(platform=context.deployment.platform, key=key_active(), lineitem_url=item.url,
                            scopes=list(context.ags_scopes) or [tool.SCOPE_SCORE], subject=identity.subject,
                            score=score, completed=completed, at=at)
        LtiGrade.objects.filter(pk=grade.pk).update(score=score, sent_at=at)
        sent += 1
    return sent

