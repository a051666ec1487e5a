"""Placement: a short adaptive diagnostic at enrolment that uses the prerequisite graph.

Belief over the student's whole knowledge state is a cloud of weighted particles (full knowledge states)
drawn from a prior in which a concept is known with its `p_init` only if all its prerequisites are known,
and with `leak * p_init` otherwise; a per-student ability shifts every p_init on the logit scale. So
knowing a concept makes knowing its prerequisites likely, and failing one makes failing what depends on
it likely, without any hand-written propagation rule.

Each question goes to the concept whose answer carries the most expected information about the
knowledge state (mutual information between the answer and the particles); an answer reweights the
particles by its BKT likelihood (guess/slip, shifted by the item's difficulty).

The object is plain data the tutor persists (`to_dict` / `from_dict`): the settings, the seed and the
answers; the particles are redrawn from the seed. Django-free.

    placement = Placement(graph, params, max_questions=15)
    while (concept := placement.next_question()) is not None:   # None when done or stopped
        placement.record(concept, correct, difficulty=item.difficulty)
    knowledge = placement.seed_knowledge()                       # a KnowledgeState to start teaching from
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learner_model.knowledge import BKTParams, ConceptState, KnowledgeState, p_correct
from learner_model.select import ConceptNode

PLACEMENT_VERSION = 1


@dataclass(frozen=True)
class PlacementSettings:
    max_questions: int = 15  # the question budget
    n_particles: int = 4000  # knowledge states in the belief cloud
    leak: float = 0.15  # P(known) multiplier for a concept whose prerequisites are not all known
    ability_sd: float = 0.8  # sd of the student's logit shift of every p_init
    min_information: float = 0.02  # bits: stop when no question is worth this much
    clip: float = 0.02  # posteriors are kept in [clip, 1 - clip]: a diagnostic never proves anything outright
    seed: int = 0


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
        p_init = np.clip([self.params[s].p_init for s in self._slugs], 1e-4, 1 - 1e-4)
        self._base = np.log(p_init) - np.log1p(-p_init)  # (C,) logit p_init
        self._parents = [[self._index[p] for p in c.prerequisites if p in self._index] for c in ordered]
        self._children = [[d for d in range(len(ordered)) if c in self._parents[d]] for c in range(len(ordered))]
        self._particles, self._ability = _prior_particles(ordered, tuple(p_init), self.settings.leak,
                                                          self.settings.ability_sd, self.settings.n_particles,
                                                          self.settings.seed)  # (M, C) bool, (M,)
        self._log_w = np.zeros(self.settings.n_particles)
        self._loglik = np.zeros((2, len(ordered)))  # log P(answers on c | c unknown / known)
        replay, self.answers = self.answers, []
        for concept, correct, difficulty in replay:
            self.record(concept, correct, difficulty=difficulty)

    # --- the protocol the tutor calls ---------------------------------------------------------------

    @property
    def asked(self) -> int:
        return len(self.answers)

    @property
    def done(self) -> bool:
        return self.stopped or self.asked >= self.settings.max_questions or self._best_question()[0] is None

    def next_question(self) -> str | None:
        """The concept to ask about next, or None when the diagnostic is over."""
        if self.stopped or self.asked >= self.settings.max_questions:
            return None
        return self._best_question()[0]

    def record(self, concept: str, correct: bool, *, difficulty: float = 0.0) -> None:
        if concept not in self._index:
            raise KeyError(f"unknown concept {concept!r}; the course has: {', '.join(self._slugs)}")
        self.answers.append((concept, bool(correct), float(difficulty)))
        self._reweight(concept, bool(correct), float(difficulty))
        if 1.0 / np.sum(self._weights() ** 2) < self.settings.n_particles / 2:
            self._resample_move()

    def stop(self) -> None:
        """The student chose to stop; the tutor works with what it has."""
        self.stopped = True

    def posterior(self) -> dict[str, float]:
        """P(known) per concept given the answers so far."""
        w = self._weights()
        p = np.clip(w @ self._particles, self.settings.clip, 1 - self.settings.clip)
        return {s: float(p[i]) for i, s in enumerate(self._slugs)}

    def seed_knowledge(self, state: KnowledgeState | None = None) -> KnowledgeState:
        """A KnowledgeState whose beliefs start at the placement posterior (attempts stay 0)."""
        state = state or KnowledgeState()
        for slug, p in self.posterior().items():
            state.concepts[slug] = ConceptState(p_known=p)
        return state

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {"v": PLACEMENT_VERSION, "answers": [list(a) for a in self.answers], "stopped": self.stopped,
                "settings": {"max_questions": s.max_questions, "n_particles": s.n_particles, "leak": s.leak,
                             "ability_sd": s.ability_sd, "min_information": s.min_information, "clip": s.clip,
                             "seed": s.seed}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], graph: Sequence[ConceptNode],
                  params: Mapping[str, BKTParams]) -> Placement:
        if data.get("v") != PLACEMENT_VERSION:
            raise ValueError(f"placement has version {data.get('v')!r}, expected {PLACEMENT_VERSION}")
        return cls(graph=graph, params=params, settings=PlacementSettings(**data["settings"]),
                   answers=[(str(c), bool(k), float(d)) for c, k, d in data["answers"]], stopped=bool(data["stopped"]))

    # --- inference -----------------------------------------------------------------------------------

    def _weights(self) -> NDArray[np.float64]:
        w = np.exp(self._log_w - self._log_w.max())
        return np.asarray(w / w.sum())

    def _answer_probs(self, concept: str, difficulty: float = 0.0) -> tuple[float, float]:
        params = self.params[concept]
        return p_correct(1.0, params, difficulty), p_correct(0.0, params, difficulty)

    def _reweight(self, concept: str, correct: bool, difficulty: float) -> None:
        p_known, p_unknown = self._answer_probs(concept, difficulty)
        c = self._index[concept]
        log_known = np.log(p_known if correct else 1.0 - p_known)
        log_unknown = np.log(p_unknown if correct else 1.0 - p_unknown)
        self._loglik[:, c] += (log_unknown, log_known)
        self._log_w += np.where(self._particles[:, c], log_known, log_unknown)

    def _log_prior(self, c: int, value: NDArray[np.bool_], parents_known: NDArray[np.bool_],
                   ability: NDArray[np.float64]) -> NDArray[np.float64]:
        """(M,) log P(concept c = value | its prerequisites known or not, ability) under the graph prior."""
        p = 1.0 / (1.0 + np.exp(-(self._base[c] + ability)))
        p = np.where(parents_known, p, self.settings.leak * p)
        return np.asarray(np.log(np.where(value, p, 1.0 - p)))

    def _resample_move(self, sweeps: int = 2) -> None:
        """Resample the particles by weight, then Gibbs-sweep them toward the posterior given every answer.

        Without the move step a few thousand prior draws collapse onto a handful after ~10 answers and
        the marginals become noise. Seeded by the answer count, so a replay from `to_dict` is identical.
        """
        rng = np.random.default_rng([self.settings.seed, len(self.answers)])
        m, n_c = self._particles.shape
        positions = (rng.random() + np.arange(m)) / m  # systematic resampling
        pick = np.minimum(np.searchsorted(np.cumsum(self._weights()), positions), m - 1)
        known, ability = self._particles[pick].copy(), self._ability[pick].copy()
        yes, no = np.ones(m, dtype=bool), np.zeros(m, dtype=bool)
        for _ in range(sweeps):
            for c in range(n_c):
                # P(c | everything else) ∝ P(c | its prerequisites) · Π P(child | its prerequisites) · P(answers | c)
                ok = known[:, self._parents[c]].all(axis=1)
                log_yes = self._log_prior(c, yes, ok, ability) + self._loglik[1, c]
                log_no = self._log_prior(c, no, ok, ability) + self._loglik[0, c]
                for d in self._children[c]:
                    others_ok = known[:, [q for q in self._parents[d] if q != c]].all(axis=1)
                    log_yes += self._log_prior(d, known[:, d], others_ok, ability)
                    log_no += self._log_prior(d, known[:, d], no, ability)
                known[:, c] = rng.random(m) < 1.0 / (1.0 + np.exp(log_no - log_yes))
            if self.settings.ability_sd > 0:  # random-walk Metropolis on the ability
                proposal = ability + rng.normal(0.0, 0.3, m)
                log_ratio = (ability ** 2 - proposal ** 2) / (2 * self.settings.ability_sd ** 2)
                for c in range(n_c):
                    ok = known[:, self._parents[c]].all(axis=1)
                    log_ratio += (self._log_prior(c, known[:, c], ok, proposal)
                                  - self._log_prior(c, known[:, c], ok, ability))
                ability = np.where(np.log(rng.random(m)) < log_ratio, proposal, ability)
        self._particles, self._ability = known, ability
        self._log_w = np.zeros(m)

    def _best_question(self) -> tuple[str | None, float]:
        """The unasked concept whose answer is expected to tell most (bits) about the whole course's marginals.

        The score is the expected drop in the summed entropy of every concept's P(known): through the
        particles, an answer about one concept also moves its prerequisites and dependants.
        """
        asked = {c for c, _, _ in self.answers}
        candidates = [i for i, s in enumerate(self._slugs) if s not in asked]
        if not candidates:
            return None, 0.0
        w = self._weights()  # (M,)
        q = np.array([self._answer_probs(self._slugs[i]) for i in candidates])  # (K, 2): P(correct | known, unknown)
        bits = self._particles[:, candidates]  # (M, K)
        lik = np.where(bits, q[:, 0], q[:, 1])  # (M, K) P(correct | particle)
        particles = self._particles.astype(float)
        p_right = w @ lik  # (K,)
        after_right = ((w[:, None] * lik).T @ particles) / p_right[:, None]  # (K, C) marginals if correct
        after_wrong = ((w[:, None] * (1 - lik)).T @ particles) / (1 - p_right)[:, None]
        now = _entropy(w @ particles).sum()
        expected = p_right * _entropy(after_right).sum(axis=1) + (1 - p_right) * _entropy(after_wrong).sum(axis=1)
        gain = now - expected
        best = int(np.argmax(gain))
        if gain[best] < self.settings.min_information:
            return None, float(gain[best])
        return self._slugs[candidates[best]], float(gain[best])


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


def _entropy(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.asarray(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))


@lru_cache(maxsize=8)
def _prior_particles(graph: tuple[ConceptNode, ...], p_init: tuple[float, ...], leak: float, ability_sd: float,
                     n: int, seed: int) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """(n, C) knowledge states and (n,) abilities drawn from the graph prior.

    Cached (read-only) because every student of a course starts from the same draw.
    """
    rng = np.random.default_rng(seed)
    index = {c.slug: i for i, c in enumerate(graph)}
    base = np.log(np.clip(p_init, 1e-4, 1 - 1e-4)) - np.log1p(-np.clip(p_init, 1e-4, 1 - 1e-4))
    ability = rng.normal(0.0, ability_sd, size=(n, 1))
    p = 1.0 / (1.0 + np.exp(-(base[None, :] + ability)))  # (n, C)
    u = rng.random(p.shape)
    known = np.zeros(p.shape, dtype=bool)
    for i, concept in enumerate(graph):
        prereqs = [index[q] for q in concept.prerequisites if q in index]
        ok = known[:, prereqs].all(axis=1) if prereqs else np.ones(n, dtype=bool)
        known[:, i] = u[:, i] < np.where(ok, p[:, i], leak * p[:, i])
    known.setflags(write=False)
    ability = ability[:, 0]
    ability.setflags(write=False)
    return known, ability
