"""Online knowledge state: per-concept Bayesian Knowledge Tracing, as the tutor runs it live.

This module knows nothing of Django, HTTP or storage. The tutor's services load a `KnowledgeState`
from a blob, call `observe` with each graded answer, ask `p_correct` for candidate items, and save
`state.to_blob()` back. Offline fitting of the parameters lives in `learner_model/bkt.py`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

STATE_VERSION = 1
# P(known) is kept within [P_KNOWN_MARGIN, 1 - P_KNOWN_MARGIN]. Without a margin a run of right answers drives it to
# exactly 1.0 (in the blob's 6 decimals after ~12 answers, in a float after ~20), and with no forgetting no wrong
# answer can lower it again. The margin survives `to_blob`'s rounding; offline BKT (bkt.py) clamps the same way.
P_KNOWN_MARGIN = 1e-6


@dataclass(frozen=True)
class BKTParams:
    """Parameters of one concept's two-state hidden Markov model."""

    p_init: float = 0.2  # P(known) before any practice
    p_learn: float = 0.15  # P(unknown -> known) after one practice opportunity
    p_guess: float = 0.2  # P(correct | unknown)
    p_slip: float = 0.1  # P(wrong | known)
    p_forget: float = 0.0  # P(known -> unknown) per opportunity (0 = classic BKT)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"BKTParams.{name} must lie in [0, 1], got {value}")
        if self.p_guess + self.p_slip >= 1.0:
            raise ValueError("BKTParams: p_guess + p_slip must be < 1 (otherwise a correct answer is evidence of not knowing)")


@dataclass
class ConceptState:
    p_known: float
    attempts: int = 0
    correct: int = 0
    last_seen: float | None = None  # unix seconds of the last evidence


@dataclass
class KnowledgeState:
    """What the tutor believes one student knows, concept by concept."""

    concepts: dict[str, ConceptState] = field(default_factory=dict)

    def concept(self, slug: str, params: BKTParams) -> ConceptState:
        if slug not in self.concepts:
            self.concepts[slug] = ConceptState(p_known=params.p_init)
        return self.concepts[slug]

    def mastery(self, slug: str, params: BKTParams | None = None) -> float:
        if slug in self.concepts:
            return self.concepts[slug].p_known
        return (params or BKTParams()).p_init

    def to_blob(self) -> str:
        return json.dumps(
            {"v": STATE_VERSION, "c": {k: [round(s.p_known, 6), s.attempts, s.correct, s.last_seen]
                                       for k, s in self.concepts.items()}},
            separators=(",", ":"),
        )

    @classmethod
    def from_blob(cls, blob: str | None) -> KnowledgeState:
        if not blob:
            return cls()
        data = json.loads(blob)
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"knowledge state blob has version {data.get('v')!r}, expected {STATE_VERSION}")
        return cls(concepts={k: ConceptState(p_known=v[0], attempts=v[1], correct=v[2], last_seen=v[3])
                             for k, v in data["c"].items()})


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def p_correct(p_known: float, params: BKTParams, difficulty: float = 0.0) -> float:
    """P(next answer correct). `difficulty` shifts the BKT prediction on the logit scale (0 = average item)."""
    base = p_known * (1.0 - params.p_slip) + (1.0 - p_known) * params.p_guess
    if difficulty == 0.0:
        return base
    return _sigmoid(_logit(base) - difficulty)


def posterior(p_known: float, correct: bool, params: BKTParams, weight: float = 1.0) -> float:
    """P(known | this answer), before the learning transition.

    `weight` in [0, 1] discounts weak evidence (an answer given after hints, a guess before the lesson):
    0 leaves the belief unchanged, 1 is a full observation.
    """
    if correct:
        num = p_known * (1.0 - params.p_slip)
        den = num + (1.0 - p_known) * params.p_guess
    else:
        num = p_known * params.p_slip
        den = num + (1.0 - p_known) * (1.0 - params.p_guess)
    full = num / den if den > 0 else p_known
    return p_known + weight * (full - p_known)


def clamp_known(p: float) -> float:
    """P(known) within the margin (see `P_KNOWN_MARGIN`)."""
    return min(max(p, P_KNOWN_MARGIN), 1.0 - P_KNOWN_MARGIN)


def observe(state: KnowledgeState, slug: str, correct: bool, params: BKTParams,
            *, weight: float = 1.0, learn: bool = True, at: float | None = None) -> ConceptState:
    """Update one concept with one graded answer and return its new state."""
    cs = state.concept(slug, params)
    p = posterior(clamp_known(cs.p_known), correct, params, weight)  # clamped too: states saved before the margin
    if learn:
        p = p * (1.0 - params.p_forget) + (1.0 - p) * params.p_learn
    cs.p_known = clamp_known(p)
    cs.attempts += 1
    cs.correct += int(correct)
    if at is not None:
        cs.last_seen = at
    return cs
