"""learner_model.knowledge: the online BKT the tutor runs on every answer."""

import pytest

from learner_model.knowledge import BKTParams, KnowledgeState, observe, p_correct, posterior


def test_correct_answers_raise_and_wrong_answers_lower_belief():
    params = BKTParams()
    state = KnowledgeState()
    observe(state, "c", True, params)
    up = state.mastery("c")
    observe(state, "c", False, params, learn=False)
    assert up > params.p_init
    assert state.mastery("c") < up


def test_posterior_matches_bayes_rule():
    params = BKTParams(p_init=0.3, p_learn=0.0, p_guess=0.2, p_slip=0.1)
    expected = 0.3 * 0.9 / (0.3 * 0.9 + 0.7 * 0.2)
    assert posterior(0.3, True, params) == pytest.approx(expected)


def test_zero_weight_evidence_changes_nothing():
    assert posterior(0.4, False, BKTParams(), weight=0.0) == pytest.approx(0.4)


def test_harder_items_are_predicted_harder():
    params = BKTParams()
    assert p_correct(0.5, params, difficulty=1.0) < p_correct(0.5, params) < p_correct(0.5, params, difficulty=-1.0)


def test_state_survives_a_round_trip_through_its_blob():
    state = KnowledgeState()
    observe(state, "limits", True, BKTParams(), at=1700000000.0)
    again = KnowledgeState.from_blob(state.to_blob())
    assert again.concepts["limits"].p_known == pytest.approx(state.concepts["limits"].p_known, abs=1e-6)
    assert again.concepts["limits"].last_seen == 1700000000.0


def test_a_blob_from_another_version_is_refused():
    with pytest.raises(ValueError, match="version"):
        KnowledgeState.from_blob('{"v": 99, "c": {}}')


def test_invalid_parameters_fail_loudly():
    with pytest.raises(ValueError):
        BKTParams(p_guess=0.6, p_slip=0.5)
    with pytest.raises(ValueError):
        BKTParams(p_init=1.5)


def test_wrong_answers_lower_belief_after_a_long_run_of_right_answers_through_the_blob():
    # rounded to 6 decimals, P(known) used to be stored as exactly 1.0 after 12 right answers; 30 wrong answers
    # later the tutor still predicted 0.9
    params = BKTParams(p_init=0.3, p_learn=0.1, p_guess=0.2, p_slip=0.1)
    blob = KnowledgeState().to_blob()
    for _ in range(40):
        state = KnowledgeState.from_blob(blob)
        observe(state, "c", True, params)
        blob = state.to_blob()
    assert 0.99 < KnowledgeState.from_blob(blob).mastery("c") < 1.0
    beliefs = []
    for _ in range(30):
        state = KnowledgeState.from_blob(blob)
        observe(state, "c", False, params)
        blob = state.to_blob()
        beliefs.append(KnowledgeState.from_blob(blob).mastery("c"))
    assert beliefs[0] < 1.0 - 1e-6
    assert all(later < earlier for earlier, later in zip(beliefs[:10], beliefs[1:11], strict=True))
    assert p_correct(beliefs[-1], params) < 0.3


def test_a_saturated_blob_from_before_the_margin_still_learns_from_a_wrong_answer():
    params = BKTParams(p_init=0.3, p_learn=0.1, p_guess=0.2, p_slip=0.1)
    state = KnowledgeState.from_blob('{"v":1,"c":{"c":[1.0,12,12,null]}}')
    for _ in range(10):
        observe(state, "c", False, params)
    assert state.mastery("c") < 0.5
