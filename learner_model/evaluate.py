"""Score a knowledge-tracing model on a dataset under its published protocol.

    python -m learner_model.evaluate --dataset assist2015 --model best-lr            # 5-fold CV, pyKT protocol
    python -m learner_model.evaluate --dataset assist2009 --model akt --folds 0      # AKT's pid split, fold 1 of 5
    python -m learner_model.evaluate --model akt --train A.csv --test B.csv [--format pykt] [--protocol pykt]

Protocols (learner_model.data): sequences are cut into windows of 200 answers, each scored as its own sequence
(history resets at a window boundary, as in pyKT and AKT). pyKT drops windows shorter than 3 and does not score the
first answer of a window; AKT scores every answer. With --train/--test the protocol defaults to pyKT for pyKT csv
files and to AKT otherwise. Neural models early-stop on validation students (AKT's valid fold for assist2009, the
next fold for assist2015, else 10 % of the training students), never on the test students.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from learner_model.data import (
    AKT,
    DATASETS,
    FORMATS,
    PYKT,
    Fold,
    Interactions,
    Protocol,
    concat,
    load_folds,
    read,
    windows,
)
from learner_model.metrics import Scores, score
from learner_model.models import MODELS, KTModel, get_model, save_model
from learner_model.seqtrain import TrainConfig

PROTOCOLS = {"pykt": PYKT, "akt": AKT}
NEURAL = ("dkt", "dkt-rasch", "akt", "best-lr+dkt")  # models with a training-time budget


@dataclass(frozen=True)
class FoldResult:
    scores: Scores
    fit_seconds: float
    predict_us_per_answer: float  # batch prediction over the test log, per answer


def evaluate_fold(model: KTModel, fold: Fold, protocol: Protocol,
                  log: Callable[[str], None] = print) -> FoldResult:
    def cut(x: Interactions) -> tuple[Interactions, np.ndarray]:
        w = windows(x, length=protocol.window, min_length=protocol.min_length, score_first=protocol.score_first)
        return w.data, w.scored

    train, _ = cut(fold.train)
    valid = cut(fold.valid)[0] if fold.valid is not None else None
    test, scored = cut(fold.test)
    started = time.perf_counter()
    if getattr(model, "early_stops", False):
        model.fit(train, valid, log=log)  # type: ignore[call-arg]
    else:
        # nothing to early-stop: the validation students are more training data
        if valid is not None:
            # window ids restart at 0 in each part: shift the validation windows past the training ones
            valid = replace(valid, student=valid.student + int(train.student.max(initial=-1)) + 1)
            train = concat([train, valid])
        model.fit(train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    p = model.predict(test)
    predict_us = (time.perf_counter() - started) / max(len(test), 1) * 1e6
    return FoldResult(score(test.correct[scored], p[scored]), fit_seconds, predict_us)


def summarize(results: list[FoldResult]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over folds of each metric and the timings."""
    table = {
        "auc": [r.scores.auc for r in results], "accuracy": [r.scores.accuracy for r in results],
        "rmse": [r.scores.rmse for r in results], "log_loss": [r.scores.log_loss for r in results],
        "fit_s": [r.fit_seconds for r in results], "predict_us": [r.predict_us_per_answer for r in results],
    }
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in table.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(DATASETS), help="a named dataset and its published split")
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--train", help="training file in any supported format (with --test)")
    ap.add_argument("--test", help="test file in any supported format (with --train)")
    ap.add_argument("--format", choices=FORMATS, help="file format of --train/--test (default: detected)")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), help="default: the dataset's, or by file format")
    ap.add_argument("--folds", help="comma-separated 0-based folds of a named dataset (default: all)")
    ap.add_argument("--max-train-seconds", type=float, default=600.0, help="per-fold cap for neural models")
    ap.add_argument("--save", help="write the model fitted on the last fold to this file")
    args = ap.parse_args(argv)

    if bool(args.train) != bool(args.test):
        ap.error("--train and --test go together")
    if args.train:
        train, test = read(args.train, args.format), read(args.test, args.format)
        folds: list[Fold] = [Fold(train, test)]
        is_pykt = (args.format or "") == "pykt" or open(args.train, encoding="utf-8").readline().startswith("fold,")
        protocol = PROTOCOLS[args.protocol] if args.protocol else (
            DATASETS[args.dataset].protocol if args.dataset else (PYKT if is_pykt else AKT))
    elif args.dataset:
        wanted = [int(x) for x in args.folds.split(",")] if args.folds else None
        folds = list(load_folds(args.dataset, folds=wanted))
        protocol = PROTOCOLS[args.protocol] if args.protocol else DATASETS[args.dataset].protocol
    else:
        ap.error("give --dataset, or --train and --test")

    results = []
    model: KTModel | None = None
    for k, fold in enumerate(folds):
        options = {"train_config": TrainConfig(max_seconds=args.max_train_seconds, threads=1)} \
            if args.model in NEURAL else {}
        model = get_model(args.model, **options)
        r = evaluate_fold(model, fold, protocol)
        s = r.scores
        print(f"fold {k}: AUC {s.auc:.4f}  acc {s.accuracy:.4f}  RMSE {s.rmse:.4f}  log loss {s.log_loss:.4f}  "
              f"n {s.n}  fit {r.fit_seconds:.1f}s  predict {r.predict_us_per_answer:.1f}us/answer", flush=True)
        results.append(r)
    summary = summarize(results)
    print(f"{args.model} on {args.dataset or args.test} ({len(results)} fold(s)): " + "  ".join(
        f"{k} {m:.4f}±{sd:.4f}" for k, (m, sd) in summary.items()))
    if args.save and model is not None:
        save_model(model, args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
