"""A few hundred real ASSISTments students: the models train in seconds and predict well above chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learner_model.data import AKT, Fold, load_folds, shared_data_dir
from learner_model.evaluate import evaluate_fold
from learner_model.models import get_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shared_data_dir() / "kt").is_dir(), reason="shared KT data not present (TUTOR_SHARED_DATA)"),
]


@pytest.fixture(scope="module")
def subset() -> Fold:
    torch.set_num_threads(1)  # two threads on a busy 2-core machine are several times slower than one
    fold = next(load_folds("assist2009", folds=[0]))

    def first(log, n):  # type: ignore[no-untyped-def]
        return log.select_students(np.isin(log.student, np.unique(log.student)[:n]))

    return Fold(first(fold.train, 300), first(fold.test, 100), first(fold.valid, 50))


@pytest.mark.parametrize("name, floor", [("bkt", 0.62), ("kt-idem", 0.65), ("best-lr", 0.70), ("rasch-elo", 0.65)])
def test_model_trains_on_a_few_hundred_real_students(subset: Fold, name: str, floor: float) -> None:
    result = evaluate_fold(get_model(name), subset, AKT, log=lambda _: None)
    assert result.scores.auc > floor
