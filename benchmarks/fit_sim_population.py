"""Fit the simulated-student population to ASSISTments 2009 and write learner_model/sim_population.json.

    python benchmarks/fit_sim_population.py [--dataset assist2009] [--min-answers 200]

Per-skill BKT (EM, `learner_model.bkt.fit_bkt`) on every student of the dataset; the JSON keeps only derived
statistics: 11 evenly spaced quantiles from the 5th to the 95th percentile of p_init, p_learn, guess and slip across skills with enough
answers, the spread of student ability (sd of a student's logit shift of first-attempt success, after
removing binomial noise) and the spread of problem difficulty within a skill (logits, sampling noise removed). No answers, ids or per-skill values are written.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from learner_model.bkt import fit_bkt
from learner_model.data import Interactions, load_dataset
from learner_model.simulate import POPULATION_FILE

# 5th to 95th percentile: EM pushes a few sparse skills onto the bounds (p_learn = 0 or 1), which are not students
QUANTILES = np.linspace(0.05, 0.95, 11)


def ability_sd(log: Interactions, min_first_attempts: int = 10) -> float:
    """sd (logit scale) of students' first-attempt success beyond what skill mix and binomial noise explain.

    First attempts only, so that practice does not count as ability. Each answer is compared with its skill's
    first-attempt success rate; the per-student excess variance of the residual is mapped to the logit scale
    by the slope of the logistic at the mean.
    """
    key = log.student.astype(np.int64) * (int(log.skill.max()) + 1) + log.skill
    _, first = np.unique(key, return_index=True)
    student, skill, correct = log.student[first], log.skill[first], log.correct[first].astype(float)
    skill_ids, skill_row = np.unique(skill, return_inverse=True)
    skill_rate = np.bincount(skill_row, weights=correct) / np.bincount(skill_row)
    expected = skill_rate[skill_row]
    students, row = np.unique(student, return_inverse=True)
    n = np.bincount(row)
    keep = n >= min_first_attempts
    resid_mean = np.bincount(row, weights=correct - expected)[keep] / n[keep]
    noise = (np.bincount(row, weights=expected * (1 - expected))[keep] / n[keep]) / n[keep]
    true_var = max(float(resid_mean.var() - noise.mean()), 0.0)
    p = float(correct.mean())
    return float(np.sqrt(true_var) / (p * (1 - p)))


def item_difficulty_sd(log: Interactions, min_answers: int = 30) -> float:
    """sd (logits) of problem difficulty within a skill, after removing the sampling noise of each estimate."""
    if not log.has_items:
        raise ValueError("item difficulty needs problem ids (use a dataset with them, e.g. assist2009)")
    problems, row = np.unique(log.item, return_inverse=True)
    n = np.bincount(row)
    k = np.bincount(row, weights=log.correct.astype(float))
    skill = np.zeros(len(problems), np.int64)
    skill[row] = log.skill  # a problem's (first listed) skill
    keep = n >= min_answers
    p = (k[keep] + 0.5) / (n[keep] + 1.0)
    logit = np.log(p / (1 - p))
    noise = 1.0 / (n[keep] * p * (1 - p))  # delta-method variance of a logit estimate
    skills, srow = np.unique(skill[keep], return_inverse=True)
    centred = logit - (np.bincount(srow, weights=logit) / np.bincount(srow))[srow]
    multi = np.bincount(srow)[srow] >= 2  # a skill with one problem says nothing about spread
    return float(np.sqrt(max(float((centred[multi] ** 2).mean() - noise[multi].mean()), 0.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="assist2009")
    parser.add_argument("--min-answers", type=int, default=200, help="skills with fewer answers are left out")
    parser.add_argument("--out", type=Path, default=POPULATION_FILE)
    args = parser.parse_args()

    started = time.time()
    log = load_dataset(args.dataset)
    params = fit_bkt(log.skill, log.student, log.correct)
    counts = dict(zip(*np.unique(log.skill, return_counts=True), strict=True))
    kept = [p for s, p in params.items() if counts.get(s, 0) >= args.min_answers]
    table = {
        "p_init": np.array([p.p_init for p in kept]),
        "p_learn": np.array([p.p_learn for p in kept]),
        "p_guess": np.array([p.p_guess for p in kept]),
        "p_slip": np.array([p.p_slip for p in kept]),
    }
    sd = ability_sd(log)
    item_sd = item_difficulty_sd(log)
    out = {
        "source": f"per-skill BKT (EM) on {args.dataset}: {log.n_students} students, {len(log)} answers, "
                  f"{len(kept)} of {len(params)} skills with >= {args.min_answers} answers",
        "provisional": False,
        "command": f"python benchmarks/fit_sim_population.py --dataset {args.dataset} --min-answers {args.min_answers}",
        "quantile_levels": [round(float(q), 3) for q in QUANTILES],
        "quantiles": {k: [round(float(x), 4) for x in np.quantile(v, QUANTILES)] for k, v in table.items()},
        "means": {k: round(float(v.mean()), 4) for k, v in table.items()},
        "ability_sd": round(sd, 3),
        "item_difficulty_sd": round(item_sd, 3),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    print(f"fitted in {time.time() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
