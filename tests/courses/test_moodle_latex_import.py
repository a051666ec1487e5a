r"""LaTeX quizzes written for moodle.sty: each question kind, feedback, tolerances, text and maths as Markdown,
what cannot be checked reported by line, malformed input named by file and line, and the course stored, exported
and loaded back, from the command line's loader and from the import page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courses.checking import check_answer
from courses.format import CourseFormatError, dump_course, load_course
from courses.importers import IMPORTERS, detect_format, load_any
from courses.importers.moodle_latex import load_moodle_latex
from courses.models import Concept, ImportJob, Item
from courses.selectors import course_spec
from courses.services import course_import
from tutor.smoke import item_source

SAMPLE = Path(__file__).parent / "data" / "sample_moodle.tex"


def sample() -> dict:
    result = load_moodle_latex(SAMPLE, course_slug="powers", title="Powers")
    return {item.id: item for concept in result.spec.concepts for item in concept.items}


def quiz(tmp_path: Path, body: str, *, preamble: str = "") -> Path:
    path = tmp_path / "quiz.tex"
    path.write_text(f"{preamble}\\begin{{quiz}}{{Week 1}}\n{body}\\end{{quiz}}\n")
    return path


def test_each_quiz_becomes_a_concept_in_file_order_without_prerequisites() -> None:
    result = load_moodle_latex(SAMPLE, course_slug="powers", title="Powers")
    concepts = result.spec.concepts
    assert [(c.slug, c.title) for c in concepts] == [("powers-roots", "Powers & roots"), ("vocabulary", "Vocabulary")]
    assert [[i.id for i in c.items] for c in concepts] == [
        ["cube-of-two", "square-root", "root-two", "estimate", "negative-squares"], ["name-the-exponent"]]
    assert all(c.prerequisites == [] and not c.prerequisites_inferred for c in concepts)
    [graph] = [i for i in result.report if i.category == "no-prerequisites"]
    assert graph.severity == "warning" and "faculty may draw a prerequisite graph" in graph.message
    assert result.stats == {"quizzes": 2, "questions": 11, "items": 6}


def test_what_has_no_single_answer_is_reported_by_kind_and_line() -> None:
    result = load_moodle_latex(SAMPLE, course_slug="powers", title="Powers")
    skipped = {(i.category, i.path) for i in result.skipped()}
    assert skipped == {("multiple-response", f"{SAMPLE}:47"), ("essay", f"{SAMPLE}:54"), ("wildcard", f"{SAMPLE}:70"),
                       ("cloze", f"{SAMPLE}:75"), ("matching", f"{SAMPLE}:80")}
    warnings = {(i.category, i.path) for i in result.report if i.severity == "warning"}
    assert {("partial-credit", f"{SAMPLE}:66"), ("partial-credit", f"{SAMPLE}:67"),
            ("wildcard", f"{SAMPLE}:72")} <= warnings


def test_multiple_choice_keeps_maths_as_markdown_and_feedback_per_wrong_choice() -> None:
    item = sample()["cube-of-two"]
    assert item.kind == "multiple_choice"
    assert item.prompt == "What is **the value** of $2^3$?"
    assert item.choices == ["$8$", "$6$", "$9$", "$16$"] and item.answer == "$8$"
    assert item.feedback == {"$6$": "That is $2 \\cdot 3$, not $2^3$.", "$16$": "*Close*: that is $2^4$."}
    assert item.solution == "Multiply the base by itself: $2^3 = 2 \\cdot 2 \\cdot 2$."
    assert item.extra == {"latex": {"title": "Cube of two", "line": 14, "type": "multi"}}
    assert check_answer(item.kind, item.answer, "$6$", feedback=item.feedback).feedback.startswith("That is")


def test_fraction_100_marks_the_answer_and_brackets_become_dollars() -> None:
    item = sample()["square-root"]
    assert item.choices == ["$24.5$", "$7$", "$-7$"] and item.answer == "$7$"
    assert item.prompt == "Which number is $\\sqrt{49}$?\\\nPick *one*."  # \\ is a Markdown line break
    assert item.extra["latex"]["feedback_correct"] == "Right: $7 \\times 7 = 49$."


def test_numerical_tolerance_comes_from_the_item_else_the_question_else_moodleset() -> None:
    items = sample()
    assert (items["root-two"].answer, items["root-two"].tolerance) == (1.414, 0.001)  # \moodleset in the preamble
    assert items["root-two"].feedback == {"4": "You squared it instead."}
    assert (items["estimate"].answer, items["estimate"].tolerance) == (9.7, 0.05)  # the item's, over the question's
    assert items["estimate"].prompt == "About how much is $10\\%$ of $97$?"
    assert check_answer("numeric", 9.7, "9.74", tolerance=0.05).correct


def test_truefalse_and_short_answer() -> None:
    items = sample()
    truth = items["negative-squares"]
    assert (truth.kind, truth.choices, truth.answer) == ("multiple_choice", ["True", "False"], "False")
    short = items["name-the-exponent"]
    assert (short.kind, short.answer, short.accept) == ("short_text", "exponent", ["power"])
    assert short.feedback == {"base": "The base is the $5$."}  # a zero-fraction answer: wrong, with its feedback
    assert check_answer("short_text", short.answer, "Power", accept=short.accept).correct
    assert not check_answer("short_text", short.answer, "index", accept=short.accept).correct  # 50 %: wrong here


def test_comments_escaped_percent_line_breaks_lists_and_display_maths(tmp_path: Path) -> None:
    path = quiz(tmp_path, r"""
\begin{numerical}{Half}  % the title
  What is 50\% of 8? \\% a line break, then a comment: \end{numerical} is not read
  Steps:
  \begin{itemize}
    \item halve it,
    \item \textit{then} check: \[ \frac{8}{2} = 4 \]
  \end{itemize}
  \item[tolerance={0.5}] 4 % the answer
\end{numerical}
\begin{multi}{Written}
  Which is \texttt{x}?
  \item* \(x\)
  \item $y$ \includegraphics[width=2cm]{y.png}
\end{multi}
""")
    result = load_moodle_latex(path, course_slug="w", title="W")
    half, written = result.spec.concepts[0].items
    assert half.prompt == "What is 50% of 8?\\\nSteps:\n\n- halve it,\n- *then* check:\n\n$$\\frac{8}{2} = 4$$"
    assert (half.answer, half.tolerance) == (4, 0.5)
    assert written.prompt == "Which is `x`?" and written.choices == ["$x$", "$y$"]
    [kept] = [i for i in result.report if i.category == "latex-kept"]
    assert kept.message == "question 'Written': figure 'y.png' not imported" and kept.path == f"{path}:12"


def test_accents_ligatures_and_unknown_commands_in_text(tmp_path: Path) -> None:
    path = tmp_path / "fr.tex"
    path.write_text(r"""\begin{quiz}{Cat\'egorie}
\begin{multi}[feedback={Tr\`es bien, \og voil\`a \fg}]{Fran\c{c}ais}
  Na\"{\i}ve caf\'e, \AA ngstr\"om, \foo{x}
  \item[]* \oe uvre
  \item[feedback={with \{braces, and a comma\}}] \ae
\end{multi}
\end{quiz}
""")
    result = load_moodle_latex(path, course_slug="f", title="F")
    [concept] = result.spec.concepts
    [item] = concept.items
    assert (concept.slug, concept.title, item.id) == ("categorie", "Catégorie", "francais")
    assert item.prompt == "Naïve café, Ångström, \\foo{x}" and item.choices == ["œuvre", "æ"]
    assert item.solution == "Très bien, « voilà »" and item.feedback == {"æ": "with {braces, and a comma}"}
    assert [i.message for i in result.report if i.category == "latex-kept"] == [
        "question 'Français': \\foo kept as written"]


def test_numerical_wildcards_scientific_notation_and_several_right_answers(tmp_path: Path) -> None:
    path = quiz(tmp_path, r"""\begin{numerical}{Avogadro}
  About how many particles in a mole?
  \item[tolerance={1.0e+21}] 6.0221e+23
  \item 6.02e23
  \item[fraction=0, feedback={Anything else: look it up.}] *
\end{numerical}
\begin{numerical}{Anything} x \item * \end{numerical}
""")
    result = load_moodle_latex(path, course_slug="n", title="N")
    [item] = result.spec.concepts[0].items
    assert (item.answer, item.tolerance, item.feedback) == (6.0221e23, 1e21, {})
    assert item.extra["latex"]["answers"] == [{"value": 6.0221e23, "tolerance": 1e21}, {"value": 6.02e23,
                                                                                          "tolerance": None}]
    assert [(i.category, i.severity) for i in result.report][:4] == [
        ("wildcard", "warning"), ("several-right", "warning"), ("wildcard", "warning"), ("wildcard", "error")]


def test_quiz_options_and_setcategory_apply_to_the_questions_after_them(tmp_path: Path) -> None:
    path = tmp_path / "two.tex"
    path.write_text(r"""\begin{quiz}[tolerance=0.1, feedback={not passed down}]{Week 2}
\begin{numerical}{One} x \item 1 \end{numerical}
\setcategory{Extra practice}
\begin{numerical}{One} y \item 2 \end{numerical}
\end{quiz}
""")
    concepts = load_moodle_latex(path, course_slug="w", title="W").spec.concepts
    assert [c.slug for c in concepts] == ["week-2", "extra-practice"]
    first, second = concepts[0].items[0], concepts[1].items[0]
    assert (first.id, second.id) == ("one", "one-2")  # same title: ids stay unique in the course
    assert first.tolerance == second.tolerance == 0.1 and first.solution == ""


@pytest.mark.parametrize(("body", "line", "message"), [
    ("\\begin{multi}{Open}\nText\n\\item* a\n\\item b\n", 2, "\\begin{multi} is not closed"),
    ("\n\\item* stray\n", 3, "\\item outside a question"),
    ("\\begin{numerical}{T}\nx\n\\item[tolerance=abc] 3\n\\end{numerical}\n", 4, "tolerance='abc' is not a number"),
    ("\\begin{numerical}[\n  points=1,\n  tolerance=abc]{T}\nx \\item 3\n\\end{numerical}\n", 4, "is not a number"),
    ("\\begin{numerical}{T}\nx\n\n\\item three\n\\end{numerical}\n", 5, "the answer 'three' is not a number"),
    ("\\begin{numerical}{T}\nx\n\\item 3,5\n\\end{numerical}\n", 4, "not a comma"),
    ("\\begin{multi}[shufle=false]{T}\nx \\item* a \\item b\n\\end{multi}\n", 2, "unknown option 'shufle'"),
    ("\\begin{multi}[shuffle=maybe]{T}\nx \\item* a \\item b\n\\end{multi}\n", 2, "write true or false"),
    ("\\begin{multi}{T}\nx\n\\item a\n\\item b\n\\end{multi}\n", 2, "no right answer"),
    ("\\begin{multi}{T}\nx\n\\item* a\n\\item a\n\\end{multi}\n", 5, "the choice 'a' twice"),
    ("\\begin{multi}{T}\nx is $3\n\\item* a\n\\item b\n\\end{multi}\n", 3, "maths opened with $ is not closed"),
    ("\\begin{multi}{T}\n\\textbf{x\n\\item* a\n\\item b\n\\end{multi}\n", 3, "'{' is never closed"),
    ("\\begin{multi}\nx \\item* a \\item b\n\\end{multi}\n", 2, "needs a title in braces"),
    ("\\end{multi}\n", 2, "\\end{multi} without a \\begin{multi}"),
    ("\\begin{shortanswer}{T}\nx \\item*[tolerance=1] a\n\\end{shortanswer}\n", 3, "does not apply to an \\item"),
    ("\\begin{multi}{T}\n" + "{" * 999 + "x" + "}" * 999 + "\n\\item* a \\item b\n\\end{multi}\n", 3, "nest more than"),
])
def test_malformed_latex_names_the_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = quiz(tmp_path, body)
    with pytest.raises(CourseFormatError) as caught:
        load_moodle_latex(path, course_slug="bad", title="Bad")
    assert message in caught.value.message
    assert (caught.value.path, caught.value.line) == (str(path), line)


def test_a_file_without_quizzes_or_with_questions_outside_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.tex"
    path.write_text("\\begin{document}\nNo quiz here.\n\\end{document}\n")
    with pytest.raises(CourseFormatError, match="no \\\\begin\\{quiz\\}"):
        load_moodle_latex(path, course_slug="n", title="N")
    path.write_text("\\begin{document}\n\\begin{multi}{T} x \\item* a \\item b \\end{multi}\n\\end{document}\n")
    with pytest.raises(CourseFormatError, match="outside a quiz") as caught:
        load_moodle_latex(path, course_slug="n", title="N")
    assert caught.value.line == 2


def test_load_any_detects_a_tex_file_with_a_quiz(tmp_path: Path) -> None:
    assert "latex" in IMPORTERS and detect_format(SAMPLE) == "latex"
    result = load_any(SAMPLE)
    assert (result.spec.slug, result.spec.title) == ("sample-moodle", "Sample Moodle")
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\\begin{document}Hi\\end{document}")
    with pytest.raises(ValueError, match="cannot tell the format"):
        detect_format(tmp_path / "paper.tex")


@pytest.mark.django_db
def test_imported_latex_course_survives_the_database_export_and_reload(tmp_path: Path) -> None:
    spec = load_moodle_latex(SAMPLE, course_slug="powers", title="Powers").spec
    course = course_import(spec=spec, origin=Item.Origin.IMPORTED)
    stored = course_spec(course=course)
    dump_course(stored, tmp_path / "powers")
    assert load_course(tmp_path / "powers") == stored
    assert [c.slug for c in stored.concepts] == [c.slug for c in spec.concepts]
    assert {i.id: (i.kind, i.answer, i.choices, i.tolerance, i.accept, i.feedback, i.solution, i.extra)
            for c in stored.concepts for i in c.items} == \
        {i.id: (i.kind, i.answer, i.choices, i.tolerance, i.accept, i.feedback, i.solution, i.extra)
         for c in spec.concepts for i in c.items}
    item = Item.objects.get(concept__course=course, slug="cube-of-two")
    assert item_source(item) == "LaTeX question Cube of two, line 14"


@pytest.mark.django_db
def test_a_tex_upload_is_imported_with_the_importers_notes(client, prof, settings,
                                                             django_capture_on_commit_callbacks) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no worker in tests, even when REDIS_URL is set
    client.force_login(prof)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("teach:import"), {"file": SimpleUploadedFile("week-3.tex", SAMPLE.read_bytes())})
    job = ImportJob.objects.get()
    assert (job.status, job.format, job.error) == ("done", "latex", "")
    assert job.course.slug == "week-3"
    assert list(Concept.objects.filter(course=job.course).order_by("order").values_list("slug", flat=True)) == [
        "powers-roots", "vocabulary"]
    assert Item.objects.filter(concept__course=job.course, origin="imported").count() == 6
    assert {"path": "week-3.tex:54", "severity": "error",
            "message": "essay question 'Explain exponents' has no single answer the tutor can check: skipped"} \
        in [{k: v for k, v in entry.items() if k != "category"} for entry in job.report]


@pytest.mark.django_db
def test_a_malformed_tex_upload_names_the_line_and_imports_nothing(client, prof, settings,
                                                                   django_capture_on_commit_callbacks) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    client.force_login(prof)
    broken = SAMPLE.read_text().replace("\\item[tolerance=0.05] 9.7", "\\item[tolerance=0.05] about ten")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("teach:import"), {"file": SimpleUploadedFile("week-3.tex", broken.encode())})
    job = ImportJob.objects.get()
    assert job.status == "failed" and job.error.startswith("week-3.tex:38: ")
    assert "the answer 'about ten' is not a number" in job.error
    assert not Item.objects.filter(concept__course__slug="week-3").exists()
