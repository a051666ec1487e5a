"""Placement: an adaptive diagnostic over the prerequisite graph, checked against simulated hidden truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learner_model.knowledge import BKTParams
from learner_model.placement import Placement, PlacementSettings
from learner_model.select import ConceptNode
from learner_model.simulate import Classroom, make_course, make_population, run_placement

CHAIN = (
    ConceptNode("a", "A", (), 0),
    ConceptNode("b", "B", ("a",), 1),
    ConceptNode("c", "C", ("b",), 2),
    ConceptNode("d", "D", ("c",), 3),
)
PARAMS = {c.slug: BKTParams(p_init=0.5, p_guess=0.15, p_slip=0.1) for c in CHAIN}
# a course whose knowledge follows its graph closely (the fitted ASSISTments default leak is ~1: no such structure)
SMALL = PlacementSettings(n_particles=4000, max_questions=3, leak=0.15, ability_sd=0.8)


def test_placement_stops_at_the_question_budget() -> None:
    course = make_course(30, seed=1)
    placement = Placement(course.nodes, course.params, PlacementSettings(max_questions=5, n_particles=500))
    asked = 0
    while (concept := placement.next_question()) is not None:
        placement.record(concept, asked % 2 == 0)
        asked += 1
    assert asked == 5
    assert placement.done


def test_student_can_stop_early_and_the_tutor_keeps_the_posterior() -> None:
    placement = Placement(CHAIN, PARAMS, SMALL)
    concept = placement.next_question()
    assert concept is not None
    placement.record(concept, True)
    placement.stop()
    assert placement.done and placement.next_question() is None
    knowledge = placement.seed_knowledge()
    assert set(knowledge.concepts) == {"a", "b", "c", "d"}


def test_knowing_a_concept_makes_its_prerequisites_likely_known() -> None:
    placement = Placement(CHAIN, PARAMS, SMALL)
    before = placement.posterior()
    placement.record("c", True)
    after = placement.posterior()
    assert after["a"] > before["a"] and after["b"] > before["b"]
    assert after["b"] > 0.5


def test_failing_a_concept_makes_what_depends_on_it_likely_unknown() -> None:
    placement = Placement(CHAIN, PARAMS, SMALL)
    before = placement.posterior()
    placement.record("b", False)
    after = placement.posterior()
    assert after["c"] < before["c"] and after["d"] < before["d"]
    assert after["d"] < 0.15


def test_placement_round_trips_through_json() -> None:
    placement = Placement(CHAIN, PARAMS, SMALL)
    placement.record("b", True)
    restored = Placement.from_dict(json.loads(json.dumps(placement.to_dict())), CHAIN, PARAMS)
    assert restored.posterior() == pytest.approx(placement.posterior())
    assert restored.next_question() == placement.next_question()


def test_a_stored_placement_stays_compact() -> None:
    course = make_course(50, seed=2)
    placement = Placement(course.nodes, course.params, PlacementSettings(max_questions=15, seed=7))
    for k in range(15):
        concept = placement.next_question()
        assert concept is not None
        placement.record(concept, k % 3 != 0, difficulty=0.123456)
    assert len(json.dumps(placement.to_dict())) < 600  # answers and non-default settings, no particles


def test_a_version_1_placement_keeps_its_answers_and_budget() -> None:
    old = {"v": 1, "answers": [["b", True, 0.0], ["d", False, 0.5]], "stopped": False,
           "settings": {"max_questions": 6, "n_particles": 4000, "leak": 0.15, "ability_sd": 0.8,
                        "min_information": 0.02, "clip": 0.02, "seed": 3}}
    restored = Placement.from_dict(old, CHAIN, PARAMS)
    assert restored.answers == [("b", True, 0.0), ("d", False, 0.5)]
    assert restored.settings.max_questions == 6 and restored.settings.seed == 3


def test_a_placement_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 9"):
        Placement.from_dict({"v": 9, "answers": [], "stopped": False, "settings": {}}, CHAIN, PARAMS)


def test_no_concept_is_asked_more_often_than_allowed() -> None:
    placement = Placement(CHAIN, PARAMS, PlacementSettings(max_questions=8, max_per_concept=2))
    while (concept := placement.next_question()) is not None:
        placement.record(concept, False)
    counts = {c: sum(1 for a, _, _ in placement.answers if a == c) for c in PARAMS}
    assert max(counts.values()) <= 2


def test_an_unknown_concept_is_refused_with_the_valid_ones() -> None:
    placement = Placement(CHAIN, PARAMS, SMALL)
    with pytest.raises(KeyError, match="the course has: a, b, c, d"):
        placement.record("z", True)


def test_graph_order_does_not_matter() -> None:
    shuffled = (CHAIN[2], CHAIN[0], CHAIN[3], CHAIN[1])
    a, b = Placement(CHAIN, PARAMS, SMALL), Placement(shuffled, PARAMS, SMALL)
    a.record("c", True)
    b.record("c", True)
    assert a.posterior() == pytest.approx(b.posterior())


@pytest.mark.slow
def test_placement_classifies_more_concepts_right_than_the_prior_alone() -> None:
    course = make_course(20, seed=3)
    population = make_population(course, 30, seed=4)
    _, accuracy = run_placement(Classroom.fresh(population, seed=5), course.model(),
                                PlacementSettings(max_questions=8, n_particles=400))
    mean = accuracy.mean(axis=0)
    assert mean[-1] > mean[0] + 0.05
    assert np.all(accuracy >= 0) and np.all(accuracy <= 1)


def test_seeded_beliefs_are_calibrated_against_the_hidden_truth() -> None:
    # among concepts seeded at P(known) ~ x, about x are truly known: the tutor starts teaching from honest beliefs
    course = make_course(15, seed=21)
    population = make_population(course, 300, seed=22)
    pop = population.pop
    settings = PlacementSettings(max_questions=5, n_particles=5000, leak=pop.leak, ability_sd=pop.ability_sd,
                                 prereq_penalty=pop.prereq_answer_penalty)
    diagnostics, _ = run_placement(Classroom.fresh(population, seed=23), course.model(), settings)
    seeded = np.array([[d.seed_knowledge().mastery(s) for s in course.slugs] for d in diagnostics])  # (S, C)
    truth = population.known0
    bins = np.minimum((seeded * 5).astype(int), 4)
    for b in np.unique(bins):
        in_bin = bins == b
        if in_bin.sum() >= 200:
            assert truth[in_bin].mean() == pytest.approx(seeded[in_bin].mean(), abs=0.07)  # BKT p_init: off by 0.14
