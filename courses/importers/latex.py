"""LaTeX-ish answers, as course authors type them, turned into the plain syntax `courses.checking` reads.

    latex_to_expression(r"$$\\frac{1}{2} x^2$$")  ->  "((1)/(2)) x^2"

Only the part of LaTeX that answers use is understood: fractions, roots, powers, logarithms, absolute value,
Greek letters, `\\times`/`\\cdot`, `\\left(`/`\\right)`. Anything else (matrices, inequalities, lists, words)
raises `LatexError` with a short `category` an importer can count by.
"""

from __future__ import annotations

import re

# Names `courses.checking.parse_expression` knows as functions or constants: never variables.
FUNCTIONS = {"sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan", "sinh", "cosh", "tanh",
             "exp", "log", "ln", "sqrt", "pi", "E", "e", "Abs", "oo"}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
         "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}
_COMMANDS = {  # LaTeX command -> text
    "times": "*", "cdot": "*", "ast": "*", "div": "/", "pi": "pi", "infty": "oo", "ln": "ln", "exp": "exp",
    "sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc", "cot": "cot",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    **{g: g for g in GREEK},
}
_SPACES = {",", ";", "!", " ", ":", "quad", "qquad"}
_UNSUPPORTED = {  # command -> category of the refusal
    "begin": "matrix", "end": "matrix", "geq": "inequality", "leq": "inequality", "ge": "inequality",
    "le": "inequality", "neq": "inequality", "lt": "inequality", "gt": "inequality", "pm": "plus-minus",
    "mp": "plus-minus", "text": "words", "mathrm": "words", "cup": "set", "cap": "set", "in": "set",
}


class LatexError(ValueError):
    def __init__(self, category: str, message: str) -> None:
        self.category = category
        super().__init__(message)


def strip_math_delimiters(text: str) -> str:
    """`$$a$$ $$b$$` -> `a b`; `$$a$$ - $$b$$` -> `a - b`; a trailing full stop is dropped."""
    text = text.strip()
    if "$$" not in text:
        return text
    parts = text.split("$$")
    if len(parts) % 2 == 0:
        raise LatexError("bad-latex", f"unbalanced $$ in {text!r}")
    between = [p.strip() for p in parts[0::2]]
    if between[0] or between[-1].rstrip(".") or any(p not in ("", "-", "+", "*", "=") for p in between[1:-1]):
        raise LatexError("words", f"text outside the mathematics in {text!r}")
    out = parts[1]
    for glue, math in zip(between[1:-1], parts[3::2], strict=True):
        out += f" {glue} {math}" if glue else f" {math}"
    return out.strip()


MAX_LATEX_CHARS = 2000  # an answer key, not a document
MAX_LATEX_NESTING = 25  # groups inside groups: the reader recurses once per level


def latex_to_expression(text: str) -> str:
    """Translate one answer; raises LatexError naming what is not understood (category "too-large" past the
    limits on length and nesting, checked before reading: the reader is recursive)."""
    if len(text) > MAX_LATEX_CHARS:
        raise LatexError("too-large", f"an answer of {len(text)} characters is too large to check")
    depth = deepest = 0
    for ch in text:
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    if deepest > MAX_LATEX_NESTING:
        raise LatexError("too-large", f"the answer nests {deepest} groups deep: too large to check")
    source = strip_math_delimiters(text).replace("−", "-").strip().rstrip(".").strip()
    # \left and \right only size the delimiter that follows: drop them so that parentheses nest plainly.
    source = re.sub(r"\\(left|right)\s*(\\[{}]|[()|\[\]])", lambda m: m.group(2).lstrip("\\"), source)
    source = re.sub(r"\\(left|right)\s*\.", "", source)
    if not source:
        raise LatexError("empty", "empty answer")
    out, _ = _Reader(source).group_until(0, None)
    for token in re.findall(r"[A-Za-z_]\w*", out):
        # `log3(x)` or `sqrtx` typed as plain text would silently become a product of letters
        if token in FUNCTIONS or token in GREEK:
            continue
        if any(token.startswith(f) for f in FUNCTIONS if len(f) > 1 and f != "pi"):
            raise LatexError("bad-latex", f"unknown function {token!r} in {text!r}")
        if len(token) >= 4 and token.isalpha():  # `Not a parabola`: words, not a product of four variables
            raise LatexError("words", f"words ({token!r}) in {text!r}")
    return re.sub(r"\s+", " ", out).strip()


def split_equation(expression: str) -> tuple[str, str]:
    """`y=2x+1` -> ("y=", "2x+1") when the left side only names the unknown (`y`, `f(x)`), else raises."""
    if expression.count("=") != 1:
        return "", expression
    left, right = (s.strip() for s in expression.split("="))
    if re.fullmatch(r"[A-Za-z]\w*(\s*\(\s*[A-Za-z]\s*\))?", left) and right:
        return left + "=", right
    raise LatexError("equation", f"an equation answer ({expression!r}) cannot be checked as one expression")


def expression_variables(expression: str) -> list[str]:
    """The names in `expression` to declare as variables: single letters (implicit products like `xy` are
    split by the checker) and whole Greek names; never the checker's functions and constants."""
    names: set[str] = set()
    for token in re.findall(r"[A-Za-z_]\w*", expression):
        if token in FUNCTIONS:
            continue
        if token in GREEK:
            names.add(token)
        else:
            names.update(ch for ch in token if ch.isalpha() and ch not in ("e", "E"))
    return sorted(names)


def _enclosed(text: str) -> bool:
    """True when `text` is one parenthesised group: `(a+b)` but not `(a)+(b)`."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _wrap(text: str) -> str:
    """Parenthesise `text` unless it is already one atom: `12`, `x`, `2.5`, `pi`, `(a+b)`. Not `2x`: the checker
    reads `1/2x` as `x/2`."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?|[A-Za-z]", text) or text in GREEK or text == "pi" or _enclosed(text):
        return text
    return f"({text})"


def _unwrap(text: str) -> str:
    text = text.strip()
    return text[1:-1] if _enclosed(text) else text


class _Reader:
    """A recursive reader over one LaTeX string. `group_until` returns (text, position after the closer)."""

    def __init__(self, source: str) -> None:
        self.s = source

    def fail(self, category: str, what: str) -> LatexError:
        return LatexError(category, f"{what} in {self.s!r}")

    def group_until(self, pos: int, closer: str | None) -> tuple[str, int]:
        out: list[str] = []
        bars_open = False  # absolute-value bars pair up within one group
        while pos < len(self.s):
            ch = self.s[pos]
            if closer is not None and ch == closer:
                if bars_open:
                    raise self.fail("bad-latex", "unclosed |")
                return "".join(out), pos + 1
            if ch == "{":
                inner, pos = self.group_until(pos + 1, "}")
                out.append(_wrap(inner))
                continue
            if ch == "(":
                inner, pos = self.group_until(pos + 1, ")")
                out.append(f"({inner})")
                continue
            if ch in "})":
                raise self.fail("bad-latex", f"unbalanced {ch}")
            if ch == "|":
                out.append(")" if bars_open else "Abs(")
                bars_open = not bars_open
                pos += 1
                continue
            if ch == "\\":
                text, pos = self.command(pos + 1)
                out.append(text)
                continue
            if ch == "[" or ch == "]":
                raise self.fail("interval", "brackets (an interval or a list)")
            if ch in "<>":
                raise self.fail("inequality", "an inequality")
            if ch == ",":
                raise self.fail("list", "a comma (a list of answers or a point)")
            if ch == "'":
                raise self.fail("bad-latex", "a prime (')")
            if not (ch.isalnum() or ch in " +-*/^().=" ):
                raise self.fail("bad-latex", f"the character {ch!r}")
            out.append(ch)
            pos += 1
        if closer is not None:
            raise self.fail("bad-latex", f"missing {closer!r}")
        if bars_open:
            raise self.fail("bad-latex", "unclosed |")
        return "".join(out), pos

    def argument(self, pos: int) -> tuple[str, int]:
        """One argument: `{...}` or a single character/command (`\\frac12`)."""
        while pos < len(self.s) and self.s[pos] == " ":
            pos += 1
        if pos >= len(self.s):
            raise self.fail("bad-latex", "a missing argument")
        if self.s[pos] in "{(":
            inner, pos = self.group_until(pos + 1, "}" if self.s[pos] == "{" else ")")
            return _wrap(inner), pos
        if self.s[pos] == "\\":
            return self.command(pos + 1)
        return self.s[pos], pos + 1

    def command(self, pos: int) -> tuple[str, int]:
        match = re.match(r"[A-Za-z]+|.", self.s[pos:])
        if not match:
            raise self.fail("bad-latex", "a lone backslash")
        name, pos = match.group(0), pos + len(match.group(0))
        if name in ("frac", "dfrac", "tfrac"):
            num, pos = self.argument(pos)
            den, pos = self.argument(pos)
            return f"({_wrap(num)}/{_wrap(den)})", pos
        if name == "sqrt":
            if pos < len(self.s) and self.s[pos] == "[":
                index, pos = self.group_until(pos + 1, "]")
                radicand, pos = self.argument(pos)
                return f"({_wrap(radicand)}^(1/{_wrap(index)}))", pos
            radicand, pos = self.argument(pos)
            return f"sqrt({_unwrap(radicand)})", pos
        if name in ("left", "right"):
            raise self.fail("bad-latex", f"\\{name} without a delimiter")
        if name == "log":
            if self.s.startswith("_", pos):
                base, pos = self.argument(pos + 1)
                arg, pos = self.argument(pos)
                return f"log({_unwrap(arg)}, {_unwrap(base)})", pos
            arg, pos = self.argument(pos)
            return f"log({_unwrap(arg)}, 10)", pos  # a bare log is base ten in school algebra; sympy's log is ln
        if name == "operatorname":
            return self.argument(pos)
        if name in _UNSUPPORTED:
            raise self.fail(_UNSUPPORTED[name], f"\\{name}")
        if name in _SPACES:
            return " ", pos
        if name in ("{", "}", "(", ")"):
            return {"{": "(", "}": ")"}.get(name, name), pos
        if name in _COMMANDS:
            return f" {_COMMANDS[name]} " if name in GREEK else _COMMANDS[name], pos
        raise self.fail("bad-latex", f"the command \\{name}")
