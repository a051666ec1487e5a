"""LTI pages. Thin: the protocol is in `tool`, the writes in `services`, the reads in `selectors`.

The login and launch endpoints are POSTed to by the LMS (another site), so they are exempt from CSRF: what
protects them is the signed id_token, the state cookie of the login this browser started, and the one-time nonce.
Every other form here (the content picker, roster refresh) keeps Django's CSRF check.
"""

from __future__ import annotations

import logging

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courses import selectors as course_selectors
from courses.models import Course
from tutor import selectors as tutor_selectors
from tutor.lti import selectors, services, tool
from tutor.lti.middleware import SESSION_FRAME_ORIGINS
from tutor.lti.models import LtiPlatform
from tutor.lti.tool import LaunchRefused
from tutor.services import concept_mastery, course_settings

log = logging.getLogger(__name__)

SESSION_DEEP_LINK = "lti_deep_link"  # the pending content-picker request of this browser's last deep-link launch


def _refused(request: HttpRequest, exc: LaunchRefused, step: str) -> HttpResponse:
    log.warning("LTI %s refused (%s): %s | %s | from %s", step, exc.status, exc.reason, exc.detail,
                request.META.get("REMOTE_ADDR", "?"))
    return render(request, "lti/refused.html", {"reason": exc.reason, "status": exc.status}, status=exc.status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """OIDC login initiation (third-party initiated login): the LMS sends the browser here first."""
    params = request.POST if request.method == "POST" else request.GET
    issuer = params.get("iss", "")
    if not issuer or not params.get("login_hint"):
        return _refused(request, LaunchRefused("The login request is missing its issuer or login hint.", status=400),
                        "login")
    if selectors.platform_find(issuer=issuer, client_id=params.get("client_id") or None) is None:
        return _refused(request, LaunchRefused("This LMS is not registered with the tutor.",
                                               detail=f"iss={issuer!r} client_id={params.get('client_id')!r}"),
                        "login")
    try:
        return tool.oidc_login(request, launch_url=request.build_absolute_uri(reverse("lti:launch")))
    except LaunchRefused as exc:
        return _refused(request, exc, "login")


@csrf_exempt
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The platform's signed launch (resource link or deep linking request)."""
    try:
        claims = tool.launch_validate(request)
        outcome = services.launch_accept(launch=claims)
    except LaunchRefused as exc:
        return _refused(request, exc, "launch")
    auth_login(request, outcome.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_FRAME_ORIGINS] = outcome.frame_origins
    log.info("LTI launch: user %s as %s from %s (%s, %s)", outcome.user.pk, outcome.role, claims.issuer,
             claims.message_type, claims.document_target or "target unknown")
    if claims.deep_link is None:
        return redirect(outcome.next_url)
    request.session[SESSION_DEEP_LINK] = {
        "user_id": outcome.user.pk, "platform_id": claims.platform_id, "deployment_id": claims.deployment_id,
        "return_url": claims.deep_link.return_url, "accept_targets": list(claims.deep_link.accept_targets),
        "data": claims.deep_link.data}
    return render(request, "lti/deep_link.html", {"choices": selectors.deep_link_choices(platform_id=claims.platform_id),
                                                  "targets": claims.deep_link.accept_targets,
                                                  "context_title": claims.context_title})


@login_required
@require_POST
def deep_link_choose(request: HttpRequest) -> HttpResponse:
    """The teacher's pick from the content picker, answered to the LMS as a signed deep-linking response."""
    pending = request.session.get(SESSION_DEEP_LINK)
    if not isinstance(pending, dict) or pending.get("user_id") != request.user.pk:
        return _refused(request, LaunchRefused("There is no content request from the LMS to answer: open the "
                                               "tutor's picker from the LMS again.", status=400), "deep link")
    course_slug, _, concept_slug = request.POST.get("choice", "").partition("/")  # "course" or "course/concept"
    course = course_selectors.course_find(slug=course_slug)
    choices = selectors.deep_link_choices(platform_id=pending["platform_id"])
    if course is None or course.slug not in {c.slug for c in choices} or \
            (concept_slug and not course.concepts.filter(slug=concept_slug).exists()):
        return render(request, "lti/deep_link.html", {
            "choices": choices, "targets": pending["accept_targets"],
            "error": "Pick a course or one of its concepts."}, status=400)
    answer = services.deep_link_answer(
        platform_id=pending["platform_id"], deployment_id=pending["deployment_id"],
        settings=tool.DeepLinkSettings(return_url=pending["return_url"],
                                       accept_targets=tuple(pending["accept_targets"]), data=pending["data"]),
        launch_url=request.build_absolute_uri(reverse("lti:launch")), course_slug=course_slug,
        concept_slug=concept_slug, target=request.POST.get("target", "iframe"))
    del request.session[SESSION_DEEP_LINK]
    log.info("LTI deep link: user %s placed %s%s", request.user.pk, course_slug, f"/{concept_slug}" * bool(concept_slug))
    return render(request, "lti/deep_link_return.html", {"return_url": answer.return_url, "jwt": answer.jwt})


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys, for platforms to check what it signs (deep-linking answers, service tokens)."""
    services.key_active()
    return JsonResponse(selectors.jwks())


def _site(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


@require_GET
def canvas_config(request: HttpRequest) -> JsonResponse:
    """Canvas's developer-key JSON ("Enter URL"): the tool's URLs, scopes and placements in one document."""
    urls = selectors.tool_urls(base=_site(request))
    placements = [{"placement": p, "message_type": tool.DEEP_LINKING_REQUEST, "target_link_uri": urls.launch}
                  for p in ("link_selection", "assignment_selection")]
    return JsonResponse({
        "title": "Tutor", "description": "An AI tutor: each student practises at the right difficulty until mastery; "
                                         "mastery goes to the gradebook.",
        "oidc_initiation_url": urls.login, "target_link_uri": urls.launch, "public_jwk_url": urls.jwks,
        "scopes": list(tool.TOOL_SCOPES),
        "extensions": [{"platform": "canvas.instructure.com", "privacy_level": "public",
                        "settings": {"placements": placements}}],
        "custom_fields": {},
    })


@staff_member_required
def configuration(request: HttpRequest) -> HttpResponse:
    """What an LMS administrator pastes into Canvas or Moodle, and the platforms registered so far."""
    return render(request, "lti/configuration.html", {
        "urls": selectors.tool_urls(base=_site(request)), "platforms": LtiPlatform.objects.order_by("name"),
        "scopes": tool.TOOL_SCOPES})


@login_required
def concept(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    """Where a link to one concept lands a student: that concept's mastery, and the way into practice."""
    course = get_object_or_404(Course, slug=slug)
    if course_selectors.membership_role(user=request.user, course=course) is None:
        raise PermissionDenied("You are not in this course.")
    found = course.concepts.filter(slug=concept).first()
    if found is None:
        raise Http404("No such concept")
    state = tutor_selectors.knowledge_state(user=request.user, course=course)
    return render(request, "lti/concept.html", {
        "course": course, "concept": found, "mastery": round(100 * concept_mastery(state, course, found.slug)),
        "target": round(100 * course_settings(course).mastery_threshold)})


@login_required
@require_POST
def roster_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask the LMS for the roster again (faculty and TAs of the course)."""
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    services.roster_refresh(course=course)
    return redirect(reverse("dashboard", args=[course.slug]) + "#lms-roster")
