"""The online forms the tutor runs: DKT carries its LSTM state and predicts as the batch network does."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from learner_model.data import Interactions
from learner_model.models import get_model
from learner_model.online import BKTOnline, DKTOnline, OnlineModel, online_for
from learner_model.seqtrain import SequenceKTModel, TrainConfig, pad, predict_padded

WINDOW = 30


def long_log(n_students: int, length: int, seed: int) -> Interactions:
    """Students answering `length` questions on 5 skills (40 items), learning as they practise."""
    rng = np.random.default_rng(seed)
    st, sk, it, y = [], [], [], []
    item_b = rng.normal(0, 1, 40)
    for s in range(n_students):
        ability, practice = rng.normal(0, 1), np.zeros(5)
        for _ in range(length):
            k = int(rng.integers(0, 5))
            item = k * 8 + int(rng.integers(0, 8))
            p = 1 / (1 + np.exp(-(ability + 0.3 * practice[k] - item_b[item])))
            practice[k] += 1
            st.append(s), sk.append(k), it.append(item), y.append(int(rng.random() < p))
    return Interactions(np.array(st), np.array(sk), np.array(it), np.array(y, np.int8))


@pytest.fixture(scope="module", params=["dkt", "dkt-rasch"])
def dkt(request: pytest.FixtureRequest) -> SequenceKTModel:
    torch.set_num_threads(1)
    model = get_model(request.param, train_config=TrainConfig(max_epochs=2, batch_size=16, threads=1, window=WINDOW),
                      dim=16)
    model.fit(long_log(60, 40, seed=0))  # type: ignore[attr-defined]
    assert isinstance(model, SequenceKTModel)
    return model


def replay(online: OnlineModel, log: Interactions) -> tuple[np.ndarray, dict[int, str | None]]:
    """Predict each answer from the student's blob, then update the blob with it: the tutor's order."""
    blobs: dict[int, str | None] = {}
    got = []
    for i in range(len(log)):
        s, k, item = int(log.student[i]), int(log.skill[i]), int(log.item[i])
        got.append(online.predict(blobs.get(s), k, item))
        blobs[s] = online.update(blobs.get(s), k, item, bool(log.correct[i]))
    return np.array(got), blobs


def test_online_dkt_predicts_what_the_network_predicts_over_the_whole_history(dkt: SequenceKTModel) -> None:
    test = long_log(3, 3 * WINDOW, seed=1)  # three windows long: the state is carried past the training window
    online = online_for(dkt)
    assert isinstance(online, DKTOnline)
    got, blobs = replay(online, test)
    assert dkt.net is not None
    whole = predict_padded(dkt.net, pad(test, dkt.skills, dkt.items, window=len(test)))  # one window per student
    np.testing.assert_allclose(got, whole, atol=1e-5)
    first_window = test.position() < WINDOW  # where the batch model's own windowing agrees too
    np.testing.assert_allclose(got[first_window], dkt.predict(test)[first_window], atol=1e-5)
    assert all(len(b or "") < 3000 for b in blobs.values())


def test_predict_many_scores_every_candidate_item_as_predict_does(dkt: SequenceKTModel) -> None:
    online = online_for(dkt)
    blob = None
    for item, correct in [(3, True), (9, False), (10, True)]:
        blob = online.update(blob, item // 8, item, correct)
    candidates = [8, 9, 15, 999, None]  # 999: an item the model never saw
    many = online.predict_many(blob, 1, candidates)
    np.testing.assert_allclose(many, [online.predict(blob, 1, i) for i in candidates], atol=1e-7)


def test_akt_scores_all_candidates_in_one_replay_as_one_at_a_time() -> None:
    akt = get_model("akt", train_config=TrainConfig(max_epochs=1, batch_size=16, threads=1, window=WINDOW), dim=16)
    akt.fit(long_log(30, 20, seed=5))  # type: ignore[attr-defined]
    online = online_for(akt)
    blob = None
    for item, correct in [(3, True), (9, False), (10, True)]:
        blob = online.update(blob, item // 8, item, correct)
    candidates = [8, 9, 15, 999, None]
    np.testing.assert_allclose(online.predict_many(blob, 1, candidates),
                               [online.predict(blob, 1, i) for i in candidates], atol=1e-6)


def test_a_refitted_dkt_rebuilds_the_state_from_the_stored_answers(dkt: SequenceKTModel) -> None:
    answers = long_log(1, WINDOW - 5, seed=2)  # fits in the stored history: the rebuilt state is exact
    old_blob = replay(online_for(dkt), answers)[1][0]  # type: ignore[arg-type]
    refit = get_model(dkt.arch, train_config=TrainConfig(max_epochs=1, batch_size=16, threads=1, window=WINDOW,
                                                         seed=7), dim=16)
    refit.fit(long_log(60, 40, seed=3))  # type: ignore[attr-defined]
    new = online_for(refit)
    own_blob = replay(new, answers)[1][0]  # type: ignore[arg-type]
    assert new.predict(old_blob, 3, 25) == pytest.approx(new.predict(own_blob, 3, 25), abs=1e-6)
    assert new.predict(old_blob, 3, 25) != pytest.approx(online_for(dkt).predict(old_blob, 3, 25), abs=1e-6)
    after_old, after_own = new.update(old_blob, 2, 17, True), new.update(own_blob, 2, 17, True)
    assert new.predict(after_old, 3, 25) == pytest.approx(new.predict(after_own, 3, 25), abs=1e-6)


@pytest.mark.parametrize("blob", [
    base64.b64encode(bytes([1]) + np.zeros(6, np.int32).tobytes()).decode(),  # version 1: the replayed history
    '{"v": 1, "g": [0.0, 1.0]}',  # a Rasch-Elo state
    "not base64 at all!",
])
def test_an_old_or_foreign_blob_is_refused_with_a_value_error(dkt: SequenceKTModel, blob: str) -> None:
    online = online_for(dkt)
    with pytest.raises(ValueError, match="DKT online state blob"):
        online.predict(blob, 1, 3)
    with pytest.raises(ValueError, match="DKT online state blob"):
        online.update(blob, 1, 3, True)


def test_models_without_a_batched_form_loop_in_predict_many() -> None:
    log = long_log(40, 20, seed=4)
    online = online_for(get_model("bkt").fit(log))  # type: ignore[attr-defined]
    assert isinstance(online, BKTOnline)
    blob = online.update(None, 1, 9, True)
    np.testing.assert_allclose(online.predict_many(blob, 1, [8, 9]), [online.predict(blob, 1, 8)] * 2)
