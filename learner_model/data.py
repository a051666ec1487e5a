"""Student answer logs for knowledge tracing: one in-memory form, readers and writers for the published formats.

Every reader returns an `Interactions`: flat numpy arrays, one row per answer, rows of one student contiguous and in
time order. Ids are kept as the file gives them (non-negative integers) so that a train file and a test file of the
same dataset agree; models map them to table rows with `IdMap`, which sends unseen ids to one spare row.

Formats (see /work/shared/data/kt/SOURCE.md):
- ``three_line`` (DKT, DKVMN): per student ``n`` / skill ids / 0-1 correct. A trailing comma is tolerated (DKT's files).
- ``four_line`` (AKT ``*_pid``): ``seq_idx,user_id`` / problem ids / skill ids / 0-1 correct.
- ``pykt`` csv: header ``fold,uid,concepts,responses[,...]``, one row per student, comma lists quoted.
- ``gervet`` tsv: header ``user_id item_id timestamp correct skill_id``, one row per answer.

Malformed input raises `KTFormatError` naming the file and the 1-based line. This module knows nothing of models.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

FORMATS = ("three_line", "four_line", "pykt", "gervet")


class KTFormatError(ValueError):
    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class Interactions:
    """One row per answer. Rows of a student are contiguous and time-ordered."""

    student: np.ndarray  # (N,) int64 student id (file's user id, or sequence number where the file has none)
    skill: np.ndarray  # (N,) int64 skill / concept id
    item: np.ndarray  # (N,) int64 problem id, -1 where the format has none
    correct: np.ndarray  # (N,) int8 0/1
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # (N,) int8 pyKT fold, -1 if none
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.correct)
        if len(self.fold) == 0 and n:
            object.__setattr__(self, "fold", np.full(n, -1, np.int8))
        for name in ("student", "skill", "item", "fold"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Interactions.{name} has {len(getattr(self, name))} rows, correct has {n}")

    def __len__(self) -> int:
        return len(self.correct)

    @property
    def has_items(self) -> bool:
        return bool(len(self.item)) and bool((self.item >= 0).all())

    def sequence_starts(self) -> np.ndarray:
        """(S+1,) row offsets of each student's block, last entry N."""
        n = len(self)
        if n == 0:
            return np.zeros(1, np.int64)
        change = np.flatnonzero(self.student[1:] != self.student[:-1]) + 1
        return np.concatenate([[0], change, [n]]).astype(np.int64)

    def position(self) -> np.ndarray:
        """(N,) 0-based index of each row within its student's sequence."""
        starts = self.sequence_starts()
        lengths = np.diff(starts)
        return np.asarray(np.arange(len(self)) - np.repeat(starts[:-1], lengths), np.int64)

    def take(self, rows: np.ndarray) -> Interactions:
        return Interactions(self.student[rows], self.skill[rows], self.item[rows], self.correct[rows],
                            self.fold[rows], self.source)

    def select_students(self, mask_by_row: np.ndarray) -> Interactions:
        return self.take(np.flatnonzero(mask_by_row))

    @property
    def n_students(self) -> int:
        return len(self.sequence_starts()) - 1


def concat(parts: list[Interactions]) -> Interactions:
    """Stack logs; a student appearing in two parts stays two sequences only if ids differ."""
    return Interactions(
        np.concatenate([p.student for p in parts]), np.concatenate([p.skill for p in parts]),
        np.concatenate([p.item for p in parts]), np.concatenate([p.correct for p in parts]),
        np.concatenate([p.fold for p in parts]), "+".join(p.source for p in parts),
    )


# --- windows (pyKT / AKT protocol) -------------------------------------------------------------------


@dataclass(frozen=True)
class Windowed:
    data: Interactions  # student ids replaced by window ids 0..W-1
    scored: np.ndarray  # (N,) bool: rows that count in the metrics


def windows(log: Interactions, *, length: int = 200, min_length: int = 3, score_first: bool = False) -> Windowed:
    """Cut every sequence into non-overlapping windows of `length`; each window becomes its own sequence.

    pyKT: windows shorter than `min_length` are dropped and the first answer of each window is not scored.
    """
    pos = log.position()
    starts = log.sequence_starts()
    seq_index = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    window_in_seq = pos // length
    # a window id unique across the log, increasing along rows
    key = seq_index.astype(np.int64) * (int(window_in_seq.max(initial=0)) + 1) + window_in_seq
    change = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
    window_id = np.cumsum(change) - 1
    sizes = np.bincount(window_id) if len(window_id) else np.zeros(0, np.int64)
    keep = sizes[window_id] >= min_length if len(window_id) else np.zeros(0, bool)
    rows = np.flatnonzero(keep)
    first = change[rows]
    kept_ids = np.unique(window_id[rows], return_inverse=True)[1].astype(np.int64)
    data = Interactions(kept_ids, log.skill[rows], log.item[rows], log.correct[rows], log.fold[rows], log.source)
    scored = np.ones(len(rows), bool) if score_first else ~first
    return Windowed(data, scored)


# --- id maps --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdMap:
    """Maps raw ids to rows 0..n-1 of a table; ids not seen when fitting go to row n (the spare row)."""

    known: np.ndarray  # (n,) sorted unique raw ids

    @classmethod
    def fit(cls, ids: np.ndarray) -> IdMap:
        return cls(np.unique(ids[ids >= 0]))

    @property
    def size(self) -> int:
        return len(self.known) + 1

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        pos = np.searchsorted(self.known, ids)
        pos_clipped = np.minimum(pos, max(len(self.known) - 1, 0))
        hit = (pos < len(self.known)) & (self.known[pos_clipped] == ids) if len(self.known) else np.zeros(ids.shape, bool)
        return np.where(hit, pos, len(self.known)).astype(np.int64)

    def to_list(self) -> list[int]:
        return [int(x) for x in self.known]

    @classmethod
    def from_list(cls, ids: list[int]) -> IdMap:
        return cls(np.asarray(ids, np.int64))


# --- readers ----------------------------------------------------------------------------------------------


def _int_list(text: str, path: Path, line: int, what: str) -> list[int]:
    text = text.strip()
    if text.endswith(","):
        text = text[:-1]
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise KTFormatError(path, line, f"{what}: expected comma-separated integers, got {text[:60]!r}") from None


def _check_correct(values: list[int], path: Path, line: int) -> None:
    bad = [v for v in values if v not in (0, 1)]
    if bad:
        raise KTFormatError(path, line, f"responses must be 0 or 1, got {bad[0]}")


def _check_ids(values: list[int], path: Path, line: int, what: str) -> None:
    if any(v < 0 for v in values):
        raise KTFormatError(path, line, f"{what} must be non-negative")


class _Builder:
    def __init__(self) -> None:
        self.student: list[np.ndarray] = []
        self.skill: list[np.ndarray] = []
        self.item: list[np.ndarray] = []
        self.correct: list[np.ndarray] = []
        self.fold: list[np.ndarray] = []

    def add(self, student: int, skills: list[int], items: list[int] | None, correct: list[int], fold: int = -1) -> None:
        n = len(correct)
        self.student.append(np.full(n, student, np.int64))
        self.skill.append(np.asarray(skills, np.int64))
        self.item.append(np.asarray(items, np.int64) if items is not None else np.full(n, -1, np.int64))
        self.correct.append(np.asarray(correct, np.int8))
        self.fold.append(np.full(n, fold, np.int8))

    def build(self, source: str) -> Interactions:
        if not self.correct:
            e = np.zeros(0, np.int64)
            return Interactions(e, e, e, np.zeros(0, np.int8), np.zeros(0, np.int8), source)
        return Interactions(np.concatenate(self.student), np.concatenate(self.skill), np.concatenate(self.item),
                            np.concatenate(self.correct), np.concatenate(self.fold), source)


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\r\n") for ln in f]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_three_line(path: str | Path) -> Interactions:
    """DKT / DKVMN: ``n`` / skill ids / responses per student. Students are numbered in file order."""
    path = Path(path)
    lines = _lines(path)
    if len(lines) % 3:
        raise KTFormatError(path, len(lines), f"expected a multiple of 3 lines, got {len(lines)}")
    b = _Builder()
    for k in range(0, len(lines), 3):
        header = _int_list(lines[k], path, k + 1, "header")
        if len(header) not in (1, 2):
            raise KTFormatError(path, k + 1, f"header must be 'n' or 'seq_idx,user_id', got {lines[k][:60]!r}")
        skills = _int_list(lines[k + 1], path, k + 2, "skill ids")
        correct = _int_list(lines[k + 2], path, k + 3, "responses")
        if len(header) == 1 and header[0] != len(skills):
            raise KTFormatError(path, k + 1, f"header says {header[0]} answers, next line has {len(skills)}")
        if len(skills) != len(correct):
            raise KTFormatError(path, k + 3, f"{len(correct)} responses for {len(skills)} skill ids")
        _check_ids(skills, path, k + 2, "skill ids")
        _check_correct(correct, path, k + 3)
        b.add(header[1] if len(header) == 2 else k // 3, skills, None, correct)
    return b.build(str(path))


def read_four_line(path: str | Path) -> Interactions:
    """AKT ``*_pid``: ``seq_idx,user_id`` / problem ids / skill ids / responses per student."""
    path = Path(path)
    lines = _lines(path)
    if len(lines) % 4:
        raise KTFormatError(path, len(lines), f"expected a multiple of 4 lines, got {len(lines)}")
    b = _Builder()
    for k in range(0, len(lines), 4):
        header = _int_list(lines[k], path, k + 1, "header")
        if len(header) != 2:
            raise KTFormatError(path, k + 1, f"header must be 'seq_idx,user_id', got {lines[k][:60]!r}")
        items = _int_list(lines[k + 1], path, k + 2, "problem ids")
        skills = _int_list(lines[k + 2], path, k + 3, "skill ids")
        correct = _int_list(lines[k + 3], path, k + 4, "responses")
        if not (len(items) == len(skills) == len(correct)):
            raise KTFormatError(path, k + 4, f"lengths differ: {len(items)} problems, {len(skills)} skills, "
                                             f"{len(correct)} responses")
        _check_ids(items, path, k + 2, "problem ids")
        _check_ids(skills, path, k + 3, "skill ids")
        _check_correct(correct, path, k + 4)
        b.add(header[1], skills, items, correct)
    return b.build(str(path))


def read_pykt(path: str | Path) -> Interactions:
    """pyKT csv (``fold,uid,concepts,responses``, optional extra columns). Skill lists with '_' (multi-concept
    questions) are rejected: the AS2015 files have one concept per answer."""
    path = Path(path)
    b = _Builder()
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not {"fold", "uid", "concepts", "responses"} <= set(header):
            raise KTFormatError(path, 1, f"pyKT header must name fold,uid,concepts,responses, got {header}")
        col = {name: header.index(name) for name in header}
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                raise KTFormatError(path, line, f"{len(row)} columns, header has {len(header)}")
            try:
                fold, uid = int(row[col["fold"]]), int(row[col["uid"]])
            except ValueError:
                raise KTFormatError(path, line, "fold and uid must be integers") from None
            skills = _int_list(row[col["concepts"]], path, line, "concepts")
            correct = _int_list(row[col["responses"]], path, line, "responses")
            if len(skills) != len(correct):
                raise KTFormatError(path, line, f"{len(correct)} responses for {len(skills)} concepts")
            # pyKT pads with -1; padding is never an answer
            keep = [i for i, r in enumerate(correct) if r != -1]
            skills, correct = [skills[i] for i in keep], [correct[i] for i in keep]
            _check_ids(skills, path, line, "concepts")
            _check_correct(correct, path, line)
            if "questions" in col and row[col["questions"]] not in ("", "NA"):
                items = _int_list(row[col["questions"]], path, line, "questions")
                items = [items[i] for i in keep]
            else:
                items = None
            b.add(uid, skills, items, correct, fold)
    return b.build(str(path))


def read_gervet(path: str | Path) -> Interactions:
    """Gervet et al. tab-separated log. Rows are grouped by user in file order (stable), time order kept."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        need = ["user_id", "item_id", "correct", "skill_id"]
        if not set(need) <= set(header):
            raise KTFormatError(path, 1, f"header must contain {need}, got {header}")
        col = [header.index(n) for n in need]
        rows = []
        for line_no, line in enumerate(f, start=2):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 1 and not parts[0]:
                continue
            if len(parts) != len(header):
                raise KTFormatError(path, line_no, f"{len(parts)} fields, header has {len(header)}")
            try:
                values = [int(parts[c]) for c in col]
            except ValueError:
                raise KTFormatError(path, line_no, "user_id, item_id, correct, skill_id must be integers") from None
            if values[2] not in (0, 1):
                raise KTFormatError(path, line_no, f"correct must be 0 or 1, got {values[2]}")
            if min(values) < 0:
                raise KTFormatError(path, line_no, "ids must be non-negative")
            rows.append(values)
    arr = np.asarray(rows, np.int64).reshape(-1, 4)
    order = np.argsort(arr[:, 0], kind="stable")
    arr = arr[order]
    return Interactions(arr[:, 0], arr[:, 3], arr[:, 1], arr[:, 2].astype(np.int8), source=str(path))


READERS = {"three_line": read_three_line, "four_line": read_four_line, "pykt": read_pykt, "gervet": read_gervet}


def detect_format(path: str | Path) -> str:
    """Guess the format from the first lines; raises KTFormatError when none fits."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        head = [f.readline().rstrip("\r\n") for _ in range(5)]
    first = head[0]
    if first.startswith("fold,") or ",uid," in first:
        return "pykt"
    if "\t" in first and "user_id" in first:
        return "gervet"
    fields = [x for x in first.split(",") if x.strip()]
    if len(fields) == 2:
        return "four_line" if len(head) >= 5 and head[4].count(",") == 1 and _is_ints(head[4]) else "three_line"
    if len(fields) == 1 and _is_ints(first):
        return "three_line"
    raise KTFormatError(path, 1, f"cannot tell the format from {first[:60]!r}; pass one of {FORMATS}")


def _is_ints(text: str) -> bool:
    return all(x.strip().lstrip("-").isdigit() for x in text.split(",") if x.strip())


def read(path: str | Path, fmt: str | None = None) -> Interactions:
    """Read any supported file; `fmt` is one of FORMATS or None to detect it."""
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return READERS[fmt](path)


# --- writers (round trips and exports of the tutor's own log) -----------------------------------------


def _sequences(log: Interactions) -> Iterator[tuple[int, slice]]:
    starts = log.sequence_starts()
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        yield int(log.student[a]), slice(int(a), int(b))


def _join(values: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in values)


def write(log: Interactions, path: str | Path, fmt: str) -> None:
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if fmt == "three_line":
            for _, s in _sequences(log):
                f.write(f"{s.stop - s.start}\n{_join(log.skill[s])}\n{_join(log.correct[s])}\n")
        elif fmt == "four_line":
            for k, (uid, s) in enumerate(_sequences(log)):
                f.write(f"{k},{uid}\n{_join(log.item[s])}\n{_join(log.skill[s])}\n{_join(log.correct[s])}\n")
        elif fmt == "pykt":
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["fold", "uid", "concepts", "responses"])
            for uid, s in _sequences(log):
                w.writerow([int(log.fold[s.start]), uid, _join(log.skill[s]), _join(log.correct[s])])
        elif fmt == "gervet":
            f.write("user_id\titem_id\ttimestamp\tcorrect\tskill_id\n")
            for i in range(len(log)):
                f.write(f"{log.student[i]}\t{log.item[i]}\t0\t{log.correct[i]}\t{log.skill[i]}\n")
        else:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


# --- the shared datasets ------------------------------------------------------------------------------------


def shared_data_dir() -> Path:
    """$TUTOR_SHARED_DATA, else <repo root>/../shared/data."""
    env = os.environ.get("TUTOR_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Protocol:
    """How a dataset's published figures were scored."""

    window: int = 200  # sequences are cut into windows of this many answers, each its own sequence
    min_length: int = 3  # shorter windows are dropped
    score_first: bool = False  # whether the first answer of a window counts


PYKT = Protocol(window=200, min_length=3, score_first=False)
# AKT's loader cuts sequences into chunks of 200 and scores every answer, the first included
AKT = Protocol(window=200, min_length=1, score_first=True)


@dataclass(frozen=True)
class Fold:
    train: Interactions
    test: Interactions
    valid: Interactions | None = None  # for early stopping; never the test students


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    protocol: Protocol
    n_folds: int


DATASETS = {
    "assist2009": DatasetSpec("assist2009", "ASSISTments 2009, AKT's pid split (problem ids), 5 folds", AKT, 5),
    "assist2015": DatasetSpec("assist2015", "ASSISTments 2015, pyKT train_valid.csv, 5-fold CV", PYKT, 5),
    "assist2009-dkvmn": DatasetSpec("assist2009-dkvmn", "ASSISTments 2009, DKVMN 70/30 split", AKT, 1),
    "assist2009-gervet": DatasetSpec("assist2009-gervet", "ASSISTments 2009, Gervet et al. 80/20", AKT, 1),
    "assist2009-piech": DatasetSpec("assist2009-piech", "ASSISTments 2009, DKT paper split (dup rows)", AKT, 1),
    "statics2011": DatasetSpec("statics2011", "Statics 2011, DKVMN split (question ids)", AKT, 1),
}


def _unknown_dataset(name: str) -> ValueError:
    return ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (or a file path)")


def _kt_dir() -> Path:
    d = shared_data_dir() / "kt"
    if not d.is_dir():
        raise FileNotFoundError(f"no KT data at {d}; set TUTOR_SHARED_DATA")
    return d


def load_folds(name: str, *, folds: list[int] | None = None) -> Iterator[Fold]:
    """Yield the published train/test splits of a named dataset (fold numbers are 0-based)."""
    if name not in DATASETS:
        raise _unknown_dataset(name)
    kt = _kt_dir()
    wanted = folds if folds is not None else list(range(DATASETS[name].n_folds))
    for k in wanted:
        if name == "assist2009":
            d = kt / "assist2009" / "akt_pid"
            # AKT validates on test{k%5+1}, which is disjoint from train{k} and test{k}
            yield Fold(read_four_line(d / f"assist2009_pid_train{k + 1}.csv"),
                       read_four_line(d / f"assist2009_pid_test{k + 1}.csv"),
                       read_four_line(d / f"assist2009_pid_test{(k + 1) % 5 + 1}.csv"))
        elif name == "assist2015":
            log = read_pykt(kt / "assist2015" / "pykt" / "train_valid.csv")
            valid_fold = (k + 1) % 5
            # test fold k, early-stopping fold k+1, train on the other three (models that do not early-stop
            # train on train + valid: see learner_model.evaluate)
            yield Fold(log.select_students((log.fold != k) & (log.fold != valid_fold)),
                       log.select_students(log.fold == k), log.select_students(log.fold == valid_fold))
        else:
            train, test = _single_split_files(kt, name)
            yield Fold(read(train), read(test))


def _single_split_files(kt: Path, name: str) -> tuple[Path, Path]:
    return {
        "assist2009-dkvmn": (kt / "assist2009/dkvmn/assist2009_updated_train.csv",
                             kt / "assist2009/dkvmn/assist2009_updated_test.csv"),
        "assist2009-gervet": (kt / "assist2009/gervet/preprocessed_data_train.csv",
                              kt / "assist2009/gervet/preprocessed_data_test.csv"),
        "assist2009-piech": (kt / "assist2009/dkt_piech/builder_train.csv",
                             kt / "assist2009/dkt_piech/builder_test.csv"),
        "statics2011": (kt / "statics2011/dkvmn/STATICS_train.csv", kt / "statics2011/dkvmn/STATICS_test.csv"),
    }[name]


def load_dataset(name_or_path: str | Path) -> Interactions:
    """All answers of a named dataset (every student once), or of one file in any supported format."""
    if str(name_or_path) in DATASETS:
        name = str(name_or_path)
        kt = _kt_dir()
        if name == "assist2009":
            d = kt / "assist2009" / "akt_pid"
            parts = [read_four_line(d / f"assist2009_pid_test{k}.csv") for k in range(1, 6)]
            extra = read_four_line(d / "assist2009_pid_train1.csv")
            seen = np.unique(np.concatenate([p.student for p in parts]))
            parts.append(extra.select_students(~np.isin(extra.student, seen)))  # user 79542, in every train file
            return replace(concat(parts), source=name)
        if name == "assist2015":
            return replace(read_pykt(kt / "assist2015" / "pykt" / "train_valid.csv"), source=name)
        train, test = _single_split_files(kt, name)
        a, b = read(train), read(test)
        # 3-line files number students from 0 in each file: shift the test file's numbers past the train file's
        if not a.has_items:
            b = replace(b, student=b.student + int(a.student.max(initial=-1)) + 1)
        return replace(concat([a, b]), source=name)
    path = Path(name_or_path)
    if not path.exists():
        raise _unknown_dataset(str(name_or_path))
    return read(path)


def manifest_summary(log: Interactions) -> dict[str, float]:
    """Counts for a dataset card: students, answers, skills, items, share correct."""
    return {
        "students": log.n_students, "answers": len(log), "skills": len(np.unique(log.skill)),
        "items": len(np.unique(log.item[log.item >= 0])), "correct": float(log.correct.mean()) if len(log) else 0.0,
    }


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        print(arg, json.dumps(manifest_summary(load_dataset(arg))))
