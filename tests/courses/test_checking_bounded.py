"""Answers of any size: the checker refuses what is too large to check, quickly, and never hangs its caller."""

from __future__ import annotations

import pytest

from courses import checking
from courses.checking import OVER_BUDGET_MESSAGE, check_answer, parse_expression
from inference import sandbox

# What one student might send to stop a class: each is answered "too large to check", nothing hangs.
BOMBS = [
    "1e999999", "1E-999999", "2.5e400", "9^9^9^9", "9**9**9**9", "2^2^2^2^2", "(2^(2^(2^(2^2))))", "99999!",
    "(10!)!", "10!!!!", "9" * 5000, "1" + "0" * 70, "(" * 200 + "x" + ")" * 200, "x" * 100_000,
    "x^(10^10)", "10^(10^20)", "(x+1)^(10^6)", "exp(exp(exp(exp(1000))))", "123456789012345678901^2",
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bomb", BOMBS, ids=lambda b: b[:24])
@pytest.mark.parametrize("kind", ["symbolic", "numeric"])
def test_an_answer_too_large_to_check_is_unchecked_with_a_clear_message(kind, bomb):
    result = check_answer(kind, "3*x**2" if kind == "symbolic" else 12, bomb, variables=["x"])
    assert result.unchecked and not result.correct and not result.error, result
    assert result.feedback == OVER_BUDGET_MESSAGE == "That expression is too large to check; try a simpler form."


@pytest.mark.timeout(60)
def test_huge_exponent_answer_is_refused_before_any_worker_is_used(monkeypatch):
    def no_worker(*args, **kwargs):
        raise AssertionError("the text alone should have been refused")

    monkeypatch.setattr(sandbox, "run", no_worker)
    checking._check_memoised.cache_clear()
    assert check_answer("symbolic", "3*x**2", "1e999999", variables=["x"]).unchecked


@pytest.mark.timeout(60)
def test_an_answer_that_runs_past_the_budget_is_unchecked_and_the_next_answer_is_graded(monkeypatch):
    """Past the cheap limits but still slow: the worker is killed at the deadline and replaced."""
    monkeypatch.setattr(checking, "CHECK_TIMEOUT_S", 0.5)
    checking._check_memoised.cache_clear()
    slow = "(x+1)^999*(x-1)^999 - (x^2-1)^999 + sin(x)^999*cos(x)^999"
    result = check_answer("symbolic", "(x+2)**998", slow, variables=["x"])
    assert result.unchecked or result.correct is False  # either it overran or sympy was quick: never a hang
    assert check_answer("symbolic", "3*x**2", "3x^2", variables=["x"]).correct


def test_a_busy_checker_says_so_and_nothing_is_remembered(monkeypatch):
    def busy(*args, **kwargs):
        raise sandbox.Busy("all workers busy")

    checking._check_memoised.cache_clear()
    monkeypatch.setattr(sandbox, "run", busy)
    result = check_answer("symbolic", "2*x", "2x", variables=["x"])
    assert result.error == checking.BUSY_MESSAGE and not result.unchecked
    monkeypatch.undo()
    assert check_answer("symbolic", "2*x", "2x", variables=["x"]).correct


@pytest.mark.parametrize(("typed", "key"), [("ｘ^2", "x**2"), ("x²", "x**2"), ("x³ − 1", "x**3 - 1"), ("2·x", "2*x"),
                                            ("x\u200b^2", "x**2"), ("２x", "2*x"), ("π", "pi")])
def test_unicode_look_alikes_are_read_as_what_they_look_like(typed, key):
    assert check_answer("symbolic", key, typed, variables=["x"]).correct


@pytest.mark.parametrize("typed", ["х^2", "x^２ + у", "ⅹ"])  # Cyrillic ha, Cyrillic u, roman numeral ten
def test_a_look_alike_that_is_not_the_letter_is_refused_by_name(typed):
    result = check_answer("symbolic", "x**2", typed, variables=["x"])
    if result.error:
        assert "is not one the checker reads" in result.error and "plain letters" in result.error
    else:  # NFKC reads it as the letter it stands for (the roman numeral ten is "x")
        assert typed == "ⅹ"


def test_an_author_expression_over_the_limits_is_a_value_error():
    with pytest.raises(ValueError, match="too large"):
        parse_expression("9^9^9^9", ["x"])
    with pytest.raises(ValueError):
        parse_expression("(" * 100 + "x" + ")" * 100, ["x"])


def test_template_variants_over_budget_are_a_template_error():
    from courses.format import ItemSpec
    from courses.item_templates import TemplateError, instantiate, verify_template

    item = ItemSpec(id="t-bomb", kind="template", prompt="Compute {a}^{n}.", answer="factorial(a)**n",
                    params={"a": [100000, 100001], "n": [900, 999]}, variables=[])
    with pytest.raises(TemplateError, match="too large"):
        instantiate(item, 0)
    assert any("too large" in p for p in verify_template(item, seeds=range(2)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("check", ["integrate(exp(x**x**x), x)", "factorial(factorial(9))", "9**9**9**9",
                                   "diff(x**(10**9), x, 10**6)", "summation(factorial(n), (n, 1, 10**9))"])
def test_a_generated_item_whose_check_is_too_large_is_not_published(check):
    from inference.verify import verify

    verdict = verify({"kind": "symbolic", "prompt": "Differentiate x^3 with respect to x.", "answer": "3*x**2",
                      "variables": ["x"], "check": check})
    assert verdict.status != "verified"
