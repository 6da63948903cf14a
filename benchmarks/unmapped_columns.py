"""What the columns no field takes cost an import, side by side in one run.

    .venv/bin/python benchmarks/unmapped_columns.py                  # 1,000,000 rows, 24 more
    .venv/bin/python benchmarks/unmapped_columns.py --rows 100000 --runs 1   # a quick look

A student system's export has many columns an import leaves unmapped (advisor notes, codes,
flags). This takes the benchmark's file (benchmarks/import_1m.py, its 12 columns all mapped)
and the same rows with ``--extra`` short text columns added after them, which the import does
not map, and imports each, fresh, into an empty SQLite account: alternating, ``--runs``
rounds, each import in a process of its own (wall time, peak RSS). It prints each file's
median and peak, and the wider file's time over the narrower's, round by round.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.import_1m import DATA  # noqa: E402
from benchmarks.side_by_side import base_file, compare  # noqa: E402


def wider(path: Path, extra: int, out: Path) -> Path:
    """``path`` with ``extra`` more columns of 8–12 digits each, made from the row's position
    (the same file every time), written to ``out`` unless it is there."""
    import polars as pl

    if out.exists():
        return out
    frame = pl.read_csv(path, infer_schema=False)
    row = pl.int_range(0, pl.len(), dtype=pl.Int64)
    columns = {
        f"Extra {i:02d}": ((row * (2 * i + 7919) + 104_729 * i) % 900_000_000_000 + 10**11)
        .cast(pl.String)
        .str.slice(0, 8 + i % 5)
        for i in range(extra)
    }
    frame.with_columns(**columns).write_csv(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--extra", type=int, default=24, help="unmapped columns to add")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    narrow = base_file(args.rows)
    wide = wider(narrow, args.extra, DATA / f"{narrow.stem}-{args.extra}-unmapped.csv")
    compare(
        f"{args.rows:,} rows; the wider file has {args.extra} more columns, unmapped",
        ("narrow", narrow),
        ("wide", wide),
        args.runs,
    )


if __name__ == "__main__":
    main()
