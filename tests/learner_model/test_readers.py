"""Readers of the published KT formats: round trips, malformed lines named by file and line, the window protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learner_model.data import (
    DATASETS,
    FORMATS,
    Interactions,
    KTFormatError,
    detect_format,
    load_dataset,
    read,
    shared_data_dir,
    windows,
    write,
)


def small_log(with_items: bool = True) -> Interactions:
    rng = np.random.default_rng(0)
    students = np.repeat([11, 12, 15], [5, 1, 7])
    n = len(students)
    return Interactions(
        student=students,
        skill=rng.integers(0, 6, n),
        item=rng.integers(0, 40, n) if with_items else np.full(n, -1),
        correct=rng.integers(0, 2, n).astype(np.int8),
        fold=np.repeat(np.array([0, 1, 2], np.int8), [5, 1, 7]),
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_through_a_file(tmp_path: Path, fmt: str) -> None:
    log = small_log(with_items=fmt in ("four_line", "gervet"))
    path = tmp_path / f"log.{fmt}"
    write(log, path, fmt)
    assert detect_format(path) == fmt
    back = read(path)
    np.testing.assert_array_equal(back.skill, log.skill)
    np.testing.assert_array_equal(back.correct, log.correct)
    np.testing.assert_array_equal(back.sequence_starts(), log.sequence_starts())
    if fmt in ("four_line", "gervet", "pykt"):
        np.testing.assert_array_equal(back.student, log.student)
    if fmt in ("four_line", "gervet"):
        np.testing.assert_array_equal(back.item, log.item)
    if fmt == "pykt":
        np.testing.assert_array_equal(back.fold, log.fold)


MALFORMED = {
    "three_line": ("3\n1,2,3\n1,0,1\n2\n4,5\n1,7\n", 6, "responses must be 0 or 1"),
    "four_line": ("0,7\n10,11\n1,2\n1,0\n1,8\n10,x\n1,2\n1,1\n", 6, "problem ids"),
    "pykt": ("fold,uid,concepts,responses\n0,1,\"1,2\",\"1,0\"\n0,2,\"1,2,3\",\"1,0\"\n", 3, "2 responses for 3"),
    "gervet": ("user_id\titem_id\ttimestamp\tcorrect\tskill_id\n0\t1\t0\t1\t3\n0\t2\t0\t2\t3\n", 3, "correct"),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_malformed_line_is_reported_with_file_and_line(tmp_path: Path, fmt: str) -> None:
    text, line, message = MALFORMED[fmt]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(KTFormatError) as err:
        read(path, fmt)
    assert err.value.line == line
    assert err.value.path == str(path)
    assert message in str(err.value)
    assert f"{path}:{line}:" in str(err.value)


def test_three_line_header_must_match_the_answer_count(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("2\n1,2,3\n1,0,1\n")
    with pytest.raises(KTFormatError, match="header says 2"):
        read(path, "three_line")


def test_trailing_commas_of_the_dkt_files_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "dkt.csv"
    path.write_text("1\n7,\n1,\n2\n3,4,\n0,1,\n")
    log = read(path)
    assert log.skill.tolist() == [7, 3, 4]
    assert log.n_students == 2


def test_pykt_windows_drop_short_ones_and_do_not_score_the_first_answer() -> None:
    n = 405
    log = Interactions(np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, -1), np.ones(n, np.int8))
    w = windows(log, length=200, min_length=3, score_first=False)
    # 405 = 200 + 200 + 5: three windows, each its own sequence, the first answer of each unscored
    assert w.data.n_students == 3
    assert (~w.scored).sum() == 3
    short = windows(log.take(np.arange(202)), length=200, min_length=3)
    assert short.data.n_students == 1  # the 2-answer tail is dropped


def test_unknown_dataset_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="assist2015"):
        load_dataset("assist2099")


@pytest.mark.skipif(not (shared_data_dir() / "kt").is_dir(), reason="shared KT data not present (TUTOR_SHARED_DATA)")
def test_named_datasets_match_their_published_counts() -> None:
    a09 = load_dataset("assist2009")
    assert (a09.n_students, len(a09), len(np.unique(a09.skill))) == (4151, 325637, 110)
    assert len(np.unique(a09.item)) == 16891
    a15 = load_dataset("assist2015")
    assert (a15.n_students, len(a15)) == (15275, 544339)
    assert set(np.unique(a15.fold)) == {0, 1, 2, 3, 4}
    assert "assist2009" in DATASETS
