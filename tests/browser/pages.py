"""What the browser tests do on many pages: log in, audit with axe-core, measure sideways scrolling, wait for the
session socket. Plain functions of a Playwright page, so each test reads as the steps a person takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# axe-core ships inside the axe-playwright-python wheel (a test extra): injected from disk, never fetched.
from axe_playwright_python.sync_playwright import Axe

BLOCKING = ("serious", "critical")  # impacts that fail a test; moderate and minor are reported only

# Test-only counters of socket frames (the production JS keeps none), installed before any page script runs.
WS_COUNTERS = """
document.addEventListener('htmx:wsOpen', function () {
  window.tutorSocketsOpen = (window.tutorSocketsOpen || 0) + 1;
});
document.addEventListener('htmx:wsAfterMessage', function (evt) {
  var msg = (evt.detail && evt.detail.message) || '';
  window.tutorFrames = (window.tutorFrames || 0) + 1;
  if (msg.indexOf('id="explanation-stream"') !== -1) {
    window.tutorStreamChunks = (window.tutorStreamChunks || 0) + 1;
  }
  if (msg.indexOf('id="ta-stream"') !== -1 && msg.indexOf('beforeend') !== -1) {
    window.taStreamChunks = (window.taStreamChunks || 0) + 1;
  }
});
"""


def log_in(page, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def sign_up(page, base: str, username: str, password: str = "a-long-pass-phrase-42") -> None:
    """A new visitor (no cookies) signs up on the page and lands on the home page."""
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def socket_open(page) -> None:
    """The page's websocket is open (a message sent before that would wait in htmx's queue for it)."""
    page.wait_for_function("(window.tutorSocketsOpen || 0) >= 1")


def session_ready(page) -> None:
    """The socket's first stage has replaced the page's own (choosing before that would be swapped away)."""
    page.wait_for_selector("#stage[data-phase]")
    page.wait_for_function("(window.tutorFrames || 0) >= 1")


@dataclass
class AxeReport:
    """Violations of every page audited, by page; `blocking` are the serious and critical ones."""

    out: Path | None = None  # rewritten after every page, so a test that stops half way still leaves its report
    pages: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def audit(self, page, label: str) -> None:
        self.pages.append(label)
        for v in Axe().run(page).response["violations"]:
            targets = "; ".join(", ".join(n["target"]) for n in v["nodes"][:4])
            line = f"{label}: {v['id']} ({v['impact']}, {len(v['nodes'])} node(s)): {v['help']} [{targets}]"
            (self.blocking if v["impact"] in BLOCKING else self.other).append(line)
        if self.out is not None:
            self.out.write_text(self.summary() + "\n")

    def summary(self) -> str:
        lines = [f"axe-core audited {len(self.pages)} page states: {', '.join(self.pages)}",
                 f"serious/critical: {len(self.blocking)}", *self.blocking,
                 f"moderate/minor (reported, not failing): {len(self.other)}", *self.other]
        return "\n".join(lines)


def sideways_overflow(page) -> int:
    """How many CSS pixels the page scrolls sideways (0: none). Inner regions that scroll on purpose (a wide map
    or table in its own scroll box) do not count: only the document's own width."""
    return page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
                         " - document.documentElement.clientWidth")


def sticking_out(page, limit: int = 5) -> list[str]:
    """The innermost elements reaching past the right edge of the screen, to say what makes a page too wide."""
    return page.evaluate("""(limit) => {
        const width = document.documentElement.clientWidth, out = [];
        for (const e of document.body.querySelectorAll('*')) {
            const box = e.getBoundingClientRect();
            if (box.right > width + 1 && box.width > 0 && ![...e.children].some(c =>
                    c.getBoundingClientRect().right > width + 1)) {
                let scrolled = false;  // inside a box that scrolls or clips it (unless positioned out of it)
                const escapes = ['absolute', 'fixed'].includes(getComputedStyle(e).position);
                for (let p = e.parentElement; p && !escapes; p = p.parentElement) {
                    const o = getComputedStyle(p).overflowX;
                    if (o === 'auto' || o === 'scroll' || o === 'hidden') { scrolled = true; break; }
                }
                if (!scrolled) out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                    (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ').join('.') : '') +
                    ' right=' + Math.round(box.right));
            }
            if (out.length >= limit) break;
        }
        return out;
    }""", limit)


def visible_text(page, selector: str = "body") -> str:
    """Text a sighted reader sees: hidden elements excluded (innerText), KaTeX's MathML for screen readers too
    (it is visually hidden, and carries the TeX source in an annotation)."""
    return page.evaluate("""(sel) => {
        const root = document.querySelector(sel).cloneNode(true);
        root.querySelectorAll('.katex-mathml, [hidden], .visually-hidden').forEach(e => e.remove());
        document.body.appendChild(root);
        root.style.position = 'absolute'; root.style.left = '-99999px';
        const text = root.innerText;
        root.remove();
        return text;
    }""", selector)


def focused(page) -> str:
    """The focused element as `tag#id.class`, for messages about where focus went."""
    return page.evaluate("""() => { const e = document.activeElement; if (!e) return 'none';
        return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string'
            ? '.' + e.className.trim().split(/\\s+/).join('.') : ''); }""")
