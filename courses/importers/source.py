"""The files of a course source that arrives as a folder or as a .tar.gz of one, read the same way.

An archive is read into memory, never extracted, so member names cannot write anywhere; `keep` chooses which
members are worth reading and the total is capped.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from courses.format import CourseFormatError

_MAX_ARCHIVE_BYTES = 500 * 2**20


class SourceFiles:
    """The files of one source, by path relative to its root: the folder that holds the marker file."""

    def __init__(self, files: dict[str, bytes] | None, root: Path | None, label: str) -> None:
        self._files, self._root, self.label = files, root, label

    @classmethod
    def open(cls, path: Path, marker: str, keep: Callable[[str], bool] = lambda name: True) -> SourceFiles:
        """The folder (or archive folder) holding the file named `marker` is the root."""
        if path.is_dir():
            found = sorted(path.rglob(marker), key=lambda p: len(p.parts))
            if not found:
                raise CourseFormatError(path, None, f"no {marker} in this folder")
            return cls(None, found[0].parent, str(found[0].parent))
        if not tarfile.is_tarfile(path):
            raise CourseFormatError(path, None, "expected a folder or a .tar.gz of one")
        files: dict[str, bytes] = {}
        total = 0
        with tarfile.open(path) as tar:  # read into memory, never extracted: member names cannot escape
            for member in tar.getmembers():
                if not member.isfile() or not keep(member.name):
                    continue
                total += member.size
                if total > _MAX_ARCHIVE_BYTES:
                    raise CourseFormatError(path, None, f"unpacks to more than {_MAX_ARCHIVE_BYTES // 2**20} MiB")
                handle = tar.extractfile(member)
                if handle is not None:
                    files[member.name.removeprefix("./")] = handle.read()
        found_at = sorted((n for n in files if PurePosixPath(n).name == marker), key=len)
        if not found_at:
            raise CourseFormatError(path, None, f"no {marker} in this archive")
        prefix = str(PurePosixPath(found_at[0]).parent)
        prefix = "" if prefix == "." else prefix + "/"
        return cls({n[len(prefix):]: b for n, b in files.items() if n.startswith(prefix)}, None,
                   f"{path}/{prefix}".rstrip("/"))

    def where(self, rel: str) -> str:
        return f"{self.label}/{rel}"

    def exists(self, rel: str) -> bool:
        return rel in self._files if self._files is not None else (self._root / rel).is_file()  # type: ignore[operator]

    def read(self, rel: str) -> bytes:
        try:
            if self._files is not None:
                return self._files[rel]
            return (self._root / rel).read_bytes()  # type: ignore[operator]
        except (KeyError, FileNotFoundError, IsADirectoryError):
            raise CourseFormatError(self.where(rel), None, "file not found") from None

    def json(self, rel: str) -> Any:
        try:
            return json.loads(self.read(rel))
        except json.JSONDecodeError as exc:
            raise CourseFormatError(self.where(rel), exc.lineno, f"invalid JSON: {exc.msg}") from None

    def children(self, rel: str) -> list[str]:
        """Names of the sub-folders of `rel`."""
        if self._files is not None:
            prefix = rel.rstrip("/") + "/"
            return sorted({n[len(prefix):].split("/", 1)[0] for n in self._files
                           if n.startswith(prefix) and "/" in n[len(prefix):]})
        folder = self._root / rel  # type: ignore[operator]
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
