"""Import, export, import again: nothing is lost. And a malformed course folder is named by file and line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from courses.format import ConceptSpec, CourseFormatError, CourseSpec, ItemSpec, dump_course, load_course
from courses.importers import load_any
from courses.importers.gift import load_gift
from tests.conftest import oatutor_import

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "courses" / "demo" / "derivatives"
ARCHIVE = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data")) / "oatutor" / \
    "openstax-college-algebra.tar.gz"
SAMPLE_GIFT = Path(__file__).parent / "data" / "sample.gift"


def round_trip(spec: CourseSpec, folder: Path) -> CourseSpec:
    dump_course(spec, folder)
    return load_course(folder)


@pytest.mark.skipif(not (DEMO / "course.yaml").is_file(), reason="demo course courses/demo/derivatives not present")
def test_demo_course_survives_export_and_reimport(tmp_path: Path) -> None:
    spec = load_course(DEMO)
    again = round_trip(spec, tmp_path / "demo")
    assert again == spec
    assert round_trip(again, tmp_path / "demo-2") == spec


@pytest.mark.slow
@pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"OATutor archive not found at {ARCHIVE}")
def test_imported_oatutor_course_survives_export_and_reimport(tmp_path: Path) -> None:
    result = oatutor_import(ARCHIVE)
    result.write(tmp_path / "algebra")
    again = load_any(tmp_path / "algebra")
    assert again.spec == result.spec
    assert again.assets == result.assets  # figures are written beside the course and read back
    for concept in again.spec.concepts:
        for item in concept.items:
            for rel in _image_paths(item.prompt, *item.hints):
                assert (tmp_path / "algebra" / rel).is_file()


def _image_paths(*texts: str) -> list[str]:
    import re

    return [p for t in texts for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", t)]


def test_imported_gift_course_survives_export_and_reimport(tmp_path: Path) -> None:
    spec = load_gift(SAMPLE_GIFT, course_slug="calc", title="Calculus I").spec
    assert round_trip(spec, tmp_path / "gift") == spec


def test_awkward_values_survive_export_and_reimport(tmp_path: Path) -> None:
    """Values YAML likes to change: floats, numbers-as-text, yes/no, empty strings, unicode, leading spaces."""
    items = [
        ItemSpec(id="f", kind="numeric", prompt="0.1 + 0.2?", answer=0.30000000000000004, tolerance=1e-12,
                 difficulty=-0.0, units="m/s²"),
        ItemSpec(id="big", kind="numeric", prompt="Big?", answer=354700000000000),
        ItemSpec(id="s", kind="short_text", prompt="Say yes.", answer="yes", accept=["on", "null", "1.0", "  x"]),
        ItemSpec(id="mc", kind="multiple_choice", prompt="Pick: `#`, `: `, `- `", answer="no",
                 choices=["no", "No", "~", "'quoted'", "1e3"], feedback={"No": "Case matters here.", "1e3": ""}),
        ItemSpec(id="sym", kind="symbolic", prompt="$\\frac{1}{2}x$\n\n## not a heading inside YAML\n---\nnor a front-matter end",
                 answer="x/2", variables=["x"], hints=["", "second"], extra={"nested": {"a": [1, {"b": None}]}}),
    ]
    spec = CourseSpec(slug="awkward", title="Awkward: a course", description="Line one\nline two",
                      attribution="CC BY 4.0 © someone",
                      concepts=[ConceptSpec(slug="one", title="One", lesson="Ü **bold**\n\n- list", items=items,
                                            guess_choices=["a", "b"], extra={"k": 1.5})])
    assert round_trip(spec, tmp_path / "awkward") == spec


def test_folder_importer_reads_back_figures(tmp_path: Path) -> None:
    spec = load_gift(SAMPLE_GIFT, course_slug="calc", title="Calculus I").spec
    dump_course(spec, tmp_path / "c")
    (tmp_path / "c" / "figures" / "p1").mkdir(parents=True)
    (tmp_path / "c" / "figures" / "p1" / "figure1.gif").write_bytes(b"GIF89a")
    result = load_any(tmp_path / "c")
    assert result.assets == {"figures/p1/figure1.gif": b"GIF89a"}


# --- malformed folders name the file and the line ------------------------------------------------------


def write_course(root: Path, concept_text: str, manifest_extra: str = "") -> Path:
    (root / "concepts").mkdir(parents=True)
    (root / "course.yaml").write_text(textwrap.dedent("""\
        slug: broken
        title: Broken course
        concepts:
          - slug: first
            title: First
        """) + manifest_extra)
    (root / "concepts" / "first.md").write_text(textwrap.dedent(concept_text))
    return root


GOOD_ITEM = textwrap.dedent("""\
    ---
    items:
      - id: q1
        kind: numeric
        prompt: What is 2 + 2?
        answer: 4
    ---

    ## Lesson

    Adding.
    """)


def test_bad_yaml_in_front_matter_names_the_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", """\
        ---
        items:
          - id: q1
            kind: numeric
            prompt: [unclosed
            answer: 4
        ---
        """)
    with pytest.raises(CourseFormatError, match="invalid YAML") as caught:
        load_course(root)
    assert caught.value.path == str(root / "concepts" / "first.md")
    assert caught.value.line in (5, 6)  # the parser notices at the line after the unclosed bracket


def test_unknown_section_names_the_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM + "\n## Exercises\n\nMore.\n")
    with pytest.raises(CourseFormatError, match="unknown section 'Exercises'") as caught:
        load_course(root)
    assert (caught.value.path, caught.value.line) == (str(root / "concepts" / "first.md"), 13)


def test_item_without_answer_names_the_item_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", """\
        ---
        items:
          - id: q1
            kind: numeric
            prompt: What is 2 + 2?
            answer: 4
          - id: q2
            kind: short_text
            prompt: Name it.
        ---
        """)
    with pytest.raises(CourseFormatError, match="item 'q2' has no answer") as caught:
        load_course(root)
    assert (caught.value.path, caught.value.line) == (str(root / "concepts" / "first.md"), 7)


def test_unknown_kind_names_the_item_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM.replace("kind: numeric", "kind: essay"))
    with pytest.raises(CourseFormatError, match="unknown item kind 'essay'") as caught:
        load_course(root)
    assert caught.value.line == 3


def test_a_guess_answer_that_is_not_a_choice_names_its_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM.replace("---\nitems:", "---\nguess_choices:\n  - '10 m/s'\n"
                                                          "  - '20 m/s'\nguess_answer: 15 m/s\nitems:", 1))
    with pytest.raises(CourseFormatError, match="guess_answer '15 m/s' is not one of the guess_choices") as caught:
        load_course(root)
    assert (caught.value.path, caught.value.line) == (str(root / "concepts" / "first.md"), 5)


def test_a_guess_answer_without_choices_is_refused(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM.replace("---\nitems:", "---\nguess_answer: yes\nitems:", 1))
    with pytest.raises(CourseFormatError, match="the guess is free text") as caught:
        load_course(root)
    assert caught.value.line == 2


def test_the_right_guess_survives_export_and_reimport(tmp_path: Path) -> None:
    concept = ConceptSpec(slug="one", title="One", guess_first="Which?", guess_choices=["yes", "no", "1.0"],
                          guess_answer="1.0", items=[ItemSpec(id="q", kind="numeric", prompt="2+2?", answer=4)])
    spec = CourseSpec(slug="guessing", title="Guessing", concepts=[concept])
    again = round_trip(spec, tmp_path / "guessing")
    assert again == spec and again.concepts[0].guess_answer == "1.0"


def test_prerequisite_cycle_is_named(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM, "  - {slug: second, title: Second, prerequisites: [third]}\n"
                                                   "  - {slug: third, title: Third, prerequisites: [second]}\n")
    for slug in ("second", "third"):
        (root / "concepts" / f"{slug}.md").write_text("---\nitems: []\n---\n")
    with pytest.raises(CourseFormatError, match="prerequisite cycle: second -> third -> second") as caught:
        load_course(root)
    assert caught.value.path == str(root / "course.yaml")


def test_unknown_prerequisite_names_the_concept_line(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c", GOOD_ITEM, "  - slug: second\n    title: Second\n"
                                                   "    prerequisites: [nowhere]\n")
    (root / "concepts" / "second.md").write_text("---\nitems: []\n---\n")
    with pytest.raises(CourseFormatError, match="unknown prerequisite 'nowhere'") as caught:
        load_course(root)
    assert (caught.value.path, caught.value.line) == (str(root / "course.yaml"), 6)
