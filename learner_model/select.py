"""What to teach next, v0: the ready-to-learn fringe of the prerequisite graph and the item in the band.

Inputs are plain data: the course graph as `ConceptNode`s, candidate items as `ItemChoice`s, a
`KnowledgeState`, BKT parameters (one shared `BKTParams` or one per concept). Outputs carry a one-line
reason the student can read. The full teaching policy (placement, review, registry of baselines) builds on
these in `learner_model/policy.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from learner_model.knowledge import BKTParams, KnowledgeState, p_correct


@dataclass(frozen=True)
class ConceptNode:
    slug: str
    title: str
    prerequisites: tuple[str, ...] = ()
    order: int = 0  # authored (textbook) order, used to break ties


@dataclass(frozen=True)
class ItemChoice:
    id: str
    concept: str
    difficulty: float = 0.0  # logit shift; 0 = average


@dataclass(frozen=True)
class Decision:
    concept: str | None
    reason: str


@dataclass(frozen=True)
class ItemDecision:
    item: str
    p_correct: float
    in_band: bool


def assessable_graph(graph: Sequence[ConceptNode], assessable: set[str]) -> tuple[ConceptNode, ...]:
    """The graph of the concepts that have items to practise. A concept without items can never be shown to be
    known, so it would block everything after it: it is left out, and what needed it needs its prerequisites
    instead (transitively, through any chain of such concepts)."""
    by_slug = {c.slug: c for c in graph}
    expanded: dict[str, tuple[str, ...]] = {}

    def through(slug: str, seen: frozenset[str]) -> tuple[str, ...]:
        """`slug` itself if assessable, else the assessable concepts it rests on."""
        if slug in assessable or slug not in by_slug:
            return (slug,) if slug in assessable else ()
        if slug not in expanded:
            found: list[str] = []
            for prereq in by_slug[slug].prerequisites:
                if prereq not in seen:
                    found.extend(p for p in through(prereq, seen | {slug}) if p not in found)
            expanded[slug] = tuple(found)
        return expanded[slug]

    kept = []
    for c in graph:
        if c.slug not in assessable:
            continue
        prereqs: list[str] = []
        for prereq in c.prerequisites:
            prereqs.extend(p for p in through(prereq, frozenset({c.slug})) if p not in prereqs and p != c.slug)
        kept.append(ConceptNode(c.slug, c.title, tuple(prereqs), c.order))
    return tuple(kept)


def params_for(params: BKTParams | Mapping[str, BKTParams], slug: str) -> BKTParams:
    """One concept's parameters from either one shared `BKTParams` or a per-concept mapping."""
    return params if isinstance(params, BKTParams) else params[slug]


def mastered_concepts(graph: Sequence[ConceptNode], state: KnowledgeState, mastery: float,
                      params: BKTParams | Mapping[str, BKTParams]) -> set[str]:
    return {c.slug for c in graph if state.mastery(c.slug, params_for(params, c.slug)) >= mastery}


def ready_concepts(graph: Sequence[ConceptNode], state: KnowledgeState, mastery: float,
                   params: BKTParams | Mapping[str, BKTParams]) -> list[ConceptNode]:
    """Unmastered concepts whose prerequisites are all mastered, in authored order.

    A prerequisite outside `graph` is treated as mastered (it belongs to another course).
    """
    mastered = mastered_concepts(graph, state, mastery, params)
    inside = {c.slug for c in graph}
    mastered |= {p for c in graph for p in c.prerequisites if p not in inside}
    return sorted((c for c in graph if c.slug not in mastered and all(p in mastered for p in c.prerequisites)),
                  key=lambda c: c.order)


def next_concept(graph: Sequence[ConceptNode], state: KnowledgeState, mastery: float,
                 params: BKTParams | Mapping[str, BKTParams], current: str | None = None) -> Decision:
    """Stay on the current concept until mastered; otherwise the first ready concept."""
    titles = {c.slug: c.title for c in graph}
    ready = ready_concepts(graph, state, mastery, params)
    if current and any(c.slug == current for c in ready):
        return Decision(current, f"Keep going with {titles[current]}: it isn't mastered yet.")
    if not ready:
        if len(mastered_concepts(graph, state, mastery, params)) == len(graph):
            return Decision(None, "You have mastered every concept in this course.")
        return Decision(None, "Nothing is ready to learn yet.")
    chosen = ready[0]
    if chosen.prerequisites:
        known = " and ".join(titles[p] for p in chosen.prerequisites)
        return Decision(chosen.slug, f"You're ready for {chosen.title} because you know {known}.")
    return Decision(chosen.slug, f"{chosen.title} needs nothing else first, so it is a good place to start.")


def choose_item(items: Sequence[ItemChoice], p_known: float, params: BKTParams,
                band: tuple[float, float] = (0.70, 0.85), exclude: frozenset[str] = frozenset(),
                predict: Callable[[ItemChoice], float] | None = None,
                rank: Mapping[str, int] | None = None) -> ItemDecision | None:
    """The item whose predicted P(correct) is nearest the target band (inside it when possible).

    The prediction is BKT's (`p_known` through the item's difficulty) unless `predict` gives another model's.
    `rank`: among items as near the band, the lowest ranked first (e.g. the one answered longest ago).
    """
    lo, hi = band
    mid = (lo + hi) / 2
    best: ItemDecision | None = None
    best_key: tuple[float, int, float] | None = None
    for item in items:
        if item.id in exclude:
            continue
        p = predict(item) if predict is not None else p_correct(p_known, params, item.difficulty)
        distance = 0.0 if lo <= p <= hi else min(abs(p - lo), abs(p - hi))
        key = (distance, rank.get(item.id, -1) if rank is not None else 0, abs(p - mid))
        if best_key is None or key < best_key:
            best, best_key = ItemDecision(item.id, p, lo <= p <= hi), key
    return best
