"""Knowledge tracing on real students (issue 3): every model, ASSISTments 2009 and 2015, pyBKT as the reference.

One process runs, on each fold of each dataset and under its published protocol (learner_model.evaluate):
  ASSIST2009  AKT's problem-id split (akt_pid/, 5 folds by student; early stopping on AKT's valid fold)
  AS2015      pyKT train_valid.csv, 5-fold CV (test fold k, early stopping on fold k+1, train on the rest)
every model of learner_model.models, plus pyBKT 1.4.3 (standard BKT, its defaults: 5 random restarts, parallel) on
the same windows, and prints one table: AUC (mean ± sd over folds), accuracy, RMSE, fit seconds, batch predict
µs per answer, and the p50 / p95 / p99 of one online update + prediction through learner_model.online (measured
on the first fold each model runs, one torch thread, --online-repeats times over the same answers: the table shows
the best repeat's percentiles and the worst repeat's p99, because on shared cores the tail is the scheduler's).

pyBKT needs numpy<2.4 and scikit-learn<1.8, so it lives in its own environment, built by `make bench-env`
(scripts/bench_env.sh: a plain `pip install pyBKT` silently gives its pure-Python fallback, hundreds of times
slower than the C++ extension that script builds). Then:
    OMP_NUM_THREADS=1 nice .bench-venv/bin/python benchmarks/kt_real.py [--folds 0,1,2,3,4] [--pybkt-folds 0]
        [--neural-folds 0,1,2,3,4] [--neural-seconds 600] [--models bkt,best-lr,...] [--online-repeats 5]
Run from the repo root. Without pyBKT installed the pyBKT rows are skipped (said so in the output).
pyBKT against our bkt alone, fitted alternately --fit-repeats times on the same load:
    OMP_NUM_THREADS=1 nice .bench-venv/bin/python benchmarks/kt_real.py --pybkt-vs-bkt \
        --datasets assist2009-piech,assist2009,assist2015 --folds 0
(add --pybkt-fits 1 for one EM run per skill, like ours, instead of pyBKT's default 5 random restarts).
pyBKT (C++) fits a fold in seconds; --pybkt-folds restricts it (default: fold 0 only) and the BKT speed ratio is
then taken on the folds both ran, each fitted once: --pybkt-vs-bkt times them fairly on shared cores. Neural models
(dkt, akt) are capped at --neural-seconds of training per fold and run on --neural-folds (default: all).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # two shared cores: oversubscribed BLAS threads are slower, not faster

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from learner_model.data import DATASETS, Fold, Interactions, load_folds, windows  # noqa: E402
from learner_model.evaluate import FoldResult, evaluate_fold  # noqa: E402
from learner_model.metrics import score  # noqa: E402
from learner_model.models import MODELS, get_model  # noqa: E402
from learner_model.online import HistoryOnline, online_for  # noqa: E402
from learner_model.seqtrain import TrainConfig  # noqa: E402

NEURAL = ("dkt", "dkt-rasch", "akt", "best-lr+dkt")
DEFAULT_MODELS = ("bkt", "bkt-forget", "kt-idem", "rasch-elo", "pfa", "best-lr", "dkt", "akt")


def pybkt_fold(fold: Fold, dataset: str, n_skills: int = 0, num_fits: int = 5) -> FoldResult | None:
    """Standard BKT by pyBKT on the same windows and the same training students as our models.
    With n_skills > 0, only the answers on the fold's n_skills most frequent skills (see pybkt_vs_ours).
    num_fits: pyBKT's random restarts per skill (its default 5; our bkt fits once, from one fixed start)."""
    try:
        import pandas as pd
        from pyBKT.models import Model
    except ImportError:
        return None
    protocol = DATASETS[dataset].protocol

    def frame(log: Interactions) -> pd.DataFrame:
        w = windows(log, length=protocol.window, min_length=protocol.min_length, score_first=protocol.score_first)
        d = w.data
        return pd.DataFrame({"order_id": np.arange(len(d)), "user_id": d.student.astype(str),
                             "skill_name": d.skill.astype(str), "correct": d.correct.astype(int),
                             "scored": w.scored})

    if n_skills:
        fold = _top_skills(fold, n_skills)
    train = frame(fold.train)
    if fold.valid is not None:  # our non-neural models train on train + valid: so does pyBKT
        valid = frame(fold.valid)
        valid["user_id"] = "v" + valid["user_id"]
        valid["order_id"] += len(train)
        train = pd.concat([train, valid], ignore_index=True)
    test = frame(fold.test)
    model = Model(seed=42, num_fits=num_fits)
    started = time.perf_counter()
    model.fit(data=train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    pred = model.predict(data=test).sort_values("order_id")
    predict_us = (time.perf_counter() - started) / len(test) * 1e6
    scored = pred["scored"].to_numpy(bool)
    return FoldResult(score(pred["correct"].to_numpy()[scored], pred["correct_predictions"].to_numpy()[scored]),
                      fit_s, predict_us)


def _top_skills(fold: Fold, n_skills: int) -> Fold:
    counts = np.bincount(fold.train.skill)
    keep = np.argsort(-counts, kind="stable")[:n_skills]

    def only(log: Interactions | None) -> Interactions | None:
        return None if log is None else log.select_students(np.isin(log.skill, keep))

    return Fold(only(fold.train), only(fold.test), only(fold.valid))  # type: ignore[arg-type]


def pybkt_vs_ours(fold: Fold, dataset: str, n_skills: int, repeats: int, num_fits: int = 5) -> None:
    """pyBKT and our standard BKT on the same windows (all skills, or fold's n_skills most frequent), each fitted
    `repeats` times, alternately, so that both see the same load on shared cores; the ratio is of the best fits."""
    ours_fold = _top_skills(fold, n_skills) if n_skills else fold
    refs, ours = [], []
    for _ in range(repeats):
        ref = pybkt_fold(fold, dataset, n_skills, num_fits)
        if ref is None:
            print("pyBKT not importable here: run in .bench-venv (see the docstring)", flush=True)
            return
        refs.append(ref)
        ours.append(evaluate_fold(get_model("bkt"), ours_fold, DATASETS[dataset].protocol))
    ref_s, our_s = [r.fit_seconds for r in refs], [r.fit_seconds for r in ours]
    what = f"{n_skills} most frequent skills" if n_skills else "all skills"
    print(f"{dataset} {what}: pyBKT ({num_fits} fits/skill) AUC {refs[0].scores.auc:.4f} fit {min(ref_s):.2f}-{max(ref_s):.2f}s | "
          f"bkt AUC {ours[0].scores.auc:.4f} fit {min(our_s):.2f}-{max(our_s):.2f}s | AUC ours - pyBKT "
          f"{ours[0].scores.auc - refs[0].scores.auc:+.4f} | fit speed ratio (best of {repeats} each) "
          f"{min(ref_s) / min(our_s):.1f}x", flush=True)


@dataclass(frozen=True)
class OnlineTiming:
    """Milliseconds for one update + one prediction: the best repeat's percentiles, the worst repeat's p99."""

    p50: float
    p95: float
    p99: float
    worst_p99: float
    repeats: int
    answers: int

    def __str__(self) -> str:
        return (f"{self.p50:.3f} / {self.p95:.3f} / {self.p99:.3f} (worst p99 {self.worst_p99:.3f}; "
                f"{self.repeats}x{self.answers})")


def online_timing(model: object, test: Interactions, n: int = 2000, repeats: int = 5) -> OnlineTiming:
    """Replay the first n test answers through the blob interface (decode, step, encode), `repeats` times."""
    online = online_for(model)  # type: ignore[arg-type]
    if isinstance(online, HistoryOnline):  # AKT replays its history at each prediction: ~100 ms a call
        n, repeats = min(n, 300), min(repeats, 2)
    n = min(n, len(test))
    runs = []
    for _ in range(repeats):
        blobs: dict[int, str | None] = {}
        took = np.empty(n)
        for i in range(n):
            s, k = int(test.student[i]), int(test.skill[i])
            item = int(test.item[i]) if test.item[i] >= 0 else None
            started = time.perf_counter()
            online.predict(blobs.get(s), k, item)
            blobs[s] = online.update(blobs.get(s), k, item, bool(test.correct[i]))
            took[i] = time.perf_counter() - started
        runs.append(np.percentile(took, [50, 95, 99]) * 1e3)
    best = min(runs, key=lambda r: r[2])
    return OnlineTiming(*best, max(r[2] for r in runs), repeats, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="assist2009,assist2015")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--neural-folds", default="0,1,2,3,4")
    ap.add_argument("--pybkt-folds", default="0", help="folds on which to run pyBKT ('' for none)")
    ap.add_argument("--pybkt-vs-bkt", action="store_true",
                    help="only compare pyBKT and our bkt on the first of --folds of each dataset, then stop")
    ap.add_argument("--pybkt-skills", type=int, default=0,
                    help="with --pybkt-vs-bkt (implied): only the fold's N most frequent skills (0 = all)")
    ap.add_argument("--fit-repeats", type=int, default=3, help="with --pybkt-vs-bkt: fits of each, alternately")
    ap.add_argument("--pybkt-fits", type=int, default=5,
                    help="with --pybkt-vs-bkt: pyBKT's random restarts per skill (its default 5; our bkt fits once)")
    ap.add_argument("--neural-seconds", type=float, default=600.0, help="training cap per fold for dkt/akt")
    ap.add_argument("--online-repeats", type=int, default=5, help="replays of the test answers for online timing")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the tutor's web worker predicts on one thread; so does every timing here
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"unknown model {m!r}; known: {', '.join(MODELS)}")
    folds = [int(x) for x in args.folds.split(",")]
    neural_folds = {int(x) for x in args.neural_folds.split(",") if x}
    pybkt_folds = {int(x) for x in args.pybkt_folds.split(",") if x}
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average at start {os.getloadavg()[0]:.1f}", flush=True)

    if args.pybkt_vs_bkt or args.pybkt_skills:
        for dataset in args.datasets.split(","):
            pybkt_vs_ours(next(load_folds(dataset, folds=[folds[0]])), dataset, args.pybkt_skills, args.fit_repeats,
                          args.pybkt_fits)
        return
    rows: list[tuple[str, str, list[FoldResult], OnlineTiming | None]] = []
    for dataset in args.datasets.split(","):
        protocol = DATASETS[dataset].protocol
        results: dict[str, list[FoldResult]] = {m: [] for m in models + ["pyBKT"]}
        p99: dict[str, OnlineTiming] = {}
        for k, fold in zip(folds, load_folds(dataset, folds=folds), strict=True):
            for name in models:
                if name in NEURAL and k not in neural_folds:
                    continue
                options = {"train_config": TrainConfig(max_seconds=args.neural_seconds, threads=1)} \
                    if name in NEURAL else {}
                model = get_model(name, **options)
                r = evaluate_fold(model, fold, protocol, log=lambda s: None)
                results[name].append(r)
                extra = f" ({model.report.get('epochs')} epochs)" if hasattr(model, "report") else ""
                print(f"{dataset} fold {k} {name}: AUC {r.scores.auc:.4f}  fit {r.fit_seconds:.1f}s{extra}",
                      flush=True)
                if name not in p99:
                    test = windows(fold.test, length=protocol.window).data
                    p99[name] = online_timing(model, test, repeats=args.online_repeats)
                    print(f"{dataset} {name} online ms p50 / p95 / p99: {p99[name]}", flush=True)
            if k in pybkt_folds:
                r = pybkt_fold(fold, dataset)
                if r is None:
                    print("pyBKT not importable here: run in .bench-venv (see the docstring)", flush=True)
                else:
                    results["pyBKT"].append(r)
                    print(f"{dataset} fold {k} pyBKT: AUC {r.scores.auc:.4f}  fit {r.fit_seconds:.1f}s", flush=True)
        for name, rs in results.items():
            if rs:
                rows.append((name, dataset, rs, p99.get(name)))
        if results["pyBKT"] and results.get("bkt"):
            n = len(results["pyBKT"])
            ours = [r for k, r in zip(folds, results["bkt"], strict=False) if k in pybkt_folds][:n]
            ratio = np.mean([r.fit_seconds for r in results["pyBKT"]]) / np.mean([r.fit_seconds for r in ours])
            auc_gap = np.mean([r.scores.auc for r in ours]) - np.mean([r.scores.auc for r in results["pyBKT"]])
            print(f"{dataset}: BKT fit speed vs pyBKT on the same fold(s): {ratio:.1f}x; AUC ours - pyBKT: "
                  f"{auc_gap:+.4f}", flush=True)

    print()
    print("| model | dataset | folds | AUC | accuracy | RMSE | fit s / fold | predict µs / answer "
          "| online ms p50 / p95 / p99 (worst p99) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, dataset, rs, p in rows:
        a = [r.scores.auc for r in rs]
        print(f"| {name} | {dataset} | {len(rs)} | {np.mean(a):.4f} ± {np.std(a):.4f} | "
              f"{np.mean([r.scores.accuracy for r in rs]):.4f} | {np.mean([r.scores.rmse for r in rs]):.4f} | "
              f"{np.mean([r.fit_seconds for r in rs]):.1f} | {np.mean([r.predict_us_per_answer for r in rs]):.2f} | "
              f"{'' if p is None else p} |")
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (2 cores shared with other jobs)")


if __name__ == "__main__":
    main()
