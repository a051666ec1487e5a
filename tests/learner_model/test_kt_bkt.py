"""BKT fitted by EM: parameters come back from simulated students; predictions never peek at later answers."""

from __future__ import annotations

import numpy as np
import pytest

from learner_model.bkt import BKTModel, fit_bkt
from learner_model.data import Interactions
from learner_model.knowledge import BKTParams, KnowledgeState, observe, p_correct


def simulate(truth: dict[int, BKTParams], n_students: int, seed: int, items_per_skill: int = 0,
             item_guess: dict[int, float] | None = None) -> Interactions:
    rng = np.random.default_rng(seed)
    st, sk, it, y = [], [], [], []
    for s in range(n_students):
        # skills interleave within a student, as in real logs
        plan = [k for k in truth for _ in range(int(rng.integers(6, 16)))]
        rng.shuffle(plan)
        known = {k: rng.random() < truth[k].p_init for k in truth}
        for k in plan:
            p = truth[k]
            item = k * 100 + int(rng.integers(0, items_per_skill)) if items_per_skill else -1
            guess = item_guess[item] if item_guess else p.p_guess
            correct = rng.random() < ((1 - p.p_slip) if known[k] else guess)
            st.append(s)
            sk.append(k)
            it.append(item)
            y.append(int(correct))
            if known[k]:
                known[k] = rng.random() >= p.p_forget
            else:
                known[k] = rng.random() < p.p_learn
    return Interactions(np.array(st), np.array(sk), np.array(it), np.array(y, np.int8))


TRUTH = {
    0: BKTParams(p_init=0.3, p_learn=0.15, p_guess=0.2, p_slip=0.1),
    1: BKTParams(p_init=0.1, p_learn=0.3, p_guess=0.25, p_slip=0.05),
    2: BKTParams(p_init=0.5, p_learn=0.05, p_guess=0.15, p_slip=0.15),
}


def assert_close(fitted: BKTParams, truth: BKTParams, tol: float = 0.03) -> None:
    for name in ("p_init", "p_learn", "p_guess", "p_slip", "p_forget"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=tol), name


def test_bkt_recovers_known_parameters() -> None:
    log = simulate(TRUTH, 3000, seed=1)
    fitted = fit_bkt(log.skill, log.student, log.correct, n_iter=200)
    for k, truth in TRUTH.items():
        assert_close(fitted[k], truth)


def test_bkt_with_forgetting_recovers_the_forgetting_rate() -> None:
    truth = {0: BKTParams(p_init=0.3, p_learn=0.2, p_guess=0.2, p_slip=0.1, p_forget=0.05)}
    log = simulate(truth, 6000, seed=2)
    fitted = fit_bkt(log.skill, log.student, log.correct, forgetting=True, n_iter=300)
    assert_close(fitted[0], truth[0])


def test_item_level_guess_is_recovered_per_item() -> None:
    truth = {0: BKTParams(p_init=0.2, p_learn=0.2, p_guess=0.2, p_slip=0.1)}
    guesses = {0: 0.05, 1: 0.4}
    log = simulate(truth, 4000, seed=3, items_per_skill=2, item_guess=guesses)
    model = BKTModel(item_guess_slip=True, n_iter=200).fit(log)
    assert model.params is not None
    rows = model.items(np.array([0, 1]))
    assert model.params.guess[rows] == pytest.approx([0.05, 0.4], abs=0.03)


def test_prediction_uses_only_earlier_answers() -> None:
    log = simulate(TRUTH, 50, seed=5)
    model = BKTModel().fit(log)
    p = model.predict(log)
    flipped = log.correct.copy()
    flipped[-1] ^= 1
    p2 = model.predict(Interactions(log.student, log.skill, log.item, flipped))
    np.testing.assert_allclose(p[:-1], p2[:-1])


def test_batch_prediction_matches_the_online_knowledge_state() -> None:
    log = simulate(TRUTH, 5, seed=6)
    model = BKTModel(forgetting=True).fit(simulate(TRUTH, 500, seed=7))
    params = model.skill_params()
    p = model.predict(log)
    state: dict[int, KnowledgeState] = {}
    for i in range(len(log)):
        ks = state.setdefault(int(log.student[i]), KnowledgeState())
        k = int(log.skill[i])
        assert p_correct(ks.mastery(str(k), params[k]), params[k]) == pytest.approx(p[i], abs=1e-9)
        observe(ks, str(k), bool(log.correct[i]), params[k])


def test_wrong_answers_lower_the_prediction_after_a_long_run_of_right_answers() -> None:
    # P(unknown) computed as 1 - P(known) used to round to 0 after ~20 right answers; with no forgetting, no wrong
    # answer could lower the prediction after that
    model = BKTModel()
    model.load_state({"skills": [0], "items": [], "prior": [0.3, 0.3], "learn": [0.1, 0.1], "forget": [0.0, 0.0],
                      "guess": [0.2, 0.2], "slip": [0.1, 0.1]})
    answers = [1] * 40 + [0] * 30
    n = len(answers)
    log = Interactions(np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, -1), np.array(answers, np.int8))
    p = model.predict(log)
    after_wrong = p[41:]
    assert np.all(np.diff(after_wrong[:10]) < 0)
    assert after_wrong[-1] < 0.3
    # the tutor's online update clamps the same way, so the two agree at the extremes too
    params = model.skill_params()[0]
    state = KnowledgeState()
    for i, correct in enumerate(answers):
        assert p_correct(state.mastery("0", params), params) == pytest.approx(p[i], abs=1e-9)
        observe(state, "0", bool(correct), params)
