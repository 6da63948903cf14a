"""The one owner of database connections and transactions.

Everything that reads or writes goes through ``Store.read()`` or ``Store.write()``; nothing else
opens a connection or commits. A write transaction is the unit of every use case: an import, an
edit, a merge commits whole or not at all.

SQLite (the default, nothing to install) runs in WAL mode with foreign keys on. Its write
transactions start with ``BEGIN IMMEDIATE`` so that two writers queue up instead of failing
half-way. An import's transaction is a *bulk* one (``write(bulk=True)``): see
``BULK_CACHE_KIB``. PostgreSQL (production) gets the same serialisation per account from
``lock_account``: a row lock on the account, taken first by every write that touches contacts.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from rollbook.errors import StoreError

DEFAULT_SQLITE_FILE = "rollbook.db"
ENV_URL = "ROLLBOOK_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000

#: SQLite's page cache once a bulk transaction (an import) writes contacts (``grow_cache``), in
#: KiB; 2 MiB otherwise (SQLite's default). The unique indexes take an import's rows in no order
#: of theirs — a file's phones land all over the phone index — and with 2 MiB nearly every row
#: evicts a changed index page to the WAL, to be read and written again soon after: a million new
#: contacts with phones in no order took SQLite 7.1 s to insert, and 3.5 s with 32 MiB, which
#: holds a million-contact account's phone index (docs/benchmarks.md). (Reads gain nothing from
#: it, and an import that writes nothing keeps the small cache.) A bulk transaction checks no
#: foreign keys either: an import writes rows that refer to its account (read in the same
#: transaction, which holds the write lock) and to rows it wrote itself, and checking each new
#: contact's account took SQLite ~1 s a million. The tests run ``PRAGMA foreign_key_check`` after
#: imports.
BULK_CACHE_KIB = 32 * 1024
_DEFAULT_CACHE_KIB = 2000

#: The size SQLite cuts its ``-wal`` file back to, in bytes, the next time it starts the file
#: over after a checkpoint (``PRAGMA journal_size_limit``). An import is one transaction, so
#: everything it writes goes into the WAL before the commit copies it into the database: a
#: fresh million grew the file to ~340 MB, a next term to ~316 MB. SQLite keeps the file at its
#: largest for as long as a connection is open — a server's or a worker's, for days — beside
#: the database that now holds the same pages. Everyday writes stay far below this (SQLite
#: checkpoints every ~1,000 pages, 8 MiB); the last connection to close removes the file.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def database_url(url: str | None = None) -> str:
    """The URL to use: the one given, else ``ROLLBOOK_DATABASE_URL``, else ./rollbook.db."""
    url = url or os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_FILE}"
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not url.startswith(("sqlite:", "postgresql+psycopg:")):
        raise StoreError(
            f"rollbook works with SQLite (sqlite:///file.db) or PostgreSQL "
            f"(postgresql://…) databases, not {url.split(':', 1)[0]!r}"
        )
    return url


#: The newest schema migration (``store/migrations/versions``); a test holds it to Alembic's
#: head. A store whose database is there opens without loading Alembic.
SCHEMA_REVISION = "0006"


def _revision(engine: Engine) -> str | None:
    """The database's migration, read as Alembic keeps it (``None`` before the first)."""
    with engine.connect() as conn:
        try:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except sa.exc.DBAPIError:
            return None


class Store:
    """A database: its engine, its transactions, its migrations."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = database_url(url)
        self.engine = _create_engine(self.url)
        self.dialect = self.engine.dialect.name
        if migrate and _revision(self.engine) != SCHEMA_REVISION:
            from rollbook.store.migrate import upgrade  # Alembic: ~0.1 s to load

            upgrade(self)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: one consistent snapshot."""
        with self.engine.connect() as conn:
            conn.info["rollbook_write"] = False
            with conn.begin():
                yield conn

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Connection]:
        """A write transaction: commits when the block ends, rolls back if it raises. ``bulk``:
        an import's (see ``BULK_CACHE_KIB``)."""
        with self._writer(bulk) as conn, conn.begin():
            yield conn

    @contextmanager
    def preview(self, *, bulk: bool = False) -> Iterator[Connection]:
        """A write transaction that is always rolled back: a dry run sees its own writes, and
        nothing of it remains."""
        with self._writer(bulk) as conn:
            trans = conn.begin()
            try:
                yield conn
            finally:
                trans.rollback()

    @contextmanager
    def _writer(self, bulk: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["rollbook_write"] = True
            conn.info["rollbook_bulk"] = bulk and self.dialect == "sqlite"
            try:
                yield conn
            finally:
                if conn.info.pop("rollbook_bulk", False) and not conn.invalidated:
                    # Outside the transaction again (on the driver's connection: SQLAlchemy's
                    # would begin one), the pooled connection gets its usual settings back.
                    driver: Any = conn.connection.driver_connection
                    _sqlite_settings(driver, bulk=False)
                    # A bulk transaction that rolled back (a preview, a failed import) left
                    # its pages in the WAL past the last commit. SQLite starts the file over,
                    # and cuts it back (``WAL_SIZE_LIMIT``), only once a checkpoint has copied
                    # every committed page, which it would otherwise do ~1,000 pages of
                    # writes later. Copying the few left now (without waiting for readers)
                    # lets the next write cut it. After a large commit SQLite's own
                    # checkpoint has copied everything already (0.2 ms for a fresh million).
                    with suppress(sqlite3.Error):  # the transaction's outcome stands regardless
                        driver.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.engine.dispose()


def lock_account(conn: Connection, account_id: int) -> None:
    """Serialise writers of one account. On SQLite the write transaction already holds the
    database's write lock; on PostgreSQL this takes the account row's lock until commit.

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: the writers still wait for each other, but a row
    that merely refers to the account (an upload, a job, a token, a session) checks its foreign
    key with a key-share lock, which ``FOR UPDATE`` would make wait for the whole import."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT id FROM accounts WHERE id = :id FOR NO KEY UPDATE"),
            {"id": account_id},
        )


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Connections move between threads (a server's request threads, an import's writer
        # thread), one thread at a time: the pool hands each to one user.
        engine = sa.create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the one
    # that runs (the recipe in SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # 8 KiB pages: bulk imports maintain the unique phone index ~10% faster than with 4 KiB
        # (measured, docs/benchmarks.md). It only takes effect on a new, empty database file.
        cur.execute("PRAGMA page_size=8192")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()
        _sqlite_settings(dbapi_conn, bulk=False)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.info.get("rollbook_bulk"):  # before BEGIN: inside a transaction it does nothing
            _sqlite_settings(conn.connection.driver_connection, bulk=True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("rollbook_write") else "BEGIN")


def _sqlite_settings(dbapi_conn: Any, *, bulk: bool) -> None:
    """A connection's settings for a bulk transaction or for every other (``BULK_CACHE_KIB``)."""
    dbapi_conn.execute(f"PRAGMA foreign_keys={'OFF' if bulk else 'ON'}")
    if not bulk:
        dbapi_conn.execute(f"PRAGMA cache_size=-{_DEFAULT_CACHE_KIB}")


def grow_cache(conn: Connection) -> None:
    """In a bulk transaction about to write many contacts: SQLite's larger page cache
    (``BULK_CACHE_KIB``; the transaction's end gives the connection its usual one back)."""
    if conn.info.get("rollbook_bulk"):
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
