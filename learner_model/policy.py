"""Teaching policies: what a student does next (learn a concept, review one, or stop), and why.

A policy is a plain object with two calls, the same for the live tutor and for the simulated students of
`learner_model/simulate.py`:

    step = policy.next_step(state, now)        # Step(kind, concept, item, p_correct, in_band, reason)
    policy.record(state, step, correct, now, hints_used=0, guess_first=False)

`state` is a `LearnerState` (knowledge beliefs, review cards, the concept in progress, recent items)
that round-trips through `to_dict` / `from_dict`. Policies hold no per-student data, so one instance
serves every student of a course. Choose one by name with `make_policy`; an unknown name raises.

Intended call sequence for the tutor (services in `tutor/`, persisting `LearnerState.to_dict()`):
  1. Enrolment: `placement = Placement(course.graph, course.params)` (learner_model/placement.py);
     persist `placement.to_dict()`.
  2. Each placement question: `concept = placement.next_question()`; show
     `item = diagnostic_item(course.items, concept, course.params[concept])`;
     `placement.record(concept, correct, difficulty=item.difficulty)`.
     When it returns None (budget spent, nothing worth asking) or the student clicks "skip the rest"
     (`placement.stop()`), start teaching:
     `state = LearnerState.from_placement(placement, course, now)`.
  3. Each practice turn: `step = policy.next_step(state, now)`; show `step.reason` and item `step.item`;
     grade it; `policy.record(state, step, correct, now, hints_used=..., guess_first=...)`;
     persist `state.to_dict()`. `step.kind == "done"`: the course is mastered and nothing is due.

Item choice and the prediction shown with it go through one interface, a `Predictor`: by default BKT
through the item's difficulty; when the tutor has refitted a model on its own attempt log
(`learner_model.online`), that model, wrapped by `LearnedPredictor`, predicts P(correct) for each candidate
item and is updated with every answer; its state is `LearnerState.model`. Mastery, the graph and review stay
on the per-concept BKT beliefs, which is what "mastered" means to the student and the teacher.

`TutorPolicy` ("ours") teaches only concepts whose prerequisites are mastered (or placed out of), picks
the item whose predicted P(correct) is inside the course's target band, interleaves a review when FSRS
says a mastered concept's retention has fallen to the target, and stops practice at mastery. Every policy
weighs evidence the same way: an answer counts through its item's difficulty (a correct answer to an easy
item says less), an answer after hints or guessed before the lesson counts less. The
baselines (`textbook`, `random_ready`, `lowest_mastery`) exist to measure it against
(`benchmarks/policy_sim.py`). Django-free.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from learner_model.knowledge import BKTParams, KnowledgeState, clamp_known, observe, p_correct, posterior
from learner_model.placement import Placement
from learner_model.review import DEFAULT_RETENTION, ReviewSchedule
from learner_model.select import ConceptNode, ItemChoice, choose_item, mastered_concepts, ready_concepts

if TYPE_CHECKING:
    from learner_model.online import OnlineModel

STATE_VERSION = 1
# Two ready concepts whose expected gain from one item differs by less than this share are taught in the course's
# order. A placement that asked nothing, or little, leaves beliefs that differ by a few thousandths through the graph
# alone: on the imported Introductory Statistics a student who skipped it was sent to concept 83 of 114 ("Full
# hypothesis test") before the course's first one.
NEAR_TIE = 0.05
AFTER_MASTERY = ("stop", "practise_weakest")
ANSWERED_KEPT = 5000  # items remembered as answered per student (a course of ~2,000 items fits)


@dataclass(frozen=True)
class TeachingSettings:
    band: tuple[float, float] = (0.70, 0.85)  # target P(correct) of a practice item
    mastery: float = 0.95  # P(known) at which practice on a concept stops
    review_retention: float = DEFAULT_RETENTION  # FSRS target retention: a review is due when predicted recall falls to it
    guess_first_weight: float = 0.5  # evidence weight of an answer guessed before the lesson
    hint_weight: float = 0.6  # evidence weight multiplier per hint used
    avoid_recent: int = 1  # never the last item again while the concept has another
    repeat_weight: float = 0.3  # evidence weight of an answer to an item whose worked solution the student has seen
    after_mastery: str = "stop"  # "stop", or "practise_weakest" (the simulator keeps going until hidden mastery)
    explanation_weight: float = 0.3  # evidence weight of a teach-back explanation: weaker than a guess or an item
    explanation_good: float = 0.8  # share of key ideas covered that counts as a good explanation
    explanation_review_floor: float = 0.25  # a poor explanation keeps at least this share of the time to review

    def __post_init__(self) -> None:
        if self.after_mastery not in AFTER_MASTERY:
            raise ValueError(f"after_mastery must be one of {', '.join(AFTER_MASTERY)}, got {self.after_mastery!r}")
        if not 0.0 < self.band[0] < self.band[1] < 1.0:
            raise ValueError(f"band must be (low, high) with 0 < low < high < 1, got {self.band!r}")


@dataclass(frozen=True)
class CourseModel:
    """What a policy knows about a course: the graph, the item bank and per-concept BKT parameters."""

    graph: tuple[ConceptNode, ...]
    items: tuple[ItemChoice, ...]
    params: Mapping[str, BKTParams]
    settings: TeachingSettings = TeachingSettings()
    # Items the course's own lesson works through (an imported concept's worked example is one of its items): every
    # student has seen their solution, so they come after the others. Not as weak evidence: where the concept has no
    # other item, that made a student answer its one question nine times (course_smoke on Intro Stats, "box-plot").
    worked: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        by_concept: dict[str, list[ItemChoice]] = {c.slug: [] for c in self.graph}
        for item in self.items:
            if item.concept not in by_concept:
                raise ValueError(f"item {item.id!r} belongs to {item.concept!r}, which is not in the course graph")
            by_concept[item.concept].append(item)
        object.__setattr__(self, "items_by_concept", {k: tuple(v) for k, v in by_concept.items()})
        object.__setattr__(self, "titles", {c.slug: c.title for c in self.graph})
        object.__setattr__(self, "nodes", {c.slug: c for c in self.graph})
        object.__setattr__(self, "item_params", {i.id: _item_params(self.params[i.concept], i.difficulty)
                                                 for i in self.items})

    items_by_concept: Mapping[str, tuple[ItemChoice, ...]] = field(init=False, repr=False, compare=False)
    titles: Mapping[str, str] = field(init=False, repr=False, compare=False)
    nodes: Mapping[str, ConceptNode] = field(init=False, repr=False, compare=False)
    item_params: Mapping[str, BKTParams] = field(init=False, repr=False, compare=False)  # evidence per item


def by_last_answer(items: Iterable[str]) -> list[str]:
    """Items in the order answered (repeats included) as `LearnerState.answered` keeps them: each once, in the order
    of its last answer (oldest first), at most `ANSWERED_KEPT` of the latest."""
    return list(reversed(dict.fromkeys(reversed(list(items)))))[-ANSWERED_KEPT:]


@dataclass
class LearnerState:
    """Everything a policy needs to remember about one student."""

    knowledge: KnowledgeState = field(default_factory=KnowledgeState)
    reviews: ReviewSchedule = field(default_factory=ReviewSchedule)
    current: str | None = None  # the concept being learned
    recent: list[str] = field(default_factory=list)  # last item ids, newest last
    # Items whose worked solution the student has seen (the tutor's page shows it after an answer): served again
    # only when the concept has nothing else, and then as weak evidence (`TeachingSettings.repeat_weight`).
    solved: list[str] = field(default_factory=list)
    # Every item answered, in the order of its last answer (oldest first): practice serves an item the student has
    # never answered before one they have, and of those the one answered longest ago, so that a concept with many
    # items is not two questions in turn (items in the band tie, and the nearest would always win).
    answered: list[str] = field(default_factory=list)
    model: str | None = None  # the learned predictor's state blob (`Predictor`), None for a new student
    model_version: int | None = None  # the predictor version that wrote `model`

    @classmethod
    def from_placement(cls, placement: Placement, course: CourseModel, now: datetime,
                       asked: Sequence[str] = ()) -> LearnerState:
        """Beliefs seeded from the diagnostic; concepts it places out of start their review schedule. `asked`: the
        diagnostic's items in the order answered, which practice then gives after the others (`answered`)."""
        state = cls(knowledge=placement.seed_knowledge(),
                    reviews=ReviewSchedule(desired_retention=course.settings.review_retention),
                    answered=by_last_answer(asked))
        placed_out = mastered_concepts(course.graph, state.knowledge, course.settings.mastery, course.params)
        for concept in course.graph:  # graph order, not set order: str hashes differ between processes
            if concept.slug in placed_out:
                state.reviews.start(concept.slug, now, strong=True)
        return state

    def to_dict(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "knowledge": self.knowledge.to_blob(), "reviews": self.reviews.to_dict(),
                "current": self.current, "recent": list(self.recent), "solved": list(self.solved),
                "answered": list(self.answered), "model": self.model, "model_version": self.model_version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnerState:
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"learner state has version {data.get('v')!r}, expected {STATE_VERSION}")
        return cls(knowledge=KnowledgeState.from_blob(data["knowledge"]),
                   reviews=ReviewSchedule.from_dict(data["reviews"]), current=data["current"],
                   recent=list(data["recent"]), solved=list(data.get("solved", [])),
                   answered=list(data.get("answered", [])), model=data.get("model"),
                   model_version=data.get("model_version"))


@dataclass(frozen=True)
class Step:
    kind: str  # "learn", "review" or "done"
    concept: str | None
    item: str | None
    p_correct: float | None  # the policy's prediction for this item
    in_band: bool
    reason: str  # one line the student can read
    band_possible: bool = False  # some item of the concept had a predicted P(correct) in the band
    repeat: bool = False  # the item's worked solution was seen already: the concept has no other item to give

    @classmethod
    def answered(cls, concept: str, item: str | None, *, kind: str = "learn", p_correct: float | None = None,
                 repeat: bool = False) -> Step:
        """The step an answer is recorded against (`record`), as the tutor served it; `item` None for a guess."""
        return cls(kind, concept, item, p_correct, in_band=False, reason="", repeat=repeat)


class Predictor(Protocol):
    """P(next answer correct) from a model with its own per-student state blob, in the course's ids."""

    version: int

    def predict_many(self, state: str | None, concept: str, items: Sequence[str]) -> Sequence[float]: ...

    def update(self, state: str | None, concept: str, item: str, correct: bool) -> str: ...


@dataclass(frozen=True)
class LearnedPredictor:
    """A refitted model's online form (`learner_model.online`), which knows concepts and items by integer id.

    `concept_ids` maps the course's concept slugs to the ids the model was fitted on; item ids are the
    course's item ids as integers. A concept or item the model never saw (-1 for a slug it has no id for)
    falls back to the model's "unseen" row.
    """

    model: OnlineModel
    concept_ids: Mapping[str, int]
    version: int

    def predict_many(self, state: str | None, concept: str, items: Sequence[str]) -> Sequence[float]:
        return [float(p) for p in self.model.predict_many(state, self.concept_ids.get(concept, -1),
                                                          [int(i) for i in items])]

    def update(self, state: str | None, concept: str, item: str, correct: bool) -> str:
        return self.model.update(state, self.concept_ids.get(concept, -1), int(item), correct)


class Policy(Protocol):
    name: str

    def next_step(self, state: LearnerState, now: datetime) -> Step: ...

    def record(self, state: LearnerState, step: Step, correct: bool, now: datetime, *,
               hints_used: int = 0, guess_first: bool = False) -> None: ...


def diagnostic_item(items: Sequence[ItemChoice], concept: str, params: BKTParams | None = None,
                    worked: frozenset[str] = frozenset()) -> ItemChoice:
    """The placement question for a concept: the item that best separates knowing it from not.

    P(correct | known) - P(correct | unknown) peaks at the difficulty halfway between logit(1 - slip) and
    logit(guess); without parameters, the item nearest average difficulty. An item the course's own pages work
    through (`worked`, as `CourseModel.worked`) is asked only when the concept has no other: its answer is on the
    concept's page for anyone to read.
    """
    candidates = [i for i in items if i.concept == concept]
    if not candidates:
        raise ValueError(f"concept {concept!r} has no items to ask")
    candidates = [i for i in candidates if i.id not in worked] or candidates
    target = 0.0 if params is None else (_logit(1.0 - params.p_slip) + _logit(params.p_guess)) / 2
    return min(candidates, key=lambda i: (abs(i.difficulty - target), i.id))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _item_params(params: BKTParams, difficulty: float) -> BKTParams:
    """The concept's BKT parameters as seen through one item: guess and slip shifted by its difficulty.

    A correct answer to an easy item says less than one to a hard item; without this, picking easy items
    for a struggling student would inflate their mastery estimate.
    """
    if difficulty == 0.0:
        return params
    return replace(params, p_guess=p_correct(0.0, params, difficulty), p_slip=1.0 - p_correct(1.0, params, difficulty))


# --- the shared machinery: BKT beliefs, mastery learning -------------------------------------------


class _MasteryLearning:
    """Practice a concept until BKT says it is mastered. Subclasses choose the concept and the item."""

    name = "abstract"
    reviews = False

    def __init__(self, course: CourseModel, *, seed: int = 0, predictor: Predictor | None = None) -> None:
        self.course = course
        self.settings = course.settings
        self.rng = random.Random(seed)
        self.predictor = predictor

    def _predictions(self, state: LearnerState, concept: str, p_known: float) -> dict[str, float]:
        """P(correct) on each item of `concept`: the learned predictor's when there is one (one batched call),
        else BKT's through each item's difficulty."""
        items = self.course.items_by_concept[concept]
        if self.predictor is not None:  # a state written by another model version is not this model's to read
            blob = state.model if state.model_version == self.predictor.version else None
            return dict(zip((i.id for i in items),
                            self.predictor.predict_many(blob, concept, [i.id for i in items]), strict=True))
        params = self.course.params[concept]
        return {i.id: p_correct(p_known, params, i.difficulty) for i in items}

    def _p_known(self, state: LearnerState, slug: str) -> float:
        return state.knowledge.mastery(slug, self.course.params[slug])

    def _beliefs(self, state: LearnerState) -> dict[str, float]:
        """P(known) of every concept in one pass (the hot path of the per-item policies)."""
        seen = state.knowledge.concepts
        return {s: seen[s].p_known if s in seen else p.p_init for s, p in self.course.params.items()}

    def _mastered(self, state: LearnerState, slug: str) -> bool:
        return self._p_known(state, slug) >= self.settings.mastery

    def _choose_concept(self, state: LearnerState, now: datetime) -> tuple[str, str, str] | None:
        """(kind, concept, reason), or None when every concept is mastered and nothing is due."""
        raise NotImplementedError

    def _choose_item(self, state: LearnerState, concept: str, p_known: float,
                     predictions: Mapping[str, float]) -> tuple[str, float, bool]:
        """A random item the student has not just seen (the baselines' rule)."""
        items = self.course.items_by_concept[concept]
        fresh = [i for i in items if i.id not in state.recent] or list(items)
        item = self.rng.choice(fresh)
        p = predictions[item.id]
        lo, hi = self.settings.band
        return item.id, p, lo <= p <= hi

    def _recall(self, state: LearnerState, concept: str, now: datetime) -> float:
        """P(still recalled | known): 1 unless the policy tracks forgetting."""
        return 1.0

    def _effective_p_known(self, state: LearnerState, concept: str, now: datetime) -> float:
        return self._p_known(state, concept) * self._recall(state, concept, now)

    def next_step(self, state: LearnerState, now: datetime) -> Step:
        choice = self._choose_concept(state, now)
        if choice is None:
            if self.settings.after_mastery == "stop":
                return Step("done", None, None, None, False, "You have mastered every concept in this course.")
            beliefs = self._beliefs(state)
            concept = min((c.slug for c in self.course.graph),
                          key=lambda s: (beliefs[s] * self._recall(state, s, now), self.course.nodes[s].order))
            choice = ("review", concept, f"Extra practice on {self.course.titles[concept]}, your least secure concept.")
        kind, concept, reason = choice
        p_known = self._effective_p_known(state, concept, now)
        predictions = self._predictions(state, concept, p_known)
        item, p, in_band = self._choose_item(state, concept, p_known, predictions)
        lo, hi = self.settings.band
        possible = in_band or any(lo <= q <= hi for q in predictions.values())
        return Step(kind, concept, item, p, in_band, reason, possible, repeat=item in state.solved)

    def record(self, state: LearnerState, step: Step, correct: bool, now: datetime, *,
               hints_used: int = 0, guess_first: bool = False) -> None:
        if step.concept is None:
            raise ValueError("a 'done' step has nothing to record")
        concept = step.concept
        params = self.course.item_params[step.item] if step.item is not None else self.course.params[concept]
        weight = (self.settings.guess_first_weight if guess_first else 1.0) * self.settings.hint_weight ** hints_used
        if step.repeat:
            weight *= self.settings.repeat_weight
        if step.kind == "review" and self.reviews:
            # A review answer is evidence through the forgetting curve: a concept still known is recalled with
            # FSRS's predicted retrievability R, else answered like an unknown one, so a lapse after a long gap
            # says "forgotten, review again" more than "never learned, teach it again".
            recall = state.reviews.retrievability(concept, now)
            recalled_correct = recall * (1.0 - params.p_slip) + (1.0 - recall) * params.p_guess
            params = replace(params, p_slip=1.0 - recalled_correct)
            state.reviews.record(concept, correct, now)
        # a guess before the lesson is evidence about prior knowledge, not a practice opportunity
        observe(state.knowledge, concept, correct, params, weight=weight, learn=not guess_first,
                at=now.timestamp())
        if self._mastered(state, concept):
            if self.reviews:
                state.reviews.start(concept, now)
            if state.current == concept:
                state.current = None
        if step.item is not None:
            state.recent = (state.recent + [step.item])[-self.settings.avoid_recent:]
            state.answered = [i for i in state.answered if i != step.item][-(ANSWERED_KEPT - 1):] + [step.item]
            if self.predictor is not None:
                self.model_observe(state, concept, step.item, correct)

    def record_explanation(self, state: LearnerState, concept: str, covered: float, now: datetime) -> None:
        """A scored teach-back explanation (`covered`: the share of key ideas it covered, contradicted ones not
        counted) as weak evidence. Covering most ideas counts like a right answer and anything less like a wrong
        one, at `explanation_weight`; it never takes a mastered concept below mastery on its own (items decide
        that), and an explanation that missed key ideas brings the concept's review forward in proportion."""
        cs = state.knowledge.concept(concept, self.course.params[concept])
        before = cs.p_known
        # Not `observe`: an explanation is no answered item, so attempt counts and the learning step stay out.
        after = posterior(clamp_known(before), covered >= self.settings.explanation_good, self.course.params[concept],
                          self.settings.explanation_weight)
        cs.p_known = clamp_known(max(after, self.settings.mastery) if before >= self.settings.mastery else after)
        if covered < 1.0:
            state.reviews.bring_forward(concept, now, max(covered, self.settings.explanation_review_floor))

    def model_observe(self, state: LearnerState, concept: str, item: str, correct: bool) -> None:
        """Count a graded answer in the learned predictor's state (placement answers come in here too)."""
        if self.predictor is None:
            return
        if state.model_version != self.predictor.version:
            state.model, state.model_version = None, self.predictor.version
        state.model = self.predictor.update(state.model, concept, item, correct)


# --- ours --------------------------------------------------------------------------------------------


class TutorPolicy(_MasteryLearning):
    """Graph-aware mastery learning with items in the target band and FSRS-scheduled review."""

    name = "ours"
    reviews = True

    def _recall(self, state: LearnerState, concept: str, now: datetime) -> float:
        return state.reviews.retrievability(concept, now)

    def _choose_concept(self, state: LearnerState, now: datetime) -> tuple[str, str, str] | None:
        titles = self.course.titles
        for concept in state.reviews.due(now):
            if self._mastered(state, concept):
                days = state.reviews.days_since(concept, now)
                return ("review", concept, f"Time to review {titles[concept]}: it has been {days:.0f} days, "
                        "and memory fades without practice.")
        # the concept in progress stays only while ready: a failed review can unmaster one of its prerequisites
        current = self.course.nodes.get(state.current) if state.current else None
        if current is not None and not self._mastered(state, current.slug) and all(
                self._mastered(state, p) for p in current.prerequisites if p in self.course.nodes):
            between = self._in_between(state, current.slug)
            if between is not None:
                return ("learn", between.slug, f"{between.title} comes in between: {titles[current.slug]} has no "
                        "question left but the one you just answered, so it comes back after this.")
            return ("learn", current.slug, self._keep_going(state, current.slug))
        ready = ready_concepts(self.course.graph, state.knowledge, self.settings.mastery, self.course.params)
        if not ready:
            return None
        chosen = self._most_to_learn(state, ready)
        state.current = chosen.slug
        if chosen.prerequisites:
            known = " and ".join(titles[p] for p in chosen.prerequisites if p in titles)
            return ("learn", chosen.slug, f"You're ready for {chosen.title} because you know {known}.")
        return ("learn", chosen.slug, f"{chosen.title} needs nothing else first, so it is a good place to start.")

    def _most_to_learn(self, state: LearnerState, ready: Sequence[ConceptNode]) -> ConceptNode:
        """The ready concept one item is most likely to teach: P(not known yet) x P(learned from one item); gains
        within NEAR_TIE of the best are a tie, which the course's own order breaks (first comes first)."""
        params = self.course.params
        gain = {c.slug: (1.0 - self._p_known(state, c.slug)) * params[c.slug].p_learn for c in ready}
        best = max(gain.values())
        return min((c for c in ready if gain[c.slug] >= best * (1.0 - NEAR_TIE)), key=lambda c: c.order)

    def _in_between(self, state: LearnerState, concept: str) -> ConceptNode | None:
        """Another ready concept to practise once, when the concept in progress has no item but the one just
        answered (an imported concept with a single question): the same question again at once tests memory of the
        answer, not the concept. The concept in progress stays so, and comes back after it. None when every item of
        the concept was not just answered, or no other concept is ready (then the question comes again, as before)."""
        items = self.course.items_by_concept.get(concept, ())
        if not items or not all(i.id in state.recent for i in items):
            return None
        others = [c for c in ready_concepts(self.course.graph, state.knowledge, self.settings.mastery,
                                            self.course.params) if c.slug != concept]
        return self._most_to_learn(state, others) if others else None

    def _keep_going(self, state: LearnerState, concept: str) -> str:
        # no percentage of its own: the page shows one mastery figure, the bar
        return (f"Keep going with {self.course.titles[concept]}: practice stops when your mastery reaches "
                f"{round(100 * self.settings.mastery)}%.")

    def _choose_item(self, state: LearnerState, concept: str, p_known: float,
                     predictions: Mapping[str, float]) -> tuple[str, float, bool]:
        def predict(item: ItemChoice) -> float:
            return predictions[item.id]

        items, params = self.course.items_by_concept[concept], self.course.params[concept]
        ids = {i.id for i in items}
        recent = frozenset(state.recent)
        shown = recent | frozenset(state.solved) | (self.course.worked & ids)  # a solution seen, or just answered
        age = {item: n for n, item in enumerate(i for i in state.answered if i in ids)}  # 0: answered longest ago
        # Nearest the band among: items never answered; items answered, the one answered longest ago first of those
        # as near; items whose solution was seen; at last the item just answered, rather than stall.
        for exclude in (shown | frozenset(age), shown, recent, frozenset()):
            decision = choose_item(items, p_known, params, band=self.settings.band, exclude=exclude, predict=predict,
                                   rank=age)
            if decision is not None:
                return decision.item, decision.p_correct, decision.in_band
        raise ValueError(f"concept {concept!r} has no items")


# --- baselines ---------------------------------------------------------------------------------------


class TextbookPolicy(_MasteryLearning):
    """Mastery learning in the authored order; no graph, no placement, no review."""

    name = "textbook"

    def _choose_concept(self, state: LearnerState, now: datetime) -> tuple[str, str, str] | None:
        if state.current and not self._mastered(state, state.current):
            return ("learn", state.current, f"{self.course.titles[state.current]} is next in the book.")
        for node in sorted(self.course.graph, key=lambda c: c.order):
            if not self._mastered(state, node.slug):
                state.current = node.slug
                return ("learn", node.slug, f"{node.title} is next in the book.")
        return None


class RandomReadyPolicy(_MasteryLearning):
    """A random concept among those whose prerequisites are mastered, practised to mastery."""

    name = "random_ready"

    def _choose_concept(self, state: LearnerState, now: datetime) -> tuple[str, str, str] | None:
        if state.current and not self._mastered(state, state.current):
            return ("learn", state.current, f"Keep going with {self.course.titles[state.current]}.")
        ready = ready_concepts(self.course.graph, state.knowledge, self.settings.mastery, self.course.params)
        if not ready:
            return None
        chosen = self.rng.choice(ready)
        state.current = chosen.slug
        return ("learn", chosen.slug, f"{chosen.title} is ready to learn.")


class LowestMasteryPolicy(_MasteryLearning):
    """OATutor / ASSISTments style: the unmastered skill with the lowest BKT mastery, re-chosen every item."""

    name = "lowest_mastery"

    def _choose_concept(self, state: LearnerState, now: datetime) -> tuple[str, str, str] | None:
        beliefs = self._beliefs(state)
        open_ = [c for c in self.course.graph if beliefs[c.slug] < self.settings.mastery]
        if not open_:
            return None
        chosen = min(open_, key=lambda c: (beliefs[c.slug], c.order))
        return ("learn", chosen.slug, f"{chosen.title} is your weakest skill.")


POLICIES: dict[str, type[_MasteryLearning]] = {
    p.name: p for p in (TutorPolicy, TextbookPolicy, RandomReadyPolicy, LowestMasteryPolicy)
}


def make_policy(name: str, course: CourseModel, *, seed: int = 0, predictor: Predictor | None = None) -> Policy:
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICIES)}") from None
    return cls(course, seed=seed, predictor=predictor)
