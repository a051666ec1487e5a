"""Review scheduling for mastered concepts, by the FSRS forgetting model (the `fsrs` package).

One FSRS card per mastered concept. A card is started when the concept is mastered (or placed out of),
each review answer rates it (correct = Good, wrong = Again), and a concept is due when FSRS says its
predicted retention has dropped to the course's target (`desired_retention`). Plain data: `to_dict` /
`from_dict` round-trip through JSON. Django-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fsrs import Card, Rating, Scheduler

# A concept is due for review when its predicted recall falls to this: FSRS's own default, which in simulation keeps
# as much a month on as a policy that never lets a concept go (benchmarks/RESULTS.md, Teaching policy).
DEFAULT_RETENTION = 0.90


def make_scheduler(desired_retention: float = DEFAULT_RETENTION) -> Scheduler:
    # No intra-day learning steps: a concept arrives here already mastered, and a lapse sends it back to the
    # tutor's own practice loop, not to 10-minute relearning steps. No fuzzing, so schedules are reproducible.
    return Scheduler(desired_retention=desired_retention, learning_steps=(), relearning_steps=(),
                     enable_fuzzing=False)


@dataclass
class ReviewSchedule:
    """The FSRS cards of one student, by concept slug."""

    desired_retention: float = DEFAULT_RETENTION
    cards: dict[str, Card] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._scheduler = make_scheduler(self.desired_retention)

    def start(self, concept: str, at: datetime, *, strong: bool = False) -> None:
        """Begin scheduling a newly mastered concept. `strong`: known before the course (placement)."""
        if concept in self.cards:
            return
        # an explicit id: fsrs otherwise derives one from the clock and sleeps 1 ms to keep ids unique
        card, _ = self._scheduler.review_card(Card(card_id=len(self.cards) + 1), Rating.Easy if strong else Rating.Good, at)
        self.cards[concept] = card

    def record(self, concept: str, correct: bool, at: datetime) -> None:
        """A review answer: FSRS grows the memory's stability on success and shrinks it on a lapse."""
        card = self.cards.get(concept)
        if card is None:
            return
        self.cards[concept], _ = self._scheduler.review_card(card, Rating.Good if correct else Rating.Again, at)

    def bring_forward(self, concept: str, at: datetime, share: float) -> None:
        """Make a concept due sooner: only `share` (0-1) of the time left until its review remains. A student who
        could not explain every key idea of a concept sees it again before FSRS alone would bring it back."""
        card = self.cards.get(concept)
        if card is None or card.due <= at:
            return
        share = min(max(share, 0.0), 1.0)
        card.due = at + (card.due - at) * share

    def retrievability(self, concept: str, at: datetime) -> float:
        """P(recall) now; 1.0 for a concept that is not scheduled."""
        card = self.cards.get(concept)
        return 1.0 if card is None else float(self._scheduler.get_card_retrievability(card, at))

    def due(self, at: datetime) -> list[str]:
        """Concepts whose predicted retention has fallen to the target, most overdue first."""
        return sorted((c for c, card in self.cards.items() if card.due <= at), key=lambda c: (self.cards[c].due, c))

    def days_since(self, concept: str, at: datetime) -> float:
        card = self.cards.get(concept)
        if card is None or card.last_review is None:
            return 0.0
        return (at - card.last_review).total_seconds() / 86400.0

    def to_dict(self) -> dict[str, Any]:
        return {"retention": self.desired_retention, "cards": {c: card.to_dict() for c, card in self.cards.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewSchedule:
        return cls(desired_retention=float(data["retention"]),
                   cards={c: Card.from_dict(d) for c, d in data["cards"].items()})
