"""The course folder format: what a person writes in an editor and keeps in git.

    <course>/course.yaml          title, settings, concepts with their prerequisites
    <course>/concepts/<slug>.md   YAML front matter (items, guess choices and the right one, key ideas,
                                  misconceptions and probes for teach-back) + Markdown sections:
                                  "## Lesson", "## Pain first", "## Guess first", "## Explanation"

`load_course(path)` parses a folder into plain dataclasses (`CourseSpec`) and raises `CourseFormatError`
naming the file, the line and what is wrong; `dump_course(spec, path)` writes the same format back.
Neither touches the database: `courses/services.py` turns a `CourseSpec` into rows in one transaction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from courses.params import ConceptParams, CourseSettings, ParamsError

ITEM_KINDS = ("numeric", "multiple_choice", "symbolic", "short_text", "template")
ITEM_STATUS_KEY = "status"  # in an item's `extra`: review or rejected (published items carry none)
SECTIONS = {  # heading as written -> field name
    "lesson": "lesson",
    "pain first": "pain_first",
    "guess first": "guess_first",
    "explanation": "explanation",
}


TEACH_BACK_LISTS = ("key_ideas", "misconceptions", "probes")  # a concept's lists for teach-back
MAX_KEY_IDEAS = 8  # more is a lesson outline, not what one explanation must contain (3-6 is the aim)
MAX_TEACH_BACK_ENTRIES = 12  # misconceptions and probes each
MAX_STATEMENT_CHARS = 300  # a key idea, misconception or probe is one short sentence or two


def teach_back_problem(key_ideas: list[str], misconceptions: list[str], probes: list[str]) -> tuple[str, str] | None:
    """(field, what is wrong) for a concept's teach-back lists that cannot be used, or None."""
    limits = {"key_ideas": (key_ideas, MAX_KEY_IDEAS), "misconceptions": (misconceptions, MAX_TEACH_BACK_ENTRIES),
              "probes": (probes, MAX_TEACH_BACK_ENTRIES)}
    for name, (values, most) in limits.items():
        if len(values) > most:
            return name, f"{name} has {len(values)} entries; at most {most}"
        for value in values:
            if not value.strip():
                return name, f"{name} has an empty entry"
            if len(value) > MAX_STATEMENT_CHARS:
                return name, f"{name}: {value[:40]!r}... is longer than {MAX_STATEMENT_CHARS} characters"
    if probes and not key_ideas:
        return "probes", "probes ask about key ideas: add key_ideas first"
    return None


# A misconception may name the key idea it opposes by its number (1: the first key idea): "... => 2". That idea is
# the one a student who says the misconception gets marked on, and the one the beginner's question about it aims at.
# Without a number the teach-back scorer guesses the idea from meaning: wrong for about one misconception in three on
# concepts nobody here wrote (benchmarks/teachback_mixup_ideas.py).
_OPPOSES = re.compile(r"\s*=>\s*(\d+)\s*$")


class MisconceptionLinkError(ValueError):
    """A misconception's "=> N" names no key idea."""


def misconception_link(entry: str) -> tuple[str, int | None]:
    """A misconception as written -> (its text, the number of the key idea it names, if it ends "=> N")."""
    match = _OPPOSES.search(entry)
    return (entry[:match.start()].strip(), int(match.group(1))) if match else (entry, None)


def misconception_links(entries: list[str], key_ideas: list[str]) -> tuple[list[str], dict[str, str]]:
    """The misconceptions as written (each maybe ending "=> N") -> (the misconceptions without it, misconception ->
    the key idea it names). Raises MisconceptionLinkError naming the entry whose N is not a key idea's number."""
    texts: list[str] = []
    links: dict[str, str] = {}
    for entry in entries:
        text, n = misconception_link(entry)
        if n is not None:
            if not 1 <= n <= len(key_ideas):
                shown = text if len(text) <= 60 else text[:60].rsplit(" ", 1)[0] + " \u2026"
                raise MisconceptionLinkError(
                    f"\u201c{shown}\u201d => {n}: there is no key idea {n} (there are {len(key_ideas)})")
            links[text] = key_ideas[n - 1]
        texts.append(text)
    return texts, links


def misconception_entries(misconceptions: list[str], links: dict[str, str], key_ideas: list[str]) -> list[str]:
    """The misconceptions as an author writes them: "=> N" after each that names a key idea still among
    `key_ideas` (one since reworded is guessed again)."""
    return [f"{m} => {key_ideas.index(links[m]) + 1}" if links.get(m) in key_ideas else m for m in misconceptions]


WORKED_PROMPT_CHARS = 40  # a shorter prompt may be in a lesson by chance


def worked_in(prompt: str, *texts: str) -> bool:
    """Whether `texts` (a concept's explanation and lesson) work this exercise through: its whole prompt is in them,
    spacing aside, as in an imported concept's worked example, which is one of its items."""
    prompt = " ".join(prompt.split())
    return len(prompt) >= WORKED_PROMPT_CHARS and prompt in " ".join(" ".join(texts).split())


class CourseFormatError(ValueError):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = str(path), line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class ItemSpec:
    id: str
    kind: str
    prompt: str
    answer: Any = None  # numeric: number; multiple_choice: the correct choice's text; symbolic: expression
    choices: list[str] = field(default_factory=list)
    tolerance: float | None = None  # numeric: absolute tolerance
    units: str | None = None
    variables: list[str] = field(default_factory=list)  # symbolic: the free symbols
    accept: list[str] = field(default_factory=list)  # short_text: accepted variants
    params: dict[str, Any] = field(default_factory=dict)  # template: name -> [low, high] integer ranges
    hints: list[str] = field(default_factory=list)
    feedback: dict[str, str] = field(default_factory=dict)  # a wrong answer -> what it suggests
    difficulty: float | None = None  # logit shift; None = not authored
    solution: str = ""  # worked solution, shown after the attempt
    attribution: str = ""  # e.g. "OpenStax College Algebra 2e, CC BY 4.0"
    extra: dict[str, Any] = field(default_factory=dict)  # importer-specific fields kept for a lossless round trip


@dataclass
class ConceptSpec:
    slug: str
    title: str
    prerequisites: list[str] = field(default_factory=list)
    lesson: str = ""
    pain_first: str = ""
    guess_first: str = ""
    guess_choices: list[str] = field(default_factory=list)
    guess_answer: str = ""  # the right one of guess_choices, if any: the guess is then evidence of prior knowledge
    explanation: str = ""
    items: list[ItemSpec] = field(default_factory=list)
    # Teach-back: what a good explanation of the concept says (3-6 short statements), wrong ideas to listen for,
    # and a beginner's follow-up questions the tutor asks when no model writes its own. Importers leave them empty.
    key_ideas: list[str] = field(default_factory=list)
    misconceptions: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    misconception_ideas: dict[str, str] = field(default_factory=dict)  # misconception -> the key idea it opposes
    prerequisites_inferred: bool = False  # set by importers that guess the graph; faculty confirm
    params: ConceptParams = field(default_factory=ConceptParams)  # front matter `bkt:`
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CourseSpec:
    slug: str
    title: str
    description: str = ""
    settings: CourseSettings = field(default_factory=CourseSettings)
    concepts: list[ConceptSpec] = field(default_factory=list)
    attribution: str = ""


# --- YAML with line numbers -------------------------------------------------------------------------


class _Mapping(dict):
    line: int = 0


# libyaml when installed: parsing a large imported course is ~8x faster than in pure Python.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


_Dumper.add_representer(_Mapping, _Dumper.represent_dict)  # loaded `extra` dicts are _Mapping: dump them back


class _LineLoader(_SafeLoader):  # type: ignore[valid-type, misc]
    pass


def _construct_line_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    # Registered for the map tag (not an override of construct_mapping, whose result the default map
    # constructor copies into a plain dict) so that every mapping remembers the line it starts on.
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    yield mapping
    mapping.update(loader.construct_mapping(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_mapping)


def _yaml(text: str, path: Path, line_offset: int = 0) -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        raise CourseFormatError(path, line, f"invalid YAML: {exc.problem or exc.context}") from None


def _line(node: Any, offset: int = 0) -> int | None:
    return getattr(node, "line", 0) + offset or None


def _require(node: dict, key: str, kind: type | tuple[type, ...], path: Path, offset: int = 0) -> Any:
    if key not in node:
        raise CourseFormatError(path, _line(node, offset), f"missing required field {key!r}")
    value = node[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CourseFormatError(path, _line(node, offset), f"field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _str_list(node: dict, key: str, path: Path, offset: int) -> list[str]:
    value = node.get(key) or []
    if not isinstance(value, list):
        raise CourseFormatError(path, _line(node, offset), f"field {key!r} must be a list")
    return [str(v) for v in value]


# --- reading ----------------------------------------------------------------------------------------


def load_course(path: str | Path) -> CourseSpec:
    root = Path(path)
    manifest = root / "course.yaml"
    if not manifest.is_file():
        raise CourseFormatError(manifest, None, "course.yaml not found: a course folder starts with one")
    data = _yaml(_read_text(manifest), manifest)
    if not isinstance(data, dict):
        raise CourseFormatError(manifest, 1, "course.yaml must be a mapping with slug, title and concepts")
    settings = _settings(data.get("settings"), manifest, _line(data.get("settings") or data))
    course = CourseSpec(
        slug=str(_require(data, "slug", str, manifest)),
        title=str(_require(data, "title", str, manifest)),
        description=str(data.get("description", "")),
        settings=settings,
        attribution=str(data.get("attribution", "")),
    )
    entries = _require(data, "concepts", list, manifest)
    seen: dict[str, int | None] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise CourseFormatError(manifest, None, f"each concept must be a mapping, got {entry!r}")
        slug = str(_require(entry, "slug", str, manifest))
        if slug in seen:
            raise CourseFormatError(manifest, _line(entry), f"concept {slug!r} is listed twice (first at line {seen[slug]})")
        seen[slug] = _line(entry)
        concept = ConceptSpec(
            slug=slug,
            title=str(_require(entry, "title", str, manifest)),
            prerequisites=_str_list(entry, "prerequisites", manifest, 0),
            prerequisites_inferred=bool(entry.get("prerequisites_inferred", False)),
        )
        file = root / str(entry.get("file", f"concepts/{slug}.md"))
        _load_concept_file(concept, file)
        course.concepts.append(concept)
    for entry, concept in zip(entries, course.concepts, strict=True):
        for prereq in concept.prerequisites:
            if prereq not in seen:
                raise CourseFormatError(manifest, _line(entry), f"concept {concept.slug!r} has unknown prerequisite {prereq!r}")
    cycle = find_cycle({c.slug: c.prerequisites for c in course.concepts})
    if cycle:
        raise CourseFormatError(manifest, None, "prerequisite cycle: " + " -> ".join(cycle))
    _check_unique_item_ids(course, root)
    return course


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _settings(raw: Any, path: Path, line: int | None) -> CourseSettings:
    try:
        return CourseSettings.parse(raw)
    except ParamsError as exc:
        key = exc.key.rsplit(".", 1)[-1]
        at = _key_line(_read_text(path), key, line) if key != "settings" else line
        raise CourseFormatError(path, at, str(exc)) from None


def _key_line(text: str, key: str, default: int | None, first: int = 1) -> int | None:
    """The line of `key:` in a YAML text (a loaded mapping only knows the line where it starts)."""
    return next((n for n, line in enumerate(text.splitlines(), start=first) if line.strip().startswith(f"{key}:")),
                default)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise CourseFormatError(path, line, f"not valid UTF-8 text (byte {exc.start})") from None


def _check_unique_item_ids(course: CourseSpec, root: Path) -> None:
    owner: dict[str, str] = {}
    for concept in course.concepts:
        for item in concept.items:
            if item.id in owner:
                raise CourseFormatError(root / f"concepts/{concept.slug}.md", None,
                                        f"item id {item.id!r} is already used by concept {owner[item.id]!r}")
            owner[item.id] = concept.slug


def _split_front_matter(text: str, path: Path) -> tuple[str, str, int]:
    """Return (front matter YAML, body, line number where the body starts)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise CourseFormatError(path, 1, "a concept file must start with '---' and YAML front matter")
    for i, line in enumerate(lines[1:], start=1):
        if line.rstrip() == "---":  # at column 0 only: an indented "---" belongs to a YAML string
            return "".join(lines[1:i]), "".join(lines[i + 1:]), i + 2
    raise CourseFormatError(path, 1, "front matter is not closed by a second '---' line")


def _load_concept_file(concept: ConceptSpec, path: Path) -> None:
    if not path.is_file():
        raise CourseFormatError(path, None, f"file for concept {concept.slug!r} not found")
    front_text, body, body_line = _split_front_matter(_read_text(path), path)
    front = _yaml(front_text, path, line_offset=1) or {}
    if not isinstance(front, dict):
        raise CourseFormatError(path, 2, "front matter must be a YAML mapping")
    concept.guess_choices = _str_list(front, "guess_choices", path, 1)
    concept.guess_answer = _guess_answer(front, concept.guess_choices, front_text, path)
    concept.extra = dict(front.get("extra") or {})
    concept.params = _concept_params(front, concept.extra, front_text, path)
    for name in TEACH_BACK_LISTS:
        setattr(concept, name, _str_list(front, name, path, 1))
    try:
        concept.misconceptions, concept.misconception_ideas = misconception_links(concept.misconceptions,
                                                                                  concept.key_ideas)
    except MisconceptionLinkError as exc:
        raise CourseFormatError(path, _key_line(front_text, "misconceptions", _line(front, 1), first=2),
                                f"misconceptions: {exc}") from None
    problem = teach_back_problem(concept.key_ideas, concept.misconceptions, concept.probes)
    if problem:
        raise CourseFormatError(path, _key_line(front_text, problem[0], _line(front, 1), first=2), problem[1])
    raw_items = front.get("items") or []
    if not isinstance(raw_items, list):
        raise CourseFormatError(path, _line(front, 1), "'items' must be a list")
    concept.items = [_parse_item(raw, path) for raw in raw_items]
    _parse_sections(concept, body, body_line, path)


def _concept_params(front: dict, extra: dict[str, Any], front_text: str, path: Path) -> ConceptParams:
    """The concept's `bkt:` (an older export kept it under `extra.bkt`: read there too, and move it out)."""
    raw = front.get("bkt") if front.get("bkt") is not None else extra.pop("bkt", None)
    try:
        return ConceptParams.parse(raw)
    except ParamsError as exc:
        key = exc.key.rsplit(".", 1)[-1]
        raise CourseFormatError(path, _key_line(front_text, key, _line(front, 1), first=2), str(exc)) from None


def _guess_answer(front: dict, choices: list[str], front_text: str, path: Path) -> str:
    if front.get("guess_answer") is None:
        return ""
    answer = str(front["guess_answer"])
    if answer not in choices:
        line = _key_line(front_text, "guess_answer", _line(front, 1), first=2)
        listed = ", ".join(repr(c) for c in choices) if choices else "none: the guess is free text"
        raise CourseFormatError(path, line, f"guess_answer {answer!r} is not one of the guess_choices ({listed})")
    return answer


def _parse_sections(concept: ConceptSpec, body: str, first_line: int, path: Path) -> None:
    current: str | None = None
    buffers: dict[str, list[str]] = {}
    for number, line in enumerate(body.splitlines(), start=first_line):
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            if heading not in SECTIONS:
                raise CourseFormatError(path, number, f"unknown section {line[3:].strip()!r}; expected one of: "
                                        + ", ".join(h.capitalize() for h in SECTIONS))
            current = SECTIONS[heading]
            if current in buffers:
                raise CourseFormatError(path, number, f"section {line[3:].strip()!r} appears twice")
            buffers[current] = []
        elif current is not None:
            buffers[current].append(line)
        elif line.strip():
            raise CourseFormatError(path, number, "text before the first '## ' section heading")
    for name, lines in buffers.items():
        setattr(concept, name, "\n".join(lines).strip())


def _parse_item(raw: Any, path: Path) -> ItemSpec:
    off = 1  # front matter starts on line 2 of the file
    if not isinstance(raw, dict):
        raise CourseFormatError(path, None, f"each item must be a mapping, got {raw!r}")
    kind = str(_require(raw, "kind", str, path, off))
    if kind not in ITEM_KINDS:
        raise CourseFormatError(path, _line(raw, off), f"unknown item kind {kind!r}; valid: {', '.join(ITEM_KINDS)}")
    item = ItemSpec(
        id=str(_require(raw, "id", (str, int), path, off)),
        kind=kind,
        prompt=str(_require(raw, "prompt", str, path, off)),
        answer=raw.get("answer"),
        choices=_str_list(raw, "choices", path, off),
        tolerance=float(raw["tolerance"]) if raw.get("tolerance") is not None else None,
        units=raw.get("units"),
        variables=_str_list(raw, "variables", path, off),
        accept=_str_list(raw, "accept", path, off),
        params=dict(raw.get("params") or {}),
        hints=_str_list(raw, "hints", path, off),
        feedback={str(k): str(v) for k, v in (raw.get("feedback") or {}).items()},
        difficulty=float(raw["difficulty"]) if raw.get("difficulty") is not None else None,
        solution=str(raw.get("solution", "")),
        attribution=str(raw.get("attribution", "")),
        extra=dict(raw.get("extra") or {}),
    )
    line = _line(raw, off)
    if item.answer is None:
        raise CourseFormatError(path, line, f"item {item.id!r} has no answer")
    if kind == "numeric":
        try:
            finite = math.isfinite(float(item.answer))
        except (TypeError, ValueError):
            raise CourseFormatError(path, line, f"numeric item {item.id!r} has a non-numeric answer {item.answer!r}") from None
        if not finite:  # 1e999 reads as infinity, within any tolerance of every answer
            raise CourseFormatError(path, line, f"numeric item {item.id!r}: the answer {str(item.answer)[:40]!r} "
                                                "is too large to check")
    if kind == "multiple_choice":
        if len(item.choices) < 2:
            raise CourseFormatError(path, line, f"multiple-choice item {item.id!r} needs at least two choices")
        if len(set(item.choices)) != len(item.choices):
            raise CourseFormatError(path, line, f"multiple-choice item {item.id!r} has duplicate choices")
        if str(item.answer) not in item.choices:
            raise CourseFormatError(path, line, f"the answer of item {item.id!r} is not one of its choices")
    if kind in ("symbolic", "template"):
        from courses.checking import parse_expression, parse_key

        try:
            if kind == "symbolic":
                parse_key(str(item.answer), item.variables)  # an expression, or an equation compared as one
            else:
                parse_expression(str(item.answer), item.variables + list(item.params))
        except ValueError as exc:
            raise CourseFormatError(path, line, f"item {item.id!r}: answer is not a valid expression: {exc}") from None
    return item


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A prerequisite cycle as [a, b, ..., a], or None. `graph` maps a concept to its prerequisites."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in graph.get(node, []):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in graph:
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


# --- writing ----------------------------------------------------------------------------------------


def _item_dict(item: ItemSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.id, "kind": item.kind, "prompt": item.prompt, "answer": item.answer}
    optional = {
        "choices": item.choices, "tolerance": item.tolerance, "units": item.units, "variables": item.variables,
        "accept": item.accept, "params": item.params, "hints": item.hints, "feedback": item.feedback,
        "difficulty": item.difficulty, "solution": item.solution, "attribution": item.attribution, "extra": item.extra,
    }
    out.update({k: v for k, v in optional.items() if v not in (None, "", [], {})})
    return out


def dump_course(course: CourseSpec, path: str | Path) -> None:
    root = Path(path)
    (root / "concepts").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"slug": course.slug, "title": course.title}
    if course.description:
        manifest["description"] = course.description
    if course.attribution:
        manifest["attribution"] = course.attribution
    manifest["settings"] = course.settings.to_dict()
    manifest["concepts"] = []
    for c in course.concepts:
        entry: dict[str, Any] = {"slug": c.slug, "title": c.title, "prerequisites": c.prerequisites}
        if c.prerequisites_inferred:
            entry["prerequisites_inferred"] = True
        manifest["concepts"].append(entry)
        front: dict[str, Any] = {}
        if c.guess_choices:
            front["guess_choices"] = c.guess_choices
        if c.guess_answer:
            front["guess_answer"] = c.guess_answer
        if c.params.to_dict():
            front["bkt"] = c.params.to_dict()
        for name in TEACH_BACK_LISTS:
            if getattr(c, name):
                front[name] = getattr(c, name)
        if c.misconceptions:
            front["misconceptions"] = misconception_entries(c.misconceptions, c.misconception_ideas, c.key_ideas)
        if c.extra:
            front["extra"] = c.extra
        front["items"] = [_item_dict(i) for i in c.items]
        sections = [f"## {heading.capitalize()}\n\n{getattr(c, name)}\n"
                    for heading, name in SECTIONS.items() if getattr(c, name)]
        text = "---\n" + yaml.dump(front, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100) + "---\n\n" + "\n".join(sections)
        (root / "concepts" / f"{c.slug}.md").write_text(text, encoding="utf-8")
    (root / "course.yaml").write_text(yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100),
                                      encoding="utf-8")
