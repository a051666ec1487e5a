"""The answer checker takes untrusted text from students: it must grade, never execute."""


import pytest

from courses import checking
from courses.checking import check_answer, parse_expression


def _chr_encoded(code: str) -> str:
    return "+".join(f"chr({ord(ch)})" for ch in code)


@pytest.mark.parametrize("kind", ["symbolic", "numeric"])
def test_an_answer_cannot_run_python(tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = f"exec({_chr_encoded(f'open({str(marker)!r}, {chr(39)}w{chr(39)})')})"
    assert len(payload) > 0
    check_answer(kind, "x" if kind == "symbolic" else 1, payload[:300], variables=["x"])
    check_answer(kind, "x" if kind == "symbolic" else 1, "exec(chr(49))", variables=["x"])
    assert not marker.exists()


def test_attribute_access_is_refused():
    result = check_answer("symbolic", "x", "x.func", variables=["x"])
    assert result.error and not result.correct


def test_huge_powers_are_refused_before_any_maths_runs(monkeypatch):
    from inference import sandbox

    def no_sandbox(*args, **kwargs):
        raise AssertionError("a power tower reached the sandbox: it should be refused by the cheap checks")

    monkeypatch.setattr(sandbox, "run", no_sandbox)
    result = check_answer("symbolic", "x", "9^9^9^9", variables=["x"])
    assert result.unchecked and not result.correct


@pytest.mark.parametrize("typed, key", [
    ("7x^6", "7*x**6"), ("e^x cos(x)", "exp(x)*cos(x)"), ("1/(x ln 10)", "1/(x*log(10))"),
    ("(5/3)(x^2)^(1/3)", "(5/3)*x**(2/3)"), ("3sin(x)^2cos(x)", "3*sin(x)**2*cos(x)"),
])
def test_equivalent_forms_are_accepted(typed, key):
    assert check_answer("symbolic", key, typed, variables=["x"]).correct


def test_a_wrong_expression_is_wrong():
    assert not check_answer("symbolic", "2*x", "3x", variables=["x"]).correct


def test_numeric_tolerance_and_expressions():
    assert check_answer("numeric", 3.14159, "3.14", tolerance=0.01).correct
    assert check_answer("numeric", 0.5, "1/2").correct
    assert not check_answer("numeric", 0.5, "0.6", tolerance=0.01).correct


def test_words_and_logic_are_graded_wrong_not_a_crash():
    for text in ("Not a parabola", "x | y", "x & y"):
        result = check_answer("symbolic", "x**2", text, variables=["x"])
        assert not result.correct


def test_parse_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_expression("(x +", ["x"])


def test_a_remembered_grade_equals_a_fresh_check():
    checking._check_memoised.cache_clear()
    args = ("symbolic", "2*x", "3x")
    opts = {"variables": ["x"], "feedback": {"3*x": "You added the exponent to the coefficient."}}
    fresh = check_answer(*args, **opts)
    hits = checking._check_memoised.cache_info().hits
    remembered = check_answer(*args, **opts)
    assert checking._check_memoised.cache_info().hits == hits + 1
    checking._check_memoised.cache_clear()
    assert remembered == fresh == check_answer(*args, **opts)
    assert fresh.feedback == "You added the exponent to the coefficient." and not fresh.correct


def test_the_memo_never_grades_one_items_answer_against_anothers_key():
    checking._check_memoised.cache_clear()
    # The same text sent to items (or template variants) that differ in one field each gets that item's grade.
    assert check_answer("symbolic", "6*x", "6x", variables=["x"]).correct
    assert not check_answer("symbolic", "8*x", "6x", variables=["x"]).correct  # another variant's key
    assert check_answer("symbolic", "6*x", "6x", variables=["x"], feedback={"6x": "a"}).feedback == ""
    assert check_answer("symbolic", "5*x", "6x", variables=["x"], feedback={"6x": "a"}).feedback == "a"
    assert check_answer("symbolic", "5*x", "6x", variables=["x"], feedback={"6x": "b"}).feedback == "b"
    assert check_answer("multiple_choice", "1", "1").correct
    assert not check_answer("multiple_choice", "1.0", "1").correct
    assert check_answer("numeric", 1.0, "1.05", tolerance=0.1).correct
    assert not check_answer("numeric", 1.0, "1.05", tolerance=0.01).correct
    assert check_answer("short_text", "chain rule", "Chain rule.").correct
    assert not check_answer("short_text", "product rule", "Chain rule.").correct
    assert check_answer("short_text", "product rule", "Chain rule.", accept=["chain rule"]).correct
