"""Teaching policy: ready concepts only, items in the band, review when memory fades, stop at mastery."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learner_model.knowledge import BKTParams, ConceptState, KnowledgeState, p_correct
from learner_model.placement import Placement, PlacementSettings
from learner_model.policy import (
    CourseModel,
    LearnerState,
    TeachingSettings,
    by_last_answer,
    diagnostic_item,
    make_policy,
)
from learner_model.review import ReviewSchedule
from learner_model.select import ConceptNode, ItemChoice, choose_item, next_concept, ready_concepts
from learner_model.simulate import make_course

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRAPH = (
    ConceptNode("frac", "Fractions", (), 0),
    ConceptNode("ratio", "Ratios", ("frac",), 1),
    ConceptNode("lin", "Linear equations", (), 2),
    ConceptNode("slope", "Slope", ("ratio", "lin"), 3),
)
PARAMS = {c.slug: BKTParams(p_init=0.2, p_learn=0.2, p_guess=0.2, p_slip=0.1) for c in GRAPH}
ITEMS = tuple(ItemChoice(f"{c.slug}-{k}", c.slug, d) for c in GRAPH for k, d in enumerate((-2.0, -1.0, 0.0, 1.0)))


def course(**overrides: object) -> CourseModel:
    return CourseModel(GRAPH, ITEMS, PARAMS, TeachingSettings(**overrides))  # type: ignore[arg-type]


def state_with(**p_known: float) -> LearnerState:
    return LearnerState(knowledge=KnowledgeState({s: ConceptState(p_known=p) for s, p in p_known.items()}))


def test_ours_never_offers_a_concept_whose_prerequisites_are_unmastered() -> None:
    sim = make_course(25, seed=2)
    model = sim.model()
    policy = make_policy("ours", model, seed=0)
    rng = random.Random(0)
    for _student in range(4):
        state = LearnerState()
        now = NOW
        for _ in range(300):
            step = policy.next_step(state, now)
            assert step.concept is not None
            if step.kind == "learn":
                for prereq in model.nodes[step.concept].prerequisites:
                    assert state.knowledge.mastery(prereq, model.params[prereq]) >= model.settings.mastery
            policy.record(state, step, rng.random() < 0.7, now)
            now += timedelta(minutes=30)


def test_prerequisites_placed_out_of_count_as_mastered() -> None:
    model = course()
    placement = Placement(GRAPH, PARAMS, PlacementSettings(n_particles=500, clip=0.0))
    state = LearnerState.from_placement(placement, model, NOW)
    for slug in ("frac", "ratio", "lin"):
        state.knowledge.concepts[slug].p_known = 0.99  # as if the diagnostic proved them known
    step = make_policy("ours", model).next_step(state, NOW)
    assert step.concept == "slope"
    assert step.reason == "You're ready for Slope because you know Ratios and Linear equations."


@settings(max_examples=60, deadline=None)
@given(p_known=st.floats(0.0, 0.94), difficulties=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=8))
def test_the_chosen_item_is_in_the_band_whenever_the_bank_has_one(p_known: float, difficulties: list[float]) -> None:
    items = tuple(ItemChoice(f"frac-{k}", "frac", d) for k, d in enumerate(difficulties))
    model = CourseModel(GRAPH, items, PARAMS, TeachingSettings(avoid_recent=0))
    step = make_policy("ours", model).next_step(state_with(frac=p_known, lin=0.99), NOW)
    assert step.concept == "frac" and step.item is not None
    lo, hi = model.settings.band
    predicted = [p_correct(p_known, PARAMS["frac"], d) for d in difficulties]
    assert step.in_band == any(lo <= p <= hi for p in predicted)
    assert step.p_correct == pytest.approx(predicted[int(step.item.split("-")[1])])


def _practise(model: CourseModel, state: LearnerState, answers: list[bool]) -> list[str]:
    """The items practice serves on `frac` for these answers (frac's beliefs pinned, so it stays the concept)."""
    policy, served = make_policy("ours", model), []
    for correct in answers:
        step = policy.next_step(state, NOW)
        assert step.concept == "frac" and step.item is not None
        served.append(step.item)
        policy.record(state, step, correct, NOW)
        state.knowledge.concepts["frac"].p_known = 0.5
    return served


def test_practice_serves_every_item_of_a_concept_before_any_comes_again() -> None:
    # An imported concept: 8 items of one difficulty, all in the band (they tie, and the first used to win: the
    # student got items 0 and 1 in turn, never the other six).
    items = tuple(ItemChoice(f"frac-{k}", "frac", 0.0) for k in range(8))
    model = CourseModel(GRAPH, items, PARAMS)
    served = _practise(model, state_with(frac=0.5, lin=0.99), [k % 3 == 0 for k in range(16)])
    assert sorted(served[:8]) == sorted(i.id for i in items)
    assert served[8:] == served[:8]  # then again, the one answered longest ago first


def test_an_item_the_student_answered_comes_after_one_they_never_saw_even_outside_the_band() -> None:
    items = (ItemChoice("frac-0", "frac", 0.0), ItemChoice("frac-1", "frac", 0.0), ItemChoice("frac-2", "frac", 3.0))
    model = CourseModel(GRAPH, items, PARAMS)
    state = state_with(frac=0.5, lin=0.99)
    assert _practise(model, state, [True, True, True]) == ["frac-0", "frac-1", "frac-2"]
    assert state.answered == ["frac-0", "frac-1", "frac-2"]


def test_the_diagnostics_items_come_after_the_others() -> None:
    items = tuple(ItemChoice(f"frac-{k}", "frac", 0.0) for k in range(3))
    model = CourseModel(GRAPH, items, PARAMS)
    placement = Placement(GRAPH, PARAMS, PlacementSettings(n_particles=500, clip=0.0))
    state = LearnerState.from_placement(placement, model, NOW, asked=["frac-0", "lin-0", "frac-0"])
    assert state.answered == ["lin-0", "frac-0"]  # each once, by its last answer
    state.knowledge.concepts["lin"] = ConceptState(p_known=0.99)
    state.knowledge.concepts["frac"] = ConceptState(p_known=0.5)
    assert _practise(model, state, [False, False, True]) == ["frac-1", "frac-2", "frac-0"]


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=12))
def test_the_answered_order_rebuilt_from_a_log_is_the_order_practice_keeps(log: list[str]) -> None:
    # `by_last_answer` rebuilds `LearnerState.answered` from the attempt log (a state saved before it was kept, the
    # diagnostic's items); it must equal what recording the answers one by one keeps.
    kept: list[str] = []
    for item in log:
        kept = [i for i in kept if i != item] + [item]
    assert by_last_answer(log) == kept


def test_the_item_the_lesson_works_through_comes_last_at_full_weight() -> None:
    items = tuple(ItemChoice(f"frac-{k}", "frac", 0.0) for k in range(3))
    model = CourseModel(GRAPH, items, PARAMS, worked=frozenset({"frac-0"}))
    state = state_with(frac=0.5, lin=0.99)
    assert _practise(model, state, [True, True]) == ["frac-1", "frac-2"]
    state.solved = ["frac-1", "frac-2"]  # their worked solutions were shown after the answers
    step = make_policy("ours", model).next_step(state, NOW)
    assert (step.item, step.repeat) == ("frac-0", False)  # the concept's only question may be the worked one


def test_practice_stops_at_mastery() -> None:
    model = course()
    policy = make_policy("ours", model)
    state = LearnerState()
    first = policy.next_step(state, NOW)
    for _ in range(30):
        step = policy.next_step(state, NOW)
        if step.concept != first.concept:
            break
        policy.record(state, step, True, NOW)
    assert state.knowledge.mastery(first.concept, PARAMS[first.concept]) >= 0.95
    assert policy.next_step(state, NOW).concept != first.concept


def test_a_review_is_interleaved_when_retention_drops() -> None:
    model = course()
    policy = make_policy("ours", model)
    state = state_with(frac=0.2, ratio=0.1, lin=0.1, slope=0.1)
    while state.knowledge.concepts["frac"].p_known < 0.95:
        policy.record(state, policy.next_step(state, NOW), True, NOW)
    assert "frac" in state.reviews.cards
    assert policy.next_step(state, NOW + timedelta(hours=1)).kind == "learn"
    later = NOW + timedelta(days=30)
    step = policy.next_step(state, later)
    assert (step.kind, step.concept) == ("review", "frac")
    assert step.reason.startswith("Time to review Fractions: it has been 30 days")
    policy.record(state, step, True, later)
    assert state.reviews.cards["frac"].due > later


def test_a_review_answer_is_read_through_the_forgetting_curve() -> None:
    model = course()
    policy = make_policy("ours", model)
    state = state_with(frac=0.2, ratio=0.1, lin=0.1, slope=0.1)
    while state.knowledge.concepts["frac"].p_known < 0.95:
        policy.record(state, policy.next_step(state, NOW), True, NOW)
    later = NOW + timedelta(days=30)
    remembered, lapsed = (LearnerState.from_dict(json.loads(json.dumps(state.to_dict()))) for _ in range(2))
    step = policy.next_step(remembered, later)
    assert (step.kind, step.concept) == ("review", "frac")
    policy.record(remembered, step, True, later)
    policy.record(lapsed, step, False, later)
    # recalled after 30 days: still mastered, no second round of practice before what depends on it
    assert remembered.knowledge.concepts["frac"].p_known >= 0.95
    # a lapse is mostly forgetting: it costs less belief than the same wrong answer with nothing to forget,
    # and FSRS brings the review back sooner
    fresh = state_with(frac=state.knowledge.concepts["frac"].p_known)
    policy.record(fresh, replace(step, kind="learn"), False, later)
    assert fresh.knowledge.concepts["frac"].p_known < lapsed.knowledge.concepts["frac"].p_known
    assert lapsed.reviews.cards["frac"].due < remembered.reviews.cards["frac"].due


def test_ours_starts_the_ready_concept_one_item_is_most_likely_to_teach() -> None:
    params = {**PARAMS, "lin": BKTParams(p_init=0.2, p_learn=0.05, p_guess=0.2, p_slip=0.1)}
    model = CourseModel(GRAPH, ITEMS, params, TeachingSettings())
    # frac and lin are both ready; lin is the less known, but frac is learned four times as fast per item
    assert make_policy("ours", model).next_step(state_with(frac=0.5, lin=0.3), NOW).concept == "frac"
    # same learning rates: the less known one
    assert make_policy("ours", course()).next_step(state_with(frac=0.5, lin=0.3), NOW).concept == "lin"


def test_ours_takes_nearly_equal_concepts_in_the_courses_order() -> None:
    # lin is known a little less (a placement that asked nothing leaves differences of this size): frac comes first
    assert make_policy("ours", course()).next_step(state_with(frac=0.24, lin=0.234), NOW).concept == "frac"
    assert make_policy("ours", course()).next_step(state_with(frac=0.234, lin=0.24), NOW).concept == "frac"


def test_a_student_who_skips_placement_starts_at_the_beginning_of_the_course() -> None:
    nodes = tuple(ConceptNode(f"c{k}", f"Concept {k}", (), k) for k in range(12))  # no graph: all ready at once
    params = {c.slug: PARAMS["frac"] for c in nodes}
    model = CourseModel(nodes, tuple(ItemChoice(f"{c.slug}-0", c.slug, 0.0) for c in nodes), params,
                        TeachingSettings())
    placement = Placement(nodes, params)
    placement.stop()
    state = LearnerState.from_placement(placement, model, NOW)
    assert make_policy("ours", model).next_step(state, NOW).concept == "c0"


def test_hints_and_guesses_before_the_lesson_count_as_weaker_evidence() -> None:
    model = course()
    policy = make_policy("ours", model)
    plain, hinted, guessed = (state_with(frac=0.4, lin=0.99) for _ in range(3))
    step = policy.next_step(plain, NOW)
    assert step.concept == "frac"
    policy.record(plain, step, True, NOW)
    policy.record(hinted, step, True, NOW, hints_used=2)
    policy.record(guessed, step, True, NOW, guess_first=True)
    assert plain.knowledge.concepts["frac"].p_known > hinted.knowledge.concepts["frac"].p_known > 0.4
    assert plain.knowledge.concepts["frac"].p_known > guessed.knowledge.concepts["frac"].p_known > 0.4


def test_a_finished_course_says_so() -> None:
    step = make_policy("ours", course()).next_step(state_with(frac=0.99, ratio=0.99, lin=0.99, slope=0.99), NOW)
    assert (step.kind, step.concept, step.item) == ("done", None, None)
    assert step.reason == "You have mastered every concept in this course."


def test_learner_state_round_trips_through_json() -> None:
    model = course()
    policy = make_policy("ours", model)
    state = LearnerState()
    for k in range(12):
        policy.record(state, policy.next_step(state, NOW), k % 3 != 0, NOW)
    restored = LearnerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.to_dict() == state.to_dict()
    later = NOW + timedelta(days=9)
    a, b = policy.next_step(restored, later), policy.next_step(state, later)
    assert (a.kind, a.concept, a.item, a.reason) == (b.kind, b.concept, b.item, b.reason)
    assert a.p_correct == pytest.approx(b.p_correct, abs=1e-5)  # beliefs are stored to 6 decimals


def test_an_unknown_policy_name_fails_loudly() -> None:
    with pytest.raises(ValueError, match="valid: ours, textbook, random_ready, lowest_mastery"):
        make_policy("greedy", course())


def test_baseline_lowest_mastery_ignores_the_graph() -> None:
    step = make_policy("lowest_mastery", course()).next_step(state_with(frac=0.5, ratio=0.4, lin=0.6, slope=0.05), NOW)
    assert step.concept == "slope"


def test_the_diagnostic_item_is_the_most_average_one() -> None:
    assert diagnostic_item(ITEMS, "ratio").id == "ratio-2"


def test_placement_asks_an_item_the_concept_s_page_works_through_only_when_there_is_no_other() -> None:
    ratio = [i.id for i in ITEMS if i.concept == "ratio"]
    assert diagnostic_item(ITEMS, "ratio", worked=frozenset({"ratio-2"})).id != "ratio-2"
    assert diagnostic_item(ITEMS, "ratio", worked=frozenset(ratio)).id == "ratio-2"  # all worked: as before


def test_select_v0_api_still_takes_one_shared_parameter_set() -> None:
    shared = BKTParams()
    state = KnowledgeState({"frac": ConceptState(p_known=0.97)})
    assert [c.slug for c in ready_concepts(GRAPH, state, 0.95, shared)] == ["ratio", "lin"]
    assert next_concept(GRAPH, state, 0.95, shared).concept == "ratio"
    assert choose_item(ITEMS[:4], 0.9, shared) is not None


def test_settings_refuse_an_unknown_after_mastery_rule() -> None:
    with pytest.raises(ValueError, match="stop, practise_weakest"):
        TeachingSettings(after_mastery="loop")


def test_reviews_due_together_come_in_a_fixed_order() -> None:
    # set and dict orders of str keys change between processes; a tie must not depend on them
    schedule = ReviewSchedule()
    for concept in ("slope", "frac", "lin"):
        schedule.start(concept, NOW)
    assert schedule.due(NOW + timedelta(days=60)) == ["frac", "lin", "slope"]
    restored = ReviewSchedule.from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert restored.due(NOW + timedelta(days=60)) == ["frac", "lin", "slope"]


class _TableModel:
    """A learned model stand-in: P(correct) from a fixed table per item, its state the answers seen so far."""

    version = 3

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def predict_many(self, state: str | None, concept: str, items: list[str]) -> list[float]:
        return [self.table[i] for i in items]

    def update(self, state: str | None, concept: str, item: str, correct: bool) -> str:
        return (state or "") + ("1" if correct else "0")


def test_with_a_learned_predictor_the_item_is_chosen_by_its_prediction_not_bkts() -> None:
    # BKT at p_known 0.2 would choose the easiest item (-2.0); the learned model says only frac-2 is in the band
    table = {i.id: 0.3 for i in ITEMS} | {"frac-2": 0.78}
    policy = make_policy("ours", course(), predictor=_TableModel(table))
    step = policy.next_step(state_with(frac=0.2), NOW)
    assert (step.item, step.p_correct, step.in_band) == ("frac-2", 0.78, True)


def test_every_recorded_answer_updates_the_learned_predictors_state() -> None:
    policy = make_policy("ours", course(), predictor=_TableModel({i.id: 0.5 for i in ITEMS}))
    state = state_with()
    for correct in (True, False, True):
        step = policy.next_step(state, NOW)
        policy.record(state, step, correct, NOW)
    assert (state.model, state.model_version) == ("101", 3)
    assert LearnerState.from_dict(json.loads(json.dumps(state.to_dict()))).model == "101"


def test_a_predictor_state_from_another_model_version_is_not_used() -> None:
    policy = make_policy("ours", course(), predictor=_TableModel({i.id: 0.5 for i in ITEMS}))
    state = state_with()
    state.model, state.model_version = "111", 2
    policy.model_observe(state, "frac", "frac-0", False)
    assert (state.model, state.model_version) == ("0", 3)


def test_a_concept_with_one_question_gets_another_concept_in_between_not_the_same_question_at_once() -> None:
    items = (ItemChoice("frac-only", "frac", 0.0),) + tuple(i for i in ITEMS if i.concept == "lin")
    model = CourseModel(GRAPH, items, PARAMS, TeachingSettings())
    policy = make_policy("ours", model)
    state = LearnerState()
    first = policy.next_step(state, NOW)
    assert (first.concept, first.item) == ("frac", "frac-only")
    policy.record(state, first, True, NOW)
    between = policy.next_step(state, NOW)
    assert between.concept == "lin" and between.item != "frac-only"
    assert between.reason.startswith("Linear equations comes in between: Fractions has no question left")
    assert state.current == "frac"  # still the concept in progress
    policy.record(state, between, True, NOW)
    back = policy.next_step(state, NOW)
    assert (back.concept, back.item) == ("frac", "frac-only") and back.reason.startswith("Keep going with Fractions")


def test_with_no_other_concept_ready_the_one_question_comes_again() -> None:
    graph = (ConceptNode("frac", "Fractions", (), 0), ConceptNode("ratio", "Ratios", ("frac",), 1))
    model = CourseModel(graph, (ItemChoice("frac-only", "frac", 0.0), ItemChoice("ratio-1", "ratio", 0.0)),
                        {c.slug: PARAMS["frac"] for c in graph}, TeachingSettings())
    policy = make_policy("ours", model)
    state = LearnerState()
    policy.record(state, policy.next_step(state, NOW), True, NOW)
    again = policy.next_step(state, NOW)
    assert (again.concept, again.item) == ("frac", "frac-only")
