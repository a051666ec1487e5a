"""Which key idea does a misconception oppose? The teach-back scorer must know: a misconception is heard only when
the explanation says it more fully than the idea it opposes, the beginner's mix-up question is aimed at that idea,
and a student who says yes to the mix-up (or is unsure of it) has that idea marked.

Data: `benchmarks/data/teachback_mixup_ideas.json`, written by a helper that never saw the matcher (its "about" says
how): dev, the demo course's 15 concepts with their authored misconceptions (32), each labelled with the key idea it
opposes; test, 24 concepts of the imported Introductory Statistics and College Algebra courses (key ideas from the
per-idea check set) with 72 misconceptions written for them, labelled the same way. "ambiguous" marks a misconception
the writer found to fit two ideas about equally (the better one is the label).

    python benchmarks/teachback_mixup_ideas.py --scan            # dev: every ScorerConfig.opposed_by
    python benchmarks/teachback_mixup_ideas.py --split test      # the shipped rule beside "sentence", the rule before
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inference.teachback import ConceptKey, ExplanationScorer, ScorerConfig  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "teachback_mixup_ideas.json"
RULES = ("sentence", "alignment", "both")
BEFORE = "sentence"  # the rule before this check


def concepts(split: str) -> list[dict]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    wanted = set(data["split"][split])
    return [c for c in data["concepts"] if c["id"] in wanted]


def tally(scorer: ExplanationScorer, split: str) -> dict[str, tuple[int, int]]:
    """(right, of) for all misconceptions, the unambiguous ones, and per course."""
    counts: dict[str, list[int]] = {}

    def count(group: str, right: bool) -> None:
        counts.setdefault(group, [0, 0])
        counts[group][0] += right
        counts[group][1] += 1

    for c in concepts(split):
        key = ConceptKey(topic=c["title"], key_ideas=tuple(c["key_ideas"]),
                         misconceptions=tuple(m["text"] for m in c["misconceptions"]))
        scorer.prepare(key)
        for m in c["misconceptions"]:
            right = scorer.opposed_idea(m["text"], key) == m["idea"]
            count("all", right)
            if not m.get("ambiguous"):
                count("unambiguous", right)
            count(c["id"].split(":")[0], right)
    return {group: (right, of) for group, (right, of) in counts.items()}


def show(rule: str, figures: dict[str, tuple[int, int]]) -> None:
    cells = "  ".join(f"{group} {right}/{of} ({right / of:.3f})" for group, (right, of) in figures.items())
    print(f"{rule:<10} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--scan", action="store_true", help="dev only: every rule")
    args = parser.parse_args()
    if args.scan and args.split != "dev":
        parser.error("--scan reads the dev split only")
    shipped = ScorerConfig().opposed_by
    rules = RULES if args.scan else tuple(dict.fromkeys((shipped, BEFORE)))
    print(f"split {args.split}; shipped rule: {shipped}")
    for rule in rules:
        show(rule, tally(ExplanationScorer(replace(ScorerConfig(), opposed_by=rule)), args.split))


if __name__ == "__main__":
    main()
