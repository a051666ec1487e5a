"""How safe is the item verifier? Run it over candidates whose truth is known, count what it publishes.

    python benchmarks/verifier_eval.py [--data benchmarks/data/verifier_candidates.json] [--verbose]

Each candidate in the data file is labelled with `truth`: "right" (the key is right for the prompt),
"wrong" (it is not), or "unknown" (the item is ill-posed, e.g. two correct options). The number that
matters is the first line: wrong keys the verifier would publish. It must be 0; the script exits 1
otherwise. The rest says what the safety costs: right items sent to review or rejected, and why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.items import vet  # noqa: E402

DEFAULT_DATA = Path(__file__).parent / "data" / "verifier_candidates.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--verbose", action="store_true", help="one line per candidate")
    args = parser.parse_args()

    entries = json.loads(args.data.read_text())["candidates"]
    started = time.perf_counter()
    # Each candidate is vetted on its own: the data holds deliberate near-copies (right and wrong keys
    # for the same prompt) that de-duplication would otherwise hide from the verifier.
    vetted = [vet([entry["candidate"]])[0] for entry in entries]
    elapsed = time.perf_counter() - started

    table: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    wrong_published = []
    for entry, v in zip(entries, vetted, strict=True):
        table[(entry["truth"], v.verdict.status)] += 1
        reasons.update(v.verdict.codes)
        if v.verdict.status == "verified" and entry["truth"] != "right":
            wrong_published.append(entry)
        if args.verbose:
            why = "; ".join(v.verdict.reasons) or "-"
            print(f"{entry['truth']:>7} -> {v.verdict.status:<8} {entry['candidate'].get('prompt', '')[:50]!r:<54} {why[:90]}")

    n = len(entries)
    by_truth = Counter(e["truth"] for e in entries)
    print(f"\nwrong keys published: {len(wrong_published)} of {by_truth['wrong'] + by_truth['unknown']} "
          f"wrong or ill-posed candidates")
    print(f"candidates: {n} ({by_truth['right']} right, {by_truth['wrong']} wrong, {by_truth['unknown']} ill-posed); "
          f"{elapsed * 1000 / n:.1f} ms each")
    print("\ntruth     verified  review  rejected")
    for truth in ("right", "wrong", "unknown"):
        row = [table[(truth, s)] for s in ("verified", "review", "rejected")]
        print(f"{truth:<9} {row[0]:>8} {row[1]:>7} {row[2]:>9}")
    right = by_truth["right"] or 1
    print(f"\nright items verified (publishable without a person): {table[('right', 'verified')]}/{by_truth['right']}"
          f" = {table[('right', 'verified')] / right:.0%}")
    print("\nreasons (rejections and reviews):")
    for code, count in reasons.most_common():
        print(f"  {code:<24} {count}")
    for entry in wrong_published:
        print(f"PUBLISHED A WRONG KEY: {entry}", file=sys.stderr)
    return 1 if wrong_published else 0


if __name__ == "__main__":
    raise SystemExit(main())
