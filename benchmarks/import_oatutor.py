"""Import the OATutor OpenStax College Algebra source and print what came in, what was skipped and why, and how
long it took; then export the course, read it back and confirm the round trip is lossless; then how its text reads
on the student's page, against the text as OATutor wrote it (imported again in the same process, unconverted).

    python benchmarks/import_oatutor.py [PATH]      # PATH defaults to $TUTOR_SHARED_DATA/oatutor/openstax-college-algebra.tar.gz

The figures go to benchmarks/RESULTS.md, section "Course import (issue 6)".
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

from courses.format import ItemSpec, load_course
from courses.importers import oatutor
from courses.importers.oatutor import load_oatutor
from courses.rendering import render_markdown
from tutor.display import inline_html

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

    # OATutor sets every $$...$$ inline and breaks lines at the two characters \n; the baseline is its text as written
    with mock.patch.object(oatutor, "_markdown", lambda text: text), \
            mock.patch.object(oatutor, "_bold", lambda title: f"**{title}**" if title else ""):
        as_written = [item for c in load_oatutor(args.path).spec.concepts for item in c.items]
    # OATutor's own delimiter is $$ alone: the formulas each text holds as written
    written = {(item.id, k): len(_FORMULA.findall(text)) for item in as_written
               for k, text in enumerate([item.prompt, *item.hints])}
    print("how it reads (prompts and hints; choices in their line):")
    for label, figures in (("as OATutor wrote it", reading(as_written, written)), ("as imported", reading(items, written))):
        print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


_FORMULA = re.compile(r"\$\$((?:(?!\$\$).)+)\$\$")


def reading(items: list[ItemSpec], written: dict[tuple[str, int], int]) -> dict[str, int]:
    """How many texts show a formula inside a sentence as a centred display block, a stray `\\n`, or fewer
    formulas typeset than OATutor's `$$...$$` delimit; and how many choices show a display block in their line."""
    pages = {(item.id, k): render_markdown(text) for item in items for k, text in enumerate([item.prompt, *item.hints])}
    return {
        "texts": len(pages),
        "with a display block inside a sentence": sum('<div class="math inline">' in page for page in pages.values()),
        "showing \\n": sum("\\n" in re.sub(r'<(span|div) class="math.*?</\1>', "", page, flags=re.S)
                            for page in pages.values()),
        "with fewer formulas typeset than written": sum(page.count('class="math') < written[key]
                                                        for key, page in pages.items()),
        "choices": sum(len(item.choices) for item in items),
        "choices with a display block": sum("<div" in inline_html(choice) for item in items for choice in item.choices),
    }


if __name__ == "__main__":
    main()
