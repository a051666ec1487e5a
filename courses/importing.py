"""An uploaded file (course zip, OATutor tar.gz, GIFT, moodle.sty LaTeX) to an `ImportResult`, with errors a person can act on.

Runs in the Celery worker through `courses.services.import_job_run`; touches no database rows itself.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

from courses.format import CourseFormatError
from courses.importers import ImportResult, load_any
from courses.importers.result import safe_relative_path

UPLOAD_FORMATS = {  # file name ending -> importer name
    ".zip": "folder",
    ".tar.gz": "oatutor",
    ".tgz": "oatutor",
    ".tar": "oatutor",
    ".gift": "gift",
    ".txt": "gift",
    ".tex": "latex",
}
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # a zip bomb stops here


class ImportFailed(ValueError):
    """The upload cannot be imported; the message names the file and line when it can."""


def format_for(filename: str) -> str:
    name = filename.lower()
    for ending, fmt in UPLOAD_FORMATS.items():
        if name.endswith(ending):
            return fmt
    raise ImportFailed(f"{filename}: unknown kind of file; upload one of: {', '.join(UPLOAD_FORMATS)}")


def parse_upload(filename: str, data: bytes, fmt: str) -> ImportResult:
    with tempfile.TemporaryDirectory(prefix="tutor-import-") as tmp:
        root = Path(tmp)
        upload = root / Path(filename).name
        upload.write_bytes(data)
        try:
            if fmt == "folder":
                result = load_any(_unzip_course(upload, root / "course"), "folder")
            else:
                result = load_any(upload, fmt)
        except CourseFormatError as exc:
            where = _relative(exc.path, root)
            raise ImportFailed(f"{where}:{exc.line}: {exc.message}" if exc.line else f"{where}: {exc.message}") from None
        except (ValueError, OSError) as exc:
            raise ImportFailed(f"{filename}: {str(exc).replace(tmp + '/', '')}") from None
    # the importer names files by where they were unpacked: show them as they are inside the upload
    result.report = [replace(issue, path=_relative(issue.path, root)) for issue in result.report]
    return result


def _relative(path: str, root: Path) -> str:
    for base in (root / "course", root):
        prefix = f"{base}/"
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _unzip_course(upload: Path, dest: Path) -> Path:
    """Extract a course zip safely and return the folder holding course.yaml (at the top or one level down)."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        raise ImportFailed(f"{upload.name}: not a zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise ImportFailed(f"{upload.name}: unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB")
        for member in members:
            try:
                target = dest / safe_relative_path(member.filename)
            except ValueError as exc:
                raise ImportFailed(f"{upload.name}: {exc}") from None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    if (dest / "course.yaml").is_file():
        return dest
    found = sorted(dest.glob("*/course.yaml"))
    if len(found) != 1:
        raise ImportFailed(f"{upload.name}: no course.yaml at the top of the zip or in one folder inside it")
    return found[0].parent

