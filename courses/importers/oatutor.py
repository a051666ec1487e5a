"""Import an OATutor content source (CAHLR/OATutor `src/content-sources/oatutor`) as a `CourseSpec`.

    coursePlans.json        courses -> lessons (textbook order) -> learning objectives (skill -> threshold)
    skillModel.json         step id -> skill names
    defaultBKTParams.json   skill -> probMastery, probTransit, probSlip, probGuess
    content-pool/<problem>/<problem>.json, steps/<step>/<step>.json, steps/<step>/tutoring/<step>DefaultPathway.json,
    content-pool/<problem>/figures/*

Mapping: skills become concepts; each step of a problem becomes an item filed under its primary skill, with the
problem's title and body as context in the prompt; hints and scaffolds become the hint ladder (scaffolds keep
their own answers in `extra`); lessons give the concept order and, with skills shared by one problem, an
inferred prerequisite graph for faculty to confirm. What cannot be used is reported with its file and skipped.
The source may be a folder or a .tar.gz of one; nothing here knows the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from courses.checking import parse_expression, parse_key
from courses.format import ITEM_STATUS_KEY, ConceptSpec, CourseFormatError, CourseSpec, ItemSpec
from courses.importers.latex import LatexError, expression_variables, latex_to_expression, split_equation
from courses.importers.result import MISSING_FIGURE, ImportIssue, ImportResult, slugify
from courses.importers.source import SourceFiles
from courses.params import ConceptParams, ParamsError
from courses.rendering import DISPLAY_FORMULA, formula_fault

# `##figure1.gif##`; some texts end with `##figure1.gif` and no closing marks
_FIGURE = re.compile(r"##([^#\s/\\]+\.(?:gif|png|jpe?g|svg|webp))(?:##)?", re.IGNORECASE)
_VARIABLE = re.compile(r"@\{(\w+)\}")
_PLAIN_NUMBER = re.compile(r"-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?")
_LINK = re.compile(r"^\s*(\S+)\s*<(.+)>\s*$")  # OATutor writes "https://url <Name>"
# OATutor sets every `$$...$$` inline (its renderText uses KaTeX's InlineMath); in our Markdown `$$` is display maths
_CURRENCY = re.compile(r"(?<!\\)\$(?=\d)")  # "$5" in text, outside maths: a dollar sign, not maths


def _worth_reading(name: str) -> bool:
    """JSON and figures: the OpenStax algebra course is ~17 MiB of them."""
    return name.endswith(".json") or "/figures/" in name


def _natural(text: str) -> list[Any]:
    """Sort key that puts problem10 after problem9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# --- the import --------------------------------------------------------------------------------------


@dataclass
class _Lesson:
    id: str
    name: str
    topics: str
    objectives: dict[str, float]  # skill -> mastery threshold
    index: int


@dataclass
class _Importer:
    src: SourceFiles
    course_name: str
    lessons: list[_Lesson]
    skill_model: dict[str, list[str]]
    bkt: dict[str, dict[str, float]]
    report: list[ImportIssue] = field(default_factory=list)
    assets: dict[str, bytes] = field(default_factory=dict)
    items_by_skill: dict[str, list[ItemSpec]] = field(default_factory=dict)
    skill_links: list[tuple[str, str, str]] = field(default_factory=list)  # (earlier, later, why)
    primary: dict[str, str] = field(default_factory=dict)  # step id -> the skill it is filed under
    slugs: dict[str, str] = field(default_factory=dict)  # skill -> concept slug
    cut: dict[str, str] = field(default_factory=dict)  # a skill rejoined from its cut parts -> its first part
    skills_as_written: dict[str, list[str]] = field(default_factory=dict)  # step id -> its skills before rejoining
    hints_seen: int = 0  # pathway entries of every step, imported or not

    def issue(self, rel: str, message: str, category: str, severity: str = "error") -> None:
        self.report.append(ImportIssue(self.src.where(rel), message, severity, category))


# What malformed JSON of the right syntax but the wrong shape raises inside the importer.
_MALFORMED = (TypeError, AttributeError, KeyError, ValueError, IndexError)


def load_oatutor(path: str | Path, *, course_name: str | None = None) -> ImportResult:
    """Read an OATutor source (folder or .tar.gz). `course_name` picks one course from a shared content pool.

    A source whose course plan or skill model has the wrong shape fails as a CourseFormatError naming the file;
    a malformed problem or step is reported with its path and skipped, and the rest imports.
    """
    try:
        return _load_oatutor(path, course_name=course_name)
    except CourseFormatError:
        raise
    except _MALFORMED as exc:
        raise CourseFormatError(path, None, f"malformed OATutor source (coursePlans.json, skillModel.json or "
                                            f"defaultBKTParams.json has an unexpected shape): {type(exc).__name__}: {exc}") from None


def _load_oatutor(path: str | Path, *, course_name: str | None = None) -> ImportResult:
    src = SourceFiles.open(Path(path), "coursePlans.json", keep=_worth_reading)
    plans = src.json("coursePlans.json")
    if not isinstance(plans, list) or not plans:
        raise CourseFormatError(src.where("coursePlans.json"), 1, "expected a list of courses")
    names = [str(c.get("courseName", "")) for c in plans]
    if course_name is None and len(plans) > 1:
        raise CourseFormatError(src.where("coursePlans.json"), None,
                                "this source holds several courses; choose one with course_name: " + ", ".join(names))
    plan = plans[0] if course_name is None else next((c for c in plans if c.get("courseName") == course_name), None)
    if plan is None:
        raise CourseFormatError(src.where("coursePlans.json"), None,
                                f"no course named {course_name!r}; courses here: " + ", ".join(names))
    lessons = [_Lesson(str(raw.get("id", i)), str(raw.get("name", f"Lesson {i + 1}")), str(raw.get("topics", "")),
                       {str(k): float(v) for k, v in (raw.get("learningObjectives") or {}).items()}, i)
               for i, raw in enumerate(plan.get("lessons") or [])]
    imp = _Importer(src, str(plan.get("courseName", "")), lessons, src.json("skillModel.json"),
                    src.json("defaultBKTParams.json") if src.exists("defaultBKTParams.json") else {})
    for lesson in lessons:  # an objective without a name would be a concept without a title
        if any(not skill.strip() for skill in lesson.objectives):
            lesson.objectives = {k: v for k, v in lesson.objectives.items() if k.strip()}
            line = _json_key_line(imp, "", "coursePlans.json", after=lesson.id)
            imp.issue("coursePlans.json", f"{f'line {line}: ' if line else ''}{lesson.name}: a learning objective "
                      "with an empty name, left out", "empty-objective", "warning")
    _rejoin_cut_skills(imp)
    if not src.exists("defaultBKTParams.json"):
        imp.issue("defaultBKTParams.json", "no default BKT parameters: concepts start without them", "bkt", "warning")

    problems = _read_problems(imp)
    seen_steps: set[str] = set()
    for problem_id, problem in problems:
        for index, step_id in enumerate(problem["_steps"]):
            seen_steps.add(step_id)
            try:
                _import_step(imp, problem_id, problem, index, step_id)
            except _MALFORMED as exc:
                # Real content has odd shapes; one broken step is reported with its file, the rest imports.
                imp.issue(f"content-pool/{problem_id}/steps/{step_id}/{step_id}.json",
                          f"malformed step, skipped: {type(exc).__name__}: {exc}", "malformed")
    for step_id in sorted(set(imp.skill_model) - seen_steps, key=_natural):
        if len(plans) > 1 and not any(step_id.startswith(p) for p, _ in problems):
            continue  # most likely another course's step in a shared pool
        imp.issue("skillModel.json", f"skill model names step {step_id!r}, which has no step file", "dangling-skill",
                  "warning")

    concepts = _build_concepts(imp)
    _infer_prerequisites(imp, concepts)
    course = CourseSpec(
        slug=slugify(imp.course_name or Path(path).name.split(".")[0]),
        title=imp.course_name or Path(path).name,
        description=(f"Imported from OATutor: {len(concepts)} concepts and {_published(concepts)} questions, from "
                     f"the steps of {len(problems)} problems in {len(lessons)} lessons."),
        concepts=concepts,
        attribution=_attribution(plan.get("courseOER", ""), plan.get("courseLicense", "")),
    )
    stats = {"problems": len(problems), "steps": sum(len(p["_steps"]) for _, p in problems), "skills": len(concepts),
             "lessons": len(lessons), "hints": imp.hints_seen}
    return ImportResult(course, imp.report, imp.assets, stats)


# OATutor's skill model comes from a spreadsheet column of comma-separated skills, so a skill whose name holds
# commas arrives cut: "Using a graph to determine where a function is increasing, decreasing, or constant" is the
# list `using_a_graph_..._increasing`, `decreasing`, `or_constant`. A part that starts with a conjunction ends such a
# name; it and the parts before it are one skill.
_CUT_END = re.compile(r"(?:and|or)_\w")


def _rejoin_cut_skills(imp: _Importer) -> None:
    """Each cut skill name made whole again, in the skill model and the lessons' objectives (where it takes its first
    part's place and threshold); a part no step names on its own any more leaves the objectives, so it is no
    concept. The whole skill keeps its first part's slug (where that part is no concept of its own) and BKT
    parameters: a course imported before keeps its concept and its students' progress."""
    parts_of: dict[str, list[str]] = {}
    for step_id, skills in imp.skill_model.items():
        if not isinstance(skills, list):
            continue  # reported where the step is imported
        end = next((k for k, s in enumerate(skills) if k and _CUT_END.match(str(s))), None)
        if end is None:
            continue
        whole = ", ".join(str(s) for s in skills[:end + 1])
        if whole not in parts_of:
            parts_of[whole] = [str(s) for s in skills[:end + 1]]
            line = _json_key_line(imp, step_id, "skillModel.json")
            imp.issue("skillModel.json", f"{f'line {line}: ' if line else ''}skills "
                      f"{', '.join(repr(s) for s in parts_of[whole])} read as one skill cut at its commas: "
                      f"{_skill_title(whole)!r}", "cut-skill", "warning")
        imp.skills_as_written[step_id] = [str(s) for s in skills]
        imp.skill_model[step_id] = [whole, *skills[end + 1:]]
    if not parts_of:
        return
    imp.cut = {whole: parts[0] for whole, parts in parts_of.items()}
    still_named = {str(s) for skills in imp.skill_model.values() if isinstance(skills, list) for s in skills}
    cut_parts = {part for parts in parts_of.values() for part in parts}
    wholes_of: dict[str, list[str]] = {}  # first part -> the skills rejoined from it
    for whole, first in imp.cut.items():
        wholes_of.setdefault(first, []).append(whole)
    for lesson in imp.lessons:
        objectives: dict[str, float] = {}
        for skill, threshold in lesson.objectives.items():
            for whole in wholes_of.get(skill, []):
                objectives.setdefault(whole, threshold)
            if skill not in cut_parts or skill in still_named:
                objectives.setdefault(skill, threshold)
        lesson.objectives = objectives


def _published(concepts: list[ConceptSpec]) -> int:
    return sum(1 for c in concepts for i in c.items if ITEM_STATUS_KEY not in i.extra)


def _read_problems(imp: _Importer) -> list[tuple[str, dict[str, Any]]]:
    """The course's problems in lesson order, each with its step ids in `_steps`."""
    lesson_index = {lesson.id: lesson.index for lesson in imp.lessons}
    problems = []
    for problem_id in imp.src.children("content-pool"):
        rel = f"content-pool/{problem_id}/{problem_id}.json"
        if not imp.src.exists(rel):
            imp.issue(f"content-pool/{problem_id}", "problem folder without a problem file", "missing-file")
            continue
        problem = imp.src.json(rel)
        if not isinstance(problem, dict):
            imp.issue(rel, f"a problem file must hold a JSON object, not {type(problem).__name__}", "malformed")
            continue
        if imp.course_name and problem.get("courseName", imp.course_name) != imp.course_name:
            continue
        if problem.get("lessonId") not in lesson_index:
            imp.issue(rel, f"lesson {problem.get('lesson')!r} is not in the course plan: filed after the last lesson",
                      "unknown-lesson", "warning")
        problem["_steps"] = sorted(imp.src.children(f"content-pool/{problem_id}/steps"), key=_natural)
        if not problem["_steps"]:
            imp.issue(rel, "problem has no steps", "no-steps")
        problems.append((problem_id, problem))
    problems.sort(key=lambda p: (lesson_index.get(p[1].get("lessonId"), len(lesson_index)), _natural(p[0])))
    return problems


def _import_step(imp: _Importer, problem_id: str, problem: dict[str, Any], index: int, step_id: str) -> None:
    folder = f"content-pool/{problem_id}/steps/{step_id}"
    rel = f"{folder}/{step_id}.json"
    if not imp.src.exists(rel):
        imp.issue(folder, "step folder without a step file", "missing-file")
        return
    if step_id in imp.primary:
        imp.issue(rel, f"step id {step_id!r} is already used by another problem", "duplicate-id")
        return
    step = imp.src.json(rel)
    values = _variable_values(imp, rel, problem, step)
    text = _Text(imp, problem_id, rel, values)
    pathway_rel = f"{folder}/tutoring/{step_id}DefaultPathway.json"
    pathway = imp.src.json(pathway_rel) if imp.src.exists(pathway_rel) else []
    imp.hints_seen += len(pathway) if isinstance(pathway, list) else 0

    kind_answer = _answer(imp, rel, step, values)
    if kind_answer is None:
        return
    skills = [str(s) for s in imp.skill_model.get(step_id, [])]
    primary = _primary_skill(imp, rel, problem, skills)
    if primary is None:
        return
    item = ItemSpec(
        id=step_id,
        prompt=_join(_bold(text(problem.get("title", ""))),
                     text(problem.get("body", "")), text(step.get("stepTitle", "")), text(step.get("stepBody", ""))),
        attribution=_attribution(problem.get("oer", ""), problem.get("license", "")),
        **kind_answer.fields,
    )
    in_prompt = list(text.missing)
    if in_prompt and not kind_answer.item_extra:  # the question may hang on it: faculty add it, then publish
        kind_answer.item_extra = {ITEM_STATUS_KEY: "review", "review_reason": (
            f"Its figure ({', '.join(in_prompt)}) is missing from the source: add it to the question, then publish.")}
    # KaTeX shows a formula it cannot read as red TeX source: the question waits for faculty to correct it
    fault = next(filter(None, map(formula_fault, [item.prompt, *(kind_answer.fields.get("choices") or [])])), "")
    if fault:
        imp.issue(rel, f"a formula cannot be typeset: {fault}"
                  + ("; the question waits in the review queue" if not kind_answer.item_extra else ""),
                  "broken-maths", "warning")
        if not kind_answer.item_extra:
            kind_answer.item_extra = {ITEM_STATUS_KEY: "review", "review_reason": (
                f"A formula cannot be typeset ({fault}): students would see it as red TeX. Correct it, then publish.")}
    item.hints, ladder = _hint_ladder(imp, pathway_rel, pathway, text)
    for n, hint in enumerate(item.hints, start=1):
        if hint_fault := formula_fault(hint):
            imp.issue(pathway_rel, f"hint {n}: a formula cannot be typeset: {hint_fault}", "broken-maths", "warning")
    for name, source in text.missing.items():
        imp.issue(rel, f"figure {name} is missing (expected at {source})"
                  + ("; the question names it, so it waits in the review queue" if name in in_prompt else ""),
                  "missing-figure", "warning")
    hint_sources = {_attribution(h.get("oer", ""), h.get("license", "")) for h in pathway if isinstance(h, dict)}
    hint_sources.discard("")
    if hint_sources - {item.attribution}:
        item.attribution = "; ".join([item.attribution or "unattributed problem",
                                      *(f"hints: {s}" for s in sorted(hint_sources - {item.attribution}))])
    meta: dict[str, Any] = {
        "problem_id": problem_id, "step_id": step_id, "step_index": index, "steps_in_problem": len(problem["_steps"]),
        "lesson_id": problem.get("lessonId", ""), "problem_type": step.get("problemType", ""),
        "answer_type": step.get("answerType", ""), "answer_latex": step.get("stepAnswer"), "skills": skills,
        "pathway": ladder,
    }
    if step_id in imp.skills_as_written:
        meta["skills_as_written"] = imp.skills_as_written[step_id]
    meta.update(kind_answer.extra)
    if values:
        meta["variabilization"] = {"problem": problem.get("variabilization"), "step": step.get("variabilization")}
    item.extra = {"oatutor": meta, **kind_answer.item_extra}
    imp.items_by_skill.setdefault(primary, []).append(item)
    imp.primary[step_id] = primary
    for other in skills:
        if other != primary:
            imp.skill_links.append((other, primary, f"step {step_id} exercises both"))
    if index > 0:
        previous = problem["_steps"][index - 1]
        earlier = imp.primary.get(previous)
        if earlier and earlier != primary:
            imp.skill_links.append((earlier, primary, f"problem {problem_id}: step {previous} comes before {step_id}"))


@dataclass
class _Answer:
    fields: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # kept under the item's extra["oatutor"]
    item_extra: dict[str, Any] = field(default_factory=dict)  # the item's own extra (its review status)


def _answer(imp: _Importer, rel: str, step: dict[str, Any], values: dict[str, str]) -> _Answer | None:
    """The item kind and answer fields for a step, or None (reported) when it cannot be checked."""
    problem_type, answer_type = str(step.get("problemType", "")), str(step.get("answerType", ""))
    answers = [_substitute(str(a), values).strip() for a in (step.get("stepAnswer") or []) if a is not None]
    if answer_type == "short-essay" or problem_type == "short-essay":
        imp.issue(rel, "short-essay steps have no checkable answer", "short-essay")
        return None
    if not answers or not answers[0].strip() or answers[0].strip() == "None":
        imp.issue(rel, "step has no answer", "no-answer")
        return None
    if problem_type == "MultipleChoice":
        original = [_substitute(str(c), values).strip() for c in (step.get("choices") or [])]
        # choices and key in Markdown alike (the key is compared with the choice the student picks)
        choices = list(dict.fromkeys(_markdown(c).strip() for c in original))
        key = _markdown(answers[0]).strip()
        extra: dict[str, Any] = {}
        if len(choices) != len(original):
            imp.issue(rel, f"duplicate choices removed ({len(original)} -> {len(choices)})", "duplicate-choices",
                      "warning")
            extra["choices_original"] = original
        if key not in choices:
            imp.issue(rel, f"the answer {answers[0]!r} is not one of the choices", "answer-not-a-choice")
            return None
        if len(choices) < 2:
            imp.issue(rel, "a multiple-choice step needs at least two different choices", "too-few-choices")
            return None
        return _Answer({"kind": "multiple_choice", "answer": key, "choices": choices}, extra)
    if problem_type != "TextBox":
        imp.issue(rel, f"unknown problem type {problem_type!r}", "unknown-type")
        return None
    if answer_type == "string":
        return _Answer({"kind": "short_text", "answer": answers[0], "accept": answers[1:]})
    if answer_type != "arithmetic":
        return _for_review(imp, rel, answers, f"unknown answer type {answer_type!r}", "unknown-type")
    try:
        converted = latex_to_expression(answers[0])
        try:
            prefix, expression = split_equation(converted)
        except LatexError as exc:
            if exc.category != "equation":
                raise
            prefix, expression = "", converted  # "2x + 3y = 6": the checker compares answers as equations
        variables = expression_variables(expression)
        if "=" in expression:
            parse_key(expression, variables)
        elif not isinstance(parse_expression(expression, variables), sympy.Expr):
            raise LatexError("words", f"{expression!r} reads as logic, not as an expression")
    except LatexError as exc:
        return _for_review(imp, rel, answers, f"answer {answers[0]!r} cannot be checked: {exc}", exc.category)
    except ValueError as exc:
        return _for_review(imp, rel, answers, f"answer {answers[0]!r} is not a readable expression: {exc}",
                           "bad-latex")
    extra = {"answer_prefix": prefix} if prefix else {}
    if len(answers) > 1:
        extra["other_answers"] = answers[1:]
    if _PLAIN_NUMBER.fullmatch(expression):
        number = float(expression.replace(",", ""))
        return _Answer({"kind": "numeric", "answer": int(number) if number.is_integer() and "." not in expression
                        else number}, extra)
    return _Answer({"kind": "symbolic", "answer": expression, "variables": variables}, extra)


def _for_review(imp: _Importer, rel: str, answers: list[str], why: str, category: str) -> _Answer:
    """A step the tutor cannot check is kept for faculty, not lost: it waits in the review queue (students never see
    it) with its answer as written, for someone to turn into a key the checker reads."""
    imp.issue(rel, f"{why}; kept in the review queue", category, "warning")
    return _Answer({"kind": "short_text", "answer": answers[0], "accept": answers[1:]},
                   {}, {ITEM_STATUS_KEY: "review", "review_reason": (
                       f"The tutor cannot check this answer: {why}. Edit its answer into a form the checker reads (a "
                       "number, an expression, a choice) before approving it.")})


def _primary_skill(imp: _Importer, rel: str, problem: dict[str, Any], skills: list[str]) -> str | None:
    """The skill the step is filed under: the first of its skills that its lesson teaches, else its first."""
    lesson = next((lesson for lesson in imp.lessons if lesson.id == problem.get("lessonId")), None)
    if not skills:
        if lesson and lesson.objectives:
            fallback = next(iter(lesson.objectives))
            imp.issue(rel, f"step has no skill in skillModel.json: filed under its lesson's {fallback!r}",
                      "no-skill", "warning")
            return fallback
        imp.issue(rel, "step has no skill in skillModel.json and its lesson has no objectives", "no-skill")
        return None
    taught = [s for s in skills if lesson and s in lesson.objectives]
    return (taught or skills)[0]


def _hint_ladder(imp: _Importer, rel: str, pathway: Any, text: _Text) -> tuple[list[str], list[dict[str, Any]]]:
    """Hint texts in order, and per hint what the text cannot hold (ids, dependencies, scaffold answers)."""
    if not isinstance(pathway, list):
        imp.issue(rel, "the tutoring pathway is not a list: no hints imported", "bad-pathway", "warning")
        return [], []
    hints, ladder = [], []
    for raw in pathway:
        title, body = text(str(raw.get("title", ""))), text(str(raw.get("text", "")))
        meta: dict[str, Any] = {"id": raw.get("id", ""), "type": raw.get("type", "hint")}
        if raw.get("dependencies"):
            meta["dependencies"] = raw["dependencies"]
        hint = _join(_bold(title), body)
        if raw.get("type") == "scaffold":
            answers = [_substitute(str(a), text.values).strip() for a in raw.get("hintAnswer") or []]  # as written
            meta.update({"answer": answers, "problem_type": raw.get("problemType", ""),
                         "answer_type": raw.get("answerType", "")})
            if raw.get("choices"):
                meta["choices"] = [_substitute(str(c), text.values).strip() for c in raw["choices"]]
            if answers:
                hint = _join(hint, text(f"Answer: {answers[0]}"))
        if raw.get("subHints"):
            meta["sub_hints"] = [{**sub, "title": text(str(sub.get("title", ""))), "text": text(str(sub.get("text", "")))}
                                 for sub in raw["subHints"]]
        hints.append(hint)
        ladder.append(meta)
    return hints, ladder


class _Text:
    """Text as written, with variabilization filled in, `##figure1.gif##` turned into Markdown images and OATutor's
    line breaks and maths as Markdown (`_markdown`)."""

    def __init__(self, imp: _Importer, problem_id: str, rel: str, values: dict[str, str]) -> None:
        self.imp, self.problem_id, self.rel, self.values = imp, problem_id, rel, values
        self.missing: dict[str, str] = {}  # figures named that the source lacks: name -> where it was looked for

    def __call__(self, text: str) -> str:
        return _markdown(_FIGURE.sub(self._figure, _substitute(text, self.values))).strip()

    def _figure(self, match: re.Match[str]) -> str:
        name = match.group(1)
        source = f"content-pool/{self.problem_id}/figures/{name}"
        if not self.imp.src.exists(source):
            self.missing[name] = source  # reported once per step (`_import_step`)
            return MISSING_FIGURE.format(name=name)
        target = f"figures/{self.problem_id}/{name}"
        self.imp.assets[target] = self.imp.src.read(source)
        return f"![{name}]({target})"


def _markdown(text: str) -> str:
    """OATutor's text conventions (its renderText) as Markdown. A line break is written as the two characters `\\n`
    outside maths (`\\neq` is "≠"): a new paragraph here. A single `$` is a dollar sign there; here it is escaped
    where it reads as money ("$100,000"). Every `$$...$$` is set inline there: `$...$` here when it
    sits in a line of text ("have $$\\$20.00$$ each" stays one sentence), display maths when it is a line of its own."""
    parts = text.split("$$")
    out, plain = _prose(parts[0]), False
    for k, part in enumerate(parts[1:], start=1):
        if k % 2 == 0:  # the text after a span
            out += ("" if plain else "$$") + _prose(part)
            continue
        words = _maths_words(part) if k + 1 < len(parts) else None  # a closed span that is a word, not maths
        plain = words is not None
        out += words if words is not None else "$$" + _WORD_IN_FORMULA.sub(r"\1\\text{-\2}", part)
    return _inline_maths(out)


def _prose(text: str) -> str:
    """Text outside maths: `\\n` a paragraph, money escaped, and a Greek letter written as a command outside maths
    ("if \\alpha > p-value", which OATutor shows raw) as the letter."""
    text = _GREEK.sub(lambda m: _GREEK_LETTERS[m.group(1)], text.replace("\\neq", "≠"))
    return _CURRENCY.sub(r"\\$", text.replace("\\n", "\n\n"))


_GREEK_LETTERS = dict(zip(
    "alpha beta gamma delta epsilon theta lambda mu pi rho sigma tau phi chi omega Delta Sigma Omega".split(),
    "αβγδεθλμπρστφχωΔΣΩ", strict=True))
_GREEK = re.compile(r"\\(" + "|".join(_GREEK_LETTERS) + r")(?![A-Za-z])")


# OATutor sets words in maths ("$$p-value$$", "$$t-test$$", "$$x-intercepts$$"), which KaTeX reads as "p minus
# value" in italics: the variable's letter stays maths, the word is text; a longer prefix ("non-", "two-") is text.
_MATHS_WORD = re.compile(r"\s*([A-Za-z]{1,3})-([A-Za-z]{3,}(?:[- ][A-Za-z]+)*)(\)?)\s*")
_WORD_IN_FORMULA = re.compile(r"(?<![\\A-Za-z{])([A-Za-z])-([a-z]{4,})(?![A-Za-z])")  # "p-value=P(x>2)"


def _maths_words(span: str) -> str | None:
    """A maths span that is a hyphenated word, as Markdown text ("p-value" -> "$p$-value"), else None."""
    match = _MATHS_WORD.fullmatch(span)
    if match is None:
        return None
    head, word, paren = match.groups()
    return (f"${head}$" if len(head) == 1 else head) + f"-{word}{paren or ''}"


def _bold(title: str) -> str:
    """A title in bold; a formula in it (a title may be only one) set inline."""
    return _inline_maths(f"**{title}**") if title else ""


def _inline_maths(text: str) -> str:
    return "\n".join(line if DISPLAY_FORMULA.fullmatch(line.strip()) else DISPLAY_FORMULA.sub(r"$\1$", line)
                     for line in text.split("\n"))


def _variable_values(imp: _Importer, rel: str, problem: dict[str, Any], step: dict[str, Any]) -> dict[str, str]:
    """OATutor picks one value per variable at random; we fix the first, so the item reads as written."""
    values: dict[str, str] = {}
    for scope in (problem.get("variabilization") or {}, step.get("variabilization") or {}):
        for name, options in scope.items():
            if isinstance(options, list) and options:
                values[str(name)] = str(options[0])
    if values:
        imp.issue(rel, "variabilized step: imported with the first value of each variable "
                  f"({', '.join(f'{k}={v}' for k, v in values.items())})", "variabilization", "warning")
    return values


def _substitute(text: str, values: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text) if values else text


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def _attribution(oer: str, license: str) -> str:
    """`"https://x <OpenStax: College Algebra>"`, `"https://cc <CC BY 4.0>"` -> "OpenStax: College Algebra
    (https://x), CC BY 4.0 (https://cc)"."""
    parts = []
    for value in (oer, license):
        match = _LINK.match(value or "")
        if match:
            parts.append(f"{match.group(2).strip()} ({match.group(1)})")
        elif value and value.strip():
            parts.append(value.strip())
    return ", ".join(parts)


# --- concepts and their graph ------------------------------------------------------------------------


def _build_concepts(imp: _Importer) -> list[ConceptSpec]:
    """One concept per skill, in the order lessons introduce them; skills no lesson names come last."""
    order: list[str] = []
    for lesson in imp.lessons:
        order += [s for s in lesson.objectives if s not in order]
    order += [s for s in imp.items_by_skill if s not in order]
    slugs = imp.slugs
    used: set[str] = set()
    for skill in order:
        first = imp.cut.get(skill)  # a rejoined skill takes its first part's slug, unless that part is a concept too
        slug = slugify(first if first is not None and first not in order else skill)
        if slug in used:  # two skill names that differ only in punctuation: a stable, distinct slug
            slug = slugify(skill + "#", max_length=len(slug) + 9)
        slugs[skill] = slug
        used.add(slug)
    concepts = []
    for skill in order:
        lessons = [lesson for lesson in imp.lessons if skill in lesson.objectives]
        items = imp.items_by_skill.get(skill, [])
        extra: dict[str, Any] = {"oatutor": {
            "skill": skill,
            "lessons": [{"id": lesson.id, "name": lesson.name, "topics": lesson.topics,
                         "mastery_threshold": lesson.objectives[skill]} for lesson in lessons],
        }}
        concepts.append(ConceptSpec(
            slug=slugs[skill], title=_skill_title(skill), lesson=_lesson_text(imp, skill, lessons, slugs),
            explanation=_worked_example(items), items=items, extra=extra, params=_concept_params(imp, skill),
        ))
    return concepts


def _concept_params(imp: _Importer, skill: str) -> ConceptParams:
    """The skill's BKT parameters from defaultBKTParams.json; a value the tutor cannot use fails the import there."""
    skill = imp.cut.get(skill, skill)  # a skill rejoined from its parts has its first part's parameters
    raw = imp.bkt.get(skill)
    if raw is None:
        return ConceptParams()
    if not isinstance(raw, dict):
        raise CourseFormatError(imp.src.where("defaultBKTParams.json"), _json_key_line(imp, skill),
                                f"skill {skill!r}: expected an object of probMastery, probTransit, probSlip, probGuess")
    try:
        return ConceptParams.parse({"p_init": raw.get("probMastery"), "p_learn": raw.get("probTransit"),
                                    "p_slip": raw.get("probSlip"), "p_guess": raw.get("probGuess"),
                                    "source": "OATutor defaults"})
    except ParamsError as exc:
        raise CourseFormatError(imp.src.where("defaultBKTParams.json"), _json_key_line(imp, skill),
                                f"skill {skill!r}: {exc}") from None


def _json_key_line(imp: _Importer, key: str, rel: str = "defaultBKTParams.json", after: str = "") -> int | None:
    """The line of `rel` where the object key `key` is written (the first after the string `after`, if given)."""
    text = imp.src.read(rel)
    start = max(0, text.find(json.dumps(after).encode())) if after else 0
    found = re.compile(re.escape(json.dumps(key).encode()) + rb"\s*:").search(text, start)
    return text.count(b"\n", 0, found.start()) + 1 if found else None


def _skill_title(skill: str) -> str:
    """"stem_and_leaf_graphs" -> "Stem and leaf graphs"; a skill named by its textbook page's address
    (".../pages/3_4_contingency_tables") -> "Contingency tables"; a hyphen the skill model wrote as a part's last
    underscore is a hyphen again ("left_, right_, and_two_tailed_test" -> "Left-, right-, and two tailed test")."""
    if "://" in skill:
        skill = re.sub(r"^[\d_]+_", "", skill.rstrip("/").rsplit("/", 1)[-1])
    skill = re.sub(r"(?<=\w)_(?=,|$)", "-", skill)
    words = re.sub(r"[_\s]+", " ", skill).strip()
    return words[:1].upper() + words[1:]


def _lesson_text(imp: _Importer, skill: str, lessons: list[_Lesson], slugs: dict[str, str]) -> str:
    if not lessons:
        return f"Practice on {_skill_title(skill).lower()} from {imp.course_name}."
    parts = []
    for lesson in lessons:
        heading = f"{lesson.name}: {lesson.topics}" if lesson.topics else lesson.name
        others = [_skill_title(s).lower() for s in lesson.objectives if s != skill]
        parts.append(f"From **{heading}** ({imp.course_name}).\n\n"
                     f"Learning objective: {_skill_title(skill).lower()} "
                     f"(mastery threshold {lesson.objectives[skill]:g})."
                     + (f"\n\nThe lesson also covers: {', '.join(others)}." if others else ""))
    return "\n\n".join(parts)


def _worked_example(items: list[ItemSpec]) -> str:
    """The first item with at least two hints, walked through hint by hint: OATutor's hints are worked steps."""
    example = next((i for i in items if len(i.hints) >= 2 and ITEM_STATUS_KEY not in i.extra), None)
    if example is None:
        return ""
    steps = "\n\n".join(f"*Step {n}.* {hint}" for n, hint in enumerate(example.hints, start=1))
    answer = example.extra["oatutor"]["answer_latex"]
    shown = str(answer[0] if isinstance(answer, list) and answer else example.answer).strip()
    _, said, given = example.hints[-1].rpartition("Answer:")
    if said and _bare(given) == _bare(shown):  # the last step, a scaffold, gave it already
        return f"A worked example.\n\n{example.prompt}\n\n{steps}"
    return f"A worked example.\n\n{example.prompt}\n\n{steps}\n\n*Answer:* {shown}"


def _bare(answer: str) -> str:
    """An answer as written without its maths delimiters, emphasis and spaces: `$$2$$` and `$2$` are the same."""
    return re.sub(r"[$*\s]", "", answer)


def _infer_prerequisites(imp: _Importer, concepts: list[ConceptSpec]) -> None:
    """A starting graph, marked inferred: within a chapter each lesson builds on the one before, and a skill a
    problem exercises alongside (or before) a later-taught skill is its prerequisite. Edges run from earlier to
    later concepts only, so the graph has no cycle; edges implied by others are dropped."""
    slugs = imp.slugs
    position = {c.slug: i for i, c in enumerate(concepts)}
    reasons: dict[str, dict[str, str]] = {c.slug: {} for c in concepts}

    def link(earlier: str, later: str, why: str) -> None:
        if earlier in position and later in position and position[earlier] < position[later]:
            reasons[later].setdefault(earlier, why)

    introduced: dict[int, list[str]] = {}
    for c in concepts:
        first = next((lesson.index for lesson in imp.lessons if c.extra["oatutor"]["skill"] in lesson.objectives), None)
        if first is not None:
            introduced.setdefault(first, []).append(c.slug)
    for lesson in imp.lessons[1:]:
        before = imp.lessons[lesson.index - 1]
        if _chapter(before) == _chapter(lesson):
            for later in introduced.get(lesson.index, []):
                for earlier in introduced.get(before.index, []):
                    link(earlier, later, f"lesson order: {before.name} comes before {lesson.name}")
    for a, b, why in imp.skill_links:
        if a in slugs and b in slugs:
            link(slugs[a], slugs[b], why)

    graph = {slug: set(r) for slug, r in reasons.items()}
    for c in concepts:
        direct = graph[c.slug]
        implied = set().union(*(_ancestors(graph, p) for p in direct)) if direct else set()
        c.prerequisites = sorted(direct - implied, key=position.__getitem__)
        c.prerequisites_inferred = True
        c.extra["oatutor"]["inferred_from"] = {p: reasons[c.slug][p] for p in c.prerequisites}


def _ancestors(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def _chapter(lesson: _Lesson) -> str:
    """"Lesson 3.2" -> "3"; lessons without a numbered name form one chapter."""
    match = re.search(r"(\d+)\.\d+", f"{lesson.name} {lesson.topics}")
    return match.group(1) if match else ""
