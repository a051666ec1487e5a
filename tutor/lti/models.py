"""LTI 1.3: the platforms (LMSs) registered with the tool, the tool's own keys, and what launches left behind.

Who is who: an LMS user is an (issuer, subject) pair, `LtiIdentity`, tied to exactly one local user; nothing is
ever matched or merged by e-mail. What a link opens: `LtiResourceLink` (a course, or one concept of it), which
the platform's context (an LMS course) holds. What goes back: a `LtiLineItem` per link in the LMS gradebook and,
per student and link, the last score sent (`LtiGrade`). The LMS roster as Names and Roles gave it:
`LtiRosterMember`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from courses.models import Concept, Course


def url_origin(url: str) -> str:
    """scheme://host[:port] of a URL, or "" when it has none."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


class LtiPlatform(models.Model):
    """One registration of the tool in an LMS (Canvas developer key, Moodle external tool, ...)."""

    name = models.CharField(max_length=200)
    issuer = models.CharField(max_length=255)  # `iss` of its id_tokens, e.g. https://canvas.instructure.com
    client_id = models.CharField(max_length=255)  # the id the platform gave this tool; `aud` of its id_tokens
    auth_login_url = models.URLField(max_length=500)  # its OIDC authorization endpoint
    auth_token_url = models.URLField(max_length=500)  # its OAuth2 token endpoint (AGS and NRPS calls)
    auth_audience = models.CharField(max_length=500, blank=True)  # `aud` for the token request, if not the URL
    key_set_url = models.URLField(max_length=500)  # its JWKS: the keys its id_tokens are signed with
    # Origins allowed to frame the tool besides the issuer's and the login endpoint's: a Canvas school's own domain
    # (https://school.instructure.com) is neither.
    frame_origins = models.JSONField(default=list, blank=True)
    # What its teachers may link (and so become faculty of, at launch): these courses, or every course on the tool.
    # An LMS instructor is somebody else's user: by default they can open nothing here.
    courses = models.ManyToManyField(Course, blank=True, related_name="+")
    any_course = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_one_per_client")]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer}, client {self.client_id})"

    def may_link(self, course: Course) -> bool:
        return self.any_course or self.courses.filter(pk=course.pk).exists()

    def framing_origins(self) -> list[str]:
        """Every origin that may put the tool in an iframe: the ones listed and the platform's own."""
        return sorted({url_origin(u) for u in (self.issuer, self.auth_login_url, *self.frame_origins)} - {""})


class LtiDeployment(models.Model):
    """A deployment id the platform sends (one per placement of the tool; Canvas: per account or course)."""

    platform = models.ForeignKey(LtiPlatform, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "deployment_id"], name="lti_deployment_unique")]

    def __str__(self) -> str:
        return f"deployment {self.deployment_id} of {self.platform.name}"


class LtiKey(models.Model):
    """The tool's RSA key pair. The newest unretired key signs; retired keys stay in the JWKS for a while so that a
    platform that cached the key set still checks what was signed just before a rotation."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()  # PKCS#8 PEM; never shown in the admin
    public_jwk = models.JSONField()  # what the JWKS endpoint publishes (kid, alg, use, n, e)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"key {self.kid}{' (retired)' if self.retired_at else ''}"


class LtiContext(models.Model):
    """An LMS course (the launch's context), with where its Names and Roles and gradebook services live."""

    deployment = models.ForeignKey(LtiDeployment, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    title = models.CharField(max_length=300, blank=True)
    label = models.CharField(max_length=100, blank=True)
    memberships_url = models.URLField(max_length=500, blank=True)  # NRPS context_memberships_url
    lineitems_url = models.URLField(max_length=500, blank=True)  # AGS lineitems
    ags_scopes = models.JSONField(default=list, blank=True)  # AGS scopes the platform granted
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    roster_error = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "context_id"], name="lti_context_unique")]

    def __str__(self) -> str:
        return self.title or self.context_id


class LtiLineItem(models.Model):
    """A gradebook column in the LMS that receives one link's mastery (scoreMaximum 1)."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="line_items")
    url = models.URLField(max_length=500, unique=True)  # the line item's id at the platform
    label = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.label or self.url


class LtiResourceLink(models.Model):
    """A link placed in an LMS course that opens a course, or one concept of it."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="links")
    resource_link_id = models.CharField(max_length=255)
    title = models.CharField(max_length=300, blank=True)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    concept = models.ForeignKey(Concept, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    line_item = models.ForeignKey(LtiLineItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "resource_link_id"], name="lti_link_unique")]

    def __str__(self) -> str:
        return self.title or self.resource_link_id


class LtiIdentity(models.Model):
    """An LMS user, (issuer, subject), and the one local user it is. Never looked up by e-mail."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)  # `sub`: stable and unique per issuer
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identity")
    name = models.CharField(max_length=300, blank=True)
    email = models.CharField(max_length=300, blank=True)  # as the LMS last sent it: shown, never matched on
    created_at = models.DateTimeField(auto_now_add=True)
    last_launch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="lti_identity_unique")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class LtiNonce(models.Model):
    """A nonce of an accepted id_token: the same token posted again is refused (replay)."""

    issuer = models.CharField(max_length=255)
    nonce = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)  # after the token's own expiry the row may go

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "nonce"], name="lti_nonce_once")]

    def __str__(self) -> str:
        return f"nonce {self.nonce[:12]}..."


class LtiGrade(models.Model):
    """A student reached through a graded link, and the last score the LMS was sent for it."""

    link = models.ForeignKey(LtiResourceLink, on_delete=models.CASCADE, related_name="grades")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")  # the link's, for the hook's query
    score = models.FloatField(null=True, blank=True)  # 0..1 as last sent; null: nothing sent yet
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link", "user"], name="lti_grade_unique")]
        indexes = [models.Index(fields=["user", "course"])]

    def __str__(self) -> str:
        return f"grade of user {self.user_id} on link {self.link_id}"


class LtiRosterMember(models.Model):
    """One member of an LMS course as Names and Roles listed it, whether or not they have launched the tool."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="roster")
    subject = models.CharField(max_length=255)  # NRPS user_id: the `sub` of their launches
    name = models.CharField(max_length=300, blank=True)
    email = models.CharField(max_length=300, blank=True)
    roles = models.JSONField(default=list)
    role = models.CharField(max_length=10, blank=True)  # student, ta, faculty as the tool maps the LMS roles; ""
    status = models.CharField(max_length=20, default="Active")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "subject"], name="lti_roster_unique")]

    def __str__(self) -> str:
        return f"{self.name or self.subject} in {self.context}"
