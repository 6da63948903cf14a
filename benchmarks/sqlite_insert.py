"""What a million new contacts cost SQLite to write, by how the statements and the unique
indexes are kept.

    .venv/bin/python benchmarks/sqlite_insert.py              # 1,000,000 rows, 3 runs each

The write of a fresh import is the largest single piece of the SQLite benchmark
(docs/benchmarks.md). This isolates it: the rows rollbook inserts (the contacts table's shape,
phones in no order, batches of 50,000, one transaction) written six ways, side by side in one
run:

  kept      the (account, phone) and (account, crm_id) unique indexes maintained row by row,
            a statement per row, SQLite's default 2 MiB page cache
  multi     the same, 500 rows a statement (``INSERT … VALUES (…), (…), …``): SQLite keeps a
            statement journal for each, to undo it alone
  fail      the same with ``INSERT OR FAIL``, which needs no statement journal
  bulk      ``fail`` with the 32 MiB page cache of an import's transaction: as rollbook writes
  none      no unique index at all (the floor of this write)
  after     no index while writing, both unique indexes built at the end, in the transaction

It prints medians and each one's ratio to ``kept``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from rollbook.store.bulk import ROWS_PER_STATEMENT
from rollbook.store.database import BULK_CACHE_KIB

COLUMNS = (
    "id, crm_id, first_name, last_name, email, phone, opted_out, archived, custom, created_row, "
    "account_id, created_import_id"
)
TABLE = """CREATE TABLE contacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, crm_id TEXT,
  first_name TEXT, last_name TEXT, email TEXT, phone TEXT, opted_out BOOLEAN NOT NULL,
  archived BOOLEAN NOT NULL, custom JSON NOT NULL, created_import_id INTEGER,
  created_row INTEGER)"""
INDEXES = (
    "CREATE UNIQUE INDEX uq_phone ON contacts (account_id, phone)",
    "CREATE UNIQUE INDEX uq_crm_id ON contacts (account_id, crm_id)",
)
BATCH = 50_000
MULTI = ROWS_PER_STATEMENT  # as rollbook writes them


def rows(n: int) -> pl.DataFrame:
    rng = random.Random(1)
    phones = rng.sample(range(2_002_000_000, 9_899_999_999), n)
    custom = (
        '{"birth_date":"2001-02-03","city":"Boston","state":"MA","program":"Nursing",'
        '"gpa":"3.41","enrolled":true,"term":"Fall 2026"}'
    )
    return pl.DataFrame(
        {
            "id": range(1, n + 1),
            "crm_id": [f"S{i:07d}" for i in range(n)],
            "first_name": ["Maria"] * n,
            "last_name": ["Lopez"] * n,
            "email": [f"maria.lopez{i}@students.example.edu" for i in range(n)],
            "phone": [f"+1{p}" for p in phones],
            "opted_out": [False] * n,
            "archived": [False] * n,
            "custom": [custom] * n,
            "created_row": range(2, n + 2),
        }
    )


def write(frame: pl.DataFrame, folder: Path, way: str) -> float:
    path = folder / f"{way}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("page_size=8192", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    if way == "bulk":
        conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    conn.execute(TABLE)
    if way in ("kept", "multi", "fail", "bulk"):
        for sql in INDEXES:
            conn.execute(sql)
    row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1)"
    verb = "INSERT OR FAIL" if way in ("fail", "bulk") else "INSERT"
    start = time.perf_counter()
    conn.execute("BEGIN")
    for offset in range(0, frame.height, BATCH):
        part = frame.slice(offset, BATCH)
        rows = zip(*(s.to_list() for s in part.iter_columns()), strict=True)
        if way in ("multi", "fail", "bulk"):
            flat = list(itertools.chain.from_iterable(rows))
            step = MULTI * part.width
            for i in range(0, len(flat), step):
                values = flat[i : i + step]
                sql = f"{verb} INTO contacts ({COLUMNS}) VALUES " + ", ".join(
                    [row] * (len(values) // part.width)
                )
                conn.execute(sql, values)
        else:
            conn.executemany(f"{verb} INTO contacts ({COLUMNS}) VALUES {row}", rows)
    if way == "after":
        for sql in INDEXES:
            conn.execute(sql)
    conn.execute("COMMIT")
    took = time.perf_counter() - start
    conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    frame = rows(args.rows)
    ways = ("kept", "multi", "fail", "bulk", "none", "after")
    times: dict[str, list[float]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for way in ways:  # interleaved, so that the machine's noise falls on all of them
                times[way].append(write(frame, Path(tmp), way))
    print(f"SQLite {sqlite3.sqlite_version}, {args.rows:,} rows, {args.runs} runs, medians:")
    kept = statistics.median(times["kept"])
    for way, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {way:6s} {median:6.2f} s   {median / kept:5.2f}× kept")


if __name__ == "__main__":
    main()
