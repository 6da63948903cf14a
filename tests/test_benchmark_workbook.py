"""The workbook benchmark's file: the benchmark's rows, in a workbook rollbook reads back as the
CSV file they came from."""

from __future__ import annotations

from pathlib import Path

from benchmarks.datagen import population, write
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
