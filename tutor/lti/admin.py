from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from tutor.lti import services
from tutor.lti.models import LtiDeployment, LtiIdentity, LtiKey, LtiPlatform, LtiResourceLink


class DeploymentInline(admin.TabularInline):
    model = LtiDeployment
    extra = 1


@admin.register(LtiPlatform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("name", "issuer", "client_id", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "issuer", "client_id")
    readonly_fields = ("tool_urls",)
    fields = ("name", "issuer", "client_id", "auth_login_url", "auth_token_url", "auth_audience", "key_set_url",
              "frame_origins", "any_course", "courses", "is_active", "tool_urls")
    filter_horizontal = ("courses",)
    inlines = [DeploymentInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="The tool's URLs, to paste into the LMS")
    def tool_urls(self, obj: LtiPlatform) -> str:
        paths = (reverse("lti:login"), reverse("lti:launch"), reverse("lti:jwks"), reverse("lti:canvas_config"))
        return format_html("Login: <code>{}</code><br>Launch / redirect: <code>{}</code><br>Keyset: <code>{}</code>"
                           "<br>Canvas JSON: <code>{}</code><br><a href=\"{}\">Full URLs, and what goes where</a>",
                           *paths, reverse("lti:configuration"))

    def save_model(self, request: HttpRequest, obj: LtiPlatform, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        services.key_active()  # the JWKS has a key before the LMS first asks


@admin.register(LtiKey)
class KeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "created_at", "retired_at")
    fields = ("kid", "public_jwk", "created_at", "retired_at")  # never the private key
    readonly_fields = fields
    actions = ["rotate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Rotate: make a new signing key (the old ones stay in the keyset for 7 days)")
    def rotate(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        key = services.key_rotate()
        self.message_user(request, f"New signing key {key.kid}.", messages.SUCCESS)


@admin.register(LtiResourceLink)
class ResourceLinkAdmin(admin.ModelAdmin):
    list_display = ("title", "resource_link_id", "course", "concept", "context")
    list_filter = ("course",)
    raw_id_fields = ("context", "line_item", "concept")


@admin.register(LtiIdentity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ("subject", "issuer", "user", "name", "last_launch_at")
    search_fields = ("subject", "name", "user__username")
    readonly_fields = ("issuer", "subject", "user", "created_at", "last_launch_at")
