"""Generated practice items, model to vetted candidates: ask, parse, verify, de-duplicate, rate.

    vetted = generate_items(backend, concept, n=5, existing=prompts_of_existing_items)

Each `Vetted` carries an `ItemSpec`-compatible dict (`courses.format.ItemSpec(**v.item)`), the verifier's
verdict and a starting difficulty. Storing them (status "review", or published when the course
auto-publishes verified items) is `courses/generation.py`'s business; nothing here touches storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inference.base import Backend, GenerationRequest
from inference.prompts import ITEM_EXAMPLE_PROMPT, ConceptBrief, item_generation
from inference.verify import KINDS, Verdict, is_near_duplicate, starting_difficulty, verify

_ITEM_FIELDS = {
    "kind": {"type": "string", "enum": [k for k in KINDS if k != "template"]},
    "prompt": {"type": "string", "maxLength": 400},
    "answer": {"type": "string", "maxLength": 120},
    "check": {"type": "string", "maxLength": 160},
    "variables": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 4},
    "choices": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 6},
    "hints": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 3},
    "solution": {"type": "string", "maxLength": 500},
    "difficulty": {"type": "string", "enum": ["easy", "medium", "hard"]},
}


def batch_schema(n: int) -> dict[str, Any]:
    """JSON schema for {"items": [...]}: every field required, nothing else allowed (OpenAI strict mode),
    lengths bounded so that a small model cannot ramble inside a string until max_tokens."""
    item = {"type": "object", "properties": _ITEM_FIELDS, "required": list(_ITEM_FIELDS), "additionalProperties": False}
    return {"type": "object", "properties": {"items": {"type": "array", "items": item, "minItems": 1, "maxItems": n}},
            "required": ["items"], "additionalProperties": False}


class GenerationFailed(ValueError):
    """The model's output is not a batch of items (not JSON, cut off at max_tokens, wrong shape)."""


def parse_candidates(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenerationFailed(f"not JSON ({exc.msg} at character {exc.pos} of {len(text)})") from None
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise GenerationFailed("expected {\"items\": [...]}")
    candidates = []
    for raw in items:
        if not isinstance(raw, dict):
            continue
        candidate = dict(raw)
        for key in ("variables", "choices", "hints"):
            value = candidate.get(key)
            candidate[key] = [str(v) for v in value] if isinstance(value, list) else []
        if candidate.get("answer") is not None:
            candidate["answer"] = str(candidate["answer"]).strip()
        candidates.append(candidate)
    return candidates


def generate_candidates(backend: Backend, request: GenerationRequest) -> list[dict[str, Any]]:
    """Run the request to the end and parse it. `BackendUnavailable` propagates: the job retries later."""
    return parse_candidates("".join(backend.stream(request)))


@dataclass
class Vetted:
    item: dict[str, Any]  # ItemSpec fields; the check and the verdict are kept under item["extra"]
    verdict: Verdict
    difficulty: float

    @property
    def publishable(self) -> bool:
        return self.verdict.status == "verified"


def vet(candidates: list[dict[str, Any]], existing: tuple[str, ...] | list[str] = (),
        id_prefix: str = "gen") -> list[Vetted]:
    """Verify each candidate, reject near-duplicates (of existing items and of each other), rate the rest."""
    seen = list(existing)
    out = []
    for number, candidate in enumerate(candidates, start=1):
        verdict = verify(candidate)
        if verdict.status != "rejected":
            twin = is_near_duplicate(str(candidate.get("prompt", "")), seen)
            if twin is not None:
                verdict = Verdict("rejected", [f"near_duplicate: of {twin[:80]!r}"], verdict.recomputed)
            else:
                seen.append(str(candidate["prompt"]))
        difficulty = starting_difficulty(candidate)
        out.append(Vetted(_item_spec_fields(candidate, f"{id_prefix}-{number}", difficulty, verdict), verdict, difficulty))
    return out


def _item_spec_fields(candidate: dict[str, Any], item_id: str, difficulty: float, verdict: Verdict) -> dict[str, Any]:
    kind = candidate.get("kind")
    fields: dict[str, Any] = {
        "id": item_id,
        "kind": kind,
        "prompt": str(candidate.get("prompt", "")).strip(),
        "answer": candidate.get("answer"),
        "choices": list(candidate.get("choices") or []) if kind == "multiple_choice" else [],
        "variables": list(candidate.get("variables") or []),
        "hints": list(candidate.get("hints") or []),
        "solution": str(candidate.get("solution") or ""),
        "difficulty": difficulty,
        "extra": {"generated": True, "check": candidate.get("check"), "verdict": verdict.status,
                  "verdict_reasons": verdict.reasons, "stated_difficulty": candidate.get("difficulty")},
    }
    if kind == "numeric" and candidate.get("tolerance") is not None:
        fields["tolerance"] = float(candidate["tolerance"])
    if kind == "template":
        fields["params"] = dict(candidate.get("params") or {})
    return fields


def generate_items(backend: Backend, concept: ConceptBrief, n: int, existing: tuple[str, ...] = (),
                   kinds: tuple[str, ...] = ("numeric", "symbolic", "multiple_choice"), seed: int | None = None,
                   id_prefix: str = "gen") -> list[Vetted]:
    """Ask `backend` for `n` items on `concept` and vet them. Copies of the prompt's example are duplicates.

    Raises `BackendUnavailable` (model down) and `GenerationFailed` (unusable output) for the job to retry.
    """
    request = item_generation(concept, n, kinds=kinds, existing=existing, seed=seed)
    return vet(generate_candidates(backend, request), existing=(*existing, ITEM_EXAMPLE_PROMPT), id_prefix=id_prefix)
