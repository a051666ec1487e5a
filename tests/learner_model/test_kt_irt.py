"""Rasch difficulties come back from simulated students; the online ability update improves on the prior."""

from __future__ import annotations

import numpy as np
import pytest

from learner_model.data import Interactions
from learner_model.irt import RaschEloModel
from learner_model.metrics import auc


def simulate_rasch(n_students: int, difficulties: np.ndarray, seed: int) -> tuple[Interactions, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, n_students)
    n_items = len(difficulties)
    student = np.repeat(np.arange(n_students), n_items)
    item = np.tile(np.arange(n_items), n_students)
    p = 1 / (1 + np.exp(-(theta[student] - difficulties[item])))
    correct = (rng.random(len(p)) < p).astype(np.int8)
    return Interactions(student, np.zeros(len(p), np.int64), item, correct), theta


@pytest.mark.slow
def test_rasch_recovers_item_difficulties() -> None:
    # 40 answers per student: with few answers each, joint estimation shrinks the difficulties toward 0
    difficulties = np.linspace(-1.5, 1.5, 40)
    log, _ = simulate_rasch(5000, difficulties, seed=0)
    model = RaschEloModel(skill_ability=False).fit(log)
    fitted = model.item_b[model.items(np.arange(40))] + model.skill_b[0]
    # the scale's origin is free up to the prior: compare centred difficulties
    error = (fitted - fitted.mean()) - (difficulties - difficulties.mean())
    # 5000 answers per item: a standard error near 0.035 on each difficulty
    assert np.abs(error).mean() < 0.04
    assert np.abs(error).max() < 0.12
    assert model.var_global == pytest.approx(1.0, abs=0.15)


@pytest.mark.slow
def test_online_ability_separates_strong_from_weak_students() -> None:
    difficulties = np.linspace(-1, 1, 10)
    train, _ = simulate_rasch(3000, difficulties, seed=1)
    test, theta = simulate_rasch(500, difficulties, seed=2)
    model = RaschEloModel(skill_ability=False).fit(train)
    p = model.predict(test)
    last = np.arange(len(test)) % 10 == 9  # the same item for everyone: only the ability belief can separate
    truth = 1 / (1 + np.exp(-(theta - difficulties[-1])))
    # nine answers carry much of what the true ability says
    assert auc(test.correct[last], p[last]) > 0.85 * auc(test.correct[last], truth)
