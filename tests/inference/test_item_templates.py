"""Templates produce verified variants: the same seed, the same variant; every key checked by sympy."""

from __future__ import annotations

import pytest

from courses.checking import check_answer
from courses.format import ItemSpec
from courses.item_templates import TemplateError, instantiate, verify_template


def power_rule(answer: str = "a*n*x**(n-1)") -> ItemSpec:
    return ItemSpec(id="power-rule", kind="template", prompt="Differentiate {a}x^{n} with respect to x.",
                    answer=answer, variables=["x"], params={"a": [2, 9], "n": [2, 6]},
                    extra={"check": "diff(a*x**n, x)"})


def test_the_same_seed_gives_the_same_variant() -> None:
    assert instantiate(power_rule(), 7) == instantiate(power_rule(), 7)


def test_different_seeds_give_many_different_variants() -> None:
    prompts = {instantiate(power_rule(), seed).prompt for seed in range(40)}
    assert len(prompts) >= 20


def test_a_variant_fills_the_prompt_and_computes_the_key() -> None:
    variant = instantiate(power_rule(), 3)
    a, n = variant.values["a"], variant.values["n"]
    assert variant.prompt == f"Differentiate {a}x^{n} with respect to x."
    assert check_answer("template", variant.answer, f"{a * n}*x^{n - 1}", variables=["x"]).correct
    assert 2 <= a <= 9 and 2 <= n <= 6


def test_templates_produce_verified_variants() -> None:
    assert verify_template(power_rule(), seeds=range(30)) == []


def test_a_template_with_a_wrong_answer_formula_fails_verification() -> None:
    problems = verify_template(power_rule(answer="a*x**(n-1)"), seeds=range(5))
    assert problems and "check gives" in problems[0]


def test_draws_that_make_the_key_undefined_are_redrawn() -> None:
    item = ItemSpec(id="quotient", kind="template", prompt="What is {p} divided by {q}?", answer="p/q",
                    params={"p": [1, 9], "q": [0, 2]})
    variants = [instantiate(item, seed) for seed in range(30)]
    assert all(v.values["q"] != 0 for v in variants)
    assert all(v.numeric for v in variants)
    assert verify_template(item) == []


def test_latex_braces_are_left_alone() -> None:
    item = ItemSpec(id="frac", kind="template", prompt=r"Simplify $\frac{x}{2} \cdot {k}$.", answer="k*x/2",
                    variables=["x"], params={"k": [2, 4]})
    variant = instantiate(item, 0)
    assert r"\frac{x}{2}" in variant.prompt and "{k}" not in variant.prompt
    assert verify_template(item) == []


def test_a_placeholder_that_is_not_a_param_is_reported() -> None:
    item = ItemSpec(id="typo", kind="template", prompt="Differentiate {a}x^ {m}.", answer="a*x", variables=["x"],
                    params={"a": [1, 3]})
    assert "placeholder {m}" in verify_template(item)[0]


def test_a_bad_param_range_is_a_clear_error() -> None:
    item = ItemSpec(id="bad", kind="template", prompt="What is {a}?", answer="a", params={"a": [5, 1]})
    with pytest.raises(TemplateError, match=r"param 'a' must be \[low, high\]"):
        instantiate(item, 0)
