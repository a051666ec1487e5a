"""The knowledge-tracing models by name, and their versioned model files.

Every model has the same offline interface:
    model.fit(train: Interactions, valid: Interactions | None) -> model
    model.predict(log: Interactions) -> (N,) P(correct) of each answer from the same student's earlier answers
    model.state() -> dict ; model.load_state(dict)
`get_model(name)` raises with the list of known names. A model file is a torch.save'd dict
{"format": "tutor-kt-model", "version": 1, "model": name, "state": ...} read back with weights_only=True, so loading a
file never runs code from it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from learner_model.bkt import BKTModel
from learner_model.data import Interactions
from learner_model.ensemble import StackedKTModel
from learner_model.irt import RaschEloModel
from learner_model.pfa import LogisticKTModel
from learner_model.seqtrain import SequenceKTModel, TrainConfig

FILE_FORMAT = "tutor-kt-model"
FILE_VERSION = 1


class KTModel(Protocol):
    name: str

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Any: ...

    def predict(self, log: Interactions) -> np.ndarray: ...

    def state(self) -> dict[str, object]: ...

    def load_state(self, state: dict[str, object]) -> None: ...


MODELS: dict[str, Callable[..., KTModel]] = {
    "bkt": lambda **kw: BKTModel(name="bkt", **kw),
    "bkt-forget": lambda **kw: BKTModel(forgetting=True, name="bkt-forget", **kw),
    "kt-idem": lambda **kw: BKTModel(forgetting=True, item_guess_slip=True, name="kt-idem", **kw),
    "rasch-elo": lambda **kw: RaschEloModel(**kw),
    "pfa": lambda **kw: LogisticKTModel(variant="pfa", name="pfa", **kw),
    "best-lr": lambda **kw: LogisticKTModel(variant="best-lr", name="best-lr", **kw),
    "dkt": lambda **kw: SequenceKTModel("dkt", **kw),
    "dkt-rasch": lambda **kw: SequenceKTModel("dkt-rasch", **kw),
    "akt": lambda **kw: SequenceKTModel("akt", **kw),
    "best-lr+dkt": lambda **kw: StackedKTModel(**kw),
}


class UnknownModel(KeyError):
    pass


def get_model(name: str, **options: Any) -> KTModel:
    if name not in MODELS:
        raise UnknownModel(f"unknown knowledge-tracing model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**options)


def save_model(model: KTModel, path: str | Path) -> None:
    torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, "model": model.name, "state": model.state()},
               Path(path))


def load_model(path: str | Path) -> KTModel:
    blob = torch.load(Path(path), weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FILE_FORMAT:
        raise ValueError(f"{path} is not a {FILE_FORMAT} file")
    if blob.get("version") != FILE_VERSION:
        raise ValueError(f"{path} has model file version {blob.get('version')!r}, this code reads {FILE_VERSION}")
    model = get_model(blob["model"])
    model.load_state(blob["state"])
    return model


__all__ = ["MODELS", "KTModel", "TrainConfig", "UnknownModel", "get_model", "load_model", "save_model"]
