"""The online form the tutor runs: one student, one answer at a time, the state a compact text blob.

    online = load_online("var/learner_model/current.pt")     # any fitted model file (learner_model.models)
    blob = online.update(blob, concept, item, correct)       # after each graded answer
    p = online.predict(blob, concept, item)                   # P(next answer correct) for a candidate item
    ps = online.predict_many(blob, concept, items)            # the same for every candidate item of a concept

`concept` and `item` are the integer ids the model was fitted on (the tutor fits on its own primary keys); ids the
model never saw fall back to its "unseen" row. A blob of None or "" is a new student. Each model family has its own
state: BKT keeps P(known) per concept (the `KnowledgeState` blob of `learner_model/knowledge.py`), Rasch-Elo a Gaussian
belief per ability, PFA/Best-LR its counters, DKT its LSTM state (h, c) plus the last window of answers (so that a
refitted model rebuilds the state instead of discarding it), and AKT the last window of answers, replayed through the
attention network at each prediction (AKT has no recurrent state to carry: its online form is the replay).

A blob written by an older version of this module, or by another family of model, raises ValueError: the caller
then starts that student's state afresh. This module knows nothing of Django or storage.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from learner_model.bkt import BKTModel
from learner_model.data import IdMap, Interactions
from learner_model.dkt import DKT, DKTCell
from learner_model.ensemble import StackedKTModel
from learner_model.irt import RaschEloModel
from learner_model.knowledge import BKTParams, KnowledgeState, observe
from learner_model.knowledge import p_correct as bkt_p_correct
from learner_model.models import KTModel, load_model
from learner_model.pfa import (
    ABILITY_PRIOR,
    N_PATTERNS,
    RECENT_ABILITY,
    RECENT_ALL,
    RECENT_SKILL,
    LogisticKTModel,
)
from learner_model.seqtrain import SequenceKTModel

BLOB_VERSION = 1  # JSON blobs (Rasch-Elo, PFA/Best-LR, stacked) and the AKT history blob
DKT_BLOB_VERSION = 2  # the DKT state blob (version 1 was the replayed history, now AKT's only)


class OnlineModel(Protocol):
    """What the tutor calls. The online classes below subclass it explicitly to inherit `predict_many`."""

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str: ...

    def predict(self, state: str | None, concept: int, item: int | None) -> float: ...

    def predict_many(self, state: str | None, concept: int, items: Sequence[int | None]) -> np.ndarray:
        """(n,) P(correct) of the next answer for each candidate item of one concept (one call per item here;
        models that can batch override it)."""
        return np.array([self.predict(state, concept, item) for item in items], float)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _load_json(state: str | None) -> dict[str, Any]:
    if not state:
        return {"v": BLOB_VERSION}
    data: dict[str, Any] = json.loads(state)
    if data.get("v") != BLOB_VERSION:
        raise ValueError(f"online state blob has version {data.get('v')!r}, expected {BLOB_VERSION}")
    return data


def _dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _row_index(ids: IdMap, first_row: int = 0) -> dict[int, int]:
    """Raw id -> table row as a dict: a lookup per answer costs ~0.1 µs against ~10 µs for `IdMap.__call__`."""
    return {int(raw): first_row + row for row, raw in enumerate(ids.known)}


class BKTOnline(OnlineModel):
    """BKT as the tutor's `KnowledgeState`; item-level guess/slip where the model has them."""

    def __init__(self, model: BKTModel) -> None:
        if model.params is None:
            raise ValueError("BKTOnline needs a fitted BKTModel")
        self.model = model
        self._by_skill = {k: v for k, v in self._skill_params().items()}
        self._skill_rows = _row_index(model.skills)
        self._item_rows = _row_index(model.items)

    def _skill_params(self) -> dict[int, BKTParams]:
        p = self.model.params
        assert p is not None
        out = {}
        for row in range(self.model.skills.size):
            g = float(p.guess[row]) if not self.model.item_guess_slip else 0.2
            s = float(p.slip[row]) if not self.model.item_guess_slip else 0.1
            out[row] = BKTParams(p_init=float(p.prior[row]), p_learn=float(p.learn[row]), p_guess=g, p_slip=s,
                                 p_forget=float(p.forget[row]))
        return out

    def params(self, concept: int, item: int | None) -> BKTParams:
        base = self._by_skill[self._skill_rows.get(concept, self.model.skills.size - 1)]
        if not self.model.item_guess_slip:
            return base
        p = self.model.params
        assert p is not None
        spare = self.model.items.size - 1
        item_row = spare if item is None else self._item_rows.get(item, spare)
        return BKTParams(p_init=base.p_init, p_learn=base.p_learn, p_guess=float(p.guess[item_row]),
                         p_slip=float(p.slip[item_row]), p_forget=base.p_forget)

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        ks = KnowledgeState.from_blob(state)
        observe(ks, str(concept), correct, self.params(concept, item))
        return ks.to_blob()

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        ks = KnowledgeState.from_blob(state)
        params = self.params(concept, item)
        return bkt_p_correct(ks.mastery(str(concept), params), params)


class RaschEloOnline(OnlineModel):
    """Gaussian beliefs over the global and the concept's ability; state {"g": [mu, var], "k": {concept: ...}}."""

    def __init__(self, model: RaschEloModel) -> None:
        self.model = model

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        data = _load_json(state)
        mu = data.get("g", [0.0])[0] + data.get("k", {}).get(str(concept), [0.0])[0]
        return _sigmoid(mu - self.model.difficulty_of(concept, item))

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        data = _load_json(state)
        g = data.setdefault("g", [0.0, self.model.var_global])
        ks = data.setdefault("k", {})
        k = ks.setdefault(str(concept), [0.0, self.model.var_skill])
        p = _sigmoid(g[0] + k[0] - self.model.difficulty_of(concept, item))
        info = p * (1 - p)
        y = 1.0 if correct else 0.0
        g[1] = 1.0 / (1.0 / g[1] + info)
        g[0] += g[1] * (y - p)
        if self.model.skill_ability:
            k[1] = 1.0 / (1.0 / k[1] + info)
            k[0] += k[1] * (y - p)
        return _dump_json(data)


class LogisticOnline(OnlineModel):
    """PFA / Best-LR counters, mirroring `learner_model.pfa.features` answer by answer. State:
    "a": [successes, failures, last RECENT_ALL answers as '0'/'1' (newest last), last concept, run length on it,
          sum of residuals (answer - skill base rate), the last RECENT_ABILITY residuals]
    "k": {concept: [successes, failures, last RECENT_SKILL answers]}, "i": {item: [successes, failures]}"""

    def __init__(self, model: LogisticKTModel) -> None:
        self.model = model
        self.w = model.weights
        self._skill_rows = _row_index(model.skills)
        self._item_rows = _row_index(model.items)

    def _skill_row(self, concept: int) -> int:
        return self._skill_rows.get(concept, self.model.skills.size - 1)  # unseen: the spare row

    def _features(self, data: dict[str, Any], concept: int, item: int | None) -> tuple[np.ndarray, int, int]:
        s_all, f_all, recent_all, last_concept, run, res_sum, res_recent = data.get(
            "a", [0, 0, "", None, 0, 0.0, []])
        s_sk, f_sk, recent_sk = data.get("k", {}).get(str(concept), [0, 0, ""])
        s_it, f_it = data.get("i", {}).get(str(item), [0, 0]) if item is not None else (0, 0)

        def share(bits: str) -> float:
            return bits.count("1") / len(bits) - 0.5 if bits else 0.0

        def back(bits: str, k: int) -> float:
            return (1.0 if bits[-k] == "1" else -1.0) if len(bits) >= k else 0.0

        def pattern(bits: str) -> int:
            return int((back(bits, 1) + 1) * 9 + (back(bits, 2) + 1) * 3 + (back(bits, 3) + 1))

        streak = len(recent_sk) - len(recent_sk.rstrip("1"))
        first = float(s_sk + f_sk == 0)
        ability = res_sum / (s_all + f_all + ABILITY_PRIOR)
        ability_recent = sum(res_recent) / (len(res_recent) + ABILITY_PRIOR)
        x = np.array([math.log1p(s_all), math.log1p(f_all), math.log1p(s_it), math.log1p(f_it),
                      math.log1p(s_sk), math.log1p(f_sk), back(recent_sk, 1), back(recent_all, 1),
                      share(recent_sk), share(recent_all), first, math.log1p(streak),
                      math.log1p(run if last_concept == concept else 0), ability, ability_recent, ability * first])
        return x, pattern(recent_sk), pattern(recent_all)

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        x, pat_skill, pat_all = self._features(_load_json(state), concept, item)
        k = self._skill_row(concept)
        spare = self.model.items.size - 1  # items unseen in training, and answers without one
        i = spare if item is None else self._item_rows.get(item, spare)
        w = self.w
        logit = -w["b_skill"][k] - w["b_item"][i] + w["a_skill"][k] * x[4] + w["c_skill"][k] * x[5]
        if self.model.variant == "best-lr":
            logit += float(x @ w["dense"]) + w["bias"][0] + w["l_skill"][k] * x[6]
            logit += w["pattern_skill"][pat_skill] + w["pattern_all"][pat_all]
            logit += w["pattern_by_skill"][k * N_PATTERNS + pat_skill]
        return _sigmoid(float(logit))

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        data = _load_json(state)
        bit = "1" if correct else "0"
        a = data.setdefault("a", [0, 0, "", None, 0, 0.0, []])
        k = data.setdefault("k", {}).setdefault(str(concept), [0, 0, ""])
        for counters, window in ((a, RECENT_ALL), (k, RECENT_SKILL)):
            counters[0 if correct else 1] += 1
            counters[2] = (counters[2] + bit)[-window:]
        a[4] = a[4] + 1 if a[3] == concept else 1
        a[3] = concept
        residual = float(correct) - float(self.model.base_rate[self._skill_row(concept)])
        a[5] += residual
        a[6] = (a[6] + [round(residual, 6)])[-RECENT_ABILITY:]
        if item is not None:
            it = data.setdefault("i", {}).setdefault(str(item), [0, 0])
            it[0 if correct else 1] += 1
        return _dump_json(data)


class DKTOnline(OnlineModel):
    """DKT carrying its LSTM state: an update is one LSTM step, a prediction one readout (`learner_model.dkt.DKTCell`).

    The LSTM runs over the student's whole history without restarting; the batch model (`SequenceKTModel.predict`)
    cuts histories into windows of `window` answers as the evaluation protocols do, so the two agree on the first
    window and the online form remembers further back after it.

    Blob: base64 of, little-endian,
        header   version (u8, 2), b"D", model fingerprint (u32), answers seen (u32)
        state    h, c (float32, dim each), absent before the first answer
        history  the last window - 1 answers as int32 pairs (concept, 2 * item + correct), item -1 = none
    The fingerprint (crc32 of the weights and id maps) tells whether the state came from this very network; when
    the model was refitted since, the state is rebuilt by replaying the history through the new network (once).
    """

    _HEADER = struct.Struct("<BcII")

    def __init__(self, model: SequenceKTModel) -> None:
        if not isinstance(model.net, DKT):
            raise ValueError(f"DKTOnline needs a fitted DKT network, got {type(model.net).__name__}")
        self.cell = DKTCell(model.net)
        self.keep = model.train_config.window - 1
        self._skill_index = _row_index(model.skills, first_row=1)  # network rows: 0 = padding
        self._item_index = _row_index(model.items, first_row=1) if self.cell.items and len(model.items.known) else {}
        self._spare_skill = model.skills.size  # network index of skills unseen in training
        self._spare_item = model.items.size if self._item_index else 1
        digest = zlib.crc32(np.asarray(model.skills.known, np.int64).tobytes())
        digest = zlib.crc32(np.asarray(model.items.known, np.int64).tobytes(), digest)
        for tensor in model.net.state_dict().values():
            digest = zlib.crc32(tensor.detach().float().numpy().tobytes(), digest)
        self.fingerprint = digest

    def _skill(self, concept: int) -> int:
        return self._skill_index.get(concept, self._spare_skill)

    def _item(self, item: int | None) -> int:
        if not self._item_index:
            return 1
        return self._spare_item if item is None else self._item_index.get(item, self._spare_item)

    def _decode(self, state: str | None) -> tuple[np.ndarray | None, np.ndarray | None, int, np.ndarray]:
        """h, c (None before the first answer), answers seen, history (k, 2)."""
        if not state:
            return None, None, 0, np.zeros((0, 2), np.int32)
        try:
            raw = base64.b64decode(state, validate=True)
            version, kind, fingerprint, seen = self._HEADER.unpack_from(raw)
        except (binascii.Error, struct.error):
            raise ValueError("not a DKT online state blob (another model family's, or corrupt)") from None
        if version != DKT_BLOB_VERSION or kind != b"D":
            raise ValueError(f"DKT online state blob has version {version} kind {kind!r}, expected "
                             f"{DKT_BLOB_VERSION} b'D' (written by an older version or another model)")
        d = self.cell.dim
        at = self._HEADER.size
        h = c = None
        if seen:
            if len(raw) < at + 8 * d:
                raise ValueError(f"DKT online state blob holds a state narrower than this model's ({d})")
            h = np.frombuffer(raw, np.float32, d, at)
            c = np.frombuffer(raw, np.float32, d, at + 4 * d)
            at += 8 * d
        if (len(raw) - at) % 8:
            raise ValueError("DKT online state blob is truncated")
        history = np.frombuffer(raw, np.int32, offset=at).reshape(-1, 2)
        if seen and fingerprint != self.fingerprint:
            h, c = self._replay(history)  # another network wrote this state: rebuild it from the answers
        return h, c, seen, history

    def _replay(self, history: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        h = c = None
        for concept, packed in history.tolist():
            item = packed >> 1  # floor division: -1 (no item) packs to -2 or -1
            h, c = self.cell.step(h, c, self._skill(concept), self._item(None if item < 0 else item), bool(packed & 1))
        return h, c

    def _encode(self, h: np.ndarray, c: np.ndarray, seen: int, history: np.ndarray) -> str:
        raw = self._HEADER.pack(DKT_BLOB_VERSION, b"D", self.fingerprint, seen) + h.tobytes() + c.tobytes()
        return base64.b64encode(raw + history.astype(np.int32).tobytes()).decode("ascii")

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        h, c, seen, history = self._decode(state)
        h, c = self.cell.step(h, c, self._skill(concept), self._item(item), correct)
        row = np.array([[concept, 2 * (-1 if item is None else item) + int(correct)]], np.int32)
        return self._encode(h, c, seen + 1, np.concatenate([history, row])[-self.keep:])

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        return float(self.predict_many(state, concept, [item])[0])

    def predict_many(self, state: str | None, concept: int, items: Sequence[int | None]) -> np.ndarray:
        h = self._decode(state)[0]
        logits = self.cell.logits(h, self._skill(concept), np.array([self._item(i) for i in items], np.int64))
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))


_UNSEEN_ITEM = 2**62  # an item id no model is fitted on


class HistoryOnline(OnlineModel):
    """AKT: the state is the student's last `window - 1` answers (int32 triples, base64); a prediction replays them
    with the candidate question through the network. Attention over the history has no recurrent state to carry."""

    def __init__(self, model: SequenceKTModel) -> None:
        self.model = model
        self.keep = model.train_config.window - 1

    @staticmethod
    def _decode(state: str | None) -> np.ndarray:
        if not state:
            return np.zeros((0, 3), np.int32)
        try:
            raw = base64.b64decode(state, validate=True)
        except binascii.Error:
            raise ValueError("not an AKT online state blob (another model family's, or corrupt)") from None
        if raw[:1] != bytes([BLOB_VERSION]) or (len(raw) - 1) % 12:
            raise ValueError(f"AKT online state blob has version {raw[:1]!r} or a length not of answers, expected "
                             f"version {BLOB_VERSION}")
        return np.frombuffer(raw[1:], np.int32).reshape(-1, 3)

    @staticmethod
    def _encode(history: np.ndarray) -> str:
        return base64.b64encode(bytes([BLOB_VERSION]) + history.astype(np.int32).tobytes()).decode("ascii")

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        history = self._decode(state)
        row = np.array([[concept, -1 if item is None else item, int(correct)]], np.int32)
        return self._encode(np.concatenate([history, row])[-self.keep:])

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        return float(self.predict_many(state, concept, [item])[0])

    def predict_many(self, state: str | None, concept: int, items: Sequence[int | None]) -> np.ndarray:
        """One batch of n sequences, the history followed by each candidate: one forward pass for all of them."""
        history = self._decode(state).astype(np.int64)  # (k, 3)
        n, k = len(items), len(history)
        candidates = np.array([[concept, -1 if i is None else i, 0] for i in items], np.int64)  # (n, 3)
        rows = np.concatenate([np.broadcast_to(history, (n, k, 3)), candidates[:, None, :]], axis=1).reshape(-1, 3)
        rows[rows[:, 1] < 0, 1] = _UNSEEN_ITEM  # no item: the spare row, without turning items off for the batch
        log = Interactions(np.repeat(np.arange(n), k + 1), rows[:, 0], rows[:, 1], rows[:, 2].astype(np.int8))
        return np.asarray(self.model.predict(log).reshape(n, k + 1)[:, -1])


class StackedOnline(OnlineModel):
    """Both members' states in one blob: {"lr": ..., "seq": ...}."""

    def __init__(self, model: StackedKTModel) -> None:
        self.model = model
        self.lr = LogisticOnline(model.lr)
        self.seq = DKTOnline(model.seq)

    def predict(self, state: str | None, concept: int, item: int | None) -> float:
        data = _load_json(state)
        p_lr = self.lr.predict(data.get("lr"), concept, item)
        p_seq = self.seq.predict(data.get("seq"), concept, item)
        return float(self.model.combine(p_lr, p_seq))

    def predict_many(self, state: str | None, concept: int, items: Sequence[int | None]) -> np.ndarray:
        data = _load_json(state)
        p_lr = self.lr.predict_many(data.get("lr"), concept, items)
        return self.model.combine(p_lr, self.seq.predict_many(data.get("seq"), concept, items))

    def update(self, state: str | None, concept: int, item: int | None, correct: bool) -> str:
        data = _load_json(state)
        data["lr"] = self.lr.update(data.get("lr"), concept, item, correct)
        data["seq"] = self.seq.update(data.get("seq"), concept, item, correct)
        return _dump_json(data)


def _sequence_online(model: SequenceKTModel) -> OnlineModel:
    return DKTOnline(model) if isinstance(model.net, DKT) else HistoryOnline(model)


ONLINE: dict[type, Callable[[Any], OnlineModel]] = {
    BKTModel: BKTOnline, RaschEloModel: RaschEloOnline, LogisticKTModel: LogisticOnline,
    SequenceKTModel: _sequence_online, StackedKTModel: StackedOnline,
}


def online_for(model: KTModel) -> OnlineModel:
    """The online form of a fitted model; raises for a model type with none."""
    for cls, make in ONLINE.items():
        if isinstance(model, cls):
            return make(model)
    raise TypeError(f"no online form for {type(model).__name__}; known: {', '.join(c.__name__ for c in ONLINE)}")


def load_online(path: str | Path) -> OnlineModel:
    return online_for(load_model(path))
