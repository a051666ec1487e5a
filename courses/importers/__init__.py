"""Importers: other course formats in, `CourseSpec` out. Choose one by name; unknown names fail loudly.

    load_any("course.tar.gz")                      -> ImportResult (format detected)
    load_any("quiz.gift", format="gift")           -> ImportResult
    load_any("week3.tex")                          -> ImportResult (a moodle.sty LaTeX quiz file)
    IMPORTERS["oatutor"](path)                     -> ImportResult

`manage.py import_course --format oatutor|gift|latex|folder PATH` wraps `load_any`;
`courses.services.course_import` writes the resulting spec to the database. Importers never touch the database.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from courses.format import load_course
from courses.importers.gift import load_gift
from courses.importers.moodle_latex import load_moodle_latex
from courses.importers.oatutor import load_oatutor
from courses.importers.result import ImportIssue, ImportResult, safe_relative_path, slugify

__all__ = ["IMPORTERS", "ImportIssue", "ImportResult", "detect_format", "load_any", "load_folder"]


def load_folder(path: str | Path) -> ImportResult:
    """A course folder as written by hand or by `dump_course`; files beside the course (figures) come along."""
    root = Path(path)
    spec = load_course(root)
    assets = {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if file.is_file() and rel.parts[0] not in ("concepts", ".git") and rel.name != "course.yaml":
            assets[str(safe_relative_path(rel.as_posix()))] = file.read_bytes()
    return ImportResult(spec, [], assets)


def _named_after_file(load: Callable[..., ImportResult]) -> Callable[..., ImportResult]:
    """A one-file importer whose course slug and title default to the file's name (`week-3.gift` -> "Week 3")."""

    def load_file(path: str | Path, **options: Any) -> ImportResult:
        name = Path(path).stem
        return load(Path(path), course_slug=options.pop("course_slug", slugify(name)),
                    title=options.pop("title", name.replace("_", " ").replace("-", " ").title()), **options)

    return load_file


IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "folder": load_folder,
    "oatutor": load_oatutor,
    "gift": _named_after_file(load_gift),
    "latex": _named_after_file(load_moodle_latex),
}


def detect_format(path: str | Path) -> str:
    """Guess the format from the path: a .gift file, a .tex file with `\\begin{quiz}` (moodle.sty), an OATutor
    source (coursePlans.json), a course folder."""
    p = Path(path)
    if p.suffix.lower() in (".gift", ".txt") and p.is_file():
        return "gift"
    if p.suffix.lower() == ".tex" and p.is_file() and re.search(r"\\begin\s*\{quiz\}", p.read_text(errors="replace")):
        return "latex"
    if p.is_dir():
        if (p / "course.yaml").is_file():
            return "folder"
        if any(p.rglob("coursePlans.json")):
            return "oatutor"
    elif p.is_file() and tarfile.is_tarfile(p):
        with tarfile.open(p) as tar:
            if any(Path(name).name == "coursePlans.json" for name in tar.getnames()):
                return "oatutor"
    raise ValueError(f"cannot tell the format of {path}; give one of: {', '.join(IMPORTERS)}")


def load_any(path: str | Path, format: str | None = None, **options: Any) -> ImportResult:
    """Import `path` with the named importer, or the detected one. Options go to the importer
    (`course_name` for oatutor; `course_slug`, `title` for gift and latex)."""
    name = format or detect_format(path)
    if name not in IMPORTERS:
        raise ValueError(f"unknown course format {name!r}; valid formats: {', '.join(IMPORTERS)}")
    return IMPORTERS[name](path, **options)
