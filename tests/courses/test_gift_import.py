"""Moodle GIFT import: each question kind, feedback, escapes, categories, and malformed input named by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.checking import check_answer
from courses.format import CourseFormatError
from courses.importers import IMPORTERS, detect_format, load_any
from courses.importers.gift import load_gift

SAMPLE = Path(__file__).parent / "data" / "sample.gift"


def items(text: str) -> dict:
    result = load_gift(text, course_slug="quiz", title="Quiz")
    return {item.id: item for c in result.spec.concepts for item in c.items}


def test_sample_file_parses_every_kind_into_its_category() -> None:
    result = load_gift(SAMPLE, course_slug="calc-1", title="Calculus I")
    concepts = {c.slug: c for c in result.spec.concepts}
    assert list(concepts) == ["calculus-i-power-rule", "calculus-i-vocabulary"]
    assert concepts["calculus-i-power-rule"].title == "Power rule"
    kinds = {i.id: i.kind for c in result.spec.concepts for i in c.items}
    assert kinds == {"power-rule-cube": "multiple_choice", "slope-at-a-point": "numeric", "slope-range": "numeric",
                     "tangent-estimates": "numeric", "name-the-rule": "short_text", "constants": "multiple_choice",
                     "curly-braces": "multiple_choice"}
    assert {(i.category, i.path) for i in result.report} == {("description", f"{SAMPLE}:33"),
                                                             ("essay", f"{SAMPLE}:35")}


def test_multiple_choice_keeps_per_answer_feedback_and_weights() -> None:
    item = load_gift(SAMPLE, course_slug="c", title="C").spec.concepts[0].items[0]
    assert item.prompt == "What is the derivative of $x^3$?"
    assert item.answer == "3x^2" and item.choices == ["3x^2", "x^3", "3x", "x^4/4"]
    assert item.feedback["x^3"] == "That is the function itself, not its derivative."
    assert item.extra["gift"]["feedback_correct"].startswith("Right: bring the 3 down")
    assert item.extra["gift"]["answers"][3]["weight"] == -50
    assert item.extra["gift"]["format"] == "markdown"
    assert check_answer(item.kind, item.answer, "3x", feedback=item.feedback).feedback.startswith("The power drops")


def test_numeric_tolerance_range_and_several_answers() -> None:
    by_id = items(SAMPLE.read_text())
    assert (by_id["slope-at-a-point"].answer, by_id["slope-at-a-point"].tolerance) == (6, 0.01)
    assert (by_id["slope-range"].answer, by_id["slope-range"].tolerance) == (1.5, 0.5)
    several = by_id["tangent-estimates"]
    assert (several.answer, several.tolerance) == (0.25, 0.005)
    assert [a["weight"] for a in several.extra["gift"]["answers"]] == [100, 50, 0]
    assert several.feedback == {"0.5": "That is the value of 1/√4, you forgot the 1/2."}
    assert several.solution == "d/dx √x = 1/(2√x)."  # shown after any answer, as Moodle does
    assert several.prompt == "Estimate the derivative of $\\sqrt{x}$ at $x = 4$."


def test_short_answer_accepts_each_right_answer() -> None:
    item = items(SAMPLE.read_text())["name-the-rule"]
    assert item.prompt == "The rule d/dx xⁿ = n xⁿ⁻¹ is called the _____ rule."
    assert item.answer == "power rule" and item.accept == ["power-rule"]
    assert check_answer(item.kind, item.answer, "Power-rule", accept=item.accept).correct


def test_true_false_feedback_goes_to_the_wrong_choice() -> None:
    by_id = items(SAMPLE.read_text())
    assert by_id["constants"].answer == "True" and by_id["constants"].choices == ["True", "False"]
    assert by_id["constants"].feedback == {"False": "A constant does not change."}
    assert by_id["curly-braces"].answer == "False"
    assert by_id["curly-braces"].prompt == "In set notation {1, 2} has two elements, and a:b is a ratio."


def test_questions_without_titles_or_categories_get_stable_ids() -> None:
    text = "What is 2+2? {=4 ~5}\n\nWhat is 3+3? {#6}\n"
    first, second = load_gift(text, course_slug="q", title="Q"), load_gift(text, course_slug="q", title="Q")
    assert [c.slug for c in first.spec.concepts] == ["general"]
    assert list(items(text)) == ["general-q1", "general-q2"]
    assert first.spec == second.spec


def test_html_format_tag_and_comments_and_repeated_titles() -> None:
    text = ("// a comment line\n::Same::[html]<p>Pick <b>one</b></p>{=a ~b}\n\n"
            "::Same:: Again {=c ~d}\n")
    by_id = items(text)
    assert list(by_id) == ["same", "same-2"]
    assert by_id["same"].prompt == "<p>Pick <b>one</b></p>" and by_id["same"].extra["gift"]["format"] == "html"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("::Q1:: fine {=a ~b}\n\n::Q2:: broken {=a ~b\n\n::Q3:: next {=c ~d}\n", 3, "never closed"),
    ("::Q1:: fine {=a ~b}\n\n\n::Q2:: no right answer {~a ~b}\n", 4, "no right answer"),
    ("Line one\n::Q:: x {#abc}\n", 2, "not a number"),
    ("::Q::[latex] x {=a ~b}\n", 1, "unknown text format"),
    ("::Q:: x } {=a}\n", 1, "without a matching"),
    ("::Q:: x {=a ~b} and {=c}\n", 1, "one answer block"),
    ("::Q:: x {=a ~a}\n", 1, "same choice twice"),
    ("::Q:: x {oops =a}\n", 1, "must start with"),
    ("::Q:: x {=}\n", 1, "empty answer"),
])
def test_malformed_gift_names_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "bad.gift"
    path.write_text(text)
    with pytest.raises(CourseFormatError, match=message) as caught:
        load_gift(path, course_slug="bad", title="Bad")
    assert caught.value.path == str(path) and caught.value.line == line


def test_multiline_answer_block_error_points_into_the_block(tmp_path: Path) -> None:
    path = tmp_path / "bad.gift"
    path.write_text("// header\n\n::Q:: Pick {\n  =a\n  ~a\n}\n")
    with pytest.raises(CourseFormatError) as caught:
        load_gift(path, course_slug="bad", title="Bad")
    assert caught.value.line == 3


def test_matching_and_multiple_response_questions_are_reported_not_imported() -> None:
    result = load_gift("::M:: Match {=a -> 1 =b -> 2}\n\n::K:: Keep {=x ~y}\n\n"
                       "::R:: Both {~%50%p ~%50%q ~%-100%r}\n", course_slug="m", title="M")
    assert [i.id for c in result.spec.concepts for i in c.items] == ["k"]
    assert [(i.category, i.path) for i in result.report] == [("matching", "<gift text>:1"),
                                                             ("multiple-response", "<gift text>:5")]


def test_load_any_detects_gift_and_names_valid_formats_for_unknown_ones(tmp_path: Path) -> None:
    assert detect_format(SAMPLE) == "gift"
    result = load_any(SAMPLE)
    assert result.spec.slug == "sample" and len(result.spec.concepts) == 2
    assert set(IMPORTERS) == {"folder", "oatutor", "gift", "latex"}
    with pytest.raises(ValueError, match="valid formats: folder, oatutor, gift"):
        load_any(SAMPLE, format="qti")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(ValueError, match="folder, oatutor, gift"):
        load_any(tmp_path / "notes.pdf")
