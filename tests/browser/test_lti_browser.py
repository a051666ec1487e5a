"""A launch from an LMS inside its iframe, in Chromium: an LMS course page on http://localhost frames the tool on
https://127.0.0.1 (another site), posts the login initiation into the frame, and the student's session opens
there, cookies and websocket included, with production's cookie settings (SameSite=None; Secure)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.pages import WS_COUNTERS
from tests.lti.lms_stub import FakeLMS, Message

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _self_signed(tmp_path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def https_tool(transactional_db, settings, tmp_path) -> Iterator[str]:
    """The real ASGI app over HTTPS (uvicorn, self-signed), with production's cookies for the LMS iframe."""
    import uvicorn

    from tutor.asgi import application

    settings.SESSION_COOKIE_SAMESITE = settings.CSRF_COOKIE_SAMESITE = "None"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.TUTOR_STREAM_DELAY_S = 0.0
    cert, key = _self_signed(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio", lifespan="off", ssl_certfile=cert,
                                           ssl_keyfile=key))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"https://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chromium(tmp_path) -> Iterator:
    """Chromium with third-party cookies allowed (its "Allow third-party cookies" setting), so that SameSite=None
    cookies work in a cross-site iframe."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    # Chromium's setting "Allow third-party cookies" (0): this Chromium (156) blocks them by default
    (profile / "Default" / "Preferences").write_text(json.dumps({"profile": {"cookie_controls_mode": 0,
                                                                            "block_third_party_cookies": False}}))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900}, ignore_https_errors=True)
        yield _page(context)
        context.close()


@pytest.fixture
def chromium_blocking_third_party_cookies() -> Iterator:
    """A fresh (incognito-like) context: it blocks cookies in cross-site frames, as Safari and private windows do."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900}, ignore_https_errors=True)
        yield _page(context)
        context.close()
        browser.close()


def _page(context):  # type: ignore[no-untyped-def]
    context.add_init_script(WS_COUNTERS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


@pytest.fixture
def lms_for_browser(https_tool) -> Iterator[FakeLMS]:
    from tutor.lti import hooks, selectors, services

    lms = FakeLMS(host="localhost").start()
    lms.tool_login_url = https_tool + "/lti/login/"
    services.platform_register(**lms.registration())
    lms.tool_jwks = selectors.jwks()
    yield lms
    hooks.wait_idle()
    lms.stop()


def _course_page(lms: FakeLMS, message: Message) -> str:
    hint = lms.login_params(message)["lti_message_hint"]
    return f"{lms.base}/course/{hint}"


def test_a_student_launches_the_tutor_inside_the_lms_page(chromium, lms_for_browser, course, test_output):
    page, lms = chromium, lms_for_browser
    page.goto(_course_page(lms, Message(name="Ada Lovelace", custom={"tutor_course": course.slug})))
    frame = page.frame_locator("iframe#tool")
    frame.locator('#stage[data-phase="pain"]').wait_for()
    tool = page.frame(name="tool")
    assert tool is not None and tool.url.endswith(f"/learn/{course.slug}/")
    tool.wait_for_function("(window.tutorFrames || 0) >= 1")  # the session's websocket works inside the frame
    assert "Pain" in frame.locator(".pain").inner_text()
    page.screenshot(path=test_output / "1-launched-in-the-lms-iframe.png", full_page=True)

    # the student works inside the frame: forms post with the CSRF token and the SameSite=None session cookie
    frame.locator("input[name=guess][value=yes]").check()
    frame.locator("#commit-guess").click()
    frame.locator("#start-practice").wait_for()
    page.screenshot(path=test_output / "2-explanation-in-the-iframe.png", full_page=True)
    cookies = {c["name"]: c for c in page.context.cookies("https://127.0.0.1")}
    assert cookies["sessionid"]["sameSite"] == "None" and cookies["sessionid"]["secure"]


def test_a_tampered_launch_shows_a_clear_page_inside_the_frame(chromium, lms_for_browser, course, test_output):
    page, lms = chromium, lms_for_browser
    page.goto(_course_page(lms, Message(custom={"tutor_course": course.slug}, sign_with_other_key=True)))
    refused = page.frame_locator("iframe#tool").locator("#lti-refused")
    refused.wait_for()
    assert "signature is not the platform" in refused.inner_text()
    page.screenshot(path=test_output / "3-refused-in-the-lms-iframe.png", full_page=True)


def test_a_browser_that_blocks_cookies_in_frames_gets_the_tutor_in_a_new_window(
        chromium_blocking_third_party_cookies, lms_for_browser, course, test_output):
    page, lms = chromium_blocking_third_party_cookies, lms_for_browser
    page.goto(_course_page(lms, Message(custom={"tutor_course": course.slug})))
    link = page.frame_locator("iframe#tool").locator("#lti1p3-new-tab-link")
    link.wait_for()
    page.screenshot(path=test_output / "4-cookies-blocked-offers-a-new-window.png", full_page=True)
    with page.context.expect_page() as opened:
        link.click()
    window = opened.value
    window.wait_for_url(f"**/learn/{course.slug}/")
    window.locator('#stage[data-phase="pain"]').wait_for()
    window.screenshot(path=test_output / "5-the-tutor-in-its-own-window.png", full_page=True)
