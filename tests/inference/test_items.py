"""Generated items: parsed from structured output, verified, de-duplicated, rated."""

from __future__ import annotations

import json

import pytest

from courses.format import ItemSpec
from inference import get_backend
from inference.items import GenerationFailed, batch_schema, generate_items, parse_candidates, vet
from inference.prompts import ITEM_EXAMPLE_PROMPT, ConceptBrief

GOOD = {"kind": "symbolic", "prompt": "Differentiate x^5 with respect to x.", "answer": "5*x**4",
        "check": "diff(x**5, x)", "variables": ["x"], "choices": [], "hints": ["Power rule."], "solution": "5x^4",
        "difficulty": "easy"}
WRONG = {**GOOD, "prompt": "Differentiate x^6 with respect to x.", "answer": "6*x**6", "check": "diff(x**6, x)"}


def test_a_batch_parses_into_item_spec_fields() -> None:
    vetted = vet(parse_candidates(json.dumps({"items": [GOOD]})), id_prefix="power-gen")
    spec = ItemSpec(**vetted[0].item)
    assert spec.id == "power-gen-1" and spec.kind == "symbolic" and spec.answer == "5*x**4"
    assert spec.extra["check"] == "diff(x**5, x)" and spec.extra["verdict"] == "verified"
    assert vetted[0].publishable


def test_a_generated_item_with_a_wrong_key_is_not_publishable() -> None:
    vetted = vet([GOOD, WRONG])
    assert [v.verdict.status for v in vetted] == ["verified", "rejected"]
    assert vetted[1].verdict.codes == ["wrong_key"] and not vetted[1].publishable


def test_near_duplicates_of_existing_items_and_of_each_other_are_rejected() -> None:
    reworded = {**GOOD, "prompt": "Differentiate x^5 with respect to x!"}
    vetted = vet([GOOD, reworded], existing=["What is 2 + 2?"])
    assert [v.verdict.status for v in vetted] == ["verified", "rejected"]
    assert vet([GOOD], existing=[GOOD["prompt"]])[0].verdict.codes == ["near_duplicate"]


def test_every_vetted_item_gets_a_starting_difficulty() -> None:
    assert all(-2 <= v.difficulty <= 2 and v.item["difficulty"] == v.difficulty for v in vet([GOOD, WRONG]))


def test_output_cut_off_at_max_tokens_is_a_generation_failure() -> None:
    with pytest.raises(GenerationFailed, match="not JSON"):
        parse_candidates('{"items": [{"kind": "numeric", "prompt": "What is')


def test_the_schema_is_strict_mode_compatible() -> None:
    item = batch_schema(3)["properties"]["items"]["items"]
    assert item["additionalProperties"] is False and set(item["required"]) == set(item["properties"])


@pytest.mark.slow
def test_a_real_model_generates_items_that_are_all_vetted(llama_server, llama_options) -> None:  # type: ignore[no-untyped-def]
    concept = ConceptBrief(slug="power-rule", title="The power rule",
                           lesson="The derivative of x^n is n*x^(n-1). For example d/dx x^3 = 3x^2.")
    vetted = generate_items(get_backend("llamacpp", **llama_options), concept, n=2, seed=1)
    assert vetted
    for v in vetted:
        assert v.verdict.status in ("verified", "review", "rejected")
        if v.item["prompt"] == ITEM_EXAMPLE_PROMPT:
            assert v.verdict.codes == ["near_duplicate"]  # a copy of the prompt's example is never published
