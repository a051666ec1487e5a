"""Refitting the knowledge-tracing model from the tutor's own attempt log (which model is in use: learner_selectors).

The tutor's `Attempt` rows become a `learner_model.data.Interactions` log (student = user pk, skill = concept pk,
item = item pk, in answer order). A refit cross-validates the candidate model by student, fits it on everyone,
writes a versioned model file, and switches the pointer file `current.json` to it only when its cross-validated AUC
is no worse than that of the model in use, measured on the same folds. Model files live in
`settings.LEARNER_MODEL_DIR` (default `<BASE_DIR>/var/learner_model`). The learning itself is in `learner_model/`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from learner_model.data import PYKT, Fold, Interactions, windows
from learner_model.evaluate import NEURAL, evaluate_fold
from learner_model.models import KTModel, get_model, save_model
from learner_model.seqtrain import TrainConfig
from tutor.learner.selectors import POINTER, learner_model_current, learner_model_dir

Progress = Callable[[str, float], None]  # message, fraction done in [0, 1]

class RefitError(Exception):
    pass


@dataclass(frozen=True)
class RefitOutcome:
    model: str
    version: int | None  # the version written, None when nothing was written
    answers: int
    students: int
    cv_auc: float
    current_cv_auc: float | None  # the model in use, cross-validated on the same folds
    switched: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def attempt_log_export(*, course_id: int | None = None) -> Interactions:
    """Every graded attempt as an `Interactions` log, each student's answers in the order given."""
    from tutor.models import Attempt

    rows = Attempt.objects.filter(ungraded=False)
    if course_id is not None:
        rows = rows.filter(concept__course_id=course_id)
    values = np.array(list(rows.order_by("user_id", "created_at", "id")
                           .values_list("user_id", "concept_id", "item_id", "correct")), dtype=np.int64)
    values = values.reshape(-1, 4)
    return Interactions(values[:, 0], values[:, 1], values[:, 2], values[:, 3].astype(np.int8),
                        source="tutor attempts")


def _student_folds(log: Interactions, n_folds: int, seed: int) -> list[Fold]:
    students = np.unique(log.student)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(students).tolist(), np.arange(len(students)) % n_folds, strict=True))
    fold = np.array([fold_of[int(s)] for s in log.student])
    return [Fold(log.select_students(fold != k), log.select_students(fold == k)) for k in range(n_folds)]


def _make(name: str, train_seconds: float) -> KTModel:
    if name in NEURAL:
        return get_model(name, train_config=TrainConfig(max_seconds=train_seconds, threads=1))
    return get_model(name)


def _cv_auc(name: str, folds: list[Fold], progress: Progress, start: float, span: float,
            train_seconds: float) -> float:
    aucs = []
    for k, fold in enumerate(folds):
        model = _make(name, train_seconds)
        aucs.append(evaluate_fold(model, fold, PYKT, log=lambda _: None).scores.auc)
        progress(f"{name}: fold {k + 1}/{len(folds)} AUC {aucs[-1]:.4f}", start + span * (k + 1) / len(folds))
    return float(np.mean(aucs))


def learner_model_refit(*, model_name: str = "best-lr", course_id: int | None = None, n_folds: int = 5,
                        min_students: int = 10, seed: int = 0, train_seconds: float = 600.0,
                        progress: Progress | None = None) -> RefitOutcome:
    """Cross-validate `model_name` on the attempt log, fit it on everyone, and switch to it if it is no worse."""
    say: Progress = progress or (lambda message, fraction: None)
    log = attempt_log_export(course_id=course_id)
    n_students = log.n_students if len(log) else 0
    say(f"{len(log)} answers from {n_students} students", 0.02)
    if n_students < max(min_students, n_folds):
        return RefitOutcome(model_name, None, len(log), n_students, float("nan"), None, False,
                            f"too few students to cross-validate ({n_students} < {max(min_students, n_folds)})")
    folds = _student_folds(log, n_folds, seed)
    current = learner_model_current()
    span = 0.45 if current is not None and current["model"] != model_name else 0.85
    cv = _cv_auc(model_name, folds, say, 0.05, span, train_seconds)
    current_cv: float | None = None
    if current is not None:
        # same folds, same data: the family in use against the candidate
        current_cv = cv if current["model"] == model_name else _cv_auc(
            str(current["model"]), folds, say, 0.05 + span, 0.4, train_seconds)
    if current_cv is not None and cv < current_cv:
        say("kept the model in use", 1.0)
        return RefitOutcome(model_name, None, len(log), n_students, cv, current_cv, False,
                            f"cross-validated AUC {cv:.4f} is below the model in use ({current_cv:.4f})")
    say("fitting on every student", 0.92)
    model = _make(model_name, train_seconds)
    train = windows(log, length=PYKT.window, min_length=1, score_first=True).data
    if getattr(model, "early_stops", False):
        model.fit(train, log=lambda _: None)  # type: ignore[call-arg]
    else:
        model.fit(train)
    version = int(current["version"]) + 1 if current is not None else 1  # type: ignore[call-overload]
    directory = learner_model_dir()
    directory.mkdir(parents=True, exist_ok=True)
    filename = f"kt-v{version}-{model_name}.pt"
    save_model(model, directory / filename)
    pointer = {"version": version, "file": filename, "model": model_name, "cv_auc": cv, "answers": len(log),
               "students": n_students}
    # write then rename: a reader never sees half a pointer
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(pointer, f)
    os.replace(tmp, directory / POINTER)
    say(f"switched to version {version}", 1.0)
    return RefitOutcome(model_name, version, len(log), n_students, cv, current_cv, True,
                        "no model in use" if current is None else "no worse than the model in use")
