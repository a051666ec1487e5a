"""The account pages: log in (throttled), see what is stored, download it all, delete the account.

Thin: the throttle is `tutor.ratelimit`, the data work is `tutor.accounts.services`.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from tutor.accounts import services
from tutor.ratelimit import ratelimit_check, ratelimit_peek

LOGIN_WINDOW_S = 15 * 60


class ThrottledLoginView(LoginView):
    """Django's login, refusing further tries after too many failures for one username or one address."""

    def _keys(self) -> list[tuple[str, int]]:
        limit = settings.TUTOR_RATELIMIT_LOGIN_FAILURES
        username = str(self.request.POST.get("username", "")).strip().lower()[:150]
        # An address may front many people (a classroom behind one NAT): it gets a wider allowance.
        return [(f"login-fail:user:{username}", limit),
                (f"login-fail:addr:{self.request.META.get('REMOTE_ADDR', '')}", limit * 5)]

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not all(ratelimit_peek(key=key, limit=limit, period=LOGIN_WINDOW_S) for key, limit in self._keys()):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed attempts. Please wait 15 minutes and try again.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(LOGIN_WINDOW_S)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        for key, limit in self._keys():
            ratelimit_check(key=key, limit=limit, period=LOGIN_WINDOW_S)
        return super().form_invalid(form)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    retention = settings.TUTOR_ATTEMPT_RETENTION_DAYS
    return render(request, "tutor/account.html", {"retention_days": retention})


@login_required
def account_export(request: HttpRequest) -> HttpResponse:
    data = services.account_export(user=request.user)
    response = HttpResponse(json.dumps(data, indent=2, default=str), content_type="application/json")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="tutor-{request.user.get_username()}-{stamp}.json"'
    return response


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        if request.user.check_password(request.POST.get("password", "")):
            user = request.user
            logout(request)
            services.account_delete(user=user)
            messages.info(request, "Your account and all its data have been deleted.")
            return redirect("login")
        error = "That password is not right."
    return render(request, "tutor/account_delete.html", {"error": error}, status=400 if error else 200)
