"""An LTI 1.3 platform (an LMS) for tests: its own RSA key, a JWKS, an OIDC authorization endpoint that signs
id_tokens, an OAuth2 token endpoint that checks the tool's signed client assertion, Names and Roles and
Assignment and Grade services, and a deep-linking return URL. A real HTTP server on 127.0.0.1, in a thread; every
call it receives is recorded in `calls`.

A test describes the launch it wants (`Message`), gets the login-initiation parameters for it (`login_params`),
and the browser (Django's test client, or Chromium) walks the OIDC flow as with a real LMS. Tampering options
(`sign_with_other_key`, `audience`, `expires_in`, ...) make the id_tokens the security tests need.
"""

from __future__ import annotations

import html
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
LEARNER = [MEMBERSHIP + "Learner", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"]
INSTRUCTOR = [MEMBERSHIP + "Instructor", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"]
TA = ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant", MEMBERSHIP + "Instructor"]
AGS_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score"]


def _rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem


@dataclass
class Message:
    """One launch the platform will sign when the browser comes to its authorization endpoint."""

    sub: str = "lms-user-1"
    name: str = "Ada Lovelace"
    email: str = "ada@school.example"
    roles: list[str] | None = field(default_factory=lambda: list(LEARNER))
    message_type: str = "LtiResourceLinkRequest"
    resource_link_id: str = "link-1"
    resource_link_title: str = "Algebra practice"
    context_id: str = "course-101"
    context_title: str = "MATH 101"
    custom: dict[str, str] = field(default_factory=dict)
    document_target: str = "iframe"
    line_item: str = ""  # an AGS lineitem URL the platform made for this link (e.g. through deep linking)
    deep_link_targets: list[str] = field(default_factory=lambda: ["iframe", "window"])
    # tampering, for the security tests
    sign_with_other_key: bool = False
    audience: str | list[str] | None = None  # default: the tool's client id
    issuer: str | None = None  # default: the platform's
    deployment_id: str | None = None
    expires_in: int = 300
    drop_roles: bool = False


@dataclass
class Member:
    user_id: str
    name: str
    email: str
    roles: list[str]
    status: str = "Active"


class FakeLMS:
    """The platform. `start()` serves it; `base` is http://localhost:<port> (a site other than the tool's
    127.0.0.1 in the browser test)."""

    def __init__(self, *, client_id: str = "tutor-client", deployment_id: str = "deployment-1",
                 host: str = "localhost") -> None:
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.host = host
        self.key, self.key_pem = _rsa_key()
        self.kid = "lms-key-1"
        self.other_key, self.other_key_pem = _rsa_key()  # not published: a forged signature
        self.tool_jwks: dict[str, Any] = {"keys": []}  # the tool's public keys, to check its client assertions
        self.tool_login_url = ""  # where the course page's iframe posts the login initiation
        self.messages: dict[str, Message] = {}
        self.members: list[Member] = []
        self.line_items: dict[str, dict[str, Any]] = {}  # url -> line item
        self.scores: list[dict[str, Any]] = []  # every score received, with its line item
        self.deep_link_responses: list[dict[str, Any]] = []  # verified JWT bodies of deep-linking responses
        self.fail_next: dict[str, int] = {}  # endpoint kind ("scores", "token", "nrps") -> failures to answer
        self.slow_s: dict[str, float] = {}  # endpoint kind -> seconds to wait before answering (a slow LMS)
        self.held: dict[str, threading.Event] = {}  # endpoint kind -> answered only once the event is set
        self.calls: list[tuple[str, str]] = []  # (method, path) of every request
        self.tokens: dict[str, list[str]] = {}  # access token -> scopes granted
        self.nrps_page_size = 2
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeLMS:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.base

    def registration(self) -> dict[str, Any]:
        """What an administrator types into the tool's registration for this platform."""
        return {"name": "Test LMS", "issuer": self.issuer, "client_id": self.client_id,
                "auth_login_url": self.base + "/auth", "auth_token_url": self.base + "/token",
                "key_set_url": self.base + "/jwks", "deployment_ids": [self.deployment_id], "any_course": True}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    # --- what a test asks for ---------------------------------------------------------------------------

    def login_params(self, message: Message, *, target_link_uri: str = "http://testserver/lti/launch/",
                     issuer: str | None = None, deployment_id: str | None = None) -> dict[str, str]:
        """The third-party-initiated login the LMS sends the browser to the tool with."""
        hint = uuid.uuid4().hex
        self.messages[hint] = message
        return {"iss": issuer or self.issuer, "login_hint": message.sub, "target_link_uri": target_link_uri,
                "lti_message_hint": hint, "client_id": self.client_id,
                "lti_deployment_id": deployment_id or self.deployment_id}

    def nrps_url(self, context_id: str) -> str:
        return f"{self.base}/nrps/{context_id}"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.base}/ags/{context_id}/lineitems"

    def line_item_create(self, context_id: str, **fields: Any) -> str:
        with self._lock:
            url = f"{self.lineitems_url(context_id)}/{len(self.line_items) + 1}"
            self.line_items[url] = {"id": url, "scoreMaximum": 1, **fields}
        return url

    def id_token(self, message: Message, *, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": message.issuer or self.issuer,
            "aud": message.audience if message.audience is not None else self.client_id,
            "sub": message.sub, "iat": now, "exp": now + message.expires_in, "nonce": nonce,
            "name": message.name, "email": message.email,
            LTI + "version": "1.3.0", LTI + "message_type": message.message_type,
            LTI + "deployment_id": message.deployment_id or self.deployment_id,
            LTI + "target_link_uri": "http://testserver/lti/launch/",
            LTI + "context": {"id": message.context_id, "title": message.context_title, "label": "M101",
                              "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            LTI + "custom": message.custom,
            LTI + "launch_presentation": {"document_target": message.document_target,
                                          "return_url": self.base + "/return"},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": self.nrps_url(message.context_id), "service_versions": ["2.0"]},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": AGS_SCOPES, "lineitems": self.lineitems_url(message.context_id),
                **({"lineitem": message.line_item} if message.line_item else {})},
        }
        if not message.drop_roles:
            claims[LTI + "roles"] = message.roles
        if message.message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": message.resource_link_id, "title": message.resource_link_title}
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.base + "/deep_link_return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": message.deep_link_targets, "data": "opaque-42"}
        key = self.other_key_pem if message.sign_with_other_key else self.key_pem
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def _fail(self, kind: str) -> bool:
        with self._lock:
            if self.fail_next.get(kind, 0) > 0:
                self.fail_next[kind] -= 1
                return True
        return False

    def _tool_key(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        for jwk in self.tool_jwks.get("keys", []):
            if jwk.get("kid") == kid:
                return RSAAlgorithm.from_jwk(json.dumps(jwk))
        raise jwt.InvalidTokenError(f"the tool's keyset has no key {kid!r}")

    # --- endpoints ----------------------------------------------------------------------------------------

    def auth(self, params: dict[str, str]) -> tuple[int, str, str]:
        """OIDC authorization: check the request, then POST the signed id_token back to the tool (form_post)."""
        for name, expected in (("scope", "openid"), ("response_type", "id_token"), ("response_mode", "form_post"),
                               ("client_id", self.client_id), ("prompt", "none")):
            if params.get(name) != expected:
                return 400, "text/plain", f"bad {name}: {params.get(name)!r}"
        message = self.messages.get(params.get("lti_message_hint", ""))
        if message is None or not params.get("nonce") or not params.get("redirect_uri", "").endswith("/lti/launch/"):
            return 400, "text/plain", "unknown message hint, no nonce, or a redirect URI not registered"
        token = self.id_token(message, nonce=params["nonce"])
        return 200, "text/html", _autosubmit(params["redirect_uri"], {"id_token": token, "state": params["state"]})

    def token(self, form: dict[str, str]) -> tuple[int, str, str]:
        if self._fail("token"):
            return 503, "application/json", '{"error": "temporarily_unavailable"}'
        try:
            claims = jwt.decode(form.get("client_assertion", ""), self._tool_key(form.get("client_assertion", "")),
                                algorithms=["RS256"], audience=self.base + "/token")
        except jwt.InvalidTokenError as exc:
            return 401, "application/json", json.dumps({"error": "invalid_client", "detail": str(exc)})
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id \
                or form.get("grant_type") != "client_credentials":
            return 401, "application/json", '{"error": "invalid_client"}'
        access = uuid.uuid4().hex
        self.tokens[access] = form.get("scope", "").split()
        return 200, "application/json", json.dumps({"access_token": access, "token_type": "Bearer",
                                                    "expires_in": 3600, "scope": form.get("scope", "")})

    def authorized(self, headers: Any, scope: str) -> bool:
        auth = headers.get("Authorization", "")
        return auth.startswith("Bearer ") and any(scope in granted for granted in self.tokens.get(auth[7:], []))

    def nrps(self, context_id: str, query: dict[str, list[str]]) -> tuple[int, str, str, dict[str, str]]:
        if self._fail("nrps"):
            return 503, "application/json", "{}", {}
        page = int(query.get("page", ["0"])[0])
        size = self.nrps_page_size
        members = [{"user_id": m.user_id, "name": m.name, "email": m.email, "roles": m.roles, "status": m.status}
                   for m in self.members[page * size:(page + 1) * size]]
        headers = {}
        if (page + 1) * size < len(self.members):
            headers["Link"] = f'<{self.nrps_url(context_id)}?page={page + 1}>; rel="next"'
        body = {"id": self.nrps_url(context_id), "context": {"id": context_id}, "members": members}
        return 200, "application/vnd.ims.lti-nrps.v2.membershipcontainer+json", json.dumps(body), headers

    def deep_link_return(self, form: dict[str, str]) -> tuple[int, str, str]:
        try:
            body = jwt.decode(form.get("JWT", ""), self._tool_key(form.get("JWT", "")), algorithms=["RS256"],
                              audience=self.issuer)
        except jwt.InvalidTokenError as exc:
            return 400, "text/plain", f"bad deep-linking response: {exc}"
        with self._lock:
            self.deep_link_responses.append(body)
        return 200, "text/html", "<!doctype html><title>LMS</title><h1 id='lms-added'>The tutor was added.</h1>"

    def course_page(self, hint: str) -> tuple[int, str, str]:
        """An LMS course page that frames the tool and posts the login initiation into the frame."""
        message = self.messages.get(hint)
        if message is None:
            return 404, "text/plain", "no such page"
        params = {"iss": self.issuer, "login_hint": message.sub, "target_link_uri": self.tool_login_url.replace(
            "/login/", "/launch/"), "lti_message_hint": hint, "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id}
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>MATH 101 - Test LMS</title><style>body{{font-family:sans-serif;"
                f"margin:0}} header{{background:#2d3b45;color:#fff;padding:12px 20px}} iframe{{border:0;width:100%;"
                f"height:760px}}</style></head><body><header><b>Test LMS</b> · MATH 101 · {html.escape(message.resource_link_title)}"
                f"</header><form id='launch' method='post' target='tool' action='{html.escape(self.tool_login_url)}'>"
                f"{inputs}</form><iframe name='tool' id='tool' title='Tutor' allow='clipboard-write'></iframe>"
                f"<script>document.getElementById('launch').submit();</script></body></html>")
        return 200, "text/html", page


def _autosubmit(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return (f"<!doctype html><html><body><form id='f' method='post' action='{html.escape(action)}'>{inputs}</form>"
            f"<script>document.getElementById('f').submit();</script></body></html>")


def _handler(lms: FakeLMS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, content_type: str, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _json(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            lms.calls.append(("GET", url.path))
            query = parse_qs(url.query)
            if url.path == "/jwks":
                return self._send(200, "application/json", json.dumps(lms.jwks()))
            if url.path == "/auth":
                return self._send(*lms.auth({k: v[0] for k, v in query.items()}))
            if url.path.startswith("/course/"):
                return self._send(*lms.course_page(url.path.rsplit("/", 1)[1]))
            if url.path.startswith("/nrps/"):
                if not lms.authorized(self.headers, "contextmembership.readonly"):
                    return self._send(401, "application/json", '{"error": "unauthorized"}')
                return self._send(*lms.nrps(url.path.rsplit("/", 1)[1], query))
            if url.path.endswith("/lineitems"):
                if not lms.authorized(self.headers, "lineitem"):
                    return self._send(401, "application/json", '{"error": "unauthorized"}')
                items = [i for u, i in lms.line_items.items() if u.startswith(lms.base + url.path)]
                return self._send(200, "application/vnd.ims.lis.v2.lineitemcontainer+json", json.dumps(items))
            return self._send(404, "text/plain", "not found")

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            lms.calls.append(("POST", url.path))
            if url.path == "/auth":
                return self._send(*lms.auth(self._form()))
            if url.path == "/token":
                return self._send(*lms.token(self._form()))
            if url.path == "/deep_link_return":
                return self._send(*lms.deep_link_return(self._form()))
            if url.path.endswith("/lineitems"):
                if not lms.authorized(self.headers, "lineitem"):
                    return self._send(401, "application/json", '{"error": "unauthorized"}')
                context_id = url.path.split("/")[2]
                created = lms.line_item_create(context_id, **self._json())
                return self._send(201, "application/vnd.ims.lis.v2.lineitem+json", json.dumps(lms.line_items[created]))
            if url.path.endswith("/scores"):
                if not lms.authorized(self.headers, "/score"):
                    return self._send(401, "application/json", '{"error": "unauthorized"}')
                time.sleep(lms.slow_s.get("scores", 0.0))
                if "scores" in lms.held:
                    lms.held["scores"].wait(timeout=60)
                if lms._fail("scores"):
                    return self._send(503, "application/json", '{"error": "try later"}')
                line_item = lms.base + url.path[: -len("/scores")]
                if line_item not in lms.line_items:
                    return self._send(404, "application/json", '{"error": "no such line item"}')
                with lms._lock:
                    lms.scores.append({"line_item": line_item, **self._json(),
                                       "content_type": self.headers.get("Content-Type")})
                return self._send(200, "application/json", "{}")
            return self._send(404, "text/plain", "not found")

    return Handler


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an auto-submitting form (what a browser would POST next)."""
    from html.parser import HTMLParser

    found: dict[str, Any] = {"action": "", "fields": {}}

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "form" and not found["action"]:
                found["action"] = a.get("action") or ""
            if tag == "input" and a.get("name"):
                found["fields"][a["name"]] = a.get("value") or ""

    Parser().feed(page)
    return found["action"], found["fields"]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


__all__ = ["FakeLMS", "Member", "Message", "form_of", "query_of", "urlencode", "AGS_SCOPES", "INSTRUCTOR",
           "LEARNER", "TA", "MEMBERSHIP"]
