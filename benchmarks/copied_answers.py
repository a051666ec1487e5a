"""Does a question take its own expression, copied back, as the right answer? ("Factor $9x^2-25$" answered
"9x^2-25": equal in value, so a checker that compares values says "Correct!".) For every published numeric and
symbolic question of an imported OATutor course: each formula the question shows, and each number its text states,
is typed back as the answer and
graded twice in the same process, as the checker did before (values only) and as it does now (`shown` / `written`,
`courses.checking._restates`); and each key, typed as the course writes it, must still be taken.

    python benchmarks/copied_answers.py [ARCHIVE ...]   # default: both OATutor courses under $TUTOR_SHARED_DATA

The figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from courses.checking import RESTATED_MESSAGE, check_answer
from courses.format import ITEM_STATUS_KEY
from courses.importers.oatutor import load_oatutor
from courses.question_forms import prompt_expressions, written_expressions

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data")) / "oatutor"
DEFAULT = [SHARED / "openstax-college-algebra.tar.gz", SHARED / "openstax-introductory-stats.tar.gz"]


def measure(archive: Path) -> dict[str, int]:
    items = [i for c in load_oatutor(archive).spec.concepts for i in c.items
             if i.kind in ("numeric", "symbolic") and ITEM_STATUS_KEY not in i.extra]
    counts = {"questions": len(items), "showing_a_formula": 0, "copy_taken_before": 0, "copy_taken_now": 0,
              "told_to_rewrite": 0, "keys_refused_now": 0,
              "value_told_to_rewrite": 0}
    for item in items:
        shown = list(prompt_expressions(item.prompt))  # as the session reads them (courses.selectors)
        written = list(written_expressions(tuple(item.extra["oatutor"].get("answer_latex") or [])))
        common = {"tolerance": item.tolerance, "units": item.units, "variables": item.variables}
        counts["showing_a_formula"] += bool(shown)
        before = now = told = False
        for copy in shown:
            if copy.replace(" ", "") == str(item.answer).replace(" ", ""):
                continue  # the question shows its own key as written: not a copy
            before |= check_answer(item.kind, item.answer, copy, **common).correct
            result = check_answer(item.kind, item.answer, copy, shown=shown, written=written, **common)
            now |= result.correct
            told |= result.error == RESTATED_MESSAGE
        counts["copy_taken_before"] += before
        counts["copy_taken_now"] += now
        counts["told_to_rewrite"] += told
        key = (written or [str(item.answer)])[0]
        counts["keys_refused_now"] += not check_answer(item.kind, item.answer, key, shown=shown, written=written,
                                                       **common).correct
        # the key's value as the database keeps it (what course_smoke types): refused only as a change of notation
        value = check_answer(item.kind, item.answer, str(item.answer), shown=shown, written=written, **common)
        if value.error == RESTATED_MESSAGE:
            counts["value_told_to_rewrite"] += 1
            print(f"  value told to rewrite: {item.id} {str(item.answer)!r} (written {written}, shown {shown[:4]})")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="*", type=Path, default=DEFAULT)
    for archive in parser.parse_args().archives:
        print(archive.name, measure(archive))


if __name__ == "__main__":
    main()
