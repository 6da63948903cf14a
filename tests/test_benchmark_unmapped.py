"""The unmapped-columns benchmark's wider file: the benchmark's rows as they were, with more
columns after them, the same every time."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmarks.datagen import population, write
from benchmarks.unmapped_columns import wider

ROWS = 300


def test_the_wider_file_is_the_same_rows_with_more_columns_every_time(tmp_path: Path) -> None:
    narrow = write(tmp_path / "students.csv", population(ROWS))
    wide = wider(narrow, 5, tmp_path / "wide.csv")
    again = wider(narrow, 5, tmp_path / "again.csv")
    assert wide.read_bytes() == again.read_bytes()
    with narrow.open(newline="") as a, wide.open(newline="") as b:
        before, after = list(csv.reader(a)), list(csv.reader(b))
    assert len(after) == len(before) == ROWS + 1
    assert after[0] == [*before[0], "Extra 00", "Extra 01", "Extra 02", "Extra 03", "Extra 04"]
    for old, new in zip(before[1:], after[1:], strict=True):
        assert new[: len(old)] == old
        extra = new[len(old) :]
        assert all(cell.isdigit() and 8 <= len(cell) <= 12 for cell in extra)
    assert len({tuple(row[-5:]) for row in after[1:]}) > ROWS * 0.9
