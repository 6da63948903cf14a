"""The benchmark's rows (g): the contacts a fresh import wrote, copied by the database alone into
an empty store with rollbook's schema — every one of them, and into the table with its keys."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from benchmarks import import_1m
from benchmarks.datagen import population, write
from benchmarks.import_1m import (
    SQLITE_BULK,
    STORE_COPY,
    drop_pg_databases,
    fresh_sqlite,
    import_cmd,
    pg_database,
    quoted,
    rollbook,
    setup_account,
    store_copy_postgres,
    store_copy_sqlite,
)

ROWS = 300


def _imported(url: str, tmp_path: Path) -> None:
    setup_account(url)
    subprocess.run(
        import_cmd(url, write(tmp_path / "file.csv", population(ROWS))),
        check=True,
        capture_output=True,
    )


def _sqlite_rows(path: Path) -> list[Any]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT * FROM contacts ORDER BY id").fetchall()


def _sqlite_unique_keys(path: Path) -> set[tuple[str, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return {
            tuple(c[2] for c in db.execute(f"PRAGMA index_info('{name}')"))
            for _, name, unique, *_ in db.execute("PRAGMA index_list('contacts')")
            if unique
        }


def _pg_rows(url: str) -> list[Any]:
    with psycopg.connect(url) as db:
        return db.execute("SELECT * FROM contacts ORDER BY id").fetchall()


def _pg_unique_keys(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'contacts'")
        return {d.split(" USING btree ")[1] for (d,) in rows if d.startswith("CREATE UNIQUE")}


def _opcodes(target: Path, source: Path, statement: str) -> list[str]:
    with closing(sqlite3.connect(target)) as db:
        db.executescript(f"{SQLITE_BULK} ATTACH {quoted(source)} AS f;")
        return [row[1] for row in db.execute(f"EXPLAIN {statement}")]


def test_sqlite_inserts_each_row_rather_than_copying_pages(tmp_path: Path) -> None:
    """Without ``ORDER BY``, SQLite would copy the table's and its keys' pages whole (its
    transfer optimisation: ``RowData``), which is not what an import costs it."""
    source, url = fresh_sqlite(tmp_path, "imported")
    _imported(url, tmp_path)
    target, target_url = fresh_sqlite(tmp_path, "empty")
    setup_account(target_url)
    whole = STORE_COPY.removesuffix(" ORDER BY id")
    assert "RowData" in _opcodes(target, source, whole)  # the check can tell
    assert "RowData" not in _opcodes(target, source, STORE_COPY)
    assert "IdxInsert" in _opcodes(target, source, STORE_COPY)


def test_sqlite_refuses_a_copy_into_another_account(tmp_path: Path) -> None:
    """The copy checks no foreign key while it runs (as an import does not): a store whose
    account is not the imported one's is refused afterwards."""
    source, url = fresh_sqlite(tmp_path, "imported")
    subprocess.run(rollbook(url, "accounts", "create", "other"), check=True, capture_output=True)
    _imported(url, tmp_path)  # "bench" is the second account here, the first in the store
    with pytest.raises(RuntimeError, match="account"):
        store_copy_sqlite(tmp_path, source)


def test_a_quoted_path_may_hold_a_quote(tmp_path: Path) -> None:
    odd = tmp_path / "it's.db"
    with closing(sqlite3.connect(odd)) as db:
        db.execute("CREATE TABLE t (x)")
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"ATTACH {quoted(odd)} AS o")
        assert db.execute("SELECT count(*) FROM o.t").fetchone() == (0,)


def test_the_database_alone_copies_every_contact_into_rollbooks_schema(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        source, url = fresh_sqlite(tmp_path, "imported")
        _imported(url, tmp_path)
        wall, rss = store_copy_sqlite(tmp_path, source)
        target = tmp_path / "store.db"
        copied, imported = _sqlite_rows(target), _sqlite_rows(source)
        assert {("account_id", "crm_id"), ("account_id", "phone")} <= _sqlite_unique_keys(target)
    else:
        server: str = request.getfixturevalue("postgres_url")
        source_url = pg_database(server, "bench_imported")
        target_url = source_url.rsplit("/", 1)[0] + "/rollbook_store"
        try:
            _imported(source_url, tmp_path)
            wall, rss = store_copy_postgres(server, source_url, tmp_path)
            copied, imported = _pg_rows(target_url), _pg_rows(source_url)
            assert {"(account_id, crm_id)", "(account_id, phone)"} <= _pg_unique_keys(target_url)
        finally:
            drop_pg_databases(server, "bench_imported", "rollbook_store")
        assert not (tmp_path / "pg_contacts.csv").exists()
    assert wall > 0 and rss > 0
    assert len(imported) > ROWS * 0.9  # the file's rows less its skipped ones
    assert copied == imported


def test_a_server_of_ones_own_keeps_none_of_the_benchmarks_databases(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``$ROLLBOOK_BENCH_POSTGRES_URL`` (an operator's server, not a throwaway cluster),
    the databases the benchmark made there — a million contacts each — are dropped at the end."""
    monkeypatch.setattr(import_1m, "DATA", tmp_path)
    monkeypatch.setenv("ROLLBOOK_BENCH_POSTGRES_URL", postgres_url)
    monkeypatch.setattr(
        sys,
        "argv",
        ["import_1m.py", "--rows", str(ROWS), "--runs", "1", "--no-peer", "--no-double"],
    )
    import_1m.main()
    base = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base) as db:
        names = {name for (name,) in db.execute("SELECT datname FROM pg_database")}
    assert not names & set(import_1m.PG_DATABASES)
