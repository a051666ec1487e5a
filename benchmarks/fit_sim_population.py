"""Fit the simulated-student population to ASSISTments 2009 and write learner_model/sim_population.json.

    python benchmarks/fit_sim_population.py [--dataset assist2009] [--min-answers 200]

Per-skill BKT (EM, `learner_model.bkt.fit_bkt`) on every student of the dataset; the JSON keeps only derived
statistics: 11 evenly spaced quantiles from the 5th to the 95th percentile of p_init, p_learn, guess and slip
across skills with enough answers; the spread of student ability; and the item banks: per skill with enough
problems, 11 quantiles (min to max) of its problems' Rasch difficulties (`learner_model.irt`), centred on the
skill's median problem. No answers, ids or per-skill BKT values are written.

Student ability is fitted in two steps. The data give the sd of a student's logit shift of first-attempt success
beyond skill mix and binomial noise (`answer_ability_sd`). The simulator's ability shifts *knowledge* at
enrolment, and guess/slip blur knowledge into answers, so the simulator needs a larger sd to produce the same
answer-level spread: `ability_sd` is the knowledge-level sd at which simulated first attempts on a calibration
course give the data's statistic (bisection; the simulated statistic is computed by the same function).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learner_model.bkt import fit_bkt
from learner_model.data import Interactions, load_dataset
from learner_model.irt import RaschEloModel
from learner_model.knowledge import BKTParams, posterior
from learner_model.simulate import POPULATION_FILE, Classroom, PopulationParams, make_course, make_population

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


def _bkt_filter(log: Interactions, params: dict[int, BKTParams]) -> NDArray[np.float64]:
    """(N,) BKT P(known) of each answer's skill right after the answer (learning transition included)."""
    after = np.empty(len(log))
    belief: dict[tuple[int, int], float] = {}
    for i, (student, skill, correct) in enumerate(zip(log.student.tolist(), log.skill.tolist(),
                                                     log.correct.tolist(), strict=True)):
        p = params[skill]
        q = posterior(belief.get((student, skill), p.p_init), bool(correct), p)
        belief[(student, skill)] = after[i] = q + (1 - q) * p.p_learn
    return after


def prerequisite_effects(log: Interactions, params: dict[int, BKTParams], *, min_students: int = 100,
                         ordered: float = 0.8, mixed: tuple[float, float] = (0.35, 0.65)) -> dict[str, Any]:
    """How much a skill's prior knowledge, learning and answers suffer when an earlier skill is not mastered.

    ASSISTments 2009 has no skill graph, so candidate prerequisite pairs A -> B are skills that students who did
    both practised A first in >= `ordered` of cases (>= `min_students` students). For each student who did A before
    B, BKT's P(known A) right before B's first attempt splits them: A not mastered (< 0.5) or mastered (>= 0.95).
    Per split, one BKT (EM) is fitted on all their B sequences, within terciles of the student's ability (mean
    first-attempt residual on every skill but A and B), and the not-mastered / mastered contrast is taken:
    p_init ratio (the simulator's `leak`), p_learn ratio (`prereq_learn_factor`) and the logit drop of guess and
    of 1 - slip (`prereq_answer_penalty`). Weaker students do worse on everything, which terciles only partly
    remove, so the same contrast on pairs practised in no consistent order (`mixed`: A first in 35-65 % of
    students) is the control, and the effect is ordered minus mixed (a difference in differences on log scales).
    """
    after = _bkt_filter(log, params)
    students, skills, correct = log.student.tolist(), log.skill.tolist(), log.correct.astype(bool)
    rows: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(students, skills, strict=True)):
        rows[key].append(i)
    # ability: first-attempt residual against the skill's first-attempt success rate
    first = {key: r[0] for key, r in rows.items()}
    rate: dict[int, list[float]] = defaultdict(list)
    for (_, k), i in first.items():
        rate[k].append(float(correct[i]))
    residual = {key: float(correct[i]) - float(np.mean(rate[key[1]])) for key, i in first.items()}
    total: dict[int, list[float]] = defaultdict(list)
    for (st, _), r in residual.items():
        total[st].append(r)
    by_student: dict[int, dict[int, int]] = defaultdict(dict)
    for (st, k), i in first.items():
        by_student[st][k] = i
    before: dict[tuple[int, int], int] = defaultdict(int)
    for firsts in by_student.values():
        order = sorted(firsts, key=firsts.__getitem__)
        for j, a in enumerate(order):
            for b in order[j + 1:]:
                before[(a, b)] += 1

    def share(a: int, b: int) -> float:
        n = before.get((a, b), 0) + before.get((b, a), 0)
        return before.get((a, b), 0) / n if n >= min_students else -1.0

    kind = {pair: 1 if share(*pair) >= ordered else 0 for pair in before
            if share(*pair) >= ordered or mixed[0] <= share(*pair) <= mixed[1]}
    instances: list[tuple[int, int, float, list[int]]] = []  # (ordered, A mastered, ability, rows of B)
    for st, firsts in by_student.items():
        n_first = len(total[st])
        for a, ia in firsts.items():
            for b, ib in firsts.items():
                if ia >= ib or (a, b) not in kind or n_first < 7:
                    continue
                p_a = after[[i for i in rows[(st, a)] if i < ib][-1]]
                if 0.5 <= p_a < 0.95:
                    continue
                ability = (sum(total[st]) - residual[(st, a)] - residual[(st, b)]) / (n_first - 2)
                instances.append((kind[(a, b)], int(p_a >= 0.95), ability, rows[(st, b)]))
    cuts = np.quantile([x[2] for x in instances], [1 / 3, 2 / 3])
    pseudo, chain, answers = [], [], []
    for j, (is_ordered, mastered, ability, b_rows) in enumerate(instances):
        pseudo += [100 * is_ordered + 10 * mastered + int(np.digitize(ability, cuts))] * len(b_rows)
        chain += [j] * len(b_rows)  # one chain per instance: a student is in many pairs
        answers += correct[b_rows].tolist()
    fit = fit_bkt(np.array(pseudo), np.array(chain), np.array(answers, np.int8))

    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    def contrast(is_ordered: int) -> NDArray[np.float64]:  # (3,) log p_init ratio, log p_learn ratio, logit drop
        per_tercile = []
        for t in range(3):
            low, high = fit[100 * is_ordered + t], fit[100 * is_ordered + 10 + t]
            per_tercile.append([np.log(low.p_init / high.p_init), np.log(low.p_learn / high.p_learn),
                                (logit(high.p_guess) - logit(low.p_guess) + logit(1 - high.p_slip)
                                 - logit(1 - low.p_slip)) / 2])
        return np.asarray(np.mean(per_tercile, axis=0))

    effect = contrast(1) - contrast(0)
    first_correct = np.array([correct[x[3][0]] for x in instances], float)
    groups = {(o, m): first_correct[[x[0] == o and x[1] == m for x in instances]] for o in (0, 1) for m in (0, 1)}
    return {
        "leak": round(float(min(np.exp(effect[0]), 1.0)), 3),
        "prereq_learn_factor": round(float(min(np.exp(effect[1]), 1.0)), 3),
        "prereq_answer_penalty": round(float(max(effect[2], 0.0)), 3),
        "pairs": {"ordered": sum(kind.values()), "mixed": len(kind) - sum(kind.values())},
        "instances": {f"{'ordered' if o else 'mixed'}, A {'mastered' if m else 'not mastered'}": len(g)
                      for (o, m), g in groups.items()},
        "first_attempt_success": {f"{'ordered' if o else 'mixed'}, A {'mastered' if m else 'not mastered'}":
                                  round(float(g.mean()), 3) for (o, m), g in groups.items()},
        "raw_ordered_contrast": [round(float(x), 3) for x in contrast(1)],
        "raw_mixed_contrast": [round(float(x), 3) for x in contrast(0)],
    }


def skill_item_banks(log: Interactions, min_answers: int = 30, min_items: int = 10) -> list[list[float]]:
    """Per skill with >= `min_items` problems of >= `min_answers` answers: 11 quantiles (min to max, logits) of its
    problems' Rasch difficulties, centred on the skill's median problem. Rasch (student ability + problem
    difficulty) rather than raw success rates, so that problems answered by weaker students do not look harder."""
    model = RaschEloModel(skill_ability=False, max_iter=100).fit(log)
    rows = model.items(log.item)
    n = np.bincount(rows, minlength=model.items.size)
    skill = np.zeros(model.items.size, np.int64)
    skill[rows] = log.skill  # a problem's (first listed) skill
    keep = n >= min_answers
    keep[-1] = False  # the spare row (unseen problems)
    banks = []
    for s in np.unique(skill[keep]):
        b = model.item_b[keep & (skill == s)]
        if len(b) >= min_items:
            banks.append([round(float(x), 3) for x in np.quantile(b - np.median(b), np.linspace(0.0, 1.0, 11))])
    return banks


def simulated_answer_ability_sd(params: PopulationParams, n_students: int = 3000, seed: int = 12345) -> float:
    """The `ability_sd` statistic of simulated first attempts (one middle item per concept, at enrolment)."""
    course = make_course(50, seed=seed, population=params)
    population = make_population(course, n_students, seed=seed + 1, population=params)
    room = Classroom.fresh(population, seed=seed + 2)
    n_c = len(course.nodes)
    student, concept = np.repeat(np.arange(n_students), n_c), np.tile(np.arange(n_c), n_students)
    by_concept = course.model().items_by_concept
    middle = {n.slug: sorted(by_concept[n.slug], key=lambda i: i.difficulty)[len(by_concept[n.slug]) // 2].id
              for n in course.nodes}
    correct = room.answer(student, concept, [middle[course.nodes[c].slug] for c in concept], 0.0, learn=False)
    log = Interactions(student=student.astype(np.int64), skill=concept.astype(np.int64),
                       item=np.full(len(student), -1, np.int64), correct=correct.astype(np.int8))
    return ability_sd(log)


def knowledge_ability_sd(target: float, params: PopulationParams, lo: float = 0.2, hi: float = 4.0) -> float:
    """The knowledge-level ability sd whose simulated first attempts show the data's answer-level `target`."""
    for _ in range(12):  # the statistic grows with the sd; 12 halvings: ~0.001 logit
        mid = (lo + hi) / 2
        if simulated_answer_ability_sd(replace(params, ability_sd=mid)) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="assist2009")
    parser.add_argument("--min-answers", type=int, default=200, help="skills with fewer answers are left out")
    parser.add_argument("--out", type=Path, default=POPULATION_FILE)
    parser.add_argument("--assumed-prerequisites", action="store_true",
                        help="write the assumed prerequisite effects (leak 0.15, p_learn x0.3, -1 logit) instead of "
                             "fitting them (ability sd is still calibrated); for sensitivity runs, not the default file")
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
    banks = skill_item_banks(log)
    quantiles = {k: [round(float(x), 4) for x in np.quantile(v, QUANTILES)] for k, v in table.items()}
    if args.assumed_prerequisites:  # the simulator's earlier assumption, for sensitivity runs
        prereq = {"leak": 0.15, "prereq_learn_factor": 0.3, "prereq_answer_penalty": 1.0, "assumed": True}
    else:
        prereq = prerequisite_effects(log, params)
    fitted = PopulationParams(p_init=tuple(quantiles["p_init"]), p_learn=tuple(quantiles["p_learn"]),
                              p_guess=tuple(quantiles["p_guess"]), p_slip=tuple(quantiles["p_slip"]),
                              leak=prereq["leak"], prereq_learn_factor=prereq["prereq_learn_factor"],
                              prereq_answer_penalty=prereq["prereq_answer_penalty"],
                              item_banks=tuple(tuple(b) for b in banks))
    knowledge_sd = knowledge_ability_sd(sd, fitted)
    out = {
        "source": f"per-skill BKT (EM) on {args.dataset}: {log.n_students} students, {len(log)} answers, "
                  f"{len(kept)} of {len(params)} skills with >= {args.min_answers} answers",
        "provisional": False,
        "command": f"python benchmarks/fit_sim_population.py --dataset {args.dataset} --min-answers {args.min_answers}"
                   + (" --assumed-prerequisites" if args.assumed_prerequisites else ""),
        "quantile_levels": [round(float(q), 3) for q in QUANTILES],
        "quantiles": quantiles,
        "means": {k: round(float(v.mean()), 4) for k, v in table.items()},
        "answer_ability_sd": round(sd, 3),
        "ability_sd": round(knowledge_sd, 3),
        "item_difficulty_sd": round(item_sd, 3),
        "leak": prereq["leak"],
        "prereq_learn_factor": prereq["prereq_learn_factor"],
        "prereq_answer_penalty": prereq["prereq_answer_penalty"],
        "prerequisite_fit": {k: v for k, v in prereq.items() if k not in ("leak", "prereq_learn_factor",
                                                                        "prereq_answer_penalty")},
        "item_banks": banks,
    }
    # one line per list of numbers: the item banks would otherwise take 600 lines
    text = re.sub(r"\[([-0-9.,\s]+)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(out, indent=2))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"fitted in {time.time() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
