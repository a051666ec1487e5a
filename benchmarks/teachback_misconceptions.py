"""Does the teach-back scorer hear a misconception when a student states one, and only then?

Data: `benchmarks/data/teachback_misconceptions.json`, explanations of the demo course's 15 concepts written by a
helper that never saw or ran the scorer (its "about" says how): per concept, correct explanations, a correct one that
warns against a misconception, and one stating each of the concept's authored misconceptions. The Mohler answers have
no authored misconceptions, so this part of the scorer is measured here, on text written for it, not on real
students: a check of the rule, not a figure of real use.

The split is by concept, written in the file before any run: `--scan` reads the dev concepts only and prints, for a
grid of the rule's settings (ScorerConfig.contradiction_polarity and contradiction_margin), how many right
explanations it accuses and how many stated misconceptions it hears; `--split test` scores the test concepts with
ScorerConfig as it is, beside the rule before this check (no polarity check) in the same process.

    python benchmarks/teachback_misconceptions.py --scan            # dev concepts: the grid
    python benchmarks/teachback_misconceptions.py --split dev       # dev concepts, ScorerConfig as it is
    python benchmarks/teachback_misconceptions.py --split test      # the reported figures
    python benchmarks/teachback_misconceptions.py --timing          # time per explanation of this length
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from courses.format import load_course  # noqa: E402
from inference.teachback import ConceptKey, ExplanationScorer, MisconceptionSignal, ScorerConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "teachback_misconceptions.json"
COURSE = ROOT / "courses" / "demo" / "derivatives"
MARGINS = (0.0, 0.02, 0.05, 0.1)
OFF = replace(ScorerConfig(), contradiction_margin=0.05, contradiction_polarity=False)  # the rule before


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # correct, correct_warns, misconception
    states: tuple[str, ...]
    signals: tuple[MisconceptionSignal, ...]


def explanations(split: str | None) -> list[tuple[dict, ConceptKey]]:
    """The check set's explanations of `split`'s concepts (None: all), each with its demo concept's key (as the
    tutor builds it: each misconception with the key idea the course says it opposes)."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    keys = {c.slug: ConceptKey(topic=c.title, key_ideas=tuple(c.key_ideas), misconceptions=tuple(c.misconceptions),
                               opposes=tuple(c.misconception_ideas.items()))
            for c in load_course(COURSE).concepts}
    return [(e, keys[e["concept"]]) for e in data["explanations"]
            if split is None or e["concept"] in data["split"][split]]


def cases(scorer: ExplanationScorer, split: str) -> list[Case]:
    out = []
    for e, key in explanations(split):
        if scorer.screen(e["text"], key) is not None:
            raise SystemExit(f"{e['id']} is turned away by the screen ({scorer.screen(e['text'], key)})")
        out.append(Case(e["id"], e["kind"], tuple(e["states"]), scorer.score(e["text"], key).signals))
    return out


def tally(scorer: ExplanationScorer, data: list[Case]) -> dict[str, tuple[int, int]]:
    """(count, out of) for: right explanations accused of any misconception, by kind; stated misconceptions
    heard; misconception explanations accused of another misconception than the one stated."""
    figures: dict[str, tuple[int, int]] = {}

    def add(name: str, hit: bool) -> None:
        n, total = figures.get(name, (0, 0))
        figures[name] = (n + hit, total + 1)

    for case in data:
        heard = {s.misconception for s in case.signals if scorer.heard(s)}
        if case.kind == "misconception":
            for m in case.states:
                add("stated misconception heard", m in heard)
            add("misconception text: another one heard", bool(heard - set(case.states)))
        else:
            add(f"{case.kind}: accused", bool(heard))
            add("any right explanation: accused", bool(heard))
    return figures


def show(name: str, figures: dict[str, tuple[int, int]]) -> None:
    print(name)
    for key, (n, total) in sorted(figures.items()):
        print(f"  {key:40} {n:3} / {total:3} = {n / total:.2f}")


def scan(data: list[Case]) -> None:
    print(f"{'polarity':>8} {'margin':>7} {'right accused':>14} {'stated heard':>13} {'other heard':>12}")
    for polarity in (False, True):
        for margin in MARGINS:
            scorer = ExplanationScorer(replace(ScorerConfig(), contradiction_polarity=polarity,
                                               contradiction_margin=margin))
            f = tally(scorer, data)
            accused, heard, other = (f["any right explanation: accused"], f["stated misconception heard"],
                                     f["misconception text: another one heard"])
            print(f"{polarity!s:>8} {margin:7.2f} {accused[0]:5}/{accused[1]:<8} {heard[0]:4}/{heard[1]:<8} "
                  f"{other[0]:4}/{other[1]:<7}")


def timing() -> None:
    """Time per explanation on one core for the check set's texts, which have the length of a teach-back
    explanation (45-150 words): the concept's texts embedded first, as in the tutor. Beside it, in the same process
    and alternating text by text, the scorer without the swapped-terms check (the rule before it)."""
    import time

    scorers = {"as it ships": ExplanationScorer(), "without the swapped-terms check":
               ExplanationScorer(replace(ScorerConfig(), hear_swaps=False))}
    texts = explanations(None)
    wall: dict[str, list[float]] = {name: [] for name in scorers}
    cpu: dict[str, list[float]] = {name: [] for name in scorers}
    words = []
    for _ in range(3):
        for e, key in texts:
            for name, scorer in scorers.items():
                scorer.prepare(key)
                start, start_cpu = time.perf_counter(), time.thread_time()
                scorer.assess(e["text"], key)
                wall[name].append(1000 * (time.perf_counter() - start))
                cpu[name].append(1000 * (time.thread_time() - start_cpu))
            words.append(len(e["text"].split()))
    p = statistics.quantiles
    print(f"{len(texts)} explanations x 3, {min(words)}-{max(words)} words (median {statistics.median(words):.0f}); "
          f"assess (screen + score), one core, ms:")
    for name in scorers:
        print(f"  {name:<32} wall p50 {statistics.median(wall[name]):.1f}, p95 {p(wall[name], n=20)[-1]:.1f}, max "
              f"{max(wall[name]):.1f}; CPU p50 {statistics.median(cpu[name]):.1f}, p95 {p(cpu[name], n=20)[-1]:.1f}")
    ships, before = (statistics.median(wall[name]) for name in scorers)
    print(f"  wall p50 ratio {ships / before:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--scan", action="store_true", help="dev concepts: the grid of the rule's thresholds")
    parser.add_argument("--timing", action="store_true", help="time per explanation, all 77 texts")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.timing:
        timing()
        return
    scorer = ExplanationScorer()
    if args.scan:
        scan(cases(scorer, "dev"))
        return
    data = cases(scorer, args.split)
    c = scorer.config
    print(f"{args.split} concepts: {len(data)} explanations")
    show(f"this scorer (margin {c.contradiction_margin}, polarity check {c.contradiction_polarity})",
         tally(scorer, data))
    show("baseline, the rule before (coverage over the idea's by the margin only)", tally(ExplanationScorer(OFF), data))


if __name__ == "__main__":
    main()
