"""Markdown + math to safe HTML. Every authored, imported or generated text shown in a page goes through here.

Math (`$...$`, `$$...$$`) is kept as TeX inside `<span class="math">` / `<div class="math">` and typeset in the
browser by the vendored KaTeX. nh3 removes anything executable after rendering.
"""

from __future__ import annotations

import functools
import html
import re

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

# One formula written as display maths, `$$...$$` with no `$$` inside (a line may hold several)
DISPLAY_FORMULA = re.compile(r"\$\$((?:(?!\$\$).)+)\$\$", re.S)
_ABSOLUTE = re.compile(r"^([a-z][a-z0-9+.-]*:|/)", re.IGNORECASE)
_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "img",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "span", "div", "sup", "sub",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}


_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    # The plugin wraps math in <span class="math inline"> / <div class="math block">; we only escape the TeX.
    .use(dollarmath_plugin, allow_space=True, double_inline=True, renderer=lambda content, _opts: html.escape(content))
)


# A formula that is only a number ("$100$", "$3.65$", "$-2$", "$40\%$"): imported courses write most numbers in
# their prose this way (Introductory Statistics: about 5,700 of them), and KaTeX would set each in its serif font
# inside sans-serif text. Shown as text instead, with a true minus sign.
_PLAIN_NUMBER = re.compile(r"\s*(-?)\s*(\d[\d,]*(?:\.\d+)?|\.\d+)\s*(\\%)?\s*")


def _numbers_as_text(md: MarkdownIt) -> None:
    for rule in ("math_inline", "math_inline_double"):
        typeset = md.renderer.rules[rule]

        def render(self: object, tokens: list, idx: int, options: object, env: object, typeset=typeset) -> str:
            found = _PLAIN_NUMBER.fullmatch(tokens[idx].content)
            if found is None:
                return typeset(tokens, idx, options, env)
            sign, number, percent = found.groups()
            return ("\u2212" if sign else "") + number + ("%" if percent else "")

        md.add_render_rule(rule, render)


_numbers_as_text(_md)


def display_maths_inline(text: str) -> str:
    """Display maths (`$$...$$`, common in imported courses) written as inline maths, for text that sits in a line
    (a radio label, a list item of choices)."""
    return DISPLAY_FORMULA.sub(lambda found: f"${found.group(1).strip()}$", text)


def render_markdown(text: str, *, asset_base: str | None = None) -> str:
    """Markdown with math -> sanitised HTML, safe to mark as safe in a template.

    `asset_base` (e.g. "/media/courses/algebra/") resolves relative image paths such as figures/p1/fig.gif,
    which is how course folders reference their own files.
    """
    return _render(text or "", asset_base)


# The output depends only on the arguments, so the same prompt, hint or lesson is rendered once per process, not
# on every stage a student is shown (Markdown and sanitising are a good part of a stage's time); an edited text is
# a new key.
@functools.lru_cache(maxsize=4096)
def _render(text: str, asset_base: str | None) -> str:
    raw = _md.render(text)

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if asset_base and tag == "img" and attribute == "src" and not _ABSOLUTE.match(value):
            return asset_base + value
        return value

    return nh3.clean(raw, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", attribute_filter=resolve)


def formulas(text: str) -> list[str]:
    """The TeX of each formula of a Markdown text (`$...$`, `$$...$$`), as the page typesets them."""
    return [math.content for token in _md.parse(text or "") for math in [token, *(token.children or [])]
            if math.type.startswith("math_")]


def formula_fault(text: str) -> str:
    """Why a formula of `text` cannot be typeset, or "" when each can: KaTeX shows a formula whose braces, or whose
    \\left and \\right, do not pair up as red TeX source (four questions of OATutor's College Algebra have one:
    "4}\\left(12+\\operatorname{\\left(-7\\right)\\right)"). Only these faults are looked for, not every error."""
    for tex in formulas(text):
        depth = 0
        for ch in re.sub(r"\\[\\{}]", "", tex):
            depth += (ch == "{") - (ch == "}")
            if depth < 0:
                return f"`{_clip(tex)}` closes a brace it never opened"
        if depth:
            return f"`{_clip(tex)}` leaves a brace open"
        if len(re.findall(r"\\left(?![a-zA-Z])", tex)) != len(re.findall(r"\\right(?![a-zA-Z])", tex)):
            return f"`{_clip(tex)}` has a \\left without its \\right, or the other way round"
    return ""


def _clip(tex: str, most: int = 60) -> str:
    tex = " ".join(tex.split())
    return tex if len(tex) <= most else tex[:most - 1] + "…"

