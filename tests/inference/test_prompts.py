"""Prompts are functions of the student's state; they keep the tutor's promises."""

from __future__ import annotations

import pytest

from inference import get_backend
from inference.prompts import (
    REVEAL_AFTER,
    ConceptBrief,
    ItemContext,
    StudentContext,
    explanation,
    feedback,
    guess_prompt,
    hint,
    misconception_check,
    pain_first,
    withhold,
)

POWER_RULE = ConceptBrief(slug="power-rule", title="The power rule",
                          lesson="The derivative of x^n is n*x^(n-1).\n\nFor example, d/dx x^3 = 3x^2.",
                          explanation="Bring the exponent down, then lower it by one.")
ITEM = ItemContext(prompt="Differentiate 4x^5.", answer="20*x**4",
                   hints=("Which rule is about powers of x?", "Bring the 5 down."),
                   feedback="You multiplied by the exponent but forgot to lower it.")


def student(**kw: object) -> StudentContext:
    base: dict[str, object] = {"concept": POWER_RULE, "known": ("Limits", "The derivative as a slope"), "item": ITEM}
    return StudentContext(**{**base, **kw})  # type: ignore[arg-type]


def text_of(request) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(m.content for m in request.messages)


def test_explanation_names_what_the_student_already_knows() -> None:
    prompt = text_of(explanation(student()))
    assert "Limits" in prompt and "The derivative as a slope" in prompt


def test_explanation_addresses_the_last_wrong_answer_and_its_misconception() -> None:
    prompt = text_of(explanation(student(last_wrong_answer="20x^5", attempts=1)))
    assert "'20x^5'" in prompt and ITEM.feedback in prompt


def test_explanation_falls_back_to_the_courses_explanation() -> None:
    assert explanation(student()).authored == POWER_RULE.explanation


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_hints_never_contain_the_answer_before_enough_attempts(level: int) -> None:
    request = hint(student(attempts=REVEAL_AFTER - 1, last_wrong_answer="20x^5"), level)
    assert ITEM.answer not in text_of(request)
    assert "Do NOT state the final answer" in text_of(request)
    assert request.metadata["may_reveal"] is False


def test_the_last_rung_may_show_the_answer_after_enough_attempts() -> None:
    request = hint(student(attempts=REVEAL_AFTER), 3)
    assert ITEM.answer in text_of(request) and request.metadata["may_reveal"] is True


def test_the_hint_ladder_falls_back_to_authored_rungs_in_order() -> None:
    assert [hint(student(), level).authored for level in (1, 2, 3)] == [ITEM.hints[0], ITEM.hints[1], ITEM.hints[1]]


def test_feedback_asks_for_the_misconception_and_withholds_the_answer_early() -> None:
    request = feedback(student(last_wrong_answer="20x^5", attempts=1))
    prompt = text_of(request)
    assert "misconception" in prompt and "'20x^5'" not in prompt and "20x^5" in prompt
    assert "Do NOT give the correct answer" in prompt
    assert request.authored == ITEM.feedback


def test_feedback_needs_a_wrong_answer() -> None:
    with pytest.raises(ValueError, match="wrong answer"):
        feedback(student())


def test_pain_first_and_guess_prompts_use_the_course_text_when_the_model_is_down() -> None:
    with_text = ConceptBrief(slug="p", title="P", lesson="L", pain_first="Ouch.", guess_first="Guess?")
    assert pain_first(student(concept=with_text)).authored == "Ouch."
    assert guess_prompt(student(concept=with_text)).authored == "Guess?"
    # A concept without them: the model writes them, and the fallback is still something sensible.
    assert pain_first(student()).authored == "The derivative of x^n is n*x^(n-1)."
    assert "power rule" in guess_prompt(student()).authored


def test_prompts_for_the_same_state_are_the_same() -> None:
    assert explanation(student(last_wrong_answer="5x^4")) == explanation(student(last_wrong_answer="5x^4"))


def test_withhold_masks_the_answer_even_when_split_across_chunks() -> None:
    chunks = ["The answer is 20*x", "**4, so", " 20*x**4 again."]
    assert "".join(withhold(iter(chunks), ("20*x**4",))) == "The answer is …, so … again."


def test_withhold_passes_other_text_through_unchanged() -> None:
    chunks = ["Bring ", "the exponent ", "down."]
    assert "".join(withhold(iter(chunks), ("20*x**4",))) == "Bring the exponent down."


def test_a_hint_streams_from_a_real_model_without_the_answer(llama_server, llama_options) -> None:  # type: ignore[no-untyped-def]
    backend = get_backend("llamacpp", **llama_options)
    request = hint(student(attempts=0), 1)
    text = "".join(withhold(backend.stream(request), (ITEM.answer, "20x^4", "20x**4")))
    assert text.strip() and "20x^4" not in text


def test_a_misconception_check_gets_a_one_word_answer_from_a_real_model(llama_server, llama_options) -> None:  # type: ignore[no-untyped-def]
    backend = get_backend("llamacpp", **llama_options)
    request = misconception_check(POWER_RULE, "You raise the exponent by one and divide by it, so x^2 becomes x^3/3.",
                                  "You raise the exponent by one and divide by the new exponent.")
    assert request.authored == ""  # without a model nothing is confirmed
    reply = "".join(backend.stream(request))
    assert reply.strip() and len(reply.split()) <= 3  # the tiny model's judgement is not tested, only the exchange
