"""Simulated students: a population with hidden knowledge, to test teaching policies against a known truth.

Each simulated student has, per concept: whether the concept is *learned* (hidden), a learning rate,
a memory stability and the time of the last practice. Per concept the course has guess and slip rates.
The population's distributions come from `learner_model/sim_population.json`, fitted on real data by
`benchmarks/fit_sim_population.py` (per-skill BKT parameters on ASSISTments 2009).

What a simulated student does when asked an item of concept c with difficulty d at time t (days):
  1. Retrieval: a learned concept is recalled with probability R(t - last, S) (the FSRS-6 power-law
     forgetting curve, FSRS default parameters: ASSISTments 2009 has no timestamps, so forgetting
     cannot be fitted on it).
  2. Answer: P(correct) = sigmoid(logit(1 - slip if recalled else guess) - d - penalty), where
     `penalty` applies while any prerequisite of c is not yet learned (answers are worse).
  3. Learning: an unlearned concept becomes learned with probability p_learn (times
     `prereq_learn_factor` while a prerequisite is unlearned). A learned concept's stability grows on a
     successful recall (more when spaced, FSRS-6 recall formula) or shrinks on a lapse.

Knowledge at enrolment is consistent with the graph: a concept is known with its p_init (shifted by the
student's ability) only if all its prerequisites are known, and with `leak` times that otherwise.

The simulator never looks at a policy's beliefs; every policy faces the same hidden population
(`Population`, drawn from one seed) and a fresh copy of its mutable state (`Classroom`).
Django-free; vectorised over students with numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from learner_model.knowledge import BKTParams
from learner_model.placement import Placement, PlacementSettings
from learner_model.policy import CourseModel, LearnerState, Policy, TeachingSettings, diagnostic_item
from learner_model.review import ReviewSchedule
from learner_model.select import ConceptNode, ItemChoice

POPULATION_FILE = Path(__file__).with_name("sim_population.json")

# FSRS-6 default parameters (fsrs 6.x `DEFAULT_PARAMETERS`), fitted by the FSRS authors on Anki review logs.
FSRS_W = (0.212, 1.2931, 2.3065, 8.2956, 6.4133, 0.8334, 3.0194, 0.001, 1.8722, 0.1666, 0.796,
          1.4835, 0.0614, 0.2629, 1.6483, 0.6014, 1.8729, 0.5425, 0.0912, 0.0658, 0.1542)
_DECAY = FSRS_W[20]
_FACTOR = 0.9 ** (-1.0 / _DECAY) - 1.0
_MEMORY_DIFFICULTY = 5.0  # FSRS difficulty on its 1..10 scale; one middle value for every concept


def retrievability(elapsed_days: NDArray[np.float64] | float, stability: NDArray[np.float64] | float
                   ) -> NDArray[np.float64]:
    """FSRS-6 forgetting curve: P(recall) after `elapsed_days` for a memory of `stability` days (R = 0.9 at t = S)."""
    t = np.maximum(np.asarray(elapsed_days, dtype=float), 0.0)
    return np.asarray((1.0 + _FACTOR * t / np.asarray(stability, dtype=float)) ** -_DECAY)


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _logit(p: NDArray[np.float64] | float) -> NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


# --- the population's distributions ------------------------------------------------------------------


@dataclass(frozen=True)
class PopulationParams:
    """Distributions a simulated population is drawn from. Quantile lists are inverse CDFs at even steps."""

    p_init: tuple[float, ...]  # per-concept P(known at enrolment | prerequisites known), quantiles
    p_learn: tuple[float, ...]  # per-concept P(learn) per practice opportunity, quantiles
    p_guess: tuple[float, ...]
    p_slip: tuple[float, ...]
    ability_sd: float = 0.8  # sd of a student's logit shift of p_init (prior knowledge varies by student)
    learn_rate_sd: float = 0.5  # sd of a student's logit shift of p_learn
    leak: float = 0.15  # P(known at enrolment) multiplier when a prerequisite is unknown
    prereq_learn_factor: float = 0.3  # p_learn multiplier while a prerequisite is unlearned
    prereq_answer_penalty: float = 1.0  # logit penalty on answers while a prerequisite is unlearned
    item_difficulty_sd: float = 0.7  # sd (logits) of item difficulty within a concept, when no item_banks
    # per real skill: 11 quantiles (min to max) of its problems' Rasch difficulties; a concept takes one skill's
    item_banks: tuple[tuple[float, ...], ...] = ()
    prior_stability_days: float = 20.0  # memory stability of concepts known at enrolment
    source: str = "provisional"  # where the quantiles came from

    @classmethod
    def load(cls, path: Path | str = POPULATION_FILE) -> PopulationParams:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        q = data["quantiles"]
        return cls(p_init=tuple(q["p_init"]), p_learn=tuple(q["p_learn"]), p_guess=tuple(q["p_guess"]),
                   p_slip=tuple(q["p_slip"]), ability_sd=float(data.get("ability_sd", 0.8)),
                   item_difficulty_sd=float(data.get("item_difficulty_sd", 0.7)),
                   leak=float(data.get("leak", 0.15)),
                   prereq_learn_factor=float(data.get("prereq_learn_factor", 0.3)),
                   prereq_answer_penalty=float(data.get("prereq_answer_penalty", 1.0)),
                   item_banks=tuple(tuple(float(x) for x in b) for b in data.get("item_banks", ())),
                   source=str(data.get("source", "unknown")))


def _draw(quantiles: Sequence[float], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse-CDF sampling from a quantile list taken at evenly spaced probabilities."""
    grid = np.linspace(0.0, 1.0, len(quantiles))
    return np.asarray(np.interp(u, grid, np.asarray(quantiles, dtype=float)))


# --- the course ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimCourse:
    """A synthetic course: concepts in a prerequisite DAG, an item bank, and per-concept parameters."""

    nodes: tuple[ConceptNode, ...]
    items: tuple[ItemChoice, ...]  # difficulties as the tutor knows them (estimates)
    true_difficulty: dict[str, float]  # item id -> the simulator's difficulty
    params: dict[str, BKTParams]  # per-concept BKT parameters a tutor would have fitted on earlier cohorts
    p_init: NDArray[np.float64]  # (C,)
    p_learn: NDArray[np.float64]  # (C,)

    @property
    def slugs(self) -> list[str]:
        return [n.slug for n in self.nodes]

    def model(self, settings: TeachingSettings | None = None) -> CourseModel:
        """What a tutor knows about this course: graph, items with estimated difficulty, fitted parameters."""
        return CourseModel(graph=self.nodes, items=self.items, params=self.params,
                           settings=settings or TeachingSettings(after_mastery="practise_weakest"))


def make_course(n_concepts: int = 50, *, seed: int = 0, items_per_concept: int = 10,
                population: PopulationParams | None = None, difficulty_noise: float = 0.3) -> SimCourse:
    """A random DAG in authored (topological) order with an item bank whose difficulties spread around 0.

    With fitted `item_banks` (the default population), each concept takes the problems of one real
    ASSISTments 2009 skill (drawn at random): its items sit at evenly spaced quantiles from the skill's
    easiest to its hardest problem (Rasch difficulties, centred on the skill's median problem). Without
    them, at evenly spaced quantiles of N(0, item_difficulty_sd).
    Concept i takes 1-3 prerequisites among the 8 concepts before it (about one in eight is a root),
    which gives long chains like a real syllabus. The tutor sees each item's difficulty with
    `difficulty_noise` logits of estimation error.
    """
    pop = population or PopulationParams.load()
    rng = np.random.default_rng(seed)
    nodes: list[ConceptNode] = []
    for i in range(n_concepts):
        if i == 0 or rng.random() < 0.12:
            prereqs: list[int] = []
        else:
            window = list(range(max(0, i - 8), i))
            k = min(len(window), int(rng.choice([1, 1, 2, 2, 3])))
            prereqs = sorted(int(p) for p in rng.choice(window, size=k, replace=False))
        nodes.append(ConceptNode(slug=f"c{i:02d}", title=f"Concept {i}", prerequisites=tuple(f"c{p:02d}" for p in prereqs),
                                 order=i))
    p_init = _draw(pop.p_init, rng.random(n_concepts))
    p_learn = np.maximum(_draw(pop.p_learn, rng.random(n_concepts)), 0.01)
    guess = np.maximum(_draw(pop.p_guess, rng.random(n_concepts)), 0.02)
    slip = _draw(pop.p_slip, rng.random(n_concepts))
    # BKT needs guess + slip < 1; a real fit can come close, so keep a margin
    slip = np.minimum(slip, 0.95 - guess)
    items: list[ItemChoice] = []
    true_difficulty: dict[str, float] = {}
    normal = NormalDist(0.0, pop.item_difficulty_sd)
    ladders = [[normal.inv_cdf((j + 0.5) / items_per_concept) for j in range(items_per_concept)]] * n_concepts
    if pop.item_banks:
        levels = np.linspace(0.0, 1.0, items_per_concept)
        ladders = [list(np.interp(levels, np.linspace(0.0, 1.0, len(bank)), bank))
                   for bank in (pop.item_banks[k] for k in rng.integers(len(pop.item_banks), size=n_concepts))]
    for node, ladder in zip(nodes, ladders, strict=True):
        for j, base in enumerate(ladder):
            d = float(base)
            item_id = f"{node.slug}-i{j}"
            true_difficulty[item_id] = d
            items.append(ItemChoice(id=item_id, concept=node.slug,
                                    difficulty=round(d + float(rng.normal(0.0, difficulty_noise)), 3)))
    params = {n.slug: BKTParams(p_init=float(p_init[i]), p_learn=float(p_learn[i]), p_guess=float(guess[i]),
                                p_slip=float(slip[i]))
              for i, n in enumerate(nodes)}
    return SimCourse(nodes=tuple(nodes), items=tuple(items), true_difficulty=true_difficulty, params=params,
                     p_init=p_init, p_learn=p_learn)


# --- the students -------------------------------------------------------------------------------------


@dataclass
class Population:
    """The hidden truth about n students in one course; immutable once drawn."""

    course: SimCourse
    pop: PopulationParams
    known0: NDArray[np.bool_]  # (S, C) learned at enrolment
    p_learn: NDArray[np.float64]  # (S, C)
    guess: NDArray[np.float64]  # (C,)
    slip: NDArray[np.float64]  # (C,)
    prereq_mask: NDArray[np.bool_]  # (C, C) [c, p] = p is a prerequisite of c
    seed: int
    ability: NDArray[np.float64]  # (S,) logit shift of every p_init (only bounds and diagnostics read it)

    @property
    def n_students(self) -> int:
        return int(self.known0.shape[0])


def make_population(course: SimCourse, n_students: int, *, seed: int = 0,
                    population: PopulationParams | None = None) -> Population:
    pop = population or PopulationParams.load()
    rng = np.random.default_rng(seed)
    index = {n.slug: i for i, n in enumerate(course.nodes)}
    n_c = len(course.nodes)
    prereq_mask = np.zeros((n_c, n_c), dtype=bool)
    for i, node in enumerate(course.nodes):
        for p in node.prerequisites:
            prereq_mask[i, index[p]] = True
    ability = rng.normal(0.0, pop.ability_sd, size=(n_students, 1))
    rate = rng.normal(0.0, pop.learn_rate_sd, size=(n_students, 1))
    p_known = _sigmoid(_logit(course.p_init)[None, :] + ability)  # (S, C)
    p_learn = _sigmoid(_logit(course.p_learn)[None, :] + rate)  # (S, C)
    u = rng.random((n_students, n_c))
    known0 = np.zeros((n_students, n_c), dtype=bool)
    for c in range(n_c):  # authored order is topological, so prerequisites are decided first
        prereqs_known = known0[:, prereq_mask[c]].all(axis=1)
        known0[:, c] = u[:, c] < np.where(prereqs_known, p_known[:, c], pop.leak * p_known[:, c])
    guess = np.array([course.params[n.slug].p_guess for n in course.nodes])
    slip = np.array([course.params[n.slug].p_slip for n in course.nodes])
    return Population(course=course, pop=pop, known0=known0, p_learn=p_learn, guess=guess, slip=slip,
                      prereq_mask=prereq_mask, seed=seed, ability=ability[:, 0])


@dataclass
class Classroom:
    """The mutable hidden state of a population during one policy's run; start each run with `fresh`."""

    population: Population
    learned: NDArray[np.bool_]  # (S, C)
    stability: NDArray[np.float64]  # (S, C) days
    last: NDArray[np.float64]  # (S, C) day of the last practice (or enrolment)
    rng: np.random.Generator
    difficulty: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fresh(cls, population: Population, *, seed: int = 0) -> Classroom:
        shape = population.known0.shape
        return cls(population=population, learned=population.known0.copy(),
                   stability=np.full(shape, population.pop.prior_stability_days),
                   last=np.zeros(shape), rng=np.random.default_rng(seed),
                   difficulty=dict(population.course.true_difficulty))

    def prereqs_learned(self, students: NDArray[np.int64], concepts: NDArray[np.int64]) -> NDArray[np.bool_]:
        mask = self.population.prereq_mask[concepts]  # (n, C)
        return np.asarray(~(mask & ~self.learned[students]).any(axis=1))

    def p_correct(self, students: NDArray[np.int64], concepts: NDArray[np.int64], difficulty: NDArray[np.float64],
                  now: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Expected P(correct) under the hidden state, recall marginalised (used to score challenge levels)."""
        pop = self.population
        recall = self.learned[students, concepts] * retrievability(
            np.asarray(now) - self.last[students, concepts], self.stability[students, concepts])
        shift = -difficulty - pop.pop.prereq_answer_penalty * ~self.prereqs_learned(students, concepts)
        p_known_answer = _sigmoid(_logit(1 - pop.slip[concepts]) + shift)
        p_unknown_answer = _sigmoid(_logit(pop.guess[concepts]) + shift)
        return np.asarray(recall * p_known_answer + (1 - recall) * p_unknown_answer)

    def answer(self, students: NDArray[np.int64], concepts: NDArray[np.int64], items: Sequence[str],
               now: NDArray[np.float64] | float, *, learn: bool = True) -> NDArray[np.bool_]:
        """Students answer one item each at time `now` (days); returns correctness and applies learning.

        `learn=False` is a diagnostic question without feedback: memory and knowledge are left untouched.
        """
        pop = self.population
        students = np.asarray(students, dtype=np.int64)
        concepts = np.asarray(concepts, dtype=np.int64)
        now_arr = np.broadcast_to(np.asarray(now, dtype=float), students.shape)
        d = np.array([self.difficulty[i] for i in items])
        learned = self.learned[students, concepts]
        r = retrievability(now_arr - self.last[students, concepts], self.stability[students, concepts])
        recalled = learned & (self.rng.random(len(students)) < r)
        prereq_ok = self.prereqs_learned(students, concepts)
        shift = -d - pop.pop.prereq_answer_penalty * ~prereq_ok
        base = np.where(recalled, 1 - pop.slip[concepts], pop.guess[concepts])
        correct = self.rng.random(len(students)) < _sigmoid(_logit(base) + shift)
        if not learn:
            return np.asarray(correct)
        p_learn = pop.p_learn[students, concepts] * np.where(prereq_ok, 1.0, pop.pop.prereq_learn_factor)
        newly = ~learned & (self.rng.random(len(students)) < p_learn)
        s = self.stability[students, concepts]
        self.stability[students, concepts] = np.where(
            newly, FSRS_W[2],  # a fresh memory: FSRS's initial stability for a "good" first review
            np.where(recalled, _recall_stability(s, r), np.where(learned, _lapse_stability(s, r), s)))
        self.learned[students, concepts] = learned | newly
        self.last[students, concepts] = now_arr
        return np.asarray(correct)

    def retention(self, now: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per student: the expected share of the course's concepts recalled at `now` (S,) days."""
        r = retrievability(np.asarray(now)[:, None] - self.last, self.stability)
        return np.asarray((self.learned * r).mean(axis=1))

    def mastered_share(self) -> NDArray[np.float64]:
        return np.asarray(self.learned.mean(axis=1))


def _recall_stability(s: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
    """FSRS-6 stability after a successful recall: spaced recalls (low r) grow the memory most."""
    w = FSRS_W
    return np.asarray(s * (1 + math.exp(w[8]) * (11 - _MEMORY_DIFFICULTY) * s ** -w[9]
                           * (np.exp((1 - r) * w[10]) - 1)))


def _lapse_stability(s: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
    """FSRS-6 stability after a lapse (the student had forgotten and is shown the answer)."""
    w = FSRS_W
    long_term = w[11] * _MEMORY_DIFFICULTY ** -w[12] * ((s + 1) ** w[13] - 1) * np.exp((1 - r) * w[14])
    return np.asarray(np.maximum(np.minimum(long_term, s), 0.1))


# --- running a policy on a population ----------------------------------------------------------------

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # enrolment day of every simulated student


@dataclass
class RunResult:
    """What one policy achieved on one population. Arrays are per student unless noted."""

    name: str
    items: NDArray[np.int64]  # items answered (placement questions included) until the course was truly learned
    reached: NDArray[np.bool_]  # the hidden state reached "every concept learned" within the item cap
    correct: NDArray[np.int64]  # practice answers that were correct
    practice: NDArray[np.int64]  # practice items (placement excluded)
    in_band_predicted: NDArray[np.int64]  # practice items whose predicted P(correct) was in the band
    in_band_true: NDArray[np.int64]  # practice items whose hidden expected P(correct) was in the band
    band_possible: NDArray[np.int64]  # practice items where the bank had an item predicted in the band
    reviews: NDArray[np.int64]  # practice items the policy labelled "review"
    retention: NDArray[np.float64]  # share of the course recalled `retention_delay` days after mastery
    placement_questions: NDArray[np.int64]
    placement_accuracy: NDArray[np.float64]  # (S, budget + 1) share of concepts classified right after k questions
    learned_curve: NDArray[np.float32]  # (max_items + 1,) mean share of concepts learned after n items
    # the stop a student actually sees: items (placement included) until the policy's own beliefs say the course is
    # mastered (`tutor_says_mastered`); practice goes on past the hidden-truth stop until then, or to the item cap
    items_to_declared: NDArray[np.int64]
    declared: NDArray[np.bool_]  # the policy declared the course mastered within the item cap
    hidden_share_at_declared: NDArray[np.float64]  # share of concepts truly learned at that moment (at the cap if not)
    # the same counts on practice items of a concept the student had not learned when asked (where learning happens)
    practice_unlearned: NDArray[np.int64]
    in_band_predicted_unlearned: NDArray[np.int64]
    in_band_true_unlearned: NDArray[np.int64]


def tutor_says_mastered(state: LearnerState, course: CourseModel, now: datetime) -> bool:
    """What `policy.next_step` treats as the end of the course with `after_mastery="stop"`: every concept's BKT
    P(known) is at the mastery threshold and no review is due (only ours schedules reviews)."""
    mastery = course.settings.mastery
    if any(state.knowledge.mastery(slug, params) < mastery for slug, params in course.params.items()):
        return False
    return not state.reviews.due(now)


def run_placement(room: Classroom, course: CourseModel, settings: PlacementSettings
                  ) -> tuple[list[Placement], NDArray[np.float64]]:
    """Every student takes the diagnostic at enrolment (time 0; questions teach nothing).

    Returns the finished placements and the (S, budget + 1) share of concepts classified right
    (posterior >= 0.5 against the hidden knowledge at enrolment) after k questions.
    """
    diagnostics, accuracy, _ = _diagnose(room, course, settings)
    return diagnostics, accuracy


def _diagnose(room: Classroom, course: CourseModel, settings: PlacementSettings
              ) -> tuple[list[Placement], NDArray[np.float64], list[list[str]]]:
    """`run_placement`, and each student's diagnostic items in the order asked."""
    population = room.population
    n_s = population.n_students
    index = {s: i for i, s in enumerate(population.course.slugs)}
    budget = settings.max_questions
    accuracy = np.zeros((n_s, budget + 1))
    diagnostics = [Placement(course.graph, course.params, settings) for _ in range(n_s)]
    truth = population.known0[:, [index[c.slug] for c in course.graph]]
    shown: list[list[str]] = [[] for _ in range(n_s)]
    for k in range(budget + 1):
        active: list[int] = []
        concepts: list[str] = []
        for s, diag in enumerate(diagnostics):
            post = diag.posterior()
            accuracy[s, k] = np.mean(np.array([post[c.slug] >= 0.5 for c in course.graph]) == truth[s])
            if diag.asked == k and (concept := diag.next_question()) is not None:
                active.append(s)
                concepts.append(concept)
        if not active:
            accuracy[:, k + 1:] = accuracy[:, k:k + 1]
            break
        # a concept asked again gets the best separating item not shown yet (as a tutor would)
        items = [diagnostic_item([i for i in course.items_by_concept[c] if i.id not in shown[s]], c, course.params[c])
                 for s, c in zip(active, concepts, strict=True)]
        answers = room.answer(np.array(active), np.array([index[c] for c in concepts]), [i.id for i in items],
                              0.0, learn=False)
        for s, concept, item, ok in zip(active, concepts, items, answers, strict=True):
            diagnostics[s].record(concept, bool(ok), difficulty=item.difficulty)
            shown[s].append(item.id)
    return diagnostics, accuracy, shown


def simulate_policy(population: Population, policy: Policy, course: CourseModel, *,
                    placement: PlacementSettings | None = None, seed: int = 0, items_per_day: int = 30,
                    max_items: int = 3000, retention_delay: float = 30.0,
                    on_start: Callable[[Classroom, list[LearnerState]], None] | None = None) -> RunResult:
    """Run every student of `population` through `policy` until their hidden state has learned every concept.

    Students move in lockstep, one item each per round, so the simulator's draws are vectorised; each
    student's clock is `items answered / items_per_day` days since enrolment. With `placement`, each
    student first takes the adaptive diagnostic (questions count as items; they teach nothing).

    Every figure but the `*declared` ones is measured at that hidden-truth stop. Then a student whose policy
    has not yet declared the course mastered (`tutor_says_mastered`) keeps practising until it does, or to
    `max_items`: this overtime runs after the main loop, so it draws nothing the main loop's figures depend on.

    `on_start(room, states)` is called once the hidden classroom and every student's `LearnerState` exist (after
    placement). Only clairvoyant reference policies use it (benchmarks/policy_sim.py's bounds): a real policy never
    sees the hidden state.
    """
    room = Classroom.fresh(population, seed=seed)
    n_s = population.n_students
    index = {s: i for i, s in enumerate(population.course.slugs)}
    count = np.zeros(n_s, dtype=np.int64)

    def now_of(s: int) -> datetime:
        return EPOCH + timedelta(days=float(count[s]) / items_per_day)

    if placement is not None:
        diagnostics, accuracy, diagnosed = _diagnose(room, course, placement)
        asked = np.array([d.asked for d in diagnostics], dtype=np.int64)
        count += asked
        states = [LearnerState.from_placement(d, course, now_of(s), asked=diagnosed[s]) for s, d in enumerate(diagnostics)]
    else:
        asked = np.zeros(n_s, dtype=np.int64)
        accuracy = np.zeros((n_s, 1))
        states = [LearnerState(reviews=ReviewSchedule(desired_retention=course.settings.review_retention))
                  for _ in range(n_s)]

    if on_start is not None:
        on_start(room, states)
    done: NDArray[np.bool_] = np.asarray(room.learned.all(axis=1))
    learned = np.zeros((n_s, max_items + 1), dtype=np.float32)  # share learned after n items, per student
    for s in range(n_s):
        learned[s, :None if done[s] else count[s] + 1] = room.learned[s].mean()
    finished_at = np.where(done, count, -1)
    declared_at = np.full(n_s, -1, dtype=np.int64)
    share_at_declared = np.zeros(n_s)

    def note_declared(s: int) -> None:
        if declared_at[s] < 0 and tutor_says_mastered(states[s], course, now_of(s)):
            declared_at[s] = count[s]
            share_at_declared[s] = room.learned[s].mean()

    tally = {k: np.zeros(n_s, dtype=np.int64) for k in ("correct", "practice", "band_p", "band_t", "band_ok", "reviews",
                                                        "unlearned", "unlearned_band_p", "unlearned_band_t")}
    lo, hi = course.settings.band
    while True:
        active = [s for s in range(n_s) if not done[s] and count[s] < max_items]
        if not active:
            break
        steps = []
        for s in active:
            note_declared(s)
            step = policy.next_step(states[s], now_of(s))
            if step.concept is None or step.item is None:
                raise RuntimeError(f"policy {policy.name!r} stopped before the course was learned; "
                                   "simulate with TeachingSettings(after_mastery='practise_weakest')")
            steps.append(step)
        act = np.array(active)
        concept_idx = np.array([index[st.concept] for st in steps if st.concept is not None])
        item_ids = [st.item for st in steps if st.item is not None]
        when = count[act] / items_per_day
        p_true = room.p_correct(act, concept_idx, np.array([room.difficulty[i] for i in item_ids]), when)
        unlearned = ~room.learned[act, concept_idx]
        answers = room.answer(act, concept_idx, item_ids, when)
        share = room.learned[act].mean(axis=1)
        for s, step, ok, pt, sh, new in zip(active, steps, answers, p_true, share, unlearned, strict=True):
            policy.record(states[s], step, bool(ok), now_of(s))
            count[s] += 1
            tally["practice"][s] += 1
            tally["correct"][s] += int(ok)
            tally["band_p"][s] += int(step.in_band)
            tally["band_t"][s] += int(lo <= pt <= hi)
            tally["band_ok"][s] += int(step.band_possible)
            tally["reviews"][s] += int(step.kind == "review")
            tally["unlearned"][s] += int(new)
            tally["unlearned_band_p"][s] += int(new and step.in_band)
            tally["unlearned_band_t"][s] += int(new and lo <= pt <= hi)
            learned[s, count[s]] = sh
            if sh == 1.0:
                done[s] = True
                finished_at[s] = count[s]
                learned[s, count[s]:] = 1.0
    items = np.where(done, finished_at, max_items)
    retention = room.retention(items / items_per_day + retention_delay)

    while True:  # overtime: practice the hidden truth no longer needs, until the policy declares mastery
        active = [s for s in range(n_s) if declared_at[s] < 0 and count[s] < max_items]
        for s in active:
            note_declared(s)
        active = [s for s in active if declared_at[s] < 0]
        if not active:
            break
        steps = [policy.next_step(states[s], now_of(s)) for s in active]
        act = np.array(active)
        answers = room.answer(act, np.array([index[st.concept] for st in steps if st.concept is not None]),
                              [st.item for st in steps if st.item is not None], count[act] / items_per_day)
        for s, step, ok in zip(active, steps, answers, strict=True):
            policy.record(states[s], step, bool(ok), now_of(s))
            count[s] += 1
    declared = declared_at >= 0
    share_at_declared[~declared] = room.learned[~declared].mean(axis=1)  # at the cap
    return RunResult(name=policy.name, items=items, reached=done, correct=tally["correct"],
                     practice=tally["practice"], in_band_predicted=tally["band_p"], in_band_true=tally["band_t"],
                     band_possible=tally["band_ok"],
                     reviews=tally["reviews"], retention=retention, placement_questions=asked,
                     placement_accuracy=accuracy, learned_curve=learned.mean(axis=0),
                     items_to_declared=np.where(declared, declared_at, max_items), declared=declared,
                     hidden_share_at_declared=share_at_declared, practice_unlearned=tally["unlearned"],
                     in_band_predicted_unlearned=tally["unlearned_band_p"],
                     in_band_true_unlearned=tally["unlearned_band_t"])
