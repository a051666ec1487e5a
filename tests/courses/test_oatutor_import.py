"""OATutor import: the real OpenStax College Algebra source, counted independently from its raw JSON, and small
hand-made sources for the paths the real one does not take (several courses in one pool, short essays)."""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from courses.checking import check_answer
from courses.format import CourseFormatError, find_cycle
from courses.importers import ImportResult, load_any
from courses.importers.oatutor import load_oatutor
from courses.rendering import formula_fault, render_markdown
from tests.conftest import oatutor_import

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data")) / "oatutor" / \
    "openstax-college-algebra.tar.gz"
needs_archive = pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"OATutor archive not found at {ARCHIVE} "
                                   "(set TUTOR_SHARED_DATA to the folder holding oatutor/)")
SAFE_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Raw:
    """The archive read the plain way: every JSON file by its path, to count against."""

    def __init__(self, archive: Path) -> None:
        self.files: dict[str, object] = {}
        self.figures: set[str] = set()
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".json"):
                    self.files[member.name] = json.load(tar.extractfile(member))  # type: ignore[arg-type]
                elif member.isfile() and "/figures/" in member.name:
                    self.figures.add(member.name)
        parts = lambda name: name.split("/")  # noqa: E731
        self.problems = {parts(n)[-2]: d for n, d in self.files.items()
                         if len(parts(n)) == 4 and parts(n)[1] == "content-pool"}
        self.steps = {parts(n)[-2]: d for n, d in self.files.items()
                      if len(parts(n)) == 6 and parts(n)[3] == "steps"}
        self.problem_of = {parts(n)[-2]: parts(n)[2] for n in self.files
                           if len(parts(n)) == 6 and parts(n)[3] == "steps"}
        self.pathways = {parts(n)[-3]: d for n, d in self.files.items() if n.endswith("DefaultPathway.json")}
        self.skill_model = next(d for n, d in self.files.items() if n.endswith("skillModel.json"))
        self.skills = {s for skills in self.skill_model.values() for s in skills}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def raw() -> Raw:
    if not ARCHIVE.is_file():
        pytest.skip(f"OATutor archive not found at {ARCHIVE}")
    return Raw(ARCHIVE)


@pytest.fixture(scope="module")
def imported() -> ImportResult:
    if not ARCHIVE.is_file():
        pytest.skip(f"OATutor archive not found at {ARCHIVE}")
    return oatutor_import(ARCHIVE)


def items_of(result: ImportResult) -> dict[str, object]:
    return {item.id: item for c in result.spec.concepts for item in c.items}


def skipped_steps(result: ImportResult) -> set[str]:
    return {Path(i.path).stem for i in result.report if i.severity == "error" and "/steps/" in i.path}


@needs_archive
def test_every_step_is_imported_or_reported_with_its_file(raw: Raw, imported: ImportResult) -> None:
    items = items_of(imported)
    skipped = skipped_steps(imported)
    assert len(raw.steps) == 1912
    assert set(items) | skipped == set(raw.steps)
    assert not set(items) & skipped
    for issue in imported.skipped():
        assert issue.path.endswith(".json") and issue.message and issue.category


@needs_archive
def test_every_problem_is_imported_or_all_its_steps_reported(raw: Raw, imported: ImportResult) -> None:
    problems = {item.extra["oatutor"]["problem_id"] for item in items_of(imported).values()}
    fully_skipped = {pid for pid in raw.problems if pid not in problems}
    assert len(raw.problems) == 1546
    for pid in fully_skipped:
        assert all(step in skipped_steps(imported) for step in raw.steps if raw.problem_of[step] == pid)
    assert len(problems) + len(fully_skipped) == len(raw.problems)
    assert imported.stats["problems"] == len(raw.problems)
    assert imported.stats["steps"] == len(raw.steps)
    assert imported.stats["hints"] == sum(len(p) for p in raw.pathways.values())


@needs_archive
def test_hint_ladder_keeps_every_hint_and_scaffold_in_order(raw: Raw, imported: ImportResult) -> None:
    items = items_of(imported)
    for step_id, item in items.items():
        pathway = raw.pathways[step_id]
        assert len(item.hints) == len(pathway)
        ladder = item.extra["oatutor"]["pathway"]
        assert [h["id"] for h in ladder] == [h["id"] for h in pathway]
        for hint, text, source in zip(ladder, item.hints, pathway, strict=True):
            if source["type"] == "scaffold":
                assert hint["answer"] == [str(a).strip() for a in source["hintAnswer"]] or "@{" in str(source)
                assert "Answer:" in text
    imported_hints = sum(len(item.hints) for item in items.values())
    assert imported_hints == sum(len(raw.pathways[s]) for s in items)
    all_hints = Counter(h["type"] for p in raw.pathways.values() for h in p)
    assert all_hints == {"hint": 5227, "scaffold": 2833}


@needs_archive
def test_every_skill_becomes_one_concept_with_a_safe_unique_slug(raw: Raw, imported: ImportResult) -> None:
    concepts = imported.spec.concepts
    assert len(raw.skills) == 284
    # two skill names the skill model cut at their commas ("..., decreasing, or_constant") are whole again
    cut = {"using_a_graph_to_determine_where_a_function_is_increasing, decreasing, or_constant",
           "determing_whether_a_linear_function_is_increasing, decreasing, or_constant"}
    assert {c.extra["oatutor"]["skill"] for c in concepts} == raw.skills - {
        "using_a_graph_to_determine_where_a_function_is_increasing", "determing_whether_a_linear_function_is_increasing",
        "decreasing", "or_constant"} | cut
    assert all(c.items for c in concepts)  # no concept is only a piece of another's name
    slugs = [c.slug for c in concepts]
    assert len(set(slugs)) == len(slugs)
    assert all(SAFE_SLUG.match(s) and len(s) <= 60 for s in slugs)
    assert all(c.params.bkt is not None and c.params.source == "OATutor defaults" for c in concepts)


@needs_archive
def test_step_is_filed_under_its_primary_skill_and_keeps_the_others(raw: Raw, imported: ImportResult) -> None:
    concept_of = {item.id: c.extra["oatutor"]["skill"] for c in imported.spec.concepts for item in c.items}
    multi = [s for s, skills in raw.skill_model.items() if len(skills) > 1 and s in concept_of]  # type: ignore[union-attr]
    assert multi
    for step in multi:
        meta = items_of(imported)[step].extra["oatutor"]
        assert concept_of[step] in meta["skills"]
        assert meta.get("skills_as_written", meta["skills"]) == raw.skill_model[step]  # type: ignore[index]
        if "skills_as_written" in meta:
            assert ", ".join(meta["skills_as_written"]) == meta["skills"][0] == concept_of[step]


@needs_archive
def test_answers_are_checkable_by_the_tutor(imported: ImportResult) -> None:
    kinds = Counter()
    for item in items_of(imported).values():
        kinds[item.kind] += 1
        key = item.choices[0] if item.kind == "multiple_choice" and item.answer not in item.choices else item.answer
        result = check_answer(item.kind, item.answer, str(key), tolerance=item.tolerance, variables=item.variables,
                              accept=item.accept)
        assert result.correct, (item.id, item.answer)
    assert set(kinds) == {"numeric", "symbolic", "multiple_choice", "short_text"}


@needs_archive
def test_latex_answers_are_translated_to_the_checkers_syntax(imported: ImportResult) -> None:
    items = items_of(imported)
    fraction = next(i for i in items.values() if i.extra["oatutor"]["answer_latex"] == ["$$\\frac{1}{2}$$"])
    assert fraction.kind == "symbolic"
    assert check_answer("symbolic", fraction.answer, "1/2").correct
    assert not check_answer("symbolic", fraction.answer, "0.4").correct
    power = next(i for i in items.values() if i.extra["oatutor"]["answer_latex"] == ["$$3x^2$$"])
    assert power.variables == ["x"] and check_answer("symbolic", power.answer, "3*x^2", variables=["x"]).correct
    root = next(i for i in items.values() if i.extra["oatutor"]["answer_latex"] == ["$$\\sqrt{41}$$"])
    assert check_answer("symbolic", root.answer, "sqrt(41)").correct
    plain = next(i for i in items.values() if i.extra["oatutor"]["answer_latex"] == ["$$23.10387$$"])
    assert plain.kind == "numeric" and plain.answer == pytest.approx(23.10387)


@needs_archive
def test_what_cannot_be_checked_is_reported_by_category_and_kept_for_review(imported: ImportResult) -> None:
    kept = imported.counts_by_category("warning")
    assert kept["matrix"] == 30
    assert "equation" not in kept  # equations are compared as equations now (below)
    skipped = imported.counts_by_category("error")
    assert sum(skipped.values()) == len(imported.skipped())
    assert all(i.category for i in imported.report)
    review = [i for i in items_of(imported).values() if i.extra.get("status") == "review"]
    assert len(review) >= 40  # matrices, words, inequalities, plus-minus, LaTeX the reader cannot follow
    reasons = Counter(i.extra["review_reason"].split(" (")[0].split(":")[0] for i in review)
    assert set(reasons) <= {"The tutor cannot check this answer", "A formula cannot be typeset", "Its figure"}, reasons
    assert reasons["A formula cannot be typeset"] == 4  # a6f9727real6a/b, a8ffef9inverses17a/18a: red TeX otherwise


@needs_archive
def test_no_formula_in_a_sentence_is_set_as_a_display_block(imported: ImportResult) -> None:
    """On the whole course (OATutor writes every formula as `$$...$$`, meaning inline): three in four of its texts
    used to break their sentences around centred formulas, and 297 showed a stray `\\n`."""
    texts = [text for item in items_of(imported).values() for text in [item.prompt, *item.hints]]
    rendered = [render_markdown(text) for text in texts]
    assert not [t for t, html in zip(texts, rendered, strict=True) if '<div class="math inline">' in html]
    assert not [t for t, html in zip(texts, rendered, strict=True) if "\\n" in re.sub(r'<span class="math.*?</span>', "", html)]
    spans = [tex for html in rendered for tex in re.findall(r'<span class="math inline">(.*?)</span>', html)]
    assert len(spans) > 12_000  # still typeset inline (a number alone is text: not counted)
    assert not [tex for tex in spans if re.fullmatch(r"-?\d[\d,]*(?:\.\d+)?", tex.strip())]


@needs_archive
def test_every_item_keeps_its_attribution(imported: ImportResult) -> None:
    items = items_of(imported).values()
    assert all(i.attribution for i in items)
    openstax = [i for i in items if "OpenStax: College Algebra (https://openstax.org" in i.attribution]
    assert len(openstax) > 1700 and all("CC BY 4.0" in i.attribution for i in openstax)
    assert "CC BY 4.0" in imported.spec.attribution


@needs_archive
def test_figures_are_markdown_images_whose_files_come_along(raw: Raw, imported: ImportResult) -> None:
    referenced = set()
    for item in items_of(imported).values():
        for text in [item.prompt, *item.hints]:
            assert "##figure" not in text
            referenced |= set(re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text))
    assert referenced and referenced == set(imported.assets)
    for rel in referenced:
        _, problem, name = rel.split("/")
        assert f"openstax-college-algebra/content-pool/{problem}/figures/{name}" in raw.figures


@needs_archive
def test_prerequisites_are_inferred_acyclic_and_explained(imported: ImportResult) -> None:
    concepts = imported.spec.concepts
    assert all(c.prerequisites_inferred for c in concepts)
    assert find_cycle({c.slug: c.prerequisites for c in concepts}) is None
    assert sum(len(c.prerequisites) for c in concepts) > 100
    for c in concepts:
        assert set(c.extra["oatutor"]["inferred_from"]) == set(c.prerequisites)
    first = concepts[0]
    assert first.prerequisites == [] and first.lesson.startswith("From **Lesson 1.1")


@needs_archive
def test_load_any_detects_an_oatutor_archive(imported: ImportResult) -> None:
    from courses.importers import detect_format

    assert detect_format(ARCHIVE) == "oatutor"


# --- small hand-made sources ------------------------------------------------------------------------


def write_source(root: Path, problems: dict[str, dict], *, courses: list[str]) -> Path:
    """An OATutor source: `problems` maps problem id -> {"course", "steps": {step id: (step json, skills, hints)}}."""
    root.mkdir(parents=True)
    plans = [{"courseName": name, "courseOER": "https://example.org <Example Book>",
              "courseLicense": "https://creativecommons.org/licenses/by/4.0/ <CC BY 4.0>",
              "lessons": [{"id": f"{name}-L1", "name": "Lesson 1.1", "topics": "Basics",
                           "learningObjectives": {"adding": 0.85, "subtracting": 0.9}},
                          {"id": f"{name}-L2", "name": "Lesson 1.2", "topics": "More",
                           "learningObjectives": {"multiplying": 0.85}}]} for name in courses]
    (root / "coursePlans.json").write_text(json.dumps(plans))
    (root / "defaultBKTParams.json").write_text(json.dumps(
        {s: {"probMastery": 0.2, "probTransit": 0.1, "probSlip": 0.1, "probGuess": 0.25}
         for s in ("adding", "subtracting", "multiplying")}))
    skill_model = {}
    for pid, problem in problems.items():
        folder = root / "content-pool" / pid
        (folder / "steps").mkdir(parents=True)
        course = problem.get("course", courses[0])
        (folder / f"{pid}.json").write_text(json.dumps({
            "id": pid, "title": f"Problem {pid}", "body": problem.get("body", "Work it out."), "courseName": course,
            "lessonId": f"{course}-{problem.get('lesson', 'L1')}", "lesson": "1.1 Basics", "variabilization": {},
            "oer": "https://example.org <Example Book>", "license": "https://creativecommons.org/licenses/by/4.0/ <CC BY 4.0>"}))
        for sid, (step, skills, hints) in problem["steps"].items():
            sdir = folder / "steps" / sid
            (sdir / "tutoring").mkdir(parents=True)
            (sdir / f"{sid}.json").write_text(json.dumps({"id": sid, "stepTitle": f"Step {sid}", "stepBody": "",
                                                          "variabilization": {}, **step}))
            (sdir / "tutoring" / f"{sid}DefaultPathway.json").write_text(json.dumps(hints))
            skill_model[sid] = skills
        for name in problem.get("figures", []):
            (folder / "figures").mkdir(exist_ok=True)
            (folder / "figures" / name).write_bytes(b"GIF89a")
    (root / "skillModel.json").write_text(json.dumps(skill_model))
    return root


def numeric(answer: str) -> dict:
    return {"problemType": "TextBox", "answerType": "arithmetic", "stepAnswer": [answer]}


HINTS = [{"id": "h1", "type": "hint", "title": "Think", "text": "Add the ones.", "dependencies": []},
         {"id": "h2", "type": "scaffold", "title": "Sub-question", "text": "What is 1+1?", "hintAnswer": ["$$2$$"],
          "problemType": "TextBox", "answerType": "arithmetic", "dependencies": ["h1"]}]


@pytest.fixture
def small_source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "src", {
        "p1": {"body": "See ##figure1.gif## and ##figure2.gif##.", "figures": ["figure1.gif"], "steps": {
            "p1a": (numeric("$$4$$"), ["adding"], HINTS),
            "p1b": (numeric("$$\\frac{x^2}{2}$$"), ["multiplying", "adding"], []),
        }},
        "p2": {"lesson": "L2", "steps": {
            "p2a": ({"problemType": "TextBox", "answerType": "short-essay", "stepAnswer": [""]}, ["multiplying"], []),
            "p2b": (numeric("$$\\begin{bmatrix} 1 & 2 \\end{bmatrix}$$"), ["multiplying"], []),
            "p2c": ({"problemType": "MultipleChoice", "answerType": "string", "stepAnswer": ["b"],
                     "choices": ["a", "b", "b"]}, ["multiplying"], []),
            "p2d": ({"problemType": "Slider", "answerType": "arithmetic", "stepAnswer": ["1"]}, ["subtracting"], []),
            "p2e": ({"problemType": "TextBox", "answerType": "string", "stepAnswer": ["North"]}, ["subtracting"], []),
        }},
    }, courses=["Course One"])


def test_small_source_maps_each_kind_and_reports_what_it_skips(small_source: Path) -> None:
    result = load_oatutor(small_source)
    items = items_of(result)
    assert sorted(items) == ["p1a", "p1b", "p2b", "p2c", "p2e"]
    assert items["p2b"].extra["status"] == "review" and "matrix" in items["p2b"].extra["review_reason"]
    assert items["p1a"].kind == "numeric" and items["p1a"].answer == 4
    assert items["p1b"].kind == "symbolic" and items["p1b"].variables == ["x"]
    assert items["p2c"].choices == ["a", "b"] and items["p2c"].extra["oatutor"]["choices_original"] == ["a", "b", "b"]
    assert items["p2e"].kind == "short_text" and items["p2e"].answer == "North"
    by_step = {Path(i.path).stem: i.category for i in result.skipped()}
    assert by_step == {"p2a": "short-essay", "p2d": "unknown-type"}
    assert all(i.path.startswith(str(small_source)) for i in result.report)


def test_scaffolds_become_hints_with_their_answers_kept(small_source: Path) -> None:
    item = items_of(load_oatutor(small_source))["p1a"]
    assert item.hints == ["**Think**\n\nAdd the ones.", "**Sub-question**\n\nWhat is 1+1?\n\nAnswer: $2$"]
    assert item.extra["oatutor"]["pathway"][1] == {"id": "h2", "type": "scaffold", "dependencies": ["h1"],
                                                  "answer": ["$$2$$"], "problem_type": "TextBox",
                                                  "answer_type": "arithmetic"}
    assert item.prompt.startswith("**Problem p1**\n\nSee ![figure1.gif](figures/p1/figure1.gif)")


def test_a_worked_example_whose_last_step_gives_the_answer_does_not_give_it_twice(tmp_path: Path) -> None:
    last_gives_it = [HINTS[0], {**HINTS[1], "text": "So what is 2+2?", "hintAnswer": ["$$4$$"]}]
    source = write_source(tmp_path / "src", {"p1": {"steps": {"p1a": (numeric("$$4$$"), ["adding"], last_gives_it)}},
                                             "p2": {"steps": {"p2a": (numeric("$$4$$"), ["subtracting"], HINTS)}}},
                          courses=["Course One"])
    worked = {c.slug: c.explanation for c in load_oatutor(source).spec.concepts}
    assert worked["adding"].endswith("**Sub-question**\n\nSo what is 2+2?\n\nAnswer: $4$")
    assert worked["adding"].count("Answer:") == 1
    assert worked["subtracting"].endswith("Answer: $2$\n\n*Answer:* $$4$$")  # a sub-step's answer, then the answer


def test_a_nameless_objective_is_left_out_and_one_named_by_its_page_address_gets_the_pages_title(
        small_source: Path) -> None:
    # Both in Intro Stats' coursePlans.json: "" in Lesson 10.1 (a concept titled "" reached the map), and
    # "https://openstax.org/books/introductory_statistics/pages/3_4_contingency_tables" in Lesson 3.4.
    plans = json.loads((small_source / "coursePlans.json").read_text())
    page = "https://openstax.org/books/introductory_statistics/pages/3_4_contingency_tables"
    plans[0]["lessons"][1]["learningObjectives"].update({"": 0.85, page: 0.85})
    (small_source / "coursePlans.json").write_text(json.dumps(plans, indent=2))
    result = load_oatutor(small_source)
    titles = [c.title for c in result.spec.concepts]
    assert "" not in titles and "Contingency tables" in titles
    empty = [i for i in result.report if i.category == "empty-objective"]
    assert len(empty) == 1 and empty[0].path.endswith("coursePlans.json") and empty[0].severity == "warning"
    assert empty[0].message.startswith("line 2") and "Lesson 1.2" in empty[0].message  # file and line, for the author


def test_a_skill_name_the_skill_model_cut_at_its_commas_is_one_concept_again(tmp_path: Path) -> None:
    # OATutor's skill model writes a step's skills comma-separated, so College Algebra's "using a graph to determine
    # where a function is increasing, decreasing, or constant" arrives as three skills; the last two became concepts
    # without a question ("Decreasing", "Or constant") on the student's map. Intro Stats' "left-, right-, and
    # two-tailed test" likewise ("left_", "right_", "and_two_tailed_test").
    cut = ["using_a_graph_to_determine_where_a_function_is_increasing", "decreasing", "or_constant"]
    source = write_source(tmp_path / "src", {"p1": {"steps": {
        "p1a": (numeric("$$4$$"), [*cut, "adding"], []),
        "p1b": (numeric("$$5$$"), ["adding"], []),
        "p1c": (numeric("$$6$$"), ["left_", "right_", "and_two_tailed_test"], []),
    }}}, courses=["Course One"])
    plans = json.loads((source / "coursePlans.json").read_text())
    plans[0]["lessons"][0]["learningObjectives"] = {"adding": 0.85, "decreasing": 0.9, "or_constant": 0.9, cut[0]: 0.9,
                                                    "left_": 0.8, "right_": 0.8, "and_two_tailed_test": 0.8}
    (source / "coursePlans.json").write_text(json.dumps(plans))
    bkt = json.loads((source / "defaultBKTParams.json").read_text())
    bkt[cut[0]] = {"probMastery": 0.3, "probTransit": 0.1, "probSlip": 0.1, "probGuess": 0.2}
    (source / "defaultBKTParams.json").write_text(json.dumps(bkt))

    result = load_oatutor(source)
    concepts = {c.slug: c for c in result.spec.concepts}
    whole = concepts["using-a-graph-to-determine-where-a-function-is-increasing"]  # the first part's slug, as before
    assert whole.title == "Using a graph to determine where a function is increasing, decreasing, or constant"
    assert [i.id for i in whole.items] == ["p1a"] and whole.params.bkt is not None and whole.params.bkt.p_init == 0.3
    assert concepts["left"].title == "Left-, right-, and two tailed test"
    assert {"decreasing", "or-constant", "right", "and-two-tailed-test"}.isdisjoint(concepts)
    assert whole.slug in concepts["adding"].prerequisites or "adding" in whole.prerequisites  # still linked
    meta = whole.items[0].extra["oatutor"]
    assert meta["skills"] == [", ".join(cut), "adding"] and meta["skills_as_written"] == [*cut, "adding"]
    warned = [i for i in result.report if i.category == "cut-skill"]
    assert len(warned) == 2 and all(i.path.endswith("skillModel.json") and i.severity == "warning" for i in warned)
    assert warned[0].message.startswith("line ") and "'or_constant'" in warned[0].message


def test_a_rejoined_skill_whose_first_part_is_a_concept_too_takes_a_slug_of_its_own(tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", {"p1": {"steps": {
        "p1a": (numeric("$$4$$"), ["adding", "subtracting", "or_both"], []),
        "p1b": (numeric("$$5$$"), ["adding"], []),
    }}}, courses=["Course One"])
    concepts = {c.slug: c for c in load_oatutor(source).spec.concepts}
    assert [i.id for i in concepts["adding"].items] == ["p1b"]  # "adding" keeps its slug and its own question
    whole = next(c for c in concepts.values() if c.title == "Adding, subtracting, or both")
    assert whole.slug != "adding" and [i.id for i in whole.items] == ["p1a"]


@pytest.mark.parametrize(("text", "fault"), [
    ("What is $4}\\left(12+\\operatorname{\\left(-7\\right)\\right)$?", "closes a brace it never opened"),
    ("$$\\frac{1}{2$$", "leaves a brace open"),
    ("$\\left(x+1$", "\\left without its \\right"),
    ("$\\frac{1}{2}$, $\\{1, 2\\}$, $\\left\\{ x \\right.$, and it costs $27 or $3.", ""),
])
def test_a_formula_katex_would_show_as_red_source_is_named(text: str, fault: str) -> None:
    found = formula_fault(text)
    assert (fault in found) if fault else found == ""


def test_a_question_whose_maths_cannot_be_typeset_waits_for_faculty_and_a_broken_hint_is_reported(
        tmp_path: Path) -> None:
    # College Algebra's a6f9727real6a: "What is $$4}\\left(12+\\operatorname{\\left(-7\\right)\\right)$$?", shown to
    # students as red TeX; Intro Stats has 11 hints like it.
    broken_hint = [{**HINTS[0], "text": "$\\bar{x$ is the mean"}]
    source = write_source(tmp_path / "src", {"p1": {"steps": {
        "p1a": ({**numeric("$$20$$"), "stepTitle": "What is $$4}\\left(12+\\operatorname{\\left(-7\\right)\\right)$$?"},
                ["adding"], []),
        "p1b": (numeric("$$4$$"), ["adding"], broken_hint)}}}, courses=["Course One"])
    result = load_oatutor(source)
    items = items_of(result)
    assert items["p1a"].extra["status"] == "review"
    assert "cannot be typeset" in items["p1a"].extra["review_reason"] and "red TeX" in items["p1a"].extra["review_reason"]
    assert "status" not in items["p1b"].extra  # a hint's fault is reported; the question is fine
    notes = {Path(i.path).name: i.message for i in result.report if i.category == "broken-maths"}
    assert notes["p1a.json"].endswith("closes a brace it never opened; the question waits in the review queue")
    assert notes["p1bDefaultPathway.json"].startswith("hint 1: a formula cannot be typeset: `\\bar{x` leaves a brace")


def test_text_reads_as_oatutor_shows_it(tmp_path: Path) -> None:
    """OATutor sets every `$$...$$` inline, breaks lines at the two characters `\\n`, and a single `$` is money."""
    body = ("Katie has $$\\$20.00$$ each, and a 20% discount on $100.\\nSolve:\\n$$x^2=4$$\\nfor $$x$$ "
            "where $$x \\neq 0$$.")
    choice_step = {"problemType": "MultipleChoice", "answerType": "string", "stepAnswer": ["$$x=2$$ or $$x=-2$$"],
                   "choices": ["$$x=2$$ or $$x=-2$$", "$$x=2$$", "$5"]}
    source = write_source(tmp_path / "src", {"p1": {"body": body, "steps": {"p1a": (choice_step, ["adding"], [])}}},
                          courses=["Course One"])
    item = items_of(load_oatutor(source))["p1a"]
    assert item.prompt.split("\n\n")[1:6] == [
        "Katie has $\\$20.00$ each, and a 20% discount on \\$100.", "Solve:", "$$x^2=4$$", "for $x$ where $x \\neq 0$.",
        "Step p1a"]
    assert item.choices == ["$x=2$ or $x=-2$", "$$x=2$$", "\\$5"] and item.answer == "$x=2$ or $x=-2$"
    rendered = render_markdown(item.prompt)
    assert rendered.count('<span class="math inline">') == 3 and rendered.count('<div class="math') == 1
    assert "\\n" not in rendered.replace("\\neq", "")


def test_a_word_the_source_sets_in_maths_reads_as_a_word_and_a_greek_letter_as_a_letter(tmp_path: Path) -> None:
    """Intro Stats writes "$$p-value$$" 200 times, "$$z-score$$" 140: KaTeX would show "p − value" in italics."""
    body = ("Compare the $$p-value$$ with alpha: a $$t-test$$, $$Two-Tailed$$, where $$p-value=P(x>2)$$ and $$x-2>0$$."
            " Reject if \\alpha > p-value; \\sigma is known.")  # a Greek letter outside maths, shown raw by OATutor
    choice_step = {"problemType": "MultipleChoice", "answerType": "string", "stepAnswer": ["$$t-distribution$$"],
                   "choices": ["$$t-distribution$$", "Normal distribution"]}
    source = write_source(tmp_path / "src", {"p1": {"body": body, "steps": {"p1a": (choice_step, ["adding"], [])}}},
                          courses=["Course One"])
    item = items_of(load_oatutor(source))["p1a"]
    assert ("Compare the $p$-value with alpha: a $t$-test, Two-Tailed, where $p\\text{-value}=P(x>2)$ and $x-2>0$. "
            "Reject if α > p-value; σ is known." in item.prompt)
    assert item.choices[0] == item.answer == "$t$-distribution"  # the key still matches the choice
    assert not formula_fault(item.prompt)


def test_missing_figure_is_reported_and_present_one_copied(small_source: Path) -> None:
    result = load_oatutor(small_source)
    missing = [i for i in result.report if i.category == "missing-figure"]
    assert len(missing) == 2 and all("figure2.gif" in i.message for i in missing)  # once per step that shows it
    assert set(result.assets) == {"figures/p1/figure1.gif"}


def test_a_question_whose_figure_is_missing_waits_for_faculty_instead_of_reaching_students(small_source: Path
                                                                                          ) -> None:
    # Intro Stats has six: "The results are listed in the table. (figure figure1.gif is missing) Find the median."
    result = load_oatutor(small_source)
    items = items_of(result)
    for step in ("p1a", "p1b"):
        assert items[step].extra["status"] == "review"
        assert items[step].extra["review_reason"].startswith("Its figure (figure2.gif) is missing from the source")
    assert all("waits in the review queue" in i.message for i in result.report if i.category == "missing-figure")
    assert "figure2" not in next(c for c in result.spec.concepts if c.slug == "adding").explanation


def test_multi_skill_step_prefers_the_skill_its_lesson_teaches(small_source: Path) -> None:
    result = load_oatutor(small_source)
    concept = {i.id: c.slug for c in result.spec.concepts for i in c.items}
    assert concept["p1b"] == "adding"  # lesson 1.1 teaches adding, not multiplying
    assert items_of(result)["p1b"].extra["oatutor"]["skills"] == ["multiplying", "adding"]


def test_inferred_graph_follows_lessons_within_a_chapter(small_source: Path) -> None:
    concepts = {c.slug: c for c in load_oatutor(small_source).spec.concepts}
    assert list(concepts) == ["adding", "subtracting", "multiplying"]
    assert concepts["multiplying"].prerequisites == ["adding", "subtracting"]
    assert concepts["multiplying"].prerequisites_inferred
    assert concepts["adding"].params.effective_bkt.p_guess == 0.25


def test_archive_and_folder_import_the_same_course(small_source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(small_source, arcname="course-src")
    from_folder, from_archive = load_oatutor(small_source), oatutor_import(archive)
    assert from_folder.spec == from_archive.spec
    assert from_folder.assets == from_archive.assets
    assert [i.category for i in from_folder.report] == [i.category for i in from_archive.report]


def test_reimport_gives_the_same_slugs_and_ids(small_source: Path) -> None:
    first, second = load_oatutor(small_source).spec, load_oatutor(small_source).spec
    assert [c.slug for c in first.concepts] == [c.slug for c in second.concepts]
    assert first == second


def test_shared_pool_needs_a_course_name_and_filters_by_it(tmp_path: Path) -> None:
    steps = {"a": (numeric("$$1$$"), ["adding"], [])}
    root = write_source(tmp_path / "pool", {
        "p1": {"course": "Course One", "steps": {"p1a": steps["a"]}},
        "p2": {"course": "Course Two", "steps": {"p2a": steps["a"]}},
    }, courses=["Course One", "Course Two"])
    with pytest.raises(CourseFormatError, match="Course One, Course Two"):
        load_oatutor(root)
    with pytest.raises(CourseFormatError, match="no course named 'Course Three'"):
        load_oatutor(root, course_name="Course Three")
    two = load_any(root, course_name="Course Two")
    assert two.spec.title == "Course Two" and two.spec.slug == "course-two"
    assert list(items_of(two)) == ["p2a"]


def test_not_an_oatutor_source_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseFormatError, match="no coursePlans.json"):
        load_oatutor(tmp_path / "empty")


def test_a_step_id_used_twice_is_imported_once_and_reported(tmp_path: Path) -> None:
    root = write_source(tmp_path / "dup", {
        "p1": {"steps": {"s1": (numeric("$$1$$"), ["adding"], [])}},
        "p2": {"steps": {"s1": (numeric("$$2$$"), ["adding"], [])}},
    }, courses=["Course One"])
    result = load_oatutor(root)
    assert [i.answer for i in items_of(result).values()] == [1]
    assert [(i.category, Path(i.path).parts[-4]) for i in result.skipped()] == [("duplicate-id", "p2")]


@needs_archive
def test_an_equation_answer_is_imported_as_an_equation_the_checker_compares(imported: ImportResult) -> None:
    equations = [i for i in items_of(imported).values() if i.kind == "symbolic" and "=" in str(i.answer)]
    assert len(equations) >= 30
    line = next(i for i in equations if i.answer == "x+3y=2")
    for typed in ("x + 3y = 2", "3y = 2 - x", "2 = x + 3y", "y = (2 - x)/3"):
        assert check_answer("symbolic", line.answer, typed, variables=line.variables).correct, typed
    assert not check_answer("symbolic", line.answer, "x + 3y = 3", variables=line.variables).correct
