"""The JSON API for clients that are not the htmx page: offline and mobile clients sending answers in batches.

Thin: authenticate, check membership, validate, rate-limit, enqueue one `attempt_ingest_task` per answer.
The answers are recorded by a Celery worker; each carries the client's own `client_id`, so a batch resent
after a timeout (or redelivered after a worker died) is stored once.

A 202 means queued, not stored: a broker can still lose a message (kombu's Redis transport, when a worker is
SIGKILLed at the wrong moment). So the client keeps each answer until `GET .../answers?ids=...` lists it as
stored, and re-POSTs the ones still missing after a while; resending is harmless.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courses import selectors as course_selectors
from courses.models import Course
from tutor import selectors
from tutor.ratelimit import ratelimit_check
from tutor.selectors import enrolled_course
from tutor.tasks import attempt_ingest_task

MAX_BATCH = 200  # answers per request; an offline day's work fits comfortably
MAX_STATUS_IDS = MAX_BATCH  # ids per status check: one full batch; 200 UUIDs keep the URL under 8 KB


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _parse_answer(raw: Any) -> tuple[uuid.UUID, int, str]:
    if not isinstance(raw, dict):
        raise ValueError("each answer must be an object with client_id, item and answer")
    client_id = uuid.UUID(str(raw.get("client_id")))
    item = int(raw.get("item"))
    answer = raw.get("answer")
    if not isinstance(answer, str | int | float) or isinstance(answer, bool):
        raise ValueError("answer must be a string or a number")
    return client_id, item, str(answer)[:300]


def _enrolled_course(request: HttpRequest, slug: str) -> Course | JsonResponse:
    """The course, if the caller is a logged-in student enrolled in it; otherwise the refusal to send."""
    if not request.user.is_authenticated:
        return _error(401, "log in first")
    course = enrolled_course(user=request.user, slug=slug)
    if course is None:
        return _error(404, "no such course") if not course_selectors.course_exists(slug=slug) \
            else _error(403, "not enrolled in this course")
    return course


@require_http_methods(["GET", "POST"])
def answers(request: HttpRequest, slug: str) -> JsonResponse:
    """The course's answers for this student: GET reads which are stored, POST sends a batch."""
    return answers_status(request, slug) if request.method == "GET" else answers_submit(request, slug)


@require_GET
def answers_status(request: HttpRequest, slug: str) -> JsonResponse:
    """GET ?ids=<uuid>,<uuid>,... -> {"stored": [...], "missing": [...]}, each in the order asked.

    "missing" is not yet stored for this student in this course: still queued, lost, rejected, or someone
    else's id (which reads exactly like one never sent)."""
    course = _enrolled_course(request, slug)
    if isinstance(course, JsonResponse):
        return course
    raw = [part.strip() for value in request.GET.getlist("ids") for part in value.split(",") if part.strip()]
    if not raw:
        return _error(400, "give the answers' client ids: ?ids=<uuid>,<uuid>,...")
    if len(raw) > MAX_STATUS_IDS:
        return _error(400, f"at most {MAX_STATUS_IDS} ids per request, got {len(raw)}")
    asked: dict[uuid.UUID, None] = {}  # de-duplicated, in the order asked
    for part in raw:
        try:
            asked[uuid.UUID(part)] = None
        except ValueError:
            return _error(400, f"not a client id (a UUID): {part[:40]!r}")
    stored = selectors.attempts_stored(user=request.user, course=course, client_ids=asked)
    return JsonResponse({"stored": [str(c) for c in asked if c in stored],
                         "missing": [str(c) for c in asked if c not in stored]})


@require_POST
def answers_submit(request: HttpRequest, slug: str) -> JsonResponse:
    """POST {"answers": [{"client_id": uuid, "item": id, "answer": "..."}]} -> 202 with the ids queued."""
    started = time.perf_counter()
    course = _enrolled_course(request, slug)
    if isinstance(course, JsonResponse):
        return course
    if not ratelimit_check(key=f"answers:{request.user.pk}", limit=settings.TUTOR_RATELIMIT_ANSWERS, period=60):
        response = _error(429, "too many answers; slow down")
        response["Retry-After"] = "60"
        return response
    try:
        body = json.loads(request.body or b"{}")
        raw_answers = body["answers"] if isinstance(body, dict) else None
        if not isinstance(raw_answers, list) or not 1 <= len(raw_answers) <= MAX_BATCH:
            raise ValueError(f"'answers' must be a list of 1 to {MAX_BATCH} answers")
        answers = [_parse_answer(raw) for raw in raw_answers]
    except (ValueError, TypeError, KeyError) as exc:
        return _error(400, f"could not read the batch: {exc}")
    for client_id, item, answer in answers:
        attempt_ingest_task.delay(user_id=request.user.pk, course_id=course.pk, client_id=str(client_id),
                                  item_id=item, answer=answer)
    response = JsonResponse({"queued": [str(client_id) for client_id, _, _ in answers]}, status=202)
    response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response
