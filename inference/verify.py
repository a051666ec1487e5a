"""Independent verification of generated items: no answer key reaches a student on a model's word.

A candidate is an `ItemSpec`-shaped dict (see `courses/format.py`) plus `check`: a machine-readable
sympy expression that recomputes the key from the problem, e.g. `diff(x**3, x)` for "Differentiate
x^3", `Rational(3, 4) * 12` for "What is three quarters of 12?". The verifier evaluates `check` itself
and compares it with the key; the model's key is never trusted. The outcome is one of

- "verified": the key was recomputed and agrees, and the item is well formed: may be published;
- "review":   nothing is known to be wrong, but the key could not be recomputed (free text, no `check`):
              a person decides;
- "rejected": wrong key, malformed item, or not exactly one correct option.

Model output is untrusted input: expressions are parsed from a small alphabet with a whitelist of
names (no attributes, no strings, no dunder), and huge powers/factorials are refused before sympy
evaluates anything. What passes still runs in a worker of `inference.sandbox` (`verify`,
`starting_difficulty`, `evaluate` called from outside one): an integral or a limit can take sympy minutes,
and past the budget the candidate is rejected as too large to verify.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from tokenize import TokenError
from typing import Any, Literal

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from inference import sandbox

Status = Literal["verified", "review", "rejected"]
KINDS = ("numeric", "multiple_choice", "symbolic", "short_text", "template")

_ALPHABET = re.compile(r"^[A-Za-z0-9_\s+\-*/^().,]*$")
_BAD_DOT = re.compile(r"(?<![0-9])\.|\.(?![0-9])")  # a dot is only a decimal point
# No problem needs a seven-digit literal; and sympy computes factorial(9999) even unevaluated, so refuse
# big literal arguments to the combinatorial functions before parsing.
_BIG_LITERAL = re.compile(r"\d{7,}|(factorial|binomial|gamma)\s*\([^)]*(\d{4,}|factorial|binomial|gamma)")
_MAX_DIGITS = 2000  # the largest number an expression may produce on the way
_MAX_FACTORIAL = 500
_FUNCTIONS: dict[str, Any] = {name: getattr(sympy, name) for name in (
    "diff", "integrate", "limit", "simplify", "expand", "factor", "Rational", "sqrt", "root", "sin", "cos", "tan",
    "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "pi", "E", "oo", "Abs", "binomial", "factorial",
    "gcd", "lcm", "floor", "ceiling", "summation",
)}
_FUNCTIONS["ln"] = sympy.log
_FUNCTIONS["at"] = lambda expr, var, value: sympy.sympify(expr).subs(var, value)  # at(diff(x**2, x), x, 3)
_FUNCTIONS["e"] = sympy.E
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Used by the parser's own generated code (auto_symbol, auto_number, evaluate=False), never in the text.
_PARSER_ONLY = frozenset({"Integer", "Float", "Symbol", "Function", "Add", "Mul", "Pow", "Mod"})
_PARSER_NAMES: dict[str, Any] = {name: getattr(sympy, name) for name in _PARSER_ONLY}
VERIFY_TIMEOUT_S = 10.0  # one candidate's verification (its check may integrate or take a limit)
EVALUATE_TIMEOUT_S = 5.0

sandbox.preload("sympy", "inference.verify")


class UnsafeExpression(ValueError):
    pass


def evaluate(text: str, variables: Iterable[str] = ()) -> sympy.Expr:
    """Parse and evaluate a candidate's expression with only whitelisted names. Raises ValueError (also
    `sandbox.OverBudget` past the budget)."""
    if not sandbox.in_worker():
        return sandbox.run(evaluate, text, list(variables), timeout_s=EVALUATE_TIMEOUT_S)
    text = str(text).strip()
    if not text:
        raise ValueError("empty expression")
    if len(text) > 200 or not _ALPHABET.match(text) or "__" in text or _BAD_DOT.search(text):
        raise UnsafeExpression(f"not a plain expression: {text[:60]!r}")
    if _BIG_LITERAL.search(text):
        raise UnsafeExpression(f"number too long in {text[:60]!r}")
    local: dict[str, Any] = dict(_FUNCTIONS)
    for name in variables:
        if not name.isidentifier() or name in _FUNCTIONS:
            raise ValueError(f"bad variable name {name!r}")
        local[name] = sympy.Symbol(name)
    # Every name must be a whitelisted function or a declared variable: nothing else is reachable.
    unknown = {n for n in _NAME.findall(text) if n not in local or n in _PARSER_ONLY}
    if unknown:
        raise UnsafeExpression(f"unknown names {sorted(unknown)} in {text[:60]!r}")
    # No builtins: the evaluated code can only reach the names above.
    global_dict: dict[str, Any] = {"__builtins__": {}, **_FUNCTIONS, **_PARSER_NAMES}
    try:
        # First unevaluated, to refuse 9**9**9 or factorial(10**6) before anything computes them.
        _refuse_huge(parse_expr(text, local_dict=local, global_dict=global_dict, evaluate=False,
                                transformations=standard_transformations + (convert_xor,)), text)
        expr = parse_expr(text, local_dict=local, global_dict=global_dict,
                          transformations=standard_transformations + (convert_xor,))
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError, IndexError,
            sympy.SympifyError, TokenError, NotImplementedError) as exc:
        if isinstance(exc, UnsafeExpression):
            raise
        raise ValueError(f"could not evaluate {text[:60]!r}: {type(exc).__name__}") from exc
    if isinstance(expr, (list, tuple)) and len(expr) == 1:
        expr = expr[0]
    if not isinstance(expr, sympy.Basic):
        raise ValueError(f"{text[:60]!r} is not an expression")
    unknown = expr.atoms(AppliedUndef)
    if unknown:
        raise ValueError(f"unknown function {sorted(map(str, unknown))[0]} in {text[:60]!r}")
    if expr.has(sympy.Integral, sympy.Limit, sympy.Derivative):
        raise ValueError(f"sympy could not evaluate {text[:60]!r}")
    return expr


def _digits(node: Any) -> float:
    """An upper bound on log10 |value| of a numeric subtree (0 for anything symbolic)."""
    if isinstance(node, sympy.Number):
        return math.log10(abs(float(node))) if node != 0 and math.isfinite(float(node)) else 0.0
    if isinstance(node, sympy.Pow):
        base, exponent = _digits(node.base), _digits(node.exp)
        if exponent > 4:  # an exponent above 10**4
            return math.inf if base > 0 else 0.0
        return max(base, 0.0) * 10**exponent
    if isinstance(node, sympy.Mul):
        return sum(max(_digits(a), 0.0) for a in node.args)
    if isinstance(node, sympy.Add):
        return max((_digits(a) for a in node.args), default=0.0) + 1
    if isinstance(node, (sympy.factorial, sympy.binomial, sympy.gamma)):
        n = max(_digits(a) for a in node.args)
        return math.inf if n > math.log10(_MAX_FACTORIAL) else 0.0
    return max((_digits(a) for a in node.args if isinstance(a, sympy.Basic)), default=0.0)


def _refuse_huge(tree: Any, text: str) -> None:
    roots = tree if isinstance(tree, (list, tuple)) else [tree]
    for root in roots:
        if isinstance(root, sympy.Basic) and _digits(root) > _MAX_DIGITS:
            raise UnsafeExpression(f"numbers too large to evaluate safely in {text[:60]!r}")


def equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal as functions of their free symbols: simplify the difference, else agree at sample points."""
    try:
        if sympy.simplify(a - b) == 0:
            return True
    except (TypeError, ValueError, AttributeError, NotImplementedError):
        pass
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    agree = 0
    for i, point in enumerate((0.37, 1.21, 2.9, -0.83, 0.5, 1.7)):
        subs = {s: point + 0.13 * j + 0.07 * i for j, s in enumerate(symbols)}
        try:
            va, vb = complex(a.evalf(subs=subs)), complex(b.evalf(subs=subs))
        except (TypeError, ValueError):
            continue
        if not all(math.isfinite(v) for v in (va.real, va.imag, vb.real, vb.imag)):
            continue
        if abs(va - vb) > 1e-8 * max(1.0, abs(va), abs(vb)):
            return False
        agree += 1
    return agree >= 3


@dataclass
class Verdict:
    status: Status
    reasons: list[str] = field(default_factory=list)  # "code: detail", e.g. "wrong_key: check gives 3*x**2, key is 3*x"
    recomputed: str | None = None  # the key as the verifier computed it

    @property
    def codes(self) -> list[str]:
        return [r.split(":", 1)[0] for r in self.reasons]


def _reject(code: str, detail: str) -> Verdict:
    return Verdict("rejected", [f"{code}: {detail}"])


def _review(code: str, detail: str) -> Verdict:
    return Verdict("review", [f"{code}: {detail}"])


def verify(candidate: dict[str, Any]) -> Verdict:
    """Check one candidate item. Never raises for bad content: bad content is a rejection."""
    if not sandbox.in_worker():
        try:
            return sandbox.run(verify, candidate, timeout_s=VERIFY_TIMEOUT_S)
        except sandbox.OverBudget as exc:
            return _reject("too_large", f"verifying it ran past the budget ({exc.reason})")
    kind = candidate.get("kind")
    prompt = str(candidate.get("prompt") or "").strip()
    if kind not in KINDS:
        return _reject("malformed", f"unknown kind {kind!r}")
    if len(prompt) < 8:
        return _reject("malformed", "the prompt is missing or too short")
    if candidate.get("answer") in (None, ""):
        return _reject("malformed", "no answer key")
    if kind == "short_text":
        return _review("unverifiable_kind", "free-text answers cannot be recomputed; a person checks the key")
    if kind == "multiple_choice":
        return _verify_choice(candidate)
    if kind == "template":
        return _verify_template(candidate)
    return _verify_value(candidate, kind)


def _variables(candidate: dict[str, Any]) -> list[str]:
    value = candidate.get("variables") or []
    return [str(v) for v in value] if isinstance(value, list) else []


_OPERATIONS = {
    "diff": ("derivative", "differentiate", "slope", "rate of change", "tangent"),
    "integrate": ("integral", "antiderivative", "integrate", "area under"),
    "limit": ("limit", "approaches"),
}
_USUAL_VARIABLES = ("x", "y", "z", "t")  # a lone "a" in a prompt is an article, a lone "x" is a variable
_LETTERS = [c for c in "abcdfghijklmnopqrstuvwxyzABCDFGHJKLMNOPQRTUVWXYZ"]  # not e, E, I, S: constants


def _check(candidate: dict[str, Any], variables: list[str]) -> sympy.Expr | Verdict:
    text = candidate.get("check")
    if not text:
        return _review("no_check", "no machine-readable check to recompute the key from")
    # Single letters may be bound variables (integrate(x, (x, 0, 2))); the result is judged below.
    names = list(dict.fromkeys([*variables, *(c for c in _LETTERS if c not in _FUNCTIONS)]))
    try:
        value = evaluate(str(text), names)
    except UnsafeExpression as exc:
        return _reject("unsafe_expression", str(exc))
    except ValueError as exc:
        return _review("check_unevaluable", str(exc))
    if candidate.get("kind") != "template":
        # A check must compute *this* problem: a model that copies a check from another item would
        # otherwise "verify" a consistently wrong key. Same numbers in prompt and check, or a person looks.
        # Likewise a check must work on the prompt's variables: "slope of x^2 at x = 3" checked by 3**2
        # uses the right numbers but never differentiates anything.
        prompt = str(candidate.get("prompt", ""))
        in_prompt, in_check = _numbers(prompt), _numbers(str(text))
        if in_prompt != in_check:
            missing = sorted(map(str, in_prompt ^ in_check))
            return _review("check_mismatch", f"the prompt and the check do not use the same numbers ({', '.join(missing)})")
        unused = sorted(v for v in {*variables, *_USUAL_VARIABLES}
                        if re.search(rf"(?<![A-Za-z]){v}(?![A-Za-z])", prompt) and v not in _NAME.findall(str(text)))
        if unused:
            return _review("check_mismatch", f"the prompt is about {', '.join(unused)} but the check never uses it")
        # And it must do what the prompt asks: a slope needs diff, an area integrate, a limit limit.
        lowered = prompt.lower()
        for operation, words in _OPERATIONS.items():
            if any(w in lowered for w in words) and operation not in _NAME.findall(str(text)):
                return _review("check_mismatch", f"the prompt asks for {operation} but the check does not use it")
    return value


def _numbers(text: str) -> set[Fraction]:
    """The numbers a text mentions, 0 and 1 aside (they come and go with notation: x = x**1 = 1*x)."""
    return {Fraction(n) for n in _NUMBER.findall(text)} - {Fraction(0), Fraction(1)}


def _verify_value(candidate: dict[str, Any], kind: str) -> Verdict:
    variables = _variables(candidate) if kind == "symbolic" else []
    try:
        key = evaluate(str(candidate["answer"]), variables)
    except ValueError as exc:
        return _reject("malformed", f"the answer key is not an expression: {exc}")
    if kind == "numeric" and key.free_symbols:
        return _reject("malformed", f"numeric key {candidate['answer']!r} has variables")
    if kind == "symbolic":
        stray = {str(s) for s in key.free_symbols} - set(variables)
        if stray:
            return _reject("malformed", f"the key uses undeclared variables {sorted(stray)}")
    check = _check(candidate, variables)
    if isinstance(check, Verdict):
        return check
    if kind == "numeric":
        if check.free_symbols:
            return _reject("malformed", f"the check {candidate['check']!r} is not a number")
        try:
            got, want = float(sympy.N(check)), float(sympy.N(key))
        except TypeError:
            return _reject("malformed", "the check or the key is not a real number")
        tolerance = float(candidate.get("tolerance") or 0) or 1e-9 + 1e-6 * abs(got)
        if abs(got - want) > tolerance:
            return Verdict("rejected", [f"wrong_key: {candidate['check']} = {got:g}, key is {want:g}"], f"{got:g}")
        return Verdict("verified", [], f"{got:g}")
    if not equal(check, key):
        return Verdict("rejected", [f"wrong_key: {candidate['check']} = {sympy.sstr(check)}, key is {candidate['answer']}"],
                       sympy.sstr(check))
    return Verdict("verified", [], sympy.sstr(check))


def _normal_text(text: str) -> str:
    """Lower case, sentence punctuation dropped; digits, decimal points and operators kept."""
    text = _BAD_DOT.sub(" ", text.lower())
    return " ".join(re.sub(r"[^\w\s.+\-*/^()]", " ", text).split())


def _verify_choice(candidate: dict[str, Any]) -> Verdict:
    choices = [str(c).strip() for c in candidate.get("choices") or []]
    answer = str(candidate["answer"]).strip()
    if len(choices) < 2:
        return _reject("malformed", "a multiple-choice item needs at least two choices")
    normal = [_normal_text(c) for c in choices]
    if len(set(normal)) != len(normal):
        return _reject("duplicate_choices", "two choices read the same")
    if answer not in choices:
        return _reject("answer_not_in_choices", f"the key {answer!r} is not one of the choices")
    variables = _variables(candidate)
    values: list[sympy.Expr | None] = []
    for choice in choices:
        try:
            values.append(evaluate(choice, variables))
        except ValueError:
            values.append(None)
    parsed = [(c, v) for c, v in zip(choices, values, strict=True) if v is not None]
    for i, (ci, vi) in enumerate(parsed):
        for cj, vj in parsed[i + 1:]:
            if equal(vi, vj):
                return _reject("duplicate_choices", f"{ci!r} and {cj!r} are the same value")
    check = _check(candidate, variables)
    if isinstance(check, Verdict):
        return check
    correct = [c for c, v in parsed if equal(v, check)]
    if len(correct) != 1:
        return Verdict("rejected", [f"not_exactly_one_correct: {len(correct)} choices equal {candidate['check']}"
                                    f" = {sympy.sstr(check)}"], sympy.sstr(check))
    if correct[0] != answer:
        return Verdict("rejected", [f"wrong_key: {candidate['check']} = {sympy.sstr(check)} is choice {correct[0]!r},"
                                    f" key is {answer!r}"], correct[0])
    return Verdict("verified", [], correct[0])


def _verify_template(candidate: dict[str, Any]) -> Verdict:
    params = candidate.get("params") or {}
    if not isinstance(params, dict) or not params:
        return _reject("malformed", "a template needs params: {name: [low, high]}")
    for name, bounds in params.items():
        if not (str(name).isidentifier() and isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, int) for b in bounds) and bounds[0] <= bounds[1]):
            return _reject("malformed", f"param {name!r} must be [low, high] integers, got {bounds!r}")
        if "{" + str(name) + "}" not in str(candidate["prompt"]):
            return _reject("malformed", f"param {name!r} does not appear in the prompt as {{{name}}}")
    names = _variables(candidate) + [str(p) for p in params]
    try:
        key = evaluate(str(candidate["answer"]), names)
    except ValueError as exc:
        return _reject("malformed", f"the answer is not an expression in the params: {exc}")
    check = _check(candidate, names)
    if isinstance(check, Verdict):
        return check
    if not equal(check, key):
        return Verdict("rejected", [f"wrong_key: {candidate['check']} = {sympy.sstr(check)}, key is {candidate['answer']}"],
                       sympy.sstr(check))
    return Verdict("verified", [], sympy.sstr(check))


# --- near-duplicates and a starting difficulty -------------------------------------------------------

def is_near_duplicate(prompt: str, others: Iterable[str], threshold: float = 0.85) -> str | None:
    """The first of `others` that asks the same question (same numbers, nearly the same words), or None.

    Different numbers make a different exercise ("differentiate x^3" vs "x^4"); reworded text with the
    same numbers and the same operations does not.
    """
    words = _normal_text(prompt).split()
    numbers = sorted(_NUMBER.findall(prompt))
    for other in others:
        if sorted(_NUMBER.findall(other)) != numbers:
            continue
        if difflib.SequenceMatcher(None, words, _normal_text(other).split()).ratio() >= threshold:
            return other
    return None


_STATED = {"easy": -1.0, "medium": 0.0, "hard": 1.0}


def starting_difficulty(candidate: dict[str, Any]) -> float:
    """A prior on the logit scale (0 = average), from the work the key takes; calibration replaces it.

    Two signals: the size of the expression that computes the key (sympy's operation count) and the
    generator's own label (easy/medium/hard) when it gave one. Multiple choice is easier by guessing.
    """
    if not sandbox.in_worker():
        try:
            return sandbox.run(starting_difficulty, candidate, timeout_s=EVALUATE_TIMEOUT_S)
        except sandbox.OverBudget:
            return 0.0  # its key is too large to size: the average, until calibration says otherwise
    ops = 0
    try:
        ops = int(sympy.count_ops(evaluate(str(candidate.get("check") or candidate.get("answer")),
                                           _variables(candidate) + list(candidate.get("params") or {}))))
    except ValueError:
        pass
    estimate = -1.0 + 0.25 * min(ops, 12)
    stated = _STATED.get(str(candidate.get("difficulty", "")).lower())
    if stated is not None:
        estimate = (estimate + stated) / 2
    if candidate.get("kind") == "multiple_choice":
        estimate -= 0.3
    return round(max(-2.0, min(2.0, estimate)), 2)
