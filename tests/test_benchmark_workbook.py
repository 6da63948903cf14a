"""The workbook benchmark's file: the benchmark's rows, in a workbook rollbook reads back as the
CSV file they came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.datagen import population, write
from benchmarks.side_by_side import compare
from benchmarks.workbook import as_workbook

from rollbook.importing.read import open_file

ROWS = 300


def _cells(path: Path) -> tuple[tuple[str, ...], list[tuple[int, list[str | None]]], int]:
    source = open_file(path)
    rows, blank = [], 0
    for batch in source.batches():
        assert batch.bad_rows == []
        rows += [(n, list(c)) for n, c in zip(batch.rows, batch.cells.iter_rows(), strict=True)]
        blank += batch.blank_rows
    return source.headers, rows, blank


def test_the_workbook_holds_the_csv_files_rows(tmp_path: Path) -> None:
    text = write(tmp_path / "students.csv", population(ROWS))
    book = as_workbook(text, tmp_path / "students.xlsx")
    assert open_file(book).format.kind == "xlsx"
    headers, rows, blank = _cells(book)
    assert (headers, rows, blank) == _cells(text)
    assert len(rows) == ROWS
    assert as_workbook(text, book) == book  # written once


def test_side_by_side_imports_both_files_each_round_and_reports_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = write(tmp_path / "students.csv", population(ROWS))
    book = as_workbook(text, tmp_path / "students.xlsx")
    compare("300 rows", ("csv", text), ("xlsx", book), runs=2)
    out = capsys.readouterr().out.splitlines()
    rounds = [line.split()[:3] for line in out if line.startswith("run ")]
    assert rounds == [
        ["run", "1:", "csv"],
        ["run", "1:", "xlsx"],
        ["run", "2:", "xlsx"],
        ["run", "2:", "csv"],
    ]
    assert out[-1].startswith("  xlsx / csv: ") and out[-1].count(",") == 1
