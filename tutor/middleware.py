"""A database outage (PostgreSQL restarting, a failover) answers 503 with Retry-After, not a 500 and a traceback.

Under ASGI each request runs on a thread of its own (asgiref's ThreadSensitiveContext), so on a connection of its
own: once the database is back the next request simply works; nothing has to be restarted. (The socket's database
threads keep theirs: see `conn_health_checks` in tutor/settings.py.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
_PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>One moment</title></head><body>"
         "<h1>One moment</h1><p>The tutor cannot reach its database right now. Nothing you did is lost: "
         "please try again in a few seconds.</p></body></html>")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None  # anything else is a bug and must surface as one
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        if request.headers.get("Accept", "").startswith("application/json") or request.path.startswith("/api/"):
            response = HttpResponse('{"error": "database unavailable, retry shortly"}', status=503,
                                    content_type="application/json")
        else:
            response = HttpResponse(_PAGE, status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
