"""What every importer returns: a `CourseSpec`, a report of what it could not use, and files to copy."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from courses.format import CourseSpec, dump_course

SEVERITIES = ("error", "warning")  # error: something was left out; warning: kept, but changed or doubtful


@dataclass(frozen=True)
class ImportIssue:
    path: str  # the source file the issue is about
    message: str
    severity: str = "error"
    category: str = ""  # short tag to count issues by, e.g. "matrix", "short-essay", "missing-figure"


@dataclass
class ImportResult:
    spec: CourseSpec
    report: list[ImportIssue] = field(default_factory=list)
    # course-folder-relative path (e.g. "figures/p1/figure1.gif") -> bytes, written next to the course
    assets: dict[str, bytes] = field(default_factory=dict, repr=False)
    stats: dict[str, int] = field(default_factory=dict)  # what the source held, e.g. {"problems": 1546, "steps": ...}

    def skipped(self) -> list[ImportIssue]:
        return [issue for issue in self.report if issue.severity == "error"]

    def counts_by_category(self, severity: str = "error") -> dict[str, int]:
        return dict(Counter(i.category or "other" for i in self.report if i.severity == severity).most_common())

    def write(self, path: str | Path) -> None:
        """Write the course folder (`dump_course`) and the assets it references."""
        root = Path(path)
        dump_course(self.spec, root)
        for rel, data in self.assets.items():
            target = root / safe_relative_path(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


# What an importer writes where a figure the source names is not in it; an author's uploaded figure takes its place.
MISSING_FIGURE = "*(figure {name} is missing from the source)*"
MISSING_FIGURE_RE = re.compile(r"\*\(figure (\S+) is missing from the source\)\*")


def safe_relative_path(rel: str) -> Path:
    """Refuse absolute paths and `..`: an imported archive must not write outside the course folder."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"unsafe asset path {rel!r}")
    return path


def slugify(text: str, *, max_length: int = 60) -> str:
    """A stable, URL-safe slug. Long names keep a short hash so that two long names never collide."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "concept"
    if len(slug) > max_length:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
        slug = slug[: max_length - 9].rstrip("-") + "-" + digest
    return slug
