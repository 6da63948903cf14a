"""What an Excel workbook costs an import against the same rows as CSV, side by side in one run.

    .venv/bin/python benchmarks/workbook.py                      # 100,000 rows, 3 rounds
    .venv/bin/python benchmarks/workbook.py --rows 1000000 --runs 1

Registrars' offices often upload the workbook their student system exported rather than a CSV.
This writes the benchmark's seeded rows (benchmarks/datagen.py, 12 columns, every cell text) as
a CSV file and as an `.xlsx` workbook (openpyxl, one sheet; ~2 minutes for a million rows, done
once), and imports each, fresh, into an empty SQLite account: alternating, ``--runs`` rounds,
each import in a process of its own (wall time, peak RSS). It prints each file's median and
peak, and the workbook's time over the CSV's, round by round.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.import_1m import DATA  # noqa: E402
from benchmarks.side_by_side import base_file, compare  # noqa: E402


def as_workbook(path: Path, out: Path) -> Path:
    """The CSV file ``path`` as a workbook of one sheet, written to ``out`` unless it is there."""
    import openpyxl

    if out.exists():
        return out
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Students")
    with path.open(newline="", encoding="utf-8") as f:
        for record in csv.reader(f):
            sheet.append(record)
    partial = out.with_suffix(".partial.xlsx")
    book.save(partial)
    partial.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    text = base_file(args.rows)
    book = as_workbook(text, DATA / f"contacts-{args.rows}.xlsx")
    compare(
        f"{args.rows:,} rows, the same in a CSV file and in a workbook",
        ("csv", text),
        ("xlsx", book),
        args.runs,
    )


if __name__ == "__main__":
    main()
