"""The faculty's "What beginners ask" panel, loaded into each concept's authoring page (courses/ cannot import
tutor/, so the authoring template fetches this view's fragment by URL)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from courses import selectors as course_selectors
from courses.models import Concept
from tutor.models import TAQuestion
from tutor.ta.services import TAError
from tutor.teachback import selectors, services


@login_required
def beginners(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    course, role = course_selectors.course_taught(user=request.user, slug=slug)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    return render(request, "tutor/teachback/beginners.html", {
        "course": course, "role": role, "concept": obj, "model_configured": settings.TUTOR_LLM != "authored",
        "groups": selectors.question_groups(concept=obj), "missing": selectors.missing_ideas(concept=obj),
        "wrong_answers": selectors.wrong_answers(concept=obj), "mixups": selectors.mixup_answers(concept=obj),
    })


@login_required
@require_POST
def novice_questions(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    """Ask the model, now, what a beginner would ask about the lesson as it is saved (re-run after an edit)."""
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    questions, error = services.novice_questions(concept=obj)
    return render(request, "tutor/teachback/novice_questions.html",
                  {"course": course, "concept": obj, "questions": questions, "error": error,
                   "model_configured": settings.TUTOR_LLM != "authored"})


@login_required
@require_POST
def faq_create(request: HttpRequest, slug: str, concept: str, pk: int) -> HttpResponse:
    """Answer a group of students' questions once, as a FAQ entry the TA-bot cites from then on."""
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    obj = get_object_or_404(Concept, course=course, slug=concept)
    try:
        services.faq_from_question(user=request.user, course=course, question_id=pk,
                                   answer=request.POST.get("answer", ""))
    except TAQuestion.DoesNotExist:
        raise Http404("No such question") from None
    except TAError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Added to the course's answers: the TA-bot cites it from now on.")
    return redirect(reverse("teach:concept", args=[course.slug, obj.slug]) + "#beginners")


@login_required
def coverage(request: HttpRequest, slug: str) -> HttpResponse:
    """For the class dashboard: per concept, the share of explanations that covered each key idea."""
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    return render(request, "tutor/teachback/coverage.html",
                  {"course": course, "rows": selectors.key_idea_coverage(course=course)})
