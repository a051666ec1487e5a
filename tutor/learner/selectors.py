"""Which knowledge-tracing model the tutor uses, read from the pointer file a refit writes.

`learner_model_current()` is the pointer (`current.json` in `settings.LEARNER_MODEL_DIR`): version, file, model
family, cross-validated AUC. `course_predictor(course)` is that model's online form seen through one course's
ids (a `learner_model.policy.LearnedPredictor`), or None before the first refit, when the tutor predicts with
per-concept BKT. The model file is loaded once per process and version; a new pointer is picked up on the next
call (one `stat` of the pointer file per call). `learner_model.online` imports torch, so it is imported only once
a model exists: a web process that never refitted never pays for it.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from courses.models import Course
from learner_model.policy import LearnedPredictor
from tutor import caches

if TYPE_CHECKING:
    from learner_model.online import OnlineModel

POINTER = "current.json"

log = logging.getLogger(__name__)

# (pointer path, mtime) -> (pointer, model), or None when that pointer's model could not be loaded
_loaded: dict[tuple[str, int], tuple[dict[str, object], OnlineModel] | None] = {}
_predictors: dict[tuple[int, str, int], LearnedPredictor] = {}  # (course, file, version) -> predictor


def _forget() -> None:
    _loaded.clear()
    _predictors.clear()


caches.on_clear(_forget)


def learner_model_dir() -> Path:
    return Path(getattr(settings, "LEARNER_MODEL_DIR", Path(settings.BASE_DIR) / "var" / "learner_model"))


def learner_model_current() -> dict[str, object] | None:
    """The pointer to the model in use: {"version", "file", "model", "cv_auc", ...}, or None before any refit."""
    path = learner_model_dir() / POINTER
    if not path.exists():
        return None
    data: dict[str, object] = json.loads(path.read_text())
    return data


def _model_in_use() -> tuple[dict[str, object], OnlineModel] | None:
    """(pointer, online model), loaded once per pointer change; None before any refit.

    A pointer whose model cannot be read (file missing, corrupt, of another format version) is logged once and
    treated as no refit: the session predicts with BKT rather than failing every student's action."""
    path = learner_model_dir() / POINTER
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None
    if key not in _loaded:
        from learner_model.models import load_model
        from learner_model.online import online_for

        _loaded.clear()  # one model in use per process
        try:
            current = json.loads(path.read_text())
            _loaded[key] = (current, online_for(load_model(learner_model_dir() / str(current["file"]))))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError):
            log.exception("the learner model named by %s cannot be loaded; predicting with BKT until a refit", path)
            _loaded[key] = None
    return _loaded[key]


def learner_model_online() -> OnlineModel | None:
    """The online form of the model in use, or None before any refit."""
    in_use = _model_in_use()
    return None if in_use is None else in_use[1]


def course_predictor(course: Course) -> LearnedPredictor | None:
    """The model in use, predicting for this course's concepts and items; None before the first refit."""
    in_use = _model_in_use()
    if in_use is None:
        return None
    current, model = in_use
    key = (course.pk, str(current["file"]), int(current["version"]))  # type: ignore[call-overload]
    predictor = _predictors.get(key)
    if predictor is None:
        concept_ids = dict(course.concepts.values_list("slug", "pk"))
        predictor = LearnedPredictor(model=model, concept_ids=concept_ids, version=key[2])
        _predictors.clear()
        _predictors[key] = predictor
    return predictor
