"""The TA-bot's pages. Thin: check who may see what, call one service or selector, render.

Students: /learn/<course>/ask/ (their own questions only; answers stream over /ws/learn/<course>/ask/, the form
also works as a plain POST), and the read-only places the TA's citations link to. Faculty and TAs of the course:
/teach/<course>/questions/ (escalated questions, the index, uploaded documents).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from courses import selectors as course_selectors
from courses.models import Course
from courses.rendering import render_markdown
from tutor.models import TADocument, TAQuestion
from tutor.selectors import enrolled_course
from tutor.ta import selectors as ta_selectors
from tutor.ta import services as ta_services

FACULTY_TABS = ("escalated", "answered", "all")


def _course_or_404(slug: str) -> Course:
    try:
        return course_selectors.course_get(slug=slug)
    except Course.DoesNotExist:
        raise Http404("No such course") from None


def _reader_course(request: HttpRequest, slug: str) -> Course:
    """A course whose texts the user may read (any role in it); 403 otherwise."""
    course = _course_or_404(slug)
    if not ta_selectors.may_read_course(user=request.user, course=course):
        raise PermissionDenied("You are not in this course.")
    return course


# --- the student's TA page --------------------------------------------------------------------------------


@login_required
def ask(request: HttpRequest, slug: str) -> HttpResponse:
    course = enrolled_course(user=request.user, slug=slug)
    if course is None:
        _course_or_404(slug)
        return redirect("home")
    ta_services.ta_warm_up(course=course)
    message = ""
    if request.method == "POST":  # without the websocket: the whole answer at once
        try:
            question = ta_services.ta_question_answer(user=request.user, course=course,
                                                      question=request.POST.get("question", ""))
        except ta_services.TAError as exc:
            message = str(exc)
        else:
            if request.htmx:
                return render(request, "tutor/ta/partials/card.html",
                              {"card": ta_selectors.question_card(question=question), "course": course})
            return redirect("ta_ask", slug=course.slug)
        if request.htmx:
            return render(request, "tutor/ta/partials/notice.html", {"message": message})
    cards = [ta_selectors.question_card(question=q)
             for q in ta_selectors.student_questions(user=request.user, course=course)]
    # Over the rate limit too: the page with the message (htmx does not swap error statuses).
    return render(request, "tutor/ta/ask.html", {"course": course, "cards": cards, "message": message,
                                                 "placeholder": ta_selectors.ask_placeholder(user=request.user,
                                                                                             course=course)})


def _card_or_back(request: HttpRequest, course: Course, question: TAQuestion | None) -> HttpResponse:
    if request.htmx:
        if question is None:
            return HttpResponse("")
        return render(request, "tutor/ta/partials/card.html",
                      {"card": ta_selectors.question_card(question=question), "course": course})
    return redirect("ta_ask", slug=course.slug)


@login_required
@require_POST
def question_escalate(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course = _course_or_404(slug)
    try:
        question = ta_services.ta_question_escalate(user=request.user, course=course, question_id=pk)
    except TAQuestion.DoesNotExist:
        raise Http404("No such question") from None
    return _card_or_back(request, course, question)


@login_required
@require_POST
def question_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course = _course_or_404(slug)
    try:
        ta_services.ta_question_delete(user=request.user, course=course, question_id=pk)
    except TAQuestion.DoesNotExist:
        raise Http404("No such question") from None
    return _card_or_back(request, course, None)


# --- where citations link to ---------------------------------------------------------------------------------


@login_required
def concept_page(request: HttpRequest, slug: str, concept: str) -> HttpResponse:
    course = _reader_course(request, slug)
    found = get_object_or_404(course.concepts, slug=concept)
    return render(request, "tutor/ta/concept.html", ta_selectors.concept_page(course=course, concept=found))


@login_required
def item_page(request: HttpRequest, slug: str, concept: str, item: str) -> HttpResponse:
    course = _reader_course(request, slug)
    found = get_object_or_404(course_selectors.course_items(course=course, published=True), concept__slug=concept, slug=item)
    return render(request, "tutor/ta/item.html", ta_selectors.item_page(user=request.user, course=course, item=found))


@login_required
def faq_entry(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course = _reader_course(request, slug)
    try:
        entry = ta_selectors.faq_entry(course=course, pk=pk)
    except TAQuestion.DoesNotExist:
        raise Http404("No such answer") from None
    return render(request, "tutor/ta/faq.html", {
        "course": course, "question_html": ta_selectors.with_anchors(render_markdown(f"## Question\n\n{entry.question}")),
        "answer_html": ta_selectors.with_anchors(render_markdown(f"## Answer\n\n{entry.faculty_answer}"))})


@login_required
def document(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course = _reader_course(request, slug)
    try:
        doc = ta_selectors.ta_document_get(course=course, pk=pk, user=request.user)
    except TADocument.DoesNotExist:
        raise Http404("No such document") from None
    if doc.kind == "pdf":
        response = HttpResponse(bytes(doc.data), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{doc.pk}.pdf"'
        return response
    text = bytes(doc.data).decode("utf-8", errors="replace")
    return render(request, "tutor/ta/document.html", {"course": course, "doc": doc,
                                                      "body_html": ta_selectors.with_anchors(render_markdown(text))})


# --- faculty ---------------------------------------------------------------------------------------------------


@login_required
def faculty_questions(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = course_selectors.course_taught(user=request.user, slug=slug)
    show = request.GET.get("show", "escalated")
    if show not in FACULTY_TABS:
        show = "escalated"
    cards = [ta_selectors.question_card(question=q) for q in ta_selectors.faculty_questions(course=course, show=show)]
    return render(request, "tutor/ta/questions.html", {
        "course": course, "role": role, "show": show, "tabs": FACULTY_TABS, "cards": cards,
        "waiting": ta_selectors.waiting_count(course=course), "topics": ta_selectors.question_topics(course=course),
        "index": ta_selectors.ta_index_state(course=course),
        "documents": ta_selectors.ta_documents_list(course=course)})


@login_required
@require_POST
def faculty_answer(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    try:
        ta_services.ta_question_answer_by_faculty(user=request.user, course=course, question_id=pk,
                                                  answer=request.POST.get("answer", ""),
                                                  shared=request.POST.get("shared") == "on")
    except TAQuestion.DoesNotExist:
        raise Http404("No such escalated question") from None
    except ta_services.TAError as exc:
        return _back(request, course, str(exc))
    return _back(request, course, "Answer sent to the student.")


def _back(request: HttpRequest, course: Course, message: str) -> HttpResponse:
    messages.info(request, message)
    return redirect("ta_questions", slug=course.slug)


@login_required
@require_POST
def reindex(request: HttpRequest, slug: str) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    ta_services.ta_index_schedule(course=course)
    return _back(request, course, "Reindexing: only texts that changed are embedded again.")


@login_required
@require_POST
def document_upload(request: HttpRequest, slug: str) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    upload = request.FILES.get("file")
    if upload is None:
        return _back(request, course, "Choose a .md or .pdf file.")
    if upload.size > ta_services.MAX_UPLOAD_BYTES:
        return _back(request, course, "That file is too large.")
    try:
        doc = ta_services.ta_document_upload(user=request.user, course=course, filename=upload.name,
                                             data=upload.read(), title=request.POST.get("title", ""))
    except ta_services.TAError as exc:
        return _back(request, course, str(exc))
    if doc.held:
        return _back(request, course, f"Uploaded {doc.filename}, but it holds personal data (see below): it is held, "
                                      "not searched by the TA, until you confirm it or remove it.")
    return _back(request, course, f"Uploaded {doc.filename}; the TA will search it once reindexing is done.")


@login_required
@require_POST
def document_confirm(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    try:
        ta_services.ta_document_confirm(user=request.user, course=course, document_id=pk)
    except TADocument.DoesNotExist:
        raise Http404("No such document") from None
    return _back(request, course, "The TA will search it once reindexing is done; the personal data found in it is "
                                  "never shown to students.")


@login_required
@require_POST
def document_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    ta_services.ta_document_delete(course=course, document_id=pk)
    return _back(request, course, "Document removed from the TA's sources.")
