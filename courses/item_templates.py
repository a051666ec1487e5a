"""Parametrised items: one authored template, unlimited verified variants, no model.

A template is an `ItemSpec` of kind "template":

    params:  {a: [2, 9], n: [2, 5]}           integer ranges, both ends included
    prompt:  "Differentiate {a}x^{n}."         {name} is replaced by the drawn value
    answer:  "a*n*x**(n-1)"                    a sympy expression in the params and `variables`
    variables: [x]
    extra:   {check: "diff(a*x**n, x)"}         optional: an independent way to compute the key

`instantiate(item, seed)` draws the params deterministically from (item id, seed) and computes the key
with sympy; the same seed always gives the same variant. Draws that make the key undefined (division
by zero) or equal to an excluded value are redrawn. `verify_template` instantiates many seeds and
checks each key with sympy: against `check` when there is one, and by grading the key as a student's
answer through `courses.checking`, so the grader accepts what the template says is right.

Both run in a worker of `inference.sandbox`: a template's params can make a key of any size (`factorial(a)^n`
with a up to 10^5), and a variant that cannot be computed within the budget is a `TemplateError`, not a
server stuck on it. Variants are remembered per process: a student's page asks for the same one on every view.

Pure Python and sympy: no database, no model.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sympy

from courses.checking import check_answer, parse_expression, symbolically_equal
from courses.format import ItemSpec
from inference import sandbox
from inference.verify import evaluate

MAX_DRAWS = 50  # redraws before a template is declared unusable
VARIANT_TIMEOUT_S = 5.0  # one variant's draws and key, in a sandbox worker
VERIFY_TIMEOUT_S = 30.0  # a whole `verify_template` run (25 variants, each graded and checked)
VARIANT_MEMO_SIZE = 2048


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    item_id: str
    seed: int
    values: dict[str, int]
    prompt: str
    answer: str  # the key, as sympy prints it: "24*x**3", "3/4"
    variables: tuple[str, ...]

    @property
    def numeric(self) -> bool:
        """True when the key is a plain number (no variables left)."""
        return not parse_expression(self.answer, list(self.variables)).free_symbols


def _ranges(item: ItemSpec) -> dict[str, tuple[int, int]]:
    if item.kind != "template":
        raise TemplateError(f"item {item.id!r} is a {item.kind!r} item, not a template")
    if not item.params:
        raise TemplateError(f"template {item.id!r} has no params")
    ranges = {}
    for name, bounds in item.params.items():
        if not (str(name).isidentifier() and isinstance(bounds, list | tuple) and len(bounds) == 2
                and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) and bounds[0] <= bounds[1]):
            raise TemplateError(f"template {item.id!r}: param {name!r} must be [low, high] integers, got {bounds!r}")
        ranges[str(name)] = (int(bounds[0]), int(bounds[1]))
    return ranges


def render(prompt: str, values: dict[str, int]) -> str:
    """Replace {name} for the template's params only; other braces (LaTeX) stay as written."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda m: str(values[m.group(1)]), prompt)


def instantiate(item: ItemSpec, seed: int) -> Variant:
    """The variant of `item` for `seed`. Raises TemplateError (also when it is too large to compute)."""
    if sandbox.in_worker():
        return _instantiate(item, seed)
    variant = _instantiate_memoised(json.dumps([asdict(item), seed], sort_keys=True, default=str))
    if isinstance(variant, str):
        raise TemplateError(variant)
    return variant


@functools.lru_cache(maxsize=VARIANT_MEMO_SIZE)
def _instantiate_memoised(arguments: str) -> Variant | str:
    """The variant, or why it could not be computed within the budget (remembered too: it will not fit next
    time either)."""
    fields, seed = json.loads(arguments)
    item = ItemSpec(**fields)
    try:
        return sandbox.run(_instantiate, item, seed, timeout_s=VARIANT_TIMEOUT_S)
    except sandbox.OverBudget:
        return f"template {item.id!r}: the variant for seed {seed} is too large to compute"


def _instantiate(item: ItemSpec, seed: int) -> Variant:
    ranges = _ranges(item)
    names = list(item.variables) + list(ranges)
    try:
        template = parse_expression(str(item.answer), names)
    except ValueError as exc:
        raise TemplateError(f"template {item.id!r}: answer {item.answer!r} is not an expression: {exc}") from None
    excluded = {str(v) for v in item.extra.get("exclude_answers", [])}
    rng = random.Random(f"{item.id}/{seed}")  # str seeds hash with SHA-512: stable across runs and machines
    symbols = {name: sympy.Symbol(name) for name in ranges}
    for _ in range(MAX_DRAWS):
        values = {name: rng.randint(low, high) for name, (low, high) in ranges.items()}
        key = sympy.simplify(template.subs({symbols[n]: v for n, v in values.items()}))
        if key.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            continue  # e.g. a division by a param drawn as 0
        answer = sympy.sstr(key)
        if answer in excluded:
            continue
        return Variant(item.id, seed, values, render(item.prompt, values), answer, tuple(item.variables))
    raise TemplateError(f"template {item.id!r}: no valid draw in {MAX_DRAWS} tries (is the answer always undefined?)")


def verify_template(item: ItemSpec, seeds: Iterable[int] = range(25)) -> list[str]:
    """Problems found over `seeds` (empty list: every variant verified)."""
    if not sandbox.in_worker():
        try:
            return sandbox.run(verify_template, item, list(seeds), timeout_s=VERIFY_TIMEOUT_S)
        except sandbox.OverBudget:
            return [f"template {item.id!r}: its variants are too large to compute and check"]
    problems: list[str] = []
    check_text = item.extra.get("check")
    names = list(item.variables) + list(item.params)
    for seed in seeds:
        try:
            variant = instantiate(item, seed)
        except TemplateError as exc:
            return [str(exc)]
        # A {name} that is not a param (LaTeX's \frac{a}{b} is not one: a command precedes its brace).
        leftover = re.search(r"(?<![A-Za-z}])\{([A-Za-z_]\w*)\}", variant.prompt)
        if leftover:
            return [f"the prompt has a placeholder {{{leftover.group(1)}}} that is not a param"]
        graded = check_answer("template", variant.answer, variant.answer, variables=list(item.variables))
        if not graded.correct:
            problems.append(f"seed {seed}: the grader rejects the key {variant.answer!r} ({graded.error})")
        if check_text:
            try:
                # The check is author-written maths (diff, integrate, ...), evaluated by the verifier's
                # whitelisted evaluator; student answers never get those functions.
                check = evaluate(str(check_text), names)
            except ValueError as exc:
                return [f"check {check_text!r} is not an expression: {exc}"]
            expected = check.subs({sympy.Symbol(n): v for n, v in variant.values.items()}).doit()
            if not symbolically_equal(expected, parse_expression(variant.answer, list(item.variables))):
                problems.append(f"seed {seed} {variant.values}: check gives {sympy.sstr(expected)}, "
                                f"key is {variant.answer}")
    return problems
