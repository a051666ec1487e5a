"""Answer checking: is a student's answer right? Pure Python + sympy, no database.

Every kind of item is checked here, by the tutor when a student answers and by faculty's
"try it as a student" preview, so the two can never disagree.
"""

from __future__ import annotations

import functools
import json
import math
import re
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

_TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)
_SAFE_EXPR = re.compile(r"^[\w\s+\-*/^().,=<>!|]*$")
_NAMES = {name: getattr(sympy, name) for name in (
    "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "exp", "log", "ln", "sqrt", "pi", "E", "Abs", "oo",
)}
_NAMES["e"] = sympy.E


@dataclass(frozen=True)
class CheckResult:
    correct: bool
    normalized: str  # the answer as understood, shown back to the student
    feedback: str = ""  # misconception feedback matched to this wrong answer, if authored
    error: str = ""  # the answer could not be read (e.g. bad syntax); never counted as an attempt


_PARSER_NAMES = {name: getattr(sympy, name) for name in ("Integer", "Float", "Rational", "Symbol", "Function",
                                                          "Add", "Mul", "Pow")}
_BAD_DOT = re.compile(r"(?<![0-9])\.|\.(?![0-9])")  # a dot is only ever a decimal point
_MAX_EXPONENT = 1000  # 9^9^9 would keep a worker busy for hours


def parse_expression(text: str, variables: list[str] | None = None) -> sympy.Expr:
    """Parse a student's or author's expression. Raises ValueError with a readable reason.

    Untrusted input: sympy's parser evaluates Python, so the text may only use numbers, operators, declared
    variables and the whitelisted functions above. No builtins are reachable, no attribute access (a dot is a
    decimal point), and huge powers are refused before anything is computed.
    """
    text = text.strip().replace("\\cdot", "*").replace("·", "*").replace("−", "-")
    if not text:
        raise ValueError("empty expression")
    if len(text) > 300 or not _SAFE_EXPR.match(text) or "__" in text or _BAD_DOT.search(text):
        raise ValueError("use numbers, letters, + - * / ^ and parentheses only")
    local = dict(_NAMES)
    for v in variables or []:
        local[v] = sympy.Symbol(v)
    global_dict = {"__builtins__": {}, **_PARSER_NAMES}
    try:
        raw = parse_expr(text, local_dict=local, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=False)
        _refuse_huge(raw, text)
        expr = parse_expr(text, local_dict=local, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=True)
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError,
            sympy.SympifyError, TokenError) as exc:
        raise ValueError(f"could not read {text!r}") from exc
    if not isinstance(expr, sympy.Expr):  # e.g. "Not a parabola" or "x | y" parse as logic, not an expression
        raise ValueError(f"could not read {text!r} as an expression")
    return expr


def _refuse_huge(expr: object, text: str) -> None:
    if not isinstance(expr, sympy.Basic):
        return
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and node.exp.is_number:
            try:
                big = abs(float(node.exp)) > _MAX_EXPONENT
            except (TypeError, ValueError, OverflowError):
                big = True
            if big:
                raise ValueError(f"the powers in {text!r} are too large to check")
        if isinstance(node, sympy.Integer) and abs(int(node)) > 10**15:
            raise ValueError(f"a number in {text!r} is too large to check")


def symbolically_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equivalent as functions: simplify the difference, then confirm numerically at random points."""
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


def _number(text: str) -> float:
    cleaned = text.strip().replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        expr = parse_expression(cleaned)
        if expr.free_symbols:
            raise ValueError("expected a number, not an expression with variables") from None
        return float(expr.evalf())


def _strip_units(text: str, units: str | None) -> str:
    if units and text.strip().endswith(units):
        return text.strip()[: -len(units)]
    return text


CHECK_MEMO_SIZE = 4096  # graded answers remembered per process (each a few hundred bytes with its key)


def check_answer(kind: str, key: Any, answer: str, *, tolerance: float | None = None, units: str | None = None,
                 variables: list[str] | None = None, accept: list[str] | None = None,
                 feedback: dict[str, str] | None = None) -> CheckResult:
    """Grade `answer` against `key` for an item of `kind`. See `courses.format.ItemSpec` for the fields.

    Memoised per process (LRU, `CHECK_MEMO_SIZE`): the result depends only on these arguments, many students
    send the same answers, and sympy's simplification was 12-22% of the server's CPU under load. The memo is
    keyed on every argument as JSON (a template item's key and variables are its variant's, so the seed is in
    them); the result is a frozen dataclass, shared safely. Arguments that are not JSON are checked uncached."""
    try:
        arguments = json.dumps([kind, key, answer, tolerance, units, variables, accept, feedback])
    except (TypeError, ValueError):  # e.g. a key that is a sympy expression: nothing to key the memo on
        return _check(kind, key, answer, tolerance=tolerance, units=units, variables=variables, accept=accept,
                      feedback=feedback)
    return _check_memoised(arguments)


@functools.lru_cache(maxsize=CHECK_MEMO_SIZE)
def _check_memoised(arguments: str) -> CheckResult:
    kind, key, answer, tolerance, units, variables, accept, feedback = json.loads(arguments)
    return _check(kind, key, answer, tolerance=tolerance, units=units, variables=variables, accept=accept,
                  feedback=feedback)


def _check(kind: str, key: Any, answer: str, *, tolerance: float | None, units: str | None,
           variables: list[str] | None, accept: list[str] | None, feedback: dict[str, str] | None) -> CheckResult:
    answer = (answer or "").strip()
    if not answer:
        return CheckResult(False, "", error="Please enter an answer.")
    feedback = feedback or {}
    try:
        if kind == "numeric":
            value = _number(_strip_units(answer, units))
            target = float(key)
            tol = tolerance if tolerance is not None else 1e-9 + 1e-6 * abs(target)
            correct = abs(value - target) <= tol
            normalized = f"{value:g}"
        elif kind == "multiple_choice":
            correct = answer == str(key)
            normalized = answer
        elif kind in ("symbolic", "template"):
            given = parse_expression(answer, variables)
            correct = symbolically_equal(given, parse_expression(str(key), variables))
            normalized = sympy.sstr(given)
        elif kind == "short_text":
            norm = _normalize_text(answer)
            correct = norm in {_normalize_text(v) for v in [str(key), *(accept or [])]}
            normalized = answer
        else:
            raise ValueError(f"unknown item kind {kind!r}")
    except ValueError as exc:
        if kind not in ("numeric", "symbolic", "template"):
            raise
        return CheckResult(False, answer, error=str(exc))
    note = "" if correct else _match_feedback(kind, answer, feedback, variables)
    return CheckResult(correct, normalized, feedback=note)


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
