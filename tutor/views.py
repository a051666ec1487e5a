"""Pages. Thin: check who may see what, call a selector or a service, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from courses import selectors as course_selectors
from courses.models import Course
from tutor import services
from tutor.models import TutorSession
from tutor.selectors import knowledge_map, stage_context
from tutor.ta import services as ta_services


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def home(request: HttpRequest) -> HttpResponse:
    """A visitor sees what the tutor is, with sign up and log in; a member sees their courses."""
    if not request.user.is_authenticated:
        return render(request, "tutor/landing.html")
    roles = course_selectors.courses_of(user=request.user)
    courses = [(c, roles.get(c.pk)) for c in course_selectors.course_list()]
    return render(request, "tutor/home.html", {"courses": courses})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links; the icon itself is a static file."""
    return redirect(static("tutor/favicon.ico"))


def _course_or_404(slug: str) -> Course:
    try:
        return course_selectors.course_get(slug=slug)
    except Course.DoesNotExist:
        raise Http404("No such course") from None


@login_required
@require_POST
def enroll(request: HttpRequest, slug: str) -> HttpResponse:
    course = _course_or_404(slug)
    services.enrollment_create(user=request.user, course=course)
    return redirect("session", slug=course.slug)


def _session_or_redirect(request: HttpRequest, course: Course) -> TutorSession | None:
    try:
        return services.session_get(user=request.user, course=course)
    except TutorSession.DoesNotExist:
        return None


@login_required
def session(request: HttpRequest, slug: str) -> HttpResponse:
    course = _course_or_404(slug)
    tutor_session = _session_or_redirect(request, course)
    if tutor_session is None:
        return redirect("home")
    ta_services.ta_warm_up(course=course)  # the TA-bot is ready by the time the student has a question
    return render(request, "tutor/session.html", {"course": course, **stage_context(session=tutor_session)})


@login_required
def knowledge_map_view(request: HttpRequest, slug: str) -> HttpResponse:
    course = _course_or_404(slug)
    if _session_or_redirect(request, course) is None:
        return redirect("home")
    return render(request, "tutor/map.html", {"course": course, **knowledge_map(user=request.user, course=course)})


@login_required
def system_status(request: HttpRequest) -> HttpResponse:
    """Faculty and staff see whether the model server is up, and since when it has been down."""
    from courses.models import Membership
    from inference.fallback import health_report
    from tutor import llm

    if not (request.user.is_staff or Membership.objects.filter(
            user=request.user, role__in=[Membership.Role.FACULTY, Membership.Role.TA]).exists()):
        raise PermissionDenied
    backend = llm.backend()
    return render(request, "tutor/status.html", {"configured": settings.TUTOR_LLM, "backend": backend.name,
                                                  "health": health_report()})
