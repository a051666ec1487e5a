"""Faculty's view of their class. Thin: check the role (faculty or TA of the course), read, render."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from courses import selectors as course_selectors
from tutor import dashboard as dash


@login_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    course, role = course_selectors.course_taught(user=request.user, slug=slug)
    return render(request, "tutor/dashboard.html", {"course": course, "role": role, **dash.dashboard(course=course)})


@login_required
def dashboard_csv(request: HttpRequest, slug: str) -> HttpResponse:
    course, _ = course_selectors.course_taught(user=request.user, slug=slug)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-mastery.csv"'
    csv.writer(response).writerows(dash.dashboard_csv_rows(course=course))
    return response
