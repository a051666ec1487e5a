"""Placement: a short adaptive diagnostic at enrolment that uses the prerequisite graph.

Belief over the student's whole knowledge state is a large cloud of prior knowledge states, drawn once per
course and shared by every student, each weighted by the likelihood of the student's answers (importance
sampling; no per-student random draws). The prior is a knowledge space with a population-fitted base
rate: a concept is known with its `p_init` (shifted by a per-student ability on the logit scale) only if
all its prerequisites are known, and with `leak * p_init` otherwise. So knowing a concept makes knowing
its prerequisites likely, and failing one makes failing what depends on it likely, without any
hand-written propagation rule.

An answer's likelihood is BKT's (guess/slip) shifted by the item's difficulty, and answers are worse
while a prerequisite is unknown (`prereq_penalty` logits, as in the simulator). Each question goes to the
concept whose answer is expected to raise most the number of concepts classified right (plus a little
expected entropy drop, which breaks ties when no single answer would flip a classification). A concept
may be asked twice: an uncertain concept is often worth a second item more than a new one.

The object is plain data the tutor persists (`to_dict` / `from_dict`): the settings and the answers;
the weights are recomputed from the answers, which is cheap (one gather per answer). Django-free.

    placement = Placement(graph, params, PlacementSettings(max_questions=15))
    while (concept := placement.next_question()) is not None:   # None when done or stopped
        placement.record(concept, correct, difficulty=item.difficulty)
    knowledge = placement.seed_knowledge()                       # a KnowledgeState to start teaching from
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learner_model.knowledge import BKTParams, ConceptState, KnowledgeState
from learner_model.select import ConceptNode

PLACEMENT_VERSION = 2
CLOUD_SEED = 20260105  # the prior cloud is the course's, not the student's: every student shares one draw
# The next question is a deterministic function of the course (graph, parameters), the settings bar the seed, and
# the answers, so placements in the same state share one choice per process: many students give the same first
# answers, and `_best_question` is the costliest step of a placement answer.
NEXT_QUESTION_MEMO = 4096
_next_questions: OrderedDict[tuple[Any, ...], str | None] = OrderedDict()
_next_questions_lock = threading.Lock()  # a server process answers from several threads


@dataclass(frozen=True)
class PlacementSettings:
    max_questions: int = 15  # the question budget
    n_particles: int = 30000  # prior knowledge states in the belief cloud (drawn once per course)
    # the next three are the population's, fitted on ASSISTments 2009 (learner_model/sim_population.json)
    leak: float = 0.966  # P(known) multiplier for a concept whose prerequisites are not all known
    ability_sd: float = 2.49  # sd of the student's logit shift of every p_init (knowledge level)
    prereq_penalty: float = 0.153  # logits off an answer while one of the concept's prerequisites is unknown
    max_per_concept: int = 2  # questions about one concept (each a different item)
    entropy_weight: float = 0.1  # weight of the expected entropy drop (bits) next to expected accuracy gain
    min_information: float = 0.005  # stop when no question is expected to tell this much (bits)
    clip: float = 0.02  # posteriors are kept in [clip, 1 - clip]: a diagnostic never proves anything outright
    seed: int = 0  # kept for stored dicts and callers; the belief is deterministic given the answers


@dataclass(frozen=True)
class _Cloud:
    """The prior cloud of one course: M knowledge states over the C concepts (topological order)."""

    known: NDArray[np.float32]  # (M, C) 1.0 where the state knows the concept
    code: NDArray[np.int8]  # (M, C) 2 * known + all prerequisites known: indexes an answer's 4 likelihoods


@dataclass
class Placement:
    """An adaptive diagnostic in progress over a course's concept graph (any order; cycles are refused)."""

    graph: Sequence[ConceptNode]
    params: Mapping[str, BKTParams]
    settings: PlacementSettings = field(default_factory=PlacementSettings)
    answers: list[tuple[str, bool, float]] = field(default_factory=list)  # (concept, correct, difficulty)
    stopped: bool = False

    def __post_init__(self) -> None:
        ordered = _topological(self.graph)
        self._slugs = [c.slug for c in ordered]
        self._index = {s: i for i, s in enumerate(self._slugs)}
        s = self.settings
        self._guess = np.array([self.params[c].p_guess for c in self._slugs])  # (C,)
        self._slip = np.array([self.params[c].p_slip for c in self._slugs])
        p_init = tuple(float(np.clip(self.params[c].p_init, 1e-4, 1 - 1e-4)) for c in self._slugs)
        self._cloud = _prior_cloud(ordered, p_init, s.leak, s.ability_sd, s.n_particles)
        # everything the choice depends on but the answers (the seed is kept in stored dicts, never read)
        self._course_key = (ordered, p_init, tuple(self._guess), tuple(self._slip), replace(s, seed=0))
        self._log_w = np.zeros(s.n_particles)
        self._asked = np.zeros(len(ordered), dtype=np.int64)
        replay, self.answers = self.answers, []
        for concept, correct, difficulty in replay:
            self.record(concept, correct, difficulty=difficulty)

    # --- the protocol the tutor calls ---------------------------------------------------------------

    @property
    def asked(self) -> int:
        return len(self.answers)

    @property
    def done(self) -> bool:
        return self.next_question() is None

    def next_question(self) -> str | None:
        """The concept to ask about next, or None when the diagnostic is over."""
        if self.stopped or self.asked >= self.settings.max_questions:
            return None
        key = (self._course_key, tuple(self.answers))
        with _next_questions_lock:
            if key in _next_questions:
                _next_questions.move_to_end(key)
                return _next_questions[key]
        concept = self._best_question()[0]
        with _next_questions_lock:
            _next_questions[key] = concept
            if len(_next_questions) > NEXT_QUESTION_MEMO:
                _next_questions.popitem(last=False)
        return concept

    def record(self, concept: str, correct: bool, *, difficulty: float = 0.0) -> None:
        if concept not in self._index:
            raise KeyError(f"unknown concept {concept!r}; the course has: {', '.join(self._slugs)}")
        c = self._index[concept]
        self.answers.append((concept, bool(correct), float(difficulty)))
        p = self._p_right(c, float(difficulty))  # (4,)
        table = np.log(p if correct else 1.0 - p)
        self._log_w += table[self._cloud.code[:, c]]
        self._asked[c] += 1

    def stop(self) -> None:
        """The student chose to stop; the tutor works with what it has."""
        self.stopped = True

    def posterior(self) -> dict[str, float]:
        """P(known) per concept given the answers so far."""
        p = np.clip(self._marginals(), self.settings.clip, 1 - self.settings.clip)
        return {s: float(p[i]) for i, s in enumerate(self._slugs)}

    def seed_knowledge(self, state: KnowledgeState | None = None) -> KnowledgeState:
        """A KnowledgeState whose beliefs start at the placement posterior (attempts stay 0)."""
        state = state or KnowledgeState()
        for slug, p in self.posterior().items():
            state.concepts[slug] = ConceptState(p_known=p)
        return state

    def to_dict(self) -> dict[str, Any]:
        """Compact: the answers and the settings that differ from the defaults."""
        default = PlacementSettings()
        changed = {f.name: getattr(self.settings, f.name) for f in fields(PlacementSettings)
                   if getattr(self.settings, f.name) != getattr(default, f.name)}
        return {"v": PLACEMENT_VERSION, "answers": [[c, int(k), round(d, 4)] for c, k, d in self.answers],
                "stopped": self.stopped, "settings": changed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], graph: Sequence[ConceptNode],
                  params: Mapping[str, BKTParams]) -> Placement:
        """Restore a stored placement. A version-1 dict (particle filter) keeps its answers, budget and seed;
        its inference settings no longer exist and are replaced by today's defaults."""
        version = data.get("v")
        if version == 1:
            old = data["settings"]
            settings = PlacementSettings(max_questions=int(old["max_questions"]), seed=int(old.get("seed", 0)))
        elif version == PLACEMENT_VERSION:
            known = {f.name for f in fields(PlacementSettings)}
            unknown = set(data["settings"]) - known
            if unknown:
                raise ValueError(f"placement settings {sorted(unknown)} unknown; valid: {', '.join(sorted(known))}")
            settings = PlacementSettings(**data["settings"])
        else:
            raise ValueError(f"placement has version {version!r}, expected 1 or {PLACEMENT_VERSION}")
        return cls(graph=graph, params=params, settings=settings,
                   answers=[(str(c), bool(k), float(d)) for c, k, d in data["answers"]], stopped=bool(data["stopped"]))

    # --- inference -----------------------------------------------------------------------------------

    def _weights(self) -> NDArray[np.float64]:
        w = np.exp(self._log_w - self._log_w.max())
        return np.asarray(w / w.sum())

    def _marginals(self) -> NDArray[np.float64]:
        return np.asarray(self._weights().astype(np.float32) @ self._cloud.known, dtype=np.float64)  # (C,)

    def _p_right(self, c: int | NDArray[np.int64], difficulty: float = 0.0) -> NDArray[np.float64]:
        """P(correct) for code 0..3 = (unknown, prereqs missing), (unknown, ready), (known, missing), (known, ready).

        Shape (4,) for one concept, (K, 4) for an array of concepts.
        """
        guess, slip = np.atleast_1d(self._guess[c]), np.atleast_1d(self._slip[c])
        base = np.stack([guess, guess, 1 - slip, 1 - slip], axis=-1)  # (K, 4)
        shift = -difficulty - self.settings.prereq_penalty * np.array([1.0, 0.0, 1.0, 0.0])
        p: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(np.log(base / (1 - base)) + shift)))
        return p[0] if np.ndim(c) == 0 else p

    def _best_question(self, max_active: int = 3000) -> tuple[str | None, float]:
        """The concept whose answer is expected to classify most concepts right, and its expected entropy drop.

        Scored on the heaviest `max_active` states of the cloud (the rest carry next to no weight once a few
        answers are in), so one call costs about the same whatever the cloud's size.
        """
        candidates = np.flatnonzero(self._asked < self.settings.max_per_concept)
        if len(candidates) == 0:
            return None, 0.0
        w = self._weights()
        top = np.argpartition(-w, max_active)[:max_active] if len(w) > max_active else np.arange(len(w))
        w_top = (w[top] / w[top].sum()).astype(np.float32)  # (m,)
        known = self._cloud.known[top]  # (m, C)
        code = self._cloud.code[top][:, candidates].astype(np.int64)  # (m, K)
        p = self._p_right(candidates).astype(np.float32)  # (K, 4)
        lik = p[np.arange(len(candidates)), code]  # (m, K) P(correct | state)
        now = w_top @ known  # (C,)
        joint_right = (w_top[:, None] * lik).T @ known  # (K, C) P(correct, c known)
        p_right = np.clip(w_top @ lik, 1e-9, 1 - 1e-9)  # (K,)
        after_right = joint_right / p_right[:, None]
        after_wrong = (now[None, :] - joint_right) / (1 - p_right)[:, None]
        accuracy = p_right * _accuracy(after_right) + (1 - p_right) * _accuracy(after_wrong) - _accuracy(now)
        bits = _entropy(now).sum() - (p_right * _entropy(after_right).sum(axis=1)
                                      + (1 - p_right) * _entropy(after_wrong).sum(axis=1))
        score = accuracy + self.settings.entropy_weight * bits
        best = int(np.argmax(score))
        if bits[best] < self.settings.min_information:
            return None, float(bits[best])
        return self._slugs[int(candidates[best])], float(bits[best])


def _topological(graph: Sequence[ConceptNode]) -> tuple[ConceptNode, ...]:
    """The concepts with every prerequisite before its dependants, authored order kept where the graph allows."""
    by_slug = {c.slug: c for c in graph}
    placed: dict[str, ConceptNode] = {}
    remaining = list(graph)
    while remaining:
        ready = [c for c in remaining if all(p in placed or p not in by_slug for p in c.prerequisites)]
        if not ready:
            raise ValueError("prerequisite cycle among: " + ", ".join(c.slug for c in remaining))
        for c in ready:
            placed[c.slug] = c
        remaining = [c for c in remaining if c.slug not in placed]
    return tuple(placed.values())


def _entropy(p: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.asarray(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))


def _accuracy(p: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Expected number of concepts classified right when each is called known iff P(known) >= 0.5."""
    q = np.asarray(p, dtype=np.float64)
    return np.asarray(np.maximum(q, 1 - q).sum(axis=-1))


@lru_cache(maxsize=8)  # a 50-concept course's cloud is ~7.5 MB
def _prior_cloud(graph: tuple[ConceptNode, ...], p_init: tuple[float, ...], leak: float, ability_sd: float,
                 n: int) -> _Cloud:
    """n knowledge states drawn from the graph prior, in `graph` (topological) order.

    Cached (read-only) because every student of a course starts from the same draw; drawing 30,000 states of a
    50-concept course takes ~30 ms once per process.
    """
    rng = np.random.default_rng(CLOUD_SEED)
    index = {c.slug: i for i, c in enumerate(graph)}
    base = np.log(np.asarray(p_init)) - np.log1p(-np.asarray(p_init))
    ability = rng.normal(0.0, ability_sd, size=(n, 1))
    p = 1.0 / (1.0 + np.exp(-(base[None, :] + ability)))  # (n, C)
    u = rng.random(p.shape)
    known = np.zeros(p.shape, dtype=bool)
    ready = np.ones(p.shape, dtype=bool)
    for i, concept in enumerate(graph):
        prereqs = [index[q] for q in concept.prerequisites if q in index]
        if prereqs:
            ready[:, i] = known[:, prereqs].all(axis=1)
        known[:, i] = u[:, i] < np.where(ready[:, i], p[:, i], leak * p[:, i])
    cloud = _Cloud(known=known.astype(np.float32), code=(2 * known + ready).astype(np.int8))
    cloud.known.setflags(write=False)
    cloud.code.setflags(write=False)
    return cloud
