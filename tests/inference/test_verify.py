"""Generated items: a wrong key never gets through; what cannot be checked goes to a person."""

from __future__ import annotations

import pytest

from inference.verify import UnsafeExpression, evaluate, is_near_duplicate, starting_difficulty, verify


def symbolic(answer: str, check: str = "diff(x**3, x)") -> dict:
    return {"kind": "symbolic", "prompt": "Differentiate x^3 with respect to x.", "answer": answer,
            "check": check, "variables": ["x"]}


def test_a_symbolic_item_with_the_right_key_is_verified() -> None:
    verdict = verify(symbolic("3*x**2"))
    assert verdict.status == "verified" and verdict.recomputed == "3*x**2"


def test_an_equivalent_form_of_the_key_is_accepted() -> None:
    assert verify(symbolic("x**2 + 2*x**2")).status == "verified"


def test_a_generated_item_with_a_wrong_key_is_rejected() -> None:
    verdict = verify(symbolic("3*x"))
    assert verdict.status == "rejected" and verdict.codes == ["wrong_key"]
    assert "3*x**2" in verdict.reasons[0]


def test_a_numeric_key_is_recomputed_from_the_check() -> None:
    item = {"kind": "numeric", "prompt": "What is the area under the graph of x from 0 to 2?", "answer": 2,
            "check": "integrate(x, (x, 0, 2))"}
    assert verify(item).status == "verified"
    assert verify({**item, "answer": 4}).codes == ["wrong_key"]


def test_a_numeric_key_within_the_items_tolerance_is_verified() -> None:
    item = {"kind": "numeric", "prompt": "What is sqrt(2), to two decimals?", "answer": 1.41, "check": "sqrt(2)",
            "tolerance": 0.005}
    assert verify(item).status == "verified"


def test_an_item_without_a_check_goes_to_review_not_to_students() -> None:
    item = symbolic("3*x**2")
    del item["check"]
    assert verify(item).status == "review" and verify(item).codes == ["no_check"]


def test_free_text_items_always_go_to_review() -> None:
    item = {"kind": "short_text", "prompt": "Name the rule for differentiating f(g(x)).", "answer": "chain rule"}
    assert verify(item).status == "review"


def choice(answer: str, choices: list[str], check: str = "diff(sin(x), x)") -> dict:
    return {"kind": "multiple_choice", "prompt": "What is the derivative of sin(x)?", "answer": answer,
            "choices": choices, "check": check, "variables": ["x"]}


def test_multiple_choice_with_exactly_one_correct_option_is_verified() -> None:
    assert verify(choice("cos(x)", ["cos(x)", "-cos(x)", "sin(x)", "-sin(x)"])).status == "verified"


def test_multiple_choice_keyed_to_a_wrong_option_is_rejected() -> None:
    verdict = verify(choice("-cos(x)", ["cos(x)", "-cos(x)", "sin(x)"]))
    assert verdict.codes == ["wrong_key"] and verdict.recomputed == "cos(x)"


def test_multiple_choice_with_two_correct_options_is_rejected() -> None:
    # Two correct options are two options with the same value: caught as duplicates, whatever the check.
    verdict = verify(choice("cos(x)", ["cos(x)", "sin(x + pi/2)", "sin(x)"]))
    assert verdict.status == "rejected" and verdict.codes == ["duplicate_choices"]
    assert "same value" in verdict.reasons[0]


def test_multiple_choice_with_no_correct_option_is_rejected() -> None:
    assert verify(choice("sin(x)", ["sin(x)", "-sin(x)", "tan(x)"])).codes == ["not_exactly_one_correct"]


def test_multiple_choice_with_duplicate_options_is_rejected() -> None:
    assert verify(choice("cos(x)", ["cos(x)", "cos( x )", "sin(x)"])).codes == ["duplicate_choices"]
    assert verify(choice("cos(x)", ["cos(x)", "Cos(x)", "sin(x)"])).codes == ["duplicate_choices"]


def test_multiple_choice_whose_key_is_not_an_option_is_rejected() -> None:
    assert verify(choice("cos x", ["cos(x)", "sin(x)"])).codes == ["answer_not_in_choices"]


def test_a_template_whose_answer_disagrees_with_its_check_is_rejected() -> None:
    item = {"kind": "template", "prompt": "Differentiate {a}x^{n}.", "answer": "a*x**(n-1)",
            "check": "diff(a*x**n, x)", "params": {"a": [2, 9], "n": [2, 5]}, "variables": ["x"]}
    assert verify(item).codes == ["wrong_key"]
    assert verify({**item, "answer": "a*n*x**(n-1)"}).status == "verified"


@pytest.mark.parametrize("text", [
    "exec(chr(49))", "__import__", "x.__class__", "open(1)", "eval(1)", "9**9**9", "2**100000", "factorial(10000)",
    "'a'", "getattr(x, 1)",
])
def test_model_output_cannot_run_code_or_exhaust_the_verifier(text: str) -> None:
    with pytest.raises(ValueError):
        evaluate(text, ["x"])


def test_an_unsafe_check_is_a_rejection_not_a_crash() -> None:
    verdict = verify(symbolic("1", check="exec(chr(49))"))
    assert verdict.status == "rejected" and verdict.codes == ["unsafe_expression"]


def test_evaluate_refuses_undeclared_names() -> None:
    with pytest.raises(UnsafeExpression):
        evaluate("chr(1)")


def test_a_reworded_copy_of_an_existing_item_is_a_near_duplicate() -> None:
    existing = ["Differentiate x^3 with respect to x.", "What is 3/4 of 12?"]
    assert is_near_duplicate("Differentiate  x^3 with respect to x!", existing) == existing[0]
    assert is_near_duplicate("differentiate x^3 with respect to the variable x", existing) == existing[0]


def test_the_same_question_with_other_numbers_is_not_a_duplicate() -> None:
    assert is_near_duplicate("Differentiate x^4 with respect to x.", ["Differentiate x^3 with respect to x."]) is None


def test_harder_work_gets_a_higher_starting_difficulty() -> None:
    easy = {"kind": "numeric", "prompt": "What is 2 + 3?", "answer": 5, "check": "2 + 3"}
    hard = {"kind": "symbolic", "prompt": "Differentiate.", "answer": "0", "variables": ["x"],
            "check": "diff(sin(x**2) * exp(3*x) / (1 + x**2), x)"}
    assert -2 <= starting_difficulty(easy) < starting_difficulty(hard) <= 2


def test_a_check_copied_from_another_problem_cannot_verify_a_wrong_key() -> None:
    # Key and check agree with each other, but compute x^3's derivative for a question about x^4.
    item = {"kind": "symbolic", "prompt": "Differentiate x^4 with respect to x.", "answer": "3*x**2",
            "check": "diff(x**3, x)", "variables": ["x"]}
    verdict = verify(item)
    assert verdict.status == "review" and verdict.codes == ["check_mismatch"]


def test_a_check_that_skips_the_operation_the_prompt_asks_for_goes_to_review() -> None:
    # The slope of x^3 at 2 is 12; a model that evaluates f(2) = 8 writes a consistent but wrong check.
    item = {"kind": "numeric", "prompt": "What is the slope of f(x) = x^3 at x = 2?", "answer": 8,
            "check": "at(x**3, x, 2)"}
    assert verify(item).codes == ["check_mismatch"]
    assert verify({**item, "answer": 12, "check": "at(diff(x**3, x), x, 2)"}).status == "verified"
