"""Every registered model: fits, saves and loads a versioned file, and its online form agrees with batch prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from learner_model.data import Interactions
from learner_model.models import MODELS, UnknownModel, get_model, load_model, save_model
from learner_model.online import online_for
from learner_model.seqtrain import TrainConfig
from tests.learner_model.test_online import replay

NEURAL = ("dkt", "dkt-rasch", "akt", "best-lr+dkt")


def synthetic_log(n_students: int, seed: int) -> Interactions:
    """Students with an ability, skills with a difficulty, items with their own, and learning with practice."""
    rng = np.random.default_rng(seed)
    st, sk, it, y = [], [], [], []
    item_b = rng.normal(0, 1, 60)
    for s in range(n_students):
        ability = rng.normal(0, 1)
        practice = np.zeros(6)
        for _ in range(int(rng.integers(10, 40))):
            k = int(rng.integers(0, 6))
            item = k * 10 + int(rng.integers(0, 10))
            p = 1 / (1 + np.exp(-(ability + 0.4 * practice[k] - item_b[item])))
            practice[k] += 1
            st.append(s)
            sk.append(k)
            it.append(item)
            y.append(int(rng.random() < p))
    return Interactions(np.array(st), np.array(sk), np.array(it), np.array(y, np.int8))


def make(name: str) -> object:
    config = TrainConfig(max_epochs=2, batch_size=16, threads=1, window=50)
    if name == "best-lr+dkt":
        return get_model(name, train_config=config)
    if name in NEURAL:
        return get_model(name, train_config=config, dim=16)
    return get_model(name)


def test_unknown_model_name_fails_with_the_known_ones() -> None:
    with pytest.raises(UnknownModel, match="best-lr"):
        get_model("bkt++")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_file_round_trips(tmp_path: Path, name: str) -> None:
    train, test = synthetic_log(120, seed=0), synthetic_log(20, seed=1)
    model = make(name)
    model.fit(train)  # type: ignore[attr-defined]
    p = model.predict(test)  # type: ignore[attr-defined]
    assert p.shape == (len(test),) and np.all((p > 0) & (p < 1))
    save_model(model, tmp_path / "m.pt")  # type: ignore[arg-type]
    np.testing.assert_allclose(load_model(tmp_path / "m.pt").predict(test), p, rtol=1e-6, atol=1e-9)


def test_a_file_of_another_version_is_refused(tmp_path: Path) -> None:
    torch.save({"format": "tutor-kt-model", "version": 99, "model": "bkt", "state": {}}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="version 99"):
        load_model(tmp_path / "m.pt")


@pytest.mark.parametrize("name", ["dkt", "akt"])
def test_same_seed_same_neural_model(name: str) -> None:
    train, test = synthetic_log(60, seed=2), synthetic_log(10, seed=3)
    a = make(name)
    b = make(name)
    a.fit(train)  # type: ignore[attr-defined]
    b.fit(train)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a.predict(test), b.predict(test))  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_online_form_agrees_with_batch_prediction(name: str) -> None:
    train, test = synthetic_log(120, seed=4), synthetic_log(3, seed=5)
    model = make(name)
    model.fit(train)  # type: ignore[attr-defined]
    batch = model.predict(test)  # type: ignore[attr-defined]
    got, blobs = replay(online_for(model), test)  # type: ignore[arg-type]
    # the batch sequence models restart at each window of 50: compare where the history fits in the first one
    n = 49 if name in NEURAL else len(test)
    first_rows = test.position() < n
    np.testing.assert_allclose(got[first_rows], batch[first_rows], atol=1e-5)
    assert all(len(b or "") < 4000 for b in blobs.values())
