"""Import Moodle GIFT question files (https://docs.moodle.org/en/GIFT_format) as a `CourseSpec`.

    $CATEGORY: $course$/Derivatives/Power rule         categories become concepts
    // a comment
    ::Power rule 1::[markdown] d/dx x^3 = ? {=3x^2 ~x^3#That is the function itself ~3x}

Supported: multiple choice (`=right ~wrong#feedback`, `~%50%partial`), short answer (`{=a =b}`), numeric
(`{#3.14:0.01}`, `{#1..2}`, `{#=3.14:0.01 =%50%3:0.5}`), true/false (`{T}`, `{FALSE#wrong#right}`), general
feedback (`####...`), titles, `[markdown]`/`[html]`/`[plain]`/`[moodle]` tags, escapes `\\: \\# \\= \\~ \\{ \\}`.
Essay, matching and description questions have no checkable answer here: they are reported and skipped.
Malformed input raises `CourseFormatError` naming the file and the line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from courses.format import ConceptSpec, CourseFormatError, CourseSpec, ItemSpec
from courses.importers.result import ImportIssue, ImportResult, slugify

# Escaped characters are swapped for private-use code points while parsing, and swapped back in the output.
_ESCAPES = {"\\:": "\ue000", "\\#": "\ue001", "\\=": "\ue002", "\\~": "\ue003", "\\{": "\ue004", "\\}": "\ue005",
            "\\\\": "\ue006"}
_RESTORE = {v: k[1] for k, v in _ESCAPES.items()}
_FORMATS = ("markdown", "html", "plain", "moodle")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass
class _Block:
    text: str  # escapes already swapped out
    line: int  # first line of the question in the file
    category: str


def load_gift(path_or_text: str | Path, *, course_slug: str, title: str) -> ImportResult:
    """Parse GIFT from a file path or from the text itself; one concept per `$CATEGORY`."""
    path, text = _read(path_or_text)
    report: list[ImportIssue] = []
    concepts: dict[str, ConceptSpec] = {}
    used_ids: set[str] = set()
    for block in _blocks(text, path):
        concept = concepts.get(block.category)
        if concept is None:
            name = block.category.rstrip("/").rsplit("/", 1)[-1] or "General"
            concept = ConceptSpec(slug=slugify(block.category or "general"), title=name,
                                  extra={"gift": {"category": block.category}} if block.category else {})
            concepts[block.category] = concept
        item = _question(block, path, report, len(concept.items) + 1, concept.slug)
        if item is None:
            continue
        if item.id in used_ids:
            base, n = item.id, 2
            while f"{base}-{n}" in used_ids:
                n += 1
            item.id = f"{base}-{n}"
        used_ids.add(item.id)
        concept.items.append(item)
    spec = CourseSpec(slug=course_slug, title=title, concepts=list(concepts.values()))
    return ImportResult(spec, report)


def _read(path_or_text: str | Path) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and "{" not in path_or_text):
        path = Path(path_or_text)
        if not path.is_file():
            raise CourseFormatError(path, None, "GIFT file not found")
        return str(path), path.read_text(encoding="utf-8-sig")
    return "<gift text>", path_or_text


def _blocks(text: str, path: str) -> list[_Block]:
    """Questions (separated by blank lines) with their first line and current category."""
    for escape, mark in _ESCAPES.items():
        text = text.replace(escape, mark)
    text = text.replace("\\n", "\n")
    blocks: list[_Block] = []
    category = ""
    lines: list[str] = []
    start = 0
    depth = 0  # inside an answer block a blank line does not end the question

    def flush() -> None:
        if lines:
            blocks.append(_Block("\n".join(lines).strip(), start, category))
            lines.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        if depth == 0 and stripped.upper().startswith("$CATEGORY:"):
            flush()
            category = re.sub(r"^\$(course|module|system|cat\d+)\$/", "", stripped[len("$CATEGORY:"):].strip())
            continue
        if not stripped and depth == 0:
            flush()
            continue
        if not lines:
            start = number
        lines.append(line)
        depth += line.count("{") - line.count("}")
        if depth < 0:
            raise CourseFormatError(path, number, "'}' without a matching '{' (write \\} for a literal brace)")
    if depth > 0:
        raise CourseFormatError(path, start, "answer block opened with '{' is never closed")
    flush()
    return blocks


def _restore(text: str) -> str:
    for mark, char in _RESTORE.items():
        text = text.replace(mark, char)
    return text.strip()


def _question(block: _Block, path: str, report: list[ImportIssue], index: int, concept: str) -> ItemSpec | None:
    text = block.text
    title = ""
    if text.startswith("::"):
        end = text.find("::", 2)
        if end < 0:
            raise CourseFormatError(path, block.line, "question title opened with '::' is not closed")
        title, text = _restore(text[2:end]), text[end + 2:].lstrip()
    fmt = "moodle"
    match = re.match(r"\[(\w+)\]", text)
    if match:
        if match.group(1).lower() not in _FORMATS:
            raise CourseFormatError(path, block.line, f"unknown text format [{match.group(1)}]; valid: "
                                    + ", ".join(f"[{f}]" for f in _FORMATS))
        fmt, text = match.group(1).lower(), text[match.end():]
    open_at = text.find("{")
    where = f"{path}:{block.line}"
    if open_at < 0:
        report.append(ImportIssue(where, f"question {title or index!r} has no answer block (a description): skipped",
                                  "error", "description"))
        return None
    close_at = text.find("}", open_at)
    if close_at < 0 or "{" in text[open_at + 1:close_at]:
        raise CourseFormatError(path, _line_of(block, text, open_at), "answer block is not closed by '}'")
    if "{" in text[close_at + 1:]:
        raise CourseFormatError(path, _line_of(block, text, close_at + 1), "a question has one answer block only")
    before, body, after = text[:open_at].strip(), text[open_at + 1:close_at].strip(), text[close_at + 1:].strip()
    prompt = _restore(f"{before} _____ {after}" if after else before)
    line = _line_of(block, text, open_at)
    body, _, general = body.partition("####")
    item_id = slugify(title, max_length=80) if title else f"{concept}-q{index}"
    extra: dict[str, Any] = {"format": fmt, "line": line}
    if title:
        extra["title"] = title
    fields = _answers(body.strip(), path, line, title or str(index), report, extra)
    if fields is None:
        return None
    # Moodle shows the general feedback after any answer: the tutor's worked solution is that place.
    return ItemSpec(id=item_id, prompt=prompt or title, **fields, solution=_restore(general) if general.strip() else "",
                    extra={"gift": extra})


def _line_of(block: _Block, text: str, position: int) -> int:
    """File line of `position` in the question text (the title was cut off the front: count from the end)."""
    return block.line + block.text.count("\n") - text[position:].count("\n")


def _answers(body: str, path: str, line: int, name: str, report: list[ImportIssue],
             extra: dict[str, Any]) -> dict[str, Any] | None:
    head = body.split("#", 1)[0].strip().upper()
    if not body:
        report.append(ImportIssue(f"{path}:{line}", f"question {name!r} is an essay: no checkable answer, skipped",
                                  "error", "essay"))
        return None
    if head in ("T", "TRUE", "F", "FALSE"):
        return _true_false(body, head, extra)
    if body.startswith("#"):
        return _numeric(body[1:].strip(), path, line, name, extra)
    if "->" in body:
        report.append(ImportIssue(f"{path}:{line}", f"question {name!r} is a matching question: skipped",
                                  "error", "matching"))
        return None
    return _choices(body, path, line, name, report, extra)


def _true_false(body: str, head: str, extra: dict[str, Any]) -> dict[str, Any]:
    truth = "True" if head.startswith("T") else "False"
    wrong = "False" if truth == "True" else "True"
    parts = body.split("#")
    extra["type"] = "truefalse"
    feedback = {wrong: _restore(parts[1])} if len(parts) > 1 and parts[1].strip() else {}
    if len(parts) > 2 and parts[2].strip():
        extra["feedback_correct"] = _restore(parts[2])
    return {"kind": "multiple_choice", "answer": truth, "choices": ["True", "False"], "feedback": feedback}


def _split_answers(body: str, path: str, line: int, name: str) -> list[dict[str, Any]]:
    """`=a#fb ~%50%b` -> [{"correct": True, "weight": 100, "text": "a", "feedback": "fb"}, ...]."""
    pieces = re.split(r"([=~])", body)
    if pieces[0].strip():
        raise CourseFormatError(path, line, f"question {name!r}: answer text {_restore(pieces[0])!r} must start "
                                "with '=' (right) or '~' (wrong)")
    answers = []
    for op, raw in zip(pieces[1::2], pieces[2::2], strict=True):
        text, _, feedback = raw.partition("#")
        weight = 100.0 if op == "=" else 0.0
        match = re.match(r"\s*%(-?\d+(?:\.\d+)?)%", text)
        if match:
            weight, text = float(match.group(1)), text[match.end():]
        if not _restore(text):
            raise CourseFormatError(path, line, f"question {name!r}: an empty answer after {op!r}")
        answers.append({"correct": weight >= 100, "weight": weight, "text": _restore(text),
                        "feedback": _restore(feedback)})
    return answers


def _choices(body: str, path: str, line: int, name: str, report: list[ImportIssue],
             extra: dict[str, Any]) -> dict[str, Any] | None:
    answers = _split_answers(body, path, line, name)
    right = [a for a in answers if a["correct"]]
    if not right and any(a["weight"] > 0 for a in answers):
        report.append(ImportIssue(f"{path}:{line}", f"question {name!r} gives partial credit for several choices "
                                  "(a multiple-response question): skipped", "error", "multiple-response"))
        return None
    if not right:
        raise CourseFormatError(path, line, f"question {name!r} has no right answer (mark one with '=')")
    extra["answers"] = answers
    if "~" not in body:
        extra["type"] = "shortanswer"
        feedback_right = {a["text"]: a["feedback"] for a in answers if a["feedback"]}
        if feedback_right:
            extra["feedback_correct"] = feedback_right
        return {"kind": "short_text", "answer": right[0]["text"], "accept": [a["text"] for a in right[1:]]}
    extra["type"] = "multichoice"
    choices = [a["text"] for a in answers]
    if len(set(choices)) != len(choices):
        raise CourseFormatError(path, line, f"question {name!r} lists the same choice twice")
    if len(right) > 1:
        report.append(ImportIssue(f"{path}:{line}", f"question {name!r} has {len(right)} right choices: the first "
                                  "is the answer, the others are kept in extra", "warning", "several-right"))
    if right[0]["feedback"]:
        extra["feedback_correct"] = right[0]["feedback"]
    return {"kind": "multiple_choice", "answer": right[0]["text"], "choices": choices,
            "feedback": {a["text"]: a["feedback"] for a in answers if a["feedback"] and not a["correct"]}}


def _numeric(body: str, path: str, line: int, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """`3.14:0.01`, `1..2`, `3.14`, or several `=value` answers with weights and feedback."""
    extra["type"] = "numerical"
    if body.startswith(("=", "~")):
        answers = _split_answers(body, path, line, name)
    else:
        value, _, feedback = body.partition("#")
        answers = [{"correct": True, "weight": 100.0, "text": _restore(value), "feedback": _restore(feedback)}]
    for a in answers:
        a["value"], a["tolerance"] = _number_range(a["text"], path, line, name)
    right = [a for a in answers if a["correct"]]
    if not right:
        raise CourseFormatError(path, line, f"numeric question {name!r} has no right answer (mark one with '=')")
    if len(answers) > 1:
        extra["answers"] = answers
    if right[0]["feedback"]:
        extra["feedback_correct"] = right[0]["feedback"]
    return {"kind": "numeric", "answer": right[0]["value"], "tolerance": right[0]["tolerance"],
            # a partial-credit answer near the right one has no single wrong value to match: it stays in extra
            "feedback": {_format_number(a["value"]): a["feedback"] for a in answers
                         if a["feedback"] and not a["correct"] and a["value"] != right[0]["value"]}}


def _number_range(text: str, path: str, line: int, name: str) -> tuple[float | int, float | None]:
    text = text.strip()
    value: tuple[float | int, float | None] | None = None
    if m := re.fullmatch(rf"({_NUMBER})\s*:\s*({_NUMBER})", text):
        value = _as_number(m.group(1)), abs(float(m.group(2)))
    elif m := re.fullmatch(rf"({_NUMBER})\s*\.\.\s*({_NUMBER})", text):
        low, high = sorted((float(m.group(1)), float(m.group(2))))
        value = _as_number(str((low + high) / 2)), (high - low) / 2
    elif re.fullmatch(_NUMBER, text):
        value = _as_number(text), None
    if value is None:
        raise CourseFormatError(path, line, f"numeric question {name!r}: {text!r} is not a number, "
                                "a number:tolerance or a low..high range")
    if not all(math.isfinite(v) for v in value if v is not None):  # 1e999 is infinite: every answer would match
        raise CourseFormatError(path, line, f"numeric question {name!r}: {text[:40]!r} is too large to check")
    return value


def _as_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _format_number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
