"""Answer checking: is a student's answer right? Pure Python + sympy, no database.

Every kind of item is checked here, by the tutor when a student answers and by faculty's
"try it as a student" preview, so the two can never disagree.

Answers are untrusted and of any size, so the maths is bounded twice. First, cheap limits on the text before
anything parses it (length, digits, exponents, nesting, towers of powers, factorials; Unicode look-alikes are
mapped to what they look like or refused). Then sympy runs in a worker process of `inference.sandbox`, which is
killed past its time or memory budget: no answer can hold the caller's interpreter. An answer over either limit
is not an error the student must fix before it counts: it comes back `unchecked`, to be stored and counted
neither way. Multiple choice, short text and plain numbers are compared here, in the caller: their cost is
linear in a text of bounded length.

`CheckResult.normalized` is the answer as understood, as TeX for KaTeX (math mode, no delimiters): `7 x^{6}`,
`y = 3 x - 1`, `0.25`, `1.5 \\times 10^{20}`, `\\text{undefined}`; text answers as `\\text{...}`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from tokenize import TokenError
from typing import Any

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from inference import sandbox

sandbox.preload("sympy", "courses.checking", "courses.item_templates", "inference.verify")
sandbox.warm_up("courses.checking:warm_up")

OVER_BUDGET_MESSAGE = "That expression is too large to check; try a simpler form."
RESTATED_MESSAGE = ("That is the expression the question gives you, written the same way: the question asks you to "
                    "rewrite it. Type your result.")
BUSY_MESSAGE = "The checker is busy for a moment; please send your answer again."
UNDEFINED_FEEDBACK = "That expression is undefined (it divides by zero), so it cannot be the answer."
CHECK_TIMEOUT_S = 3.0  # one answer's sympy work, in its worker; past it the answer is unchecked

# Cheap limits on the text, before any parser sees it. Answers to school and university exercises stay far
# inside them; what lies beyond is where sympy's cost explodes.
MAX_ANSWER_CHARS = 300
MAX_DIGITS = 60  # one run of digits
MAX_FLOAT_EXPONENT = 308  # 1e308 is the largest float; 1e999999 made sympy print a million digits
MAX_NESTING = 15  # parentheses inside parentheses
MAX_POWERS = 15  # ^ or ** in one answer
MAX_FACTORIAL = 1000  # n! for a literal n
MAX_EXPONENT = 1000  # a numeric exponent, in the parsed tree: 9^9^9 would keep a worker busy for hours
MAX_SUM_EXPONENT = 40  # ... of anything but a number or a letter: (x+1)^40 is a long binomial exercise already
MAX_INTEGER = 10**15  # a literal integer, in the parsed tree
MAX_RESULT_BITS = 1000  # a number the evaluated answer holds (~300 digits)
MAX_TEXT_CHARS = 5000  # a multiple-choice or short-text answer (compared as text, never parsed)

_TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)
_SAFE_EXPR = re.compile(r"^[A-Za-z0-9_\s+\-*/^().,=<>!|]*$")
_NAMES = {name: getattr(sympy, name) for name in (
    "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "exp", "log", "ln", "sqrt", "pi", "E", "Abs", "oo",
)}
_NAMES["e"] = sympy.E
_PARSER_NAMES = {name: getattr(sympy, name) for name in ("Integer", "Float", "Rational", "Symbol", "Function",
                                                          "Add", "Mul", "Pow", "factorial", "factorial2")}
_BAD_DOT = re.compile(r"(?<![0-9])\.|\.(?![0-9])")  # a dot is only ever a decimal point


class TooLarge(sandbox.OverBudget):
    """Refused by a limit on its size before or while parsing: the same outcome as running over budget."""

    def __init__(self, message: str = OVER_BUDGET_MESSAGE) -> None:
        super().__init__("size", message)


@dataclass(frozen=True)
class CheckResult:
    correct: bool
    normalized: str  # the answer as understood, TeX for KaTeX (see the module's docstring); "" when unchecked
    feedback: str = ""  # misconception feedback matched to this wrong answer, or why the answer was not checked
    error: str = ""  # the answer could not be read (e.g. bad syntax); never counted as an attempt
    unchecked: bool = False  # over the checking budget: stored, counted neither right nor wrong


# --- reading the text, before any parser ------------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_LOOKALIKES = {  # what people paste from documents and phone keyboards, read as what it looks like
    "−": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "×": "*", "·": "*", "⋅": "*", "∙": "*",
    "÷": "/", "∕": "/", "π": "pi", "√": "sqrt", "∞": "oo", "\\cdot": "*", "\\times": "*",
}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_THOUSANDS = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,]|\.\d)")
_SCIENTIFIC = re.compile(r"(?<=[0-9.])[eE]([+-]?\d+)")
_DIGIT_RUN = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")
_TOWER = re.compile(r"\^[\s(]*[\w.]+[\s)]*\^[\s(]*[\w.]+[\s)]*\^")
_FACTORIAL_OF = re.compile(r"(\d+)\s*!|factorial\s*\(\s*(\d+)")
# (10!)! or factorial(factorial(9)): the inner one is evaluated while parsing, the outer is then astronomical
_NESTED_FACTORIAL = re.compile(r"!\s*\)+\s*!|factorial\s*\([^)]*(?:factorial|!)")


def plain_text(answer: str) -> str:
    """The answer with Unicode look-alikes as plain keyboard text: `x²` -> `x^2`, `ｘ` -> `x`, `−` -> `-`.
    Raises ValueError naming a character that is still not plain text (a Cyrillic `х` is not an x)."""
    text = answer.translate(_INVISIBLE)
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^(" + m.group(0).translate(_SUPERSCRIPTS) + ")", text)
    for fancy, plain in _LOOKALIKES.items():
        text = text.replace(fancy, plain)
    text = unicodedata.normalize("NFKC", text)  # fullwidth letters and digits, non-breaking spaces, ligatures
    for ch in text:
        if not ch.isascii():
            name = unicodedata.name(ch, "an unknown character").lower()
            raise ValueError(f"The character {ch!r} ({name}) is not one the checker reads: type the answer with "
                             "plain letters and digits.")
    return text.strip()


def _decimal_commas(text: str, decimal_comma: bool) -> str:
    if decimal_comma:
        return _DECIMAL_COMMA.sub(".", text)
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)  # 12,500 is twelve thousand five hundred
    for found in _DECIMAL_COMMA.finditer(text):
        if not _inside_call(text, found.start()):  # log(8,2) is log of 8 to base 2
            number = re.search(r"[\d,]*$", text[:found.start()]).group(0) + "," + \
                re.match(r"\d*", text[found.end():]).group(0)
            raise ValueError(f"Use a point for decimals: type {number.replace(',', '.')} instead of {number}.")
    return text


def _inside_call(text: str, at: int) -> bool:
    depth = 0
    for i in range(at - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth < 0:
            return i > 0 and text[i - 1].isalpha()
    return False


def _refuse_too_large_text(text: str) -> None:
    """Limits checked on the text alone, in linear time: past them the answer is not parsed at all."""
    if len(text) > MAX_ANSWER_CHARS or _DIGIT_RUN.search(text):
        raise TooLarge()
    if any(abs(int(e)) > MAX_FLOAT_EXPONENT for e in _SCIENTIFIC.findall(text)):
        raise TooLarge()
    depth = deepest = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    powers = text.replace("**", "^")
    if deepest > MAX_NESTING or powers.count("^") > MAX_POWERS or _TOWER.search(powers):
        raise TooLarge()
    if text.count("!") + text.count("factorial") > 3 or _NESTED_FACTORIAL.search(text) or any(
            int(a or b) > MAX_FACTORIAL for a, b in _FACTORIAL_OF.findall(text)):
        raise TooLarge()


def _prepare(answer: str, decimal_comma: bool) -> str:
    """What the parser will read; raises TooLarge, or ValueError with what to type instead."""
    if len(answer) > 4 * MAX_ANSWER_CHARS:  # before any other work: a 100k-character answer costs nothing more
        raise TooLarge()
    text = plain_text(answer)
    _refuse_too_large_text(text)
    return _decimal_commas(text, decimal_comma)


# --- parsing and comparing, in a sandbox worker ----------------------------------------------------------

def parse_key(text: str, variables: list[str] | None = None) -> None:
    """Check an author's or an importer's key for a symbolic item: one expression, or one equation whose sides are
    expressions (the checker then compares answers as equations). Raises ValueError with a readable reason."""
    sides = _sides(text)
    for side in sides if sides is not None else (text,):
        if not isinstance(parse_expression(side, variables), sympy.Expr):
            raise ValueError(f"{side!r} reads as logic, not as an expression")


def parse_expression(text: str, variables: list[str] | None = None) -> sympy.Expr:
    """Parse a student's or author's expression. Raises ValueError with a readable reason (TooLarge, a
    ValueError, past the limits or the sandbox's budget).

    Untrusted input: sympy's parser evaluates Python, so the text may only use numbers, operators, declared
    variables and the whitelisted functions above. No builtins are reachable, no attribute access (a dot is a
    decimal point), and huge numbers are refused before anything is computed. Runs in a sandbox worker."""
    if not sandbox.in_worker():
        return sandbox.run(parse_expression, text, variables, timeout_s=CHECK_TIMEOUT_S)
    text, local, global_dict = _parser_input(text, variables)
    try:
        raw = parse_expr(text, local_dict=local, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=False)
        _refuse_huge(raw)
        expr = parse_expr(text, local_dict=local, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=True)
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError,
            sympy.SympifyError, TokenError) as exc:
        if isinstance(exc, TooLarge):
            raise
        raise ValueError(f"could not read {text!r}") from exc
    if not isinstance(expr, sympy.Expr):  # e.g. "Not a parabola" or "x | y" parse as logic, not an expression
        raise ValueError(f"could not read {text!r} as an expression")
    if any(max(abs(r.p), r.q).bit_length() > MAX_RESULT_BITS for r in expr.atoms(sympy.Rational)):
        raise TooLarge()  # 999^999*998^998: small powers, a product of thousands of digits
    return expr


def _parser_input(text: str, variables: list[str] | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The text and the only names sympy's parser may see; raises ValueError (or TooLarge) for text it must not read."""
    text = plain_text(text.strip())
    if not text:
        raise ValueError("empty expression")
    _refuse_too_large_text(text)
    if not _SAFE_EXPR.match(text) or "__" in text or _BAD_DOT.search(text):
        raise ValueError("use numbers, letters, + - * / ^ and parentheses only")
    local = dict(_NAMES)
    for v in variables or []:
        local[v] = sympy.Symbol(v)
    return text, local, {"__builtins__": {}, **_PARSER_NAMES}


def _written_form(text: str, variables: list[str] | None) -> str | None:
    """An expression as written, not as evaluated: sympy's unevaluated tree, in which spaces, `*` and redundant
    parentheses do not count and the order of terms does. None for text that does not read as one expression.
    In a sandbox worker only (it parses)."""
    try:
        text, local, global_dict = _parser_input(text, variables)
        raw = parse_expr(text, local_dict=local, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=False)
        _refuse_huge(raw)  # TooLarge is a ValueError: a form too large to compare is no form
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError, sympy.SympifyError,
            TokenError):
        return None
    return sympy.srepr(raw) if isinstance(raw, sympy.Expr) else None


def _restates(text: str, shown: list[str], written: list[str], key: Any, kind: str,
              variables: list[str] | None) -> bool:
    """Whether a right answer is one of the question's own expressions copied back while the key is written
    otherwise: "Factor $9x^2-25$" answered "9x^2-25", "Convert $3.547\\times10^{14}$ to standard notation" answered
    "3.547*10^14" (206 of College Algebra's 973 numeric and symbolic questions took such an answer as right).
    `written`: the key as the course writes it, where known; a number's written form is otherwise unknown, and a
    number the question shows may well be its answer, so that is never taken for a copy."""
    answer = _written_form(text, variables)
    if answer is None or answer not in {_written_form(s, variables) for s in shown}:
        return False
    forms = list(written) or ([str(key)] if kind != "numeric" else [])
    forms += [f.split("=")[1] for f in forms if f.count("=") == 1]  # "x=5": 5 is the key as written too
    if _PLAIN_NUMBER.fullmatch(text.strip()) and any(_PLAIN_NUMBER.fullmatch(f.strip()) for f in forms):
        return False  # 0.5 for a key written 0.50: the same notation; only another one (3.5*10^4) is a rewrite
    return bool(forms) and answer not in {_written_form(f, variables) for f in forms}


def _refuse_huge(expr: object) -> None:
    if isinstance(expr, tuple):
        for part in expr:
            _refuse_huge(part)
        return
    if not isinstance(expr, sympy.Basic):
        return
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and node.exp.is_number:
            try:
                big = abs(float(node.exp)) > MAX_EXPONENT
            except (TypeError, ValueError, OverflowError):
                big = True
            if big or (abs(node.exp) > MAX_SUM_EXPONENT and not (node.base.is_Atom or node.base.is_number)):
                raise TooLarge()  # (x+1)^999: simplify expands it to a thousand terms, then multiplies them
        if isinstance(node, sympy.Integer) and abs(int(node)) > MAX_INTEGER:
            raise TooLarge()
        if isinstance(node, sympy.Float) and node != 0 and abs(node._mpf_[2] + node._mpf_[3]) > 4 * MAX_FLOAT_EXPONENT:
            raise TooLarge()  # the binary exponent (mantissa bits included) of a float past 1e308
        if isinstance(node, (sympy.factorial, sympy.factorial2)) and not (
                node.args[0].is_Integer and abs(int(node.args[0])) <= MAX_FACTORIAL) and node.args[0].is_number:
            raise TooLarge()


def symbolically_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equivalent as functions: simplify the difference, then confirm numerically at random points."""
    if not sandbox.in_worker():
        return sandbox.run(symbolically_equal, a, b, timeout_s=CHECK_TIMEOUT_S)
    try:
        if sympy.simplify(a - b) == 0:
            return True
    except (TypeError, ValueError, AttributeError):
        pass
    symbols = sorted((a.free_symbols | b.free_symbols), key=str)
    # Positive points only: students write x^(2/3) as (x^2)^(1/3) or sqrt(x^3) as x^(3/2), equal for x > 0 but on
    # different complex branches below 0. A point where either side is complex or infinite says nothing.
    points = [0.37, 1.21, 2.9, 0.83, 1.7, 0.55]
    agree = 0
    for i, p in enumerate(points):
        subs = {s: p + 0.13 * j + 0.07 * i for j, s in enumerate(symbols)}
        try:
            va, vb = complex(a.evalf(subs=subs)), complex(b.evalf(subs=subs))
        except (TypeError, ValueError):
            continue
        if not all(math.isfinite(v.real) and math.isfinite(v.imag) for v in (va, vb)):
            continue
        if abs(va.imag) > 1e-12 * max(1.0, abs(va)) or abs(vb.imag) > 1e-12 * max(1.0, abs(vb)):
            continue
        if abs(va - vb) > 1e-8 * max(1.0, abs(va), abs(vb)):
            return False
        agree += 1
    return agree >= 3


def _equations_equal(a: tuple[sympy.Expr, sympy.Expr], b: tuple[sympy.Expr, sympy.Expr]) -> bool:
    """`lhs = rhs` forms of the same equation: (la - ra) is a nonzero constant multiple of (lb - rb)."""
    da, db = a[0] - a[1], b[0] - b[1]
    if db == 0 or da == 0:
        return bool(da == db)
    try:
        ratio = sympy.simplify(da / db)
        if ratio.is_number:
            return bool(ratio != 0 and ratio.is_finite)
    except (TypeError, ValueError, AttributeError):
        pass
    symbols = sorted(da.free_symbols | db.free_symbols, key=str)
    ratios = []
    for i, p in enumerate([0.37, 1.21, 2.9, 0.83, 1.7, 0.55]):
        subs = {s: p + 0.13 * j + 0.07 * i for j, s in enumerate(symbols)}
        try:
            va, vb = complex(da.evalf(subs=subs)), complex(db.evalf(subs=subs))
        except (TypeError, ValueError):
            continue
        if abs(vb) < 1e-12 or not all(math.isfinite(v) for v in (va.real, va.imag, vb.real, vb.imag)):
            continue
        ratios.append(va / vb)
    return len(ratios) >= 3 and abs(ratios[0]) > 1e-12 and all(
        abs(r - ratios[0]) <= 1e-8 * max(1.0, abs(ratios[0])) for r in ratios)


_DEFINES = re.compile(r"^\s*([A-Za-z]\w*)\s*(?:\(\s*([A-Za-z]\w*)\s*\))?\s*$")  # y  or  f(x)


def _sides(text: str) -> tuple[str, str] | None:
    if "=" not in text:
        return None
    if text.count("=") > 1 or re.search(r"[<>]|==|!=", text):
        raise ValueError("Give one expression or one equation (a single =).")
    left, right = text.split("=")
    if not left.strip() or not right.strip():
        raise ValueError("Something is missing on one side of the =.")
    return left.strip(), right.strip()


def _named(left: str, right: str, variables: list[str] | None) -> bool:
    """`y = 3x - 1` or `f(x) = ...`: the left side only names what the right side is."""
    found = _DEFINES.match(left)
    if not found or found.group(1) in _NAMES:
        return False
    return found.group(1) not in re.findall(r"[A-Za-z_]\w*", right) or bool(found.group(2))


def _tex(expr: sympy.Expr) -> str:
    if expr.has(sympy.zoo, sympy.nan):
        return r"\text{undefined}"
    if isinstance(expr, sympy.Float):
        return _tex_number(float(expr))
    return sympy.latex(expr)


def _tex_number(value: float) -> str:
    if not math.isfinite(value):
        return r"\text{undefined}" if math.isnan(value) else (r"\infty" if value > 0 else r"-\infty")
    if value == 0 or 1e-4 <= abs(value) < 1e15:
        return f"{value:.12g}" if "e" not in f"{value:.12g}" else f"{value:.12f}".rstrip("0").rstrip(".")
    mantissa, exponent = f"{value:.10e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


_NUMBER_THEN_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%$°][A-Za-z0-9%$°/^*.\s-]*)$")


_UNITS = frozenset({
    "m", "s", "g", "kg", "mg", "cm", "mm", "km", "h", "hr", "hrs", "min", "N", "J", "W", "V", "A", "Hz", "L", "l",
    "ml", "mL", "lb", "lbs", "oz", "ft", "yd", "mi", "mph", "kmh", "Pa", "K", "C", "F", "mol", "cal", "kcal",
})


def _unit_message(text: str, variables: list[str] | None) -> str | None:
    """'Give the number only' when the answer is a number followed by a unit (`7 m/s`, `12 cm^2`, `5 apples`,
    `25%`): a known unit symbol, or a word that is neither a variable here nor one of the checker's names."""
    found = _NUMBER_THEN_UNIT.match(text)
    if not found:
        return None
    words = re.findall(r"[A-Za-z]+", found.group(2))
    if any(w in _NAMES or w in (variables or []) for w in words):
        return None  # 2 pi, 3x: maths
    if not words or all(w in _UNITS or len(w) >= 3 for w in words):
        return f"Give the number only, without units: type {found.group(1)}."
    return None


def _check_maths(kind: str, key: Any, text: str, tolerance: float | None, units: str | None,
                 variables: list[str] | None, feedback: dict[str, str]) -> CheckResult:
    """The sympy part of `check_answer`, in a sandbox worker. `text` has passed `_prepare`."""
    try:
        _refuse_too_large_text(text)
        key_sides = _sides(str(key)) if kind != "numeric" else None
        sides = _sides(text)
        key_named = key_sides is not None and _named(*key_sides, variables)
        named = sides is not None and _named(*sides, variables)
        if (key_sides is not None and not key_named) or (key_named and sides is not None and not named):
            # compared as equations: the key is one (x^2/9 - y^2/16 = 1), or the answer rearranges a named key
            # (2x - y + 1 = 0 for y = 2x + 1)
            if sides is None:
                raise ValueError("Give an equation (with =), as the question asks.")
            assert key_sides is not None
            given = (parse_expression(sides[0], variables), parse_expression(sides[1], variables))
            expected = (parse_expression(key_sides[0], variables), parse_expression(key_sides[1], variables))
            correct = _equations_equal(given, expected)
            normalized = f"{_tex(given[0])} = {_tex(given[1])}"
        else:
            if key_sides is not None:
                key = key_sides[1]  # "y = 2x + 1" as a key: the answer may give the right side alone
            prefix = ""
            if sides is not None:
                if not named:
                    raise ValueError("Give the answer as one expression, not an equation.")
                prefix, text = sides[0], sides[1]
            if kind == "numeric":
                correct, normalized = _numeric(text, key, tolerance, units, variables)
            else:
                given = _parsed(text, variables)
                correct = not given.has(sympy.zoo, sympy.nan) and symbolically_equal(
                    given, parse_expression(str(key), variables))
                normalized = _tex(given)
            if prefix:
                normalized = f"{_tex_name(prefix)} = {normalized}"
    except (TooLarge, OverflowError):  # OverflowError: a number past what mpmath and floats represent
        return CheckResult(False, "", feedback=OVER_BUDGET_MESSAGE, unchecked=True)
    except ValueError as exc:
        return CheckResult(False, _tex_text(text), error=str(exc))
    if normalized.endswith(r"\text{undefined}"):
        return CheckResult(False, normalized, feedback=UNDEFINED_FEEDBACK)
    note = "" if correct else _match_feedback(kind, text, feedback, variables)
    return CheckResult(correct, normalized, feedback=note)


def _tex_name(left: str) -> str:
    """`y`, `f(x)`, `area`: the name a `name = ...` answer gives its right side (it matched `_DEFINES`)."""
    name, _, argument = left.replace(" ", "").partition("(")
    tex = name if len(name) == 1 else rf"\mathit{{{name}}}"
    return f"{tex}({argument}" if argument else tex


def _parsed(text: str, variables: list[str] | None) -> sympy.Expr:
    try:
        return parse_expression(text, variables)
    except TooLarge:
        raise
    except ValueError:
        unit = _unit_message(text, variables)
        raise ValueError(unit) if unit else ValueError(f"could not read {text!r}") from None


def _numeric(text: str, key: Any, tolerance: float | None, units: str | None,
             variables: list[str] | None) -> tuple[bool, str]:
    value_text = _strip_units(text, units)
    expr = _parsed(value_text, variables)
    if expr.has(sympy.zoo, sympy.nan):
        return False, r"\text{undefined}"
    if expr.free_symbols:
        raise ValueError(_unit_message(value_text, variables)
                         or "Give a number here, not an expression with variables.")
    try:
        value = float(expr.evalf())
    except (TypeError, ValueError):
        raise ValueError("Give a real number here.") from None
    if not math.isfinite(value):
        raise TooLarge()
    return _within(value, key, tolerance), _tex_number(value)


def _within(value: float, key: Any, tolerance: float | None) -> bool:
    target = float(key)
    if not math.isfinite(target):
        return False  # an infinite key is within an infinite tolerance of everything
    tol = tolerance if tolerance is not None else 1e-9 + 1e-6 * abs(target)
    return abs(value - target) <= tol


def _strip_units(text: str, units: str | None) -> str:
    if units:
        squeezed, unit = " ".join(text.split()), " ".join(units.split())
        if squeezed.endswith(unit) and squeezed[: -len(unit)].strip():
            return squeezed[: -len(unit)].strip()
    return text


def warm_up() -> None:
    """A few checks of each shape, run by every sandbox worker before its first answer (`sandbox.warm_up`)."""
    for kind, key, text in (("symbolic", "3*x**2", "3x^2"), ("symbolic", "2*x + 1", "1 + 2x"),
                            ("symbolic", "x*sin(x)", "sin(x) x"), ("numeric", 0.5, "1/2"),
                            ("symbolic", "y = 2*x", "2x - y = 0")):
        _check_maths(kind, key, text, None, None, ["x"], {})


# --- the entry point -------------------------------------------------------------------------------------

CHECK_MEMO_SIZE = 4096  # graded answers remembered per process (each a few hundred bytes with its key)
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][-+]?\d{1,3})?")


def check_answer(kind: str, key: Any, answer: str, *, tolerance: float | None = None, units: str | None = None,
                 variables: list[str] | None = None, accept: list[str] | None = None,
                 feedback: dict[str, str] | None = None, decimal_comma: bool = False,
                 shown: Sequence[str] = (), written: Sequence[str] = ()) -> CheckResult:
    """Grade `answer` against `key` for an item of `kind`. See `courses.format.ItemSpec` for the fields.

    `decimal_comma`: the course writes 0,25 for a quarter (a comma between digits is a decimal point); by
    default such an answer gets a message saying what to type, and 12,500 is twelve thousand five hundred.

    `shown`: the expressions the question itself shows (checker syntax); `written`: the key as the course writes it.
    A right answer that copies one of `shown` back, where the key is written otherwise, is not taken: it gets
    `RESTATED_MESSAGE` and is not counted (see `_restates`).

    Memoised per process (LRU, `CHECK_MEMO_SIZE`): the result depends only on these arguments, many students
    send the same answers, and sympy's simplification is the costliest part of an answer. The memo is
    keyed on every argument as JSON (a template item's key and variables are its variant's, so the seed is in
    them); the result is a frozen dataclass, shared safely. Arguments that are not JSON are checked uncached."""
    answer = (answer or "").strip()
    if not answer:
        return CheckResult(False, "", error="Please enter an answer.")
    if kind in ("multiple_choice", "short_text"):
        return _check_text(kind, key, answer, accept or [], feedback or {})
    if kind not in ("numeric", "symbolic", "template"):
        raise ValueError(f"unknown item kind {kind!r}")
    try:
        text = _prepare(answer, decimal_comma)
    except TooLarge:
        return CheckResult(False, "", feedback=OVER_BUDGET_MESSAGE, unchecked=True)
    except ValueError as exc:
        return CheckResult(False, _tex_text(answer[:MAX_ANSWER_CHARS]), error=str(exc))
    # A plain number needs no parser, so no worker: unless the question shows that very number (a copy, maybe)
    if kind == "numeric" and _PLAIN_NUMBER.fullmatch(text) and text.strip() not in shown:
        value = float(text)
        return CheckResult(_within(value, key, tolerance), _tex_number(value))
    try:
        arguments = json.dumps([kind, key, text, tolerance, units, variables, feedback, list(shown), list(written)])
    except (TypeError, ValueError):  # e.g. a key that is a sympy expression: nothing to key the memo on
        arguments = None
    if arguments is not None and _overran_recently(arguments):
        return CheckResult(False, "", feedback=OVER_BUDGET_MESSAGE, unchecked=True)
    try:
        if arguments is None:
            return _check_bounded(kind, key, text, tolerance, units, variables, feedback or {}, list(shown),
                                  list(written))
        return _check_memoised(arguments)
    except sandbox.OverBudget:
        # Past the time or memory budget: raised, so not in the memo, since a busy machine can make a fair answer
        # overrun once; remembered for OVERRUN_MEMO_S only (the same answer again, say the one the session socket
        # checked ahead of recording it, is not run to the limit twice). An answer over the limits on its size is
        # a result, memoised: it will not fit next time either.
        if arguments is not None:
            _overran(arguments)
        return CheckResult(False, "", feedback=OVER_BUDGET_MESSAGE, unchecked=True)
    except sandbox.Busy:  # never remembered: the same answer sent again is checked then
        return CheckResult(False, _tex_text(text), error=BUSY_MESSAGE)


OVERRUN_MEMO_S = 60.0
_overruns: dict[str, float] = {}  # arguments -> when their check overran (insertion order: oldest first)
_overruns_lock = threading.Lock()


def _overran(arguments: str) -> None:
    with _overruns_lock:
        _overruns.pop(arguments, None)
        _overruns[arguments] = time.monotonic()
        while len(_overruns) > CHECK_MEMO_SIZE:
            del _overruns[next(iter(_overruns))]


def _overran_recently(arguments: str) -> bool:
    with _overruns_lock:
        when = _overruns.get(arguments)
        return when is not None and time.monotonic() - when < OVERRUN_MEMO_S


@functools.lru_cache(maxsize=CHECK_MEMO_SIZE)
def _check_memoised(arguments: str) -> CheckResult:
    kind, key, text, tolerance, units, variables, feedback, shown, written = json.loads(arguments)
    return _check_bounded(kind, key, text, tolerance, units, variables, feedback or {}, shown, written)


def _check_bounded(kind: str, key: Any, text: str, tolerance: float | None, units: str | None,
                   variables: list[str] | None, feedback: dict[str, str], shown: list[str],
                   written: list[str]) -> CheckResult:
    return sandbox.run(_check_and_compare, kind, key, text, tolerance, units, variables, feedback, shown, written,
                       timeout_s=CHECK_TIMEOUT_S)


def _check_and_compare(kind: str, key: Any, text: str, tolerance: float | None, units: str | None,
                       variables: list[str] | None, feedback: dict[str, str], shown: list[str],
                       written: list[str]) -> CheckResult:
    """`_check_maths`, then (a right answer, a question that shows expressions) `_restates`: in one worker call."""
    result = _check_maths(kind, key, text, tolerance, units, variables, feedback)
    if result.correct and shown and _restates(text, shown, written, key, kind, variables):
        return CheckResult(False, result.normalized, error=RESTATED_MESSAGE)
    return result


def _check_text(kind: str, key: Any, answer: str, accept: list[str], feedback: dict[str, str]) -> CheckResult:
    if len(answer) > MAX_TEXT_CHARS:
        return CheckResult(False, "", feedback=OVER_BUDGET_MESSAGE, unchecked=True)
    if kind == "multiple_choice":
        correct = answer == str(key)
        normalized = _tex_text(answer)
    else:
        norm = _normalize_text(answer)
        correct = norm in {_normalize_text(v) for v in [str(key), *accept]}
        normalized = _tex_text(answer)
    note = "" if correct else feedback.get(answer, "")
    return CheckResult(correct, normalized, feedback=note)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}


def _tex_text(text: str) -> str:
    r"""Text as TeX that typesets it as written: `\text{...}`, every special character escaped."""
    return r"\text{" + "".join(_TEX_ESCAPES.get(ch, ch) for ch in text) + "}"


def _normalize_text(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def _match_feedback(kind: str, answer: str, feedback: dict[str, str], variables: list[str] | None) -> str:
    if answer in feedback:
        return feedback[answer]
    if kind in ("symbolic", "template", "numeric"):
        for wrong, note in feedback.items():
            try:
                if symbolically_equal(parse_expression(answer, variables), parse_expression(wrong, variables)):
                    return note
            except ValueError:
                continue
    return ""
