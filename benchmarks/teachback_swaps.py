"""Two of a concept's terms swapped: does the teach-back scorer hear it? ("a parameter is a number calculated from a
sample", where the key idea says it of a statistic.) Before inference/teachback_swaps.py such a sentence covered the
idea it garbles and the student was told the idea came across.

Data: `benchmarks/data/teachback_swaps.json`, written by a helper that never saw the scorer (its "about" says how):
per concept of the per-idea check set (`teachback_ideas.json`: dev, the demo course's 8 concepts; test, 32 of the
imported Introductory Statistics and College Algebra courses), a "swap_close" explanation (the mixed-up sentence
follows the key idea's wording), a "swap_own_words" one, and a "correct_both_terms" one that uses the two terms
together, rightly. Each labels the key ideas the mix-up gets wrong. `teachback_swaps_dev2.json`, by a second
helper: 12 more concepts of the two imported courses with key ideas it wrote, and the same three kinds (it labels
an idea about the wrongly used term as wrong too, where the sentence contradicts it).

What is printed, per kind of explanation:
- caught: explanations with a swap found on an idea they get wrong; wrong idea: a swap found on an idea they do not;
- called Clear: of the ideas the mix-up gets wrong, how many the coverage rule calls "covered" (the problem's size);
- false alarms: right explanations with any swap found: "correct_both_terms", and the 8 right explanations per
  concept of `teachback_ideas.json` (and, on dev, the misconception check set's right explanations).

    python benchmarks/teachback_swaps.py --split dev [--min-share 0.75] [--min-said 2] [--kinds terms,exchanged]
    python benchmarks/teachback_swaps.py --split dev2    # 12 more imported concepts, their own key ideas
    python benchmarks/teachback_swaps.py --split test
    python benchmarks/teachback_swaps.py --timing         # the words-only check's own time
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from courses.format import load_course  # noqa: E402
from inference.teachback import ConceptKey, ExplanationScorer, ScorerConfig  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
COURSE = Path(__file__).resolve().parents[1] / "courses" / "demo" / "derivatives"
KINDS = ("swap_close", "swap_own_words", "correct_both_terms")
RIGHT_KINDS = ("correct", "correct_warns")  # the misconception check set's right explanations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "dev2", "test"), default="dev")
    parser.add_argument("--min-share", type=float, default=ScorerConfig().swap_min_share)
    parser.add_argument("--min-said", type=int, default=ScorerConfig().swap_min_said)
    parser.add_argument("--min-precision", type=float, default=ScorerConfig().swap_min_precision)
    parser.add_argument("--kinds", default=",".join(ScorerConfig().swap_kinds),
                        help="comma-separated: terms, opposites, exchanged")
    parser.add_argument("--show", action="store_true", help="print every swap found")
    parser.add_argument("--timing", action="store_true",
                        help="time the words-only swap check alone on the per-idea set's explanations, one by one "
                             "and four joined (about 400 words)")
    args = parser.parse_args()
    if args.timing:
        timing()
        return
    config = replace(ScorerConfig(), swap_min_share=args.min_share, swap_min_said=args.min_said,
                     swap_kinds=tuple(args.kinds.split(",")), swap_min_precision=args.min_precision)
    scorer = ExplanationScorer(config)
    if args.split == "dev2":  # its own concepts, key ideas and explanations; no right explanations but its own
        swaps = ideas_set = json.loads((DATA / "teachback_swaps_dev2.json").read_text(encoding="utf-8"))
        wanted = {c["id"] for c in ideas_set["concepts"]}
    else:
        swaps = json.loads((DATA / "teachback_swaps.json").read_text(encoding="utf-8"))
        ideas_set = json.loads((DATA / "teachback_ideas.json").read_text(encoding="utf-8"))
        wanted = set(swaps["split"][args.split])
    concepts = {c["id"]: c for c in ideas_set["concepts"] if c["id"] in wanted}
    keys = {cid: ConceptKey(topic=c["title"], key_ideas=tuple(c["key_ideas"])) for cid, c in concepts.items()}
    print(f"split {args.split}: {len(concepts)} concepts; swap_min_share {args.min_share}, swap_min_said "
          f"{args.min_said}, swap_min_precision {args.min_precision}, kinds {args.kinds}")

    def found(text: str, cid: str, label: str) -> tuple:
        result = scorer.score(text, keys[cid])
        if args.show and result.swaps:
            for s in result.swaps:
                print(f"  [{label}] {cid} idea {s.idea} ({s.kind}): {s.right!r} -> {s.wrong!r} in {s.sentence!r}")
        return result.swaps, result.ideas

    print(f"{'kind':<22} {'n':>4} {'caught':>13} {'wrong idea':>11} {'any swap':>13} {'wrong ideas called Clear':>26}")
    for kind in KINDS:
        rows = [e for e in swaps["explanations"] if e["kind"] == kind and e["concept"] in wanted]
        caught = wrong_idea = any_swap = clear = wrong_total = 0
        for e in rows:
            found_swaps, ideas = found(e["text"], e["concept"], kind)
            on = {s.idea for s in found_swaps}
            caught += bool(on & set(e["wrong_ideas"]))
            wrong_idea += bool(on - set(e["wrong_ideas"]))
            any_swap += bool(on)
            clear += sum(ideas[i].status == "covered" for i in e["wrong_ideas"])
            wrong_total += len(e["wrong_ideas"])
        share = f"{clear}/{wrong_total}" if wrong_total else "-"
        print(f"{kind:<22} {len(rows):>4} {caught:>6}/{len(rows):<3} ({caught / len(rows):.2f}) {wrong_idea:>6}/{len(rows):<3} "
              f"{any_swap:>6}/{len(rows):<3} ({any_swap / len(rows):.2f}) {share:>26}")

    right = [(e["text"], c["id"]) for c in concepts.values() for e in c.get("explanations", [])]
    alarms = sum(bool(found(text, cid, "right")[0]) for text, cid in right)
    if right:
        print(f"false alarms on the per-idea check set's right explanations: {alarms}/{len(right)} "
              f"({alarms / len(right):.3f})")
    if args.split == "dev":
        check = json.loads((DATA / "teachback_misconceptions.json").read_text(encoding="utf-8"))
        demo = {c.slug: ConceptKey(topic=c.title, key_ideas=tuple(c.key_ideas)) for c in load_course(COURSE).concepts}
        texts = [(e["text"], e["concept"]) for e in check["explanations"] if e["kind"] in RIGHT_KINDS]
        hits = 0
        for text, slug in texts:
            result = scorer.score(text, demo[slug])
            hits += bool(result.swaps)
            if args.show:
                for s in result.swaps:
                    print(f"  [check set] {slug} idea {s.idea} ({s.kind}): {s.right!r} -> {s.wrong!r} in "
                          f"{s.sentence!r}")
        print(f"false alarms on the misconception check set's right explanations (demo, 15 concepts): "
              f"{hits}/{len(texts)} ({hits / len(texts):.3f})")


def timing() -> None:
    from inference.teachback import _SWAP_STOP
    from inference.teachback_swaps import term_swaps

    concepts = json.loads((DATA / "teachback_ideas.json").read_text(encoding="utf-8"))["concepts"]
    for label, texts in (("one explanation", [(c, [e["text"]]) for c in concepts for e in c["explanations"]]),
                         ("four joined", [(c, [e["text"] for e in c["explanations"][:4]]) for c in concepts])):
        times, words = [], []
        for c, parts in texts:
            text = " ".join(parts)
            start = time.perf_counter()
            term_swaps(text, c["key_ideas"], _SWAP_STOP, topic=c["title"])
            times.append((time.perf_counter() - start) * 1000)
            words.append(len(text.split()))
        times.sort()
        print(f"{label:<16} n {len(times):>3}, median {statistics.median(words):.0f} words: ms p50 "
              f"{statistics.median(times):.2f}, p95 {times[int(0.95 * len(times))]:.2f}, max {times[-1]:.2f}")


if __name__ == "__main__":
    main()
