"""The LTI 1.3 protocol, through pylti1p3: the OIDC login, the id_token's checks, deep-linking responses and the
service calls (Assignment and Grade Services, Names and Role Provisioning Services).

pylti1p3 does the protocol (state, nonce, the platform's JWKS, the signature, the message's required claims, the
OAuth2 client-credentials token for service calls); this module adapts it to our models (`ToolConf`) and turns a
validated launch into a plain `Launch`, checked once here, so that services never read the raw JWT. Every refusal
is a `LaunchRefused` with a status and a reason a person can read; nothing here writes to the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import requests
from django.http import HttpRequest, HttpResponse
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.launch_data_storage.cache import DjangoCacheDataStorage
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import REQUESTS_USER_AGENT, ServiceConnector
from pylti1p3.tool_config import ToolConfAbstract

from courses.models import Membership
from tutor.lti.models import LtiKey, LtiPlatform

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 10.0  # a platform that does not answer (JWKS, token, AGS, NRPS) fails the call, never hangs it

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"

SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_RESULT_READ, SCOPE_SCORE, SCOPE_NRPS)

# --- roles ---------------------------------------------------------------------------------------------------
# Only context (membership) roles give a role in the course: an institution role (`institution/person#Instructor`,
# someone who teaches elsewhere at the school) or a system role says nothing about this course.
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_INSTRUCTOR_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#"
_LEARNER_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#"
_TA = {_INSTRUCTOR_SUB + "TeachingAssistant", _MEMBERSHIP + "TeachingAssistant"}
_FACULTY = {_MEMBERSHIP + "Instructor", _MEMBERSHIP + "Administrator", _MEMBERSHIP + "ContentDeveloper"}
_STUDENT = {_MEMBERSHIP + "Learner"}


def _role_uri(role: str) -> str:
    """A context role's full URI; LTI 1.3 still allows the bare name ("Instructor") for context roles."""
    return _MEMBERSHIP + role if role.isalnum() else role


def course_role(roles: list[str] | tuple[str, ...]) -> str | None:
    """The course role for these LTI roles: TA before faculty (a TA is also an Instructor sub-role), then
    student; None when none of them is a course role we serve (a Mentor, only institution roles, none)."""
    uris = {_role_uri(r) for r in roles if isinstance(r, str)}
    if uris & _TA:
        return Membership.Role.TA
    if uris & _FACULTY or any(u.startswith(_INSTRUCTOR_SUB) for u in uris):
        return Membership.Role.FACULTY
    if uris & _STUDENT or any(u.startswith(_LEARNER_SUB) for u in uris):
        return Membership.Role.STUDENT
    return None


# --- what a launch says, checked once ----------------------------------------------------------------------


class LaunchRefused(Exception):
    """A login or launch the tool will not accept: shown as a 4xx page, logged, and no session is opened."""

    def __init__(self, reason: str, *, status: int = 403, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # for the person in front of the LMS
        self.status = status
        self.detail = detail  # for the log (the library's own message, the claims involved)


@dataclass(frozen=True)
class Ags:
    lineitem: str = ""  # the line item of this link, when the platform made one (deep linking, Canvas assignment)
    lineitems: str = ""  # the context's line items, to find or create one
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeepLinkSettings:
    return_url: str
    accept_targets: tuple[str, ...]  # "iframe", "window", ...
    data: Any = None  # opaque; must go back unchanged

    def as_dict(self) -> dict[str, Any]:
        return {"deep_link_return_url": self.return_url, "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": list(self.accept_targets), "data": self.data}


@dataclass(frozen=True)
class Launch:
    """A validated id_token, as the tool uses it."""

    platform_id: int
    issuer: str
    deployment_id: str
    subject: str
    nonce: str
    expires_at: datetime
    message_type: str
    roles: tuple[str, ...]
    role: str  # Membership.Role
    name: str = ""
    email: str = ""
    context_id: str = ""
    context_title: str = ""
    context_label: str = ""
    resource_link_id: str = ""
    resource_link_title: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    document_target: str = ""  # "iframe", "window" or "" (the platform did not say)
    memberships_url: str = ""
    ags: Ags = Ags()
    deep_link: DeepLinkSettings | None = None


def _text(value: Any, claim: str, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise LaunchRefused(f"The launch has no {claim}.", status=400)
        return ""
    if not isinstance(value, str | int):
        raise LaunchRefused(f"The launch's {claim} is malformed.", status=400, detail=repr(value)[:200])
    return str(value)


def _mapping(value: Any, claim: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LaunchRefused(f"The launch's {claim} claim is malformed.", status=400, detail=repr(value)[:200])
    return value


def launch_parse(body: dict[str, Any], *, platform: LtiPlatform) -> Launch:
    """The claims the tool uses, typed, from a body whose signature, issuer, audience, expiry, nonce and deployment
    pylti1p3 has checked. Refuses what the tool cannot serve: roles it does not know, other message types."""
    message_type = _text(body.get(LTI + "message_type"), "message type", required=True)
    if message_type not in (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST):
        raise LaunchRefused(f"This tool does not handle {message_type} messages.", status=400)
    raw_roles = body.get(LTI + "roles")
    if not isinstance(raw_roles, list):
        raise LaunchRefused("The launch does not say what your role in the course is.", detail=repr(raw_roles)[:200])
    role = course_role(raw_roles)
    if role is None:
        raise LaunchRefused("Your role in this LMS course is not one the tutor serves (student, teaching "
                            "assistant or teacher).", detail=f"roles={raw_roles!r}"[:300])
    audience = body.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and body.get("azp") != platform.client_id:
        # several audiences: the token must name us as the party it was issued to (OIDC Core 3.1.3.7)
        raise LaunchRefused("The launch was not issued to this tool.", detail=f"aud={audience!r} azp={body.get('azp')!r}")
    exp = body.get("exp")
    if not isinstance(exp, int | float):
        raise LaunchRefused("The launch has no expiry.", status=400)
    context = _mapping(body.get(LTI + "context"), "context")
    link = _mapping(body.get(LTI + "resource_link"), "resource link")
    custom = {str(k): str(v) for k, v in _mapping(body.get(LTI + "custom"), "custom").items()
              if isinstance(v, str | int)}
    presentation = _mapping(body.get(LTI + "launch_presentation"), "launch presentation")
    nrps = _mapping(body.get(NRPS_CLAIM), "names and roles")
    ags = _mapping(body.get(AGS_CLAIM), "assignment and grade services")
    scopes = ags.get("scope", [])
    deep_link = None
    if message_type == DEEP_LINKING_REQUEST:
        settings = _mapping(body.get(DEEP_LINKING_SETTINGS), "deep linking settings")
        targets = settings.get("accept_presentation_document_targets") or []
        deep_link = DeepLinkSettings(
            return_url=_text(settings.get("deep_link_return_url"), "deep linking return URL", required=True),
            accept_targets=tuple(t for t in targets if isinstance(t, str)), data=settings.get("data"))
    return Launch(
        platform_id=platform.pk, issuer=platform.issuer,
        deployment_id=_text(body.get(LTI + "deployment_id"), "deployment id", required=True),
        subject=_text(body.get("sub"), "user (sub)", required=True),
        nonce=_text(body.get("nonce"), "nonce", required=True),
        expires_at=datetime.fromtimestamp(float(exp), tz=UTC),
        message_type=message_type, roles=tuple(r for r in raw_roles if isinstance(r, str)), role=role,
        name=_text(body.get("name"), "name") or " ".join(
            p for p in (_text(body.get("given_name"), "given name"), _text(body.get("family_name"), "family name")) if p),
        email=_text(body.get("email"), "email"),
        context_id=_text(context.get("id"), "context id"), context_title=_text(context.get("title"), "context title"),
        context_label=_text(context.get("label"), "context label"),
        resource_link_id=_text(link.get("id"), "resource link id", required=message_type == RESOURCE_LINK_REQUEST),
        resource_link_title=_text(link.get("title"), "resource link title"),
        custom=custom, document_target=_text(presentation.get("document_target"), "document target"),
        memberships_url=_text(nrps.get("context_memberships_url"), "memberships URL"),
        ags=Ags(lineitem=_text(ags.get("lineitem"), "line item"), lineitems=_text(ags.get("lineitems"), "line items"),
                scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()),
        deep_link=deep_link,
    )


# --- pylti1p3 on our models --------------------------------------------------------------------------------


class _TimeoutSession(requests.Session):
    """pylti1p3 calls the platform without a timeout; a platform that never answers must not hold a thread."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = REQUESTS_USER_AGENT

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(*args, **kwargs)


class _Registration(Registration):
    """pylti1p3's registration, signing with our current key under its own kid (the library would derive none)."""

    _kid: str | None = None

    def get_kid(self) -> str | None:
        return self._kid


def registration(platform: LtiPlatform, key: LtiKey) -> Registration:
    reg = _Registration()
    reg.set_issuer(platform.issuer).set_client_id(platform.client_id).set_key_set_url(platform.key_set_url)
    reg.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    reg.set_tool_private_key(key.private_pem)
    reg._kid = key.kid
    return reg


class ToolConf(ToolConfAbstract):
    """Registrations and deployments from the database. Remembers the platform it found for the caller."""

    def __init__(self) -> None:
        super().__init__()
        self.platform: LtiPlatform | None = None

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    # pylti1p3 annotates these as never None, but its callers check for None ("registration not found")
    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration | None:  # type: ignore[override]
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(self, iss: str, client_id: str | None, *args: Any,  # type: ignore[override]
                                    **kwargs: Any) -> Registration | None:
        from tutor.lti import selectors, services

        self.platform = selectors.platform_find(issuer=iss, client_id=client_id)
        if self.platform is None:
            return None
        return registration(self.platform, services.key_active())

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str | None, *args: Any,
                                  **kwargs: Any) -> Deployment | None:
        from tutor.lti import selectors

        if self.platform is None or not selectors.deployment_known(platform=self.platform, deployment_id=deployment_id):
            return None
        return Deployment().set_deployment_id(deployment_id)


# pylti1p3's messages for what a person did or the platform sent, and what to tell them; the rest are checks failing.
_BAD_REQUEST = ("Missing id_token", "Missing state param", "Invalid id_token", "Invalid JWT format",
                "Could not find issuer", "Could not find login hint", "Missing Roles Claim", "Must have a user")
_REASONS = {
    "State not found": "The launch did not come from a login this browser started (or your browser blocks the "
                       "tutor's cookies in the LMS's frame: open it in a new window).",
    "Missing %s cookie": "Your browser did not send the tutor's cookie back (third-party cookies blocked?): "
                         "open the tutor in a new window.",
    "Invalid Nonce": "This launch's one-time code is unknown or used: start again from the LMS.",
    "Registration not found.": "The launch was not issued to this tool by a platform registered with it.",
    "Client id not registered": "The launch was not issued to this tool by a platform registered with it.",
    "Unable to find deployment": "This placement of the tool (deployment) is not registered with the tutor.",
    "Can't decode id_token: Signature verification failed": "The launch's signature is not the platform's.",
    "Can't decode id_token: Signature has expired": "The launch has expired: start again from the LMS.",
    "Unable to find public key": "The launch is signed with a key the platform does not publish.",
    "Could not find registration details": "This LMS is not registered with the tutor.",
}


def _refused(exc: Exception) -> LaunchRefused:
    message = str(exc)
    reason = next((text for prefix, text in _REASONS.items() if message.startswith(prefix)),
                  "The launch could not be verified.")
    status = 400 if message.startswith(_BAD_REQUEST) else 403
    return LaunchRefused(reason, status=status, detail=message[:300])


def oidc_login(request: HttpRequest, *, launch_url: str) -> HttpResponse:
    """Answer the platform's login initiation: a page that checks the browser keeps cookies in the frame (else
    offers a new window), then the redirect to the platform's authorization endpoint with a fresh state and nonce."""
    login = DjangoOIDCLogin(request, ToolConf(), launch_data_storage=DjangoCacheDataStorage())
    login.enable_check_cookies(
        main_msg="Your browser blocks the tutor's cookies inside the LMS page.",
        click_msg="Open the tutor in a new window.", loading_msg="Opening the tutor...")
    try:
        return login.redirect(launch_url)
    except (OIDCException, LtiException) as exc:
        raise _refused(exc) from exc


def launch_validate(request: HttpRequest) -> Launch:
    """The launch POSTed by the platform, every check done, as a `Launch`; else `LaunchRefused`."""
    conf = ToolConf()
    try:
        message = DjangoMessageLaunch(request, conf, launch_data_storage=DjangoCacheDataStorage(),
                                      requests_session=_TimeoutSession())
        message.validate()
        body = message.get_launch_data()
    except (LtiException, OIDCException) as exc:
        raise _refused(exc) from exc
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # pylti1p3 assumes the JWT's header and body are JSON objects of the right shapes; anything else from the
        # network is a malformed request, not our bug.
        raise LaunchRefused("The launch is malformed.", status=400, detail=f"{type(exc).__name__}: {exc}"[:300]) \
            from exc
    assert conf.platform is not None  # validate() found the registration
    return launch_parse(dict(body), platform=conf.platform)


# --- messages and calls from the tool ---------------------------------------------------------------------


class _DeepLinkResource(DeepLinkResource):
    """pylti1p3's content item, plus where the LMS should open it (it keeps the target but does not send it)."""

    def to_dict(self) -> dict[str, object]:
        item = super().to_dict()
        item[self.get_target()] = {}
        return item


def deep_link_response_jwt(*, platform: LtiPlatform, key: LtiKey, deployment_id: str, settings: DeepLinkSettings,
                           url: str, title: str, custom: dict[str, str], target: str, line_item_label: str,
                           resource_id: str) -> str:
    """The signed LtiDeepLinkingResponse carrying one LTI resource link with its gradebook column."""
    resource = _DeepLinkResource().set_url(url).set_title(title).set_custom_params(custom).set_target(target)
    resource.set_lineitem(LineItem().set_score_maximum(1).set_label(line_item_label)
                          .set_resource_id(resource_id).set_tag("mastery"))
    deep_link = DeepLink(registration(platform, key), deployment_id, settings.as_dict())  # type: ignore[arg-type]
    return deep_link.get_response_jwt([resource])


class ServiceError(Exception):
    """A platform service call failed (network, HTTP error, refused token): worth retrying later."""


def _connector(platform: LtiPlatform, key: LtiKey) -> ServiceConnector:
    return ServiceConnector(registration(platform, key), _TimeoutSession())


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (requests.RequestException, LtiException, ValueError) as exc:
        # LtiServiceException is an LtiException; ValueError: a body that is not JSON
        raise ServiceError(f"{what}: {exc}"[:500]) from exc


def nrps_members(*, platform: LtiPlatform, key: LtiKey, memberships_url: str) -> list[dict[str, Any]]:
    """Every member of the context, following the platform's pages."""
    service = NamesRolesProvisioningService(_connector(platform, key), {"context_memberships_url": memberships_url})
    members = _call("names and roles", service.get_members)
    return [m for m in members if isinstance(m, dict)]


def ags_line_item_find_or_create(*, platform: LtiPlatform, key: LtiKey, lineitems_url: str, scopes: list[str],
                                 resource_link_id: str, label: str, resource_id: str) -> str:
    """The URL of the link's line item, created with scoreMaximum 1 if the context has none for it."""
    service = AssignmentsGradesService(_connector(platform, key), cast(Any, {"scope": scopes, "lineitems": lineitems_url}))
    wanted = (LineItem().set_score_maximum(1).set_label(label).set_resource_id(resource_id)
              .set_resource_link_id(resource_link_id).set_tag("mastery"))
    item = _call("line item", service.find_or_create_lineitem, wanted, find_by="resource_link_id")
    url = item.get_id()
    if not url:
        raise ServiceError("line item: the platform returned one without an id")
    return str(url)


def ags_score_send(*, platform: LtiPlatform, key: LtiKey, lineitem_url: str, scopes: list[str], subject: str,
                   score: float, completed: bool, at: datetime) -> None:
    """POST one score (0..1) for one user to a line item's scores endpoint, stamped `at` (the platform keeps the
    score with the latest timestamp)."""
    service = AssignmentsGradesService(_connector(platform, key), cast(Any, {"scope": scopes, "lineitem": lineitem_url}))
    grade = (Grade().set_score_given(round(score, 4)).set_score_maximum(1).set_user_id(subject)
             .set_activity_progress("Completed" if completed else "InProgress").set_grading_progress("FullyGraded")
             .set_timestamp(at.astimezone(UTC).isoformat(timespec="milliseconds")))
    _call("score", service.put_grade, grade)


def jwk_public(public_pem: str, kid: str) -> dict[str, Any]:
    """The JWK the JWKS endpoint publishes for a public key (RS256, for signatures)."""
    return {**Registration.get_jwk(public_pem), "kid": kid}
