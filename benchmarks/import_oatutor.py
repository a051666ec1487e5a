"""Import the OATutor OpenStax College Algebra source and print what came in, what was skipped and why, and how
long it took; then export the course, read it back and confirm the round trip is lossless.

    python benchmarks/import_oatutor.py [PATH]      # PATH defaults to $TUTOR_SHARED_DATA/oatutor/openstax-college-algebra.tar.gz

The figures go to benchmarks/RESULTS.md, section "Course import (issue 6)".
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from courses.format import load_course
from courses.importers.oatutor import load_oatutor

REPO = Path(__file__).resolve().parents[1]
DEFAULT = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data")) / "oatutor" / \
    "openstax-college-algebra.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args()

    start = time.perf_counter()
    result = load_oatutor(args.path)
    import_s = time.perf_counter() - start
    spec = result.spec
    items = [item for c in spec.concepts for item in c.items]
    problems = {item.extra["oatutor"]["problem_id"] for item in items}
    skipped = result.skipped()

    print(f"source: {args.path}")
    print(f"problems: {result.stats['problems']} ({len(problems)} with at least one imported step), "
          f"lessons: {result.stats['lessons']}")
    print(f"steps: {result.stats['steps']} -> items imported: {len(items)}, skipped: {len(skipped)}")
    print("items by kind: " + ", ".join(f"{k} {n}" for k, n in Counter(i.kind for i in items).most_common()))
    print("skipped by reason: " + ", ".join(f"{k} {n}" for k, n in result.counts_by_category("error").items()))
    print("warnings (imported, changed): " + ", ".join(f"{k} {n}" for k, n in result.counts_by_category("warning").items()))
    scaffolds = sum(1 for i in items for h in i.extra["oatutor"]["pathway"] if h["type"] == "scaffold")
    print(f"hints and scaffolds in the source: {result.stats['hints']}; on imported items: "
          f"{sum(len(i.hints) for i in items)} (of which scaffolds {scaffolds})")
    print(f"concepts (skills): {len(spec.concepts)}, without items: {sum(1 for c in spec.concepts if not c.items)}")
    edges = sum(len(c.prerequisites) for c in spec.concepts)
    by_reason = Counter(why.split(":")[0].split(" ")[0] for c in spec.concepts
                        for why in c.extra["oatutor"]["inferred_from"].values())
    print(f"inferred prerequisite edges: {edges} (" + ", ".join(f"{k} {n}" for k, n in by_reason.items()) + ")")
    print(f"figures copied: {len(result.assets)}")
    print(f"import seconds: {import_s:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result.write(tmp)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        again = load_course(tmp)
        load_s = time.perf_counter() - start
    print(f"export seconds: {write_s:.2f}, re-import seconds: {load_s:.2f}, lossless: {again == spec}")


if __name__ == "__main__":
    main()
