"""How the student's page shows choices, answers and a streaming explanation: as maths KaTeX sets, never as TeX or
Python source.

A choice (multiple choice, or a guess) is course text: Markdown with `$...$` maths, rendered here and sanitised by
`courses.rendering`. An answer as the checker understood it (`Attempt.normalized`) is TeX in math mode; attempts
stored before it was are sympy's Python form (`3*x**2`, `zoo`) or the raw text, and are converted here. An
explanation arriving as it is generated is typeset block by block, as each paragraph, list or formula is finished
(`finished_blocks`).
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from courses.rendering import display_maths_inline, render_markdown

# A concept without published questions, on the student's map and the class dashboard: grey, off the red-to-green
# scale of mastery (the tutor cannot teach it yet).
UNPRACTISED_FILL = "#e4e7ec"

_ONE_PARAGRAPH = re.compile(r"\s*<p>(.*)</p>\s*", re.S)
# sympy's Python form: a power, a product, or one of the names sympy prints that are not TeX
_PYTHON_FORM = re.compile(r"\*|\b(zoo|oo|nan|sqrt|pi|exp|log|sin|cos|tan|sec|csc|cot|Abs)\b")
_NAMES = {"zoo": r"\tilde{\infty}", "oo": r"\infty", "nan": r"\text{undefined}", "pi": r"\pi",
          **{f: "\\" + f for f in ("exp", "log", "sin", "cos", "tan", "sec", "csc", "cot")}}
_NAME = re.compile(r"\b(" + "|".join(_NAMES) + r")\b")
_FORMULA = re.compile(r"[\w\s.+\-*/^()=,<>]+")  # the characters of a formula written as code
_WORD = re.compile(r"[A-Za-z]{3,}")  # a run of letters: a word of prose, unless it is a function's name


@dataclass(frozen=True)
class Choice:
    value: str  # what the form sends: the choice exactly as the course wrote it (answer keys compare with it)
    html: str  # what the student reads: inline HTML, maths left for KaTeX


def choice(text: str) -> Choice:
    return Choice(value=text, html=inline_html(text))


@functools.lru_cache(maxsize=4096)
def inline_html(text: str) -> str:
    """Course text that sits inside a line (a radio label, an echo): Markdown with maths, no paragraph around it.

    A formula written as display maths (`$$...$$`, common in imported courses) is set inline, like the text around
    it; a choice written as a Python expression (`x**4 - 1`) is set as the formula it stands for."""
    if "$$" in text:
        text = display_maths_inline(text)
    elif "$" not in text and _PYTHON_FORM.search(text) and _is_formula(text):
        text = f"${python_to_tex(text)}$"
    rendered = render_markdown(text)
    one = _ONE_PARAGRAPH.fullmatch(rendered)
    return one.group(1) if one and "<p>" not in one.group(1) else rendered


@functools.lru_cache(maxsize=4096)
def python_to_tex(text: str) -> str:
    """sympy's printed Python form as TeX for display: powers, products, roots, absolute values and sympy's names.
    Not a parser: enough for what `sympy.sstr` and course authors write (`3*x**2 + 1`, `x**(1/2)`, `sqrt(x)`)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("**", i):
            exponent, i = _operand(text, i + 2)
            out.append("^{" + python_to_tex(exponent) + "}")
        elif text[i] == "*":  # written as TeX writes it: 3x, x y, but 2 \cdot 3
            before, after = text[:i].rstrip()[-1:], text[i + 1:].lstrip()[:1]
            out.append(r" \cdot " if before.isdigit() and after.isdigit() else " ")
            i += 1
        elif text.startswith(("sqrt(", "Abs("), i) and (i == 0 or not text[i - 1].isalnum()):
            name = text[i:text.index("(", i)]
            inner, i = _operand(text, i + len(name))
            inner = python_to_tex(inner)
            out.append(r"\sqrt{" + inner + "}" if name == "sqrt" else r"\left|" + inner + r"\right|")
        else:
            out.append(text[i])
            i += 1
    return _NAME.sub(lambda m: _NAMES[m.group(1)], "".join(out).replace("  ", " "))


def _operand(text: str, i: int) -> tuple[str, int]:
    """The operand starting at `text[i]`: a bracketed group (without its brackets) or a signed name or number;
    and the index after it."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "(":
        depth = 0
        for j in range(i, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1:j], j + 1
        return text[i + 1:], len(text)
    found = re.compile(r"-?[\w.]+").match(text, i)
    return (found.group(0), found.end()) if found else ("", i)


def _is_formula(text: str) -> bool:
    """Text written as one formula in code (`x**4 - 1`, `g(x)=x**4,f(x)=8-x`), not prose that happens to hold a `*`."""
    return bool(_FORMULA.fullmatch(text)) and all(w in _NAMES or w in ("sqrt", "Abs") for w in _WORD.findall(text))


def echo_html(*, normalized: str, answer: str, kind: str) -> str:
    """The student's answer as the tutor understood it ("You answered ..."), as HTML for KaTeX to typeset.

    A multiple-choice answer is shown as its choice is: course text with maths (the checker's TeX for it sets the
    choice's source as text, dollars and all)."""
    if kind == "multiple_choice":
        return inline_html(answer or normalized)
    tex = normalized or answer
    if kind == "short_text" and not tex.startswith("\\text{"):
        return html.escape(tex)  # the student's words, stored as written
    if "\\" not in tex and _PYTHON_FORM.search(tex):
        tex = python_to_tex(tex)  # stored as sympy's Python form
    return f'<span class="math inline">{html.escape(tex)}</span>'


_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_FENCE_LINE = re.compile(r"^ {0,3}(```|~~~)", re.M)
_CONTINUES = re.compile(r"[ \t]|[-*+][ \t]|\d+[.)][ \t]")  # an indented line or a list item: the block goes on


def finished_blocks(text: str) -> int:
    """How much of `text`, Markdown still being generated, is finished blocks: the index just after the last blank
    line that lies outside a `$$` formula and a code fence and that a new block has started after. After a list,
    a list item or an indented line still belongs to it, so the list stays whole. 0 when nothing is finished."""
    end = start = 0  # `start`: where the block before the next blank line begins
    for gap in _BLANK_LINE.finditer(text):
        before, after = text[:gap.start()], text[gap.end():]
        if before.count("$$") % 2 or len(_FENCE_LINE.findall(before)) % 2:
            continue  # the blank line is inside a formula or a fence
        if after and not (_CONTINUES.match(after) and _CONTINUES.match(text, start)):
            end = gap.end()
        start = gap.end()
    return end


def dom_length(text: str) -> int:
    """Characters `text` has once a browser parsed it (a CR LF pair becomes one LF), as the page's script counts."""
    return len(text) - text.count("\r\n")
