"""Who may put the tool in an iframe. The LTI pages (login, launch, the content picker) and every page of a
session that began with an LMS launch may be framed by the registered platforms' origins, and only by them
(`Content-Security-Policy: frame-ancestors`); every other response keeps Django's `X-Frame-Options: DENY`.

Listed after XFrameOptionsMiddleware in MIDDLEWARE, so it sees the response first and can exempt it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from tutor.lti import selectors

LTI_PATH = "/lti/"
SESSION_FRAME_ORIGINS = "lti_frame_origins"  # set at launch: the launching platform's framing origins
NEVER_FRAMED = ("/admin/",)


class LtiFrameMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        try:
            origins = _origins(request)
        except (OperationalError, InterfaceError):
            # The database is down (the response is DatabaseUnavailableMiddleware's 503): no origins known, not framed.
            origins = []
        if origins:
            policy = "frame-ancestors " + " ".join(origins)
            existing = response.get("Content-Security-Policy")
            response["Content-Security-Policy"] = f"{existing}; {policy}" if existing else policy
            response.xframe_options_exempt = True  # type: ignore[attr-defined]
        return response


def _origins(request: HttpRequest) -> list[str]:
    if request.path.startswith(NEVER_FRAMED):
        return []
    if request.path.startswith(LTI_PATH):
        return selectors.framing_origins_all()
    session = getattr(request, "session", None)
    if session is None:
        return []
    origins = session.get(SESSION_FRAME_ORIGINS)
    return [o for o in origins if isinstance(o, str)] if isinstance(origins, list) else []
