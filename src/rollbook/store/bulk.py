"""Set-based reads and writes for imports, through the driver inside the caller's transaction.

An import moves a million rows; going through SQLAlchemy's per-row parameter processing would
cost more than the database's own work. So this module speaks each backend's native bulk idiom —
one statement per batch with the batch's keys as a single parameter (SQLite ``json_each``,
PostgreSQL arrays), many rows a statement on SQLite, ``COPY`` on PostgreSQL — and hands Polars
frames in and out. On SQLite the largest reads come back as one packed text per column, which
Polars splits. Everything stays inside the transaction the store opened.
"""

from __future__ import annotations

import functools
import io
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

#: The contact columns an import reads and writes, in this order.
VALUE_COLUMNS = (
    "crm_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "opted_out",
    "archived",
    "custom",
)
READ_SCHEMA = {
    "id": pl.Int64,
    "crm_id": pl.String,
    "first_name": pl.String,
    "last_name": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "opted_out": pl.Boolean,
    "archived": pl.Boolean,
    "custom": pl.String,
}


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _select_columns(conn: Connection) -> str:
    custom = "custom::text" if _pg(conn) else "custom"
    return "id, crm_id, first_name, last_name, email, phone, opted_out, archived, " + custom


def _frame(rows: list[Any], schema: dict[str, Any] = READ_SCHEMA) -> pl.DataFrame:
    """Fetched rows → a frame, built column by column (several times faster than by row)."""
    if not rows:
        return pl.DataFrame(schema=schema)
    columns = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=dtype, strict=False)
            for (name, dtype), values in zip(schema.items(), columns, strict=True)
        }
    )


def contacts_where_in(
    conn: Connection, account_id: int, column: str, values: Sequence[Any]
) -> pl.DataFrame:
    """The account's contacts whose ``column`` (id, crm_id, phone) is one of ``values``."""
    if not values:
        return pl.DataFrame(schema=READ_SCHEMA)
    cur = _driver(conn).cursor()
    if _pg(conn):
        cur.execute(
            f"SELECT {_select_columns(conn)} FROM contacts "
            f"WHERE account_id = %s AND {column} = ANY(%s)",
            (account_id, list(values)),
        )
    else:
        # By id: found by the primary key, then checked for the account (see
        # schema.contacts_with_ids); by CRM ID or phone: the (account, value) unique index.
        account = "account_id + 0" if column == "id" else "account_id"
        where = (
            f"FROM contacts WHERE {account} = ? AND {column} IN (SELECT value FROM json_each(?))"
        )
        params = (account_id, json.dumps(list(values)))
        packed = _packed_rows(cur, where, params)
        if packed is not None:
            return packed
        cur.execute(f"SELECT {_select_columns(conn)} {where}", params)
    return _frame(cur.fetchall())


_RECORD, _NULL = "\x1e", "\x1d"


def _packed_columns(
    cur: Any, columns: dict[str, str], where: str, params: Any
) -> pl.DataFrame | None:
    """SQLite: each column (name → SQL expression) as one text — values joined by U+001E, NULL
    written U+001D — split by Polars into text columns.

    SQLite builds the texts without the interpreter and Polars splits them without it too, so
    the import's other threads run meanwhile; a million rows as Python objects would hold the
    interpreter for seconds. Stored values never hold control characters (the normalisers
    refuse them; JSON escapes them), and the split is checked against SQLite's own counts of
    rows and of values that are not NULL: ``None`` if it does not come out whole, and the
    caller reads the rows the ordinary way."""
    names = list(columns)
    # The marks written into the SQL as literals: as ``char(29)`` calls they cost SQLite a
    # function call per value (1.0 of 3.0 s for a million contacts' nine columns).
    texts = ", ".join(
        f"group_concat(ifnull({expr}, '{_NULL}'), '{_RECORD}'), count({expr})"
        for expr in columns.values()
    )
    cur.execute(f"SELECT count(*), {texts} {where}", params)
    count, *packed = cur.fetchone()
    if not count:
        return pl.DataFrame(schema=dict.fromkeys(names, pl.String))
    out = {}
    for name, text, present in zip(names, packed[::2], packed[1::2], strict=True):
        values = pl.Series(name, [text], dtype=pl.String).str.split(_RECORD).explode()
        if values.len() != count or values.ne(_NULL).sum() != present:
            return None
        out[name] = values
    return pl.DataFrame(out).with_columns_seq(
        pl.when(pl.col(n) != _NULL).then(pl.col(n)).alias(n) for n in names
    )


def _packed_rows(cur: Any, where: str, params: tuple[Any, ...]) -> pl.DataFrame | None:
    """The contacts (``READ_SCHEMA``) as packed columns (see ``_packed_columns``)."""
    fields = _packed_columns(cur, {n: n for n in READ_SCHEMA}, where, params)
    if fields is None:
        return None
    return fields.select_seq(
        pl.col("id").cast(pl.Int64),
        *(pl.col(n) for n in ("crm_id", "first_name", "last_name", "email", "phone")),
        *((pl.col(n) == "1").alias(n) for n in ("opted_out", "archived")),
        pl.col("custom"),
    )


def pairs_where_in(
    conn: Connection, table: str, key: str, value: str, account_id: int, keys: Sequence[Any]
) -> list[tuple[Any, Any]]:
    """(key, value) rows of a small lookup table (aliases, redirects, bases, history)."""
    if not keys:
        return []
    cur = _driver(conn).cursor()
    if _pg(conn):
        cur.execute(
            f"SELECT {key}, {value} FROM {table} WHERE account_id = %s AND {key} = ANY(%s)",
            (account_id, list(keys)),
        )
    else:
        cur.execute(
            f"SELECT {key}, {value} FROM {table} WHERE account_id = ? "
            f"AND {key} IN (SELECT value FROM json_each(?))",
            (account_id, json.dumps(list(keys))),
        )
    return [tuple(r) for r in cur.fetchall()]


def bases_of(conn: Connection, account_id: int, ids: Sequence[int]) -> pl.DataFrame:
    """contact_id, field, base for these contacts (sparse: only where a base is kept)."""
    schema = {"contact_id": pl.Int64, "field": pl.String, "base": pl.String}
    if not ids:
        return pl.DataFrame(schema=schema)
    cur = _driver(conn).cursor()
    if _pg(conn):
        cur.execute(
            "SELECT contact_id, field, base FROM field_bases WHERE account_id = %s "
            "AND contact_id = ANY(%s)",
            (account_id, list(ids)),
        )
    else:
        cur.execute(
            "SELECT contact_id, field, base FROM field_bases WHERE account_id = ? "
            "AND contact_id IN (SELECT value FROM json_each(?))",
            (account_id, json.dumps(list(ids))),
        )
    return pl.DataFrame(cur.fetchall(), schema=schema, orient="row")


KEYS_SCHEMA = {
    "id": pl.Int64,
    "email": pl.String,
    "first_name": pl.String,
    "last_name": pl.String,
    "born": pl.String,
}
#: Rows fetched at a time where a whole account is read: a million rows as Python objects at
#: once would cost hundreds of megabytes.
FETCH_ROWS = 50_000


def contact_keys(conn: Connection, account_id: int, birth_key: str | None) -> pl.DataFrame:
    """id, email, first_name, last_name and ``born`` — the custom field ``birth_key``, or null
    — of every contact of the account: what the possible-duplicate keys are made of."""
    pg = _pg(conn)
    born = "NULL"
    if birth_key:
        born = "custom ->> %(born)s" if pg else "json_extract(custom, '$.' || :born)"
    columns = {
        "id": "id",
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "born": born,
    }
    return _whole_account(conn, account_id, columns, KEYS_SCHEMA, {"born": birth_key})


PRINTS_SCHEMA = {"id": pl.Int64, "crm_id": pl.String, "phone": pl.String, "print": pl.Int64}


def contact_prints(conn: Connection, account_id: int) -> pl.DataFrame:
    """id, CRM ID, phone and import print of every contact of the account that has a print
    and a CRM ID (importing/prints.py)."""
    columns = {"id": "id", "crm_id": "crm_id", "phone": "phone", "print": "import_print"}
    # Filtered here rather than in SQL: the print is the row's last column, and checking it
    # for every row cost SQLite more than reading the few contacts without one.
    every = _whole_account(conn, account_id, columns, PRINTS_SCHEMA, {})
    return every.filter(pl.col("print").is_not_null() & pl.col("crm_id").is_not_null())


def _whole_account(
    conn: Connection,
    account_id: int,
    columns: dict[str, str],
    schema: dict[str, Any],
    params: dict[str, Any],
) -> pl.DataFrame:
    """``columns`` (name → SQL expression, ``schema``'s names and types) of every contact of the
    account."""
    cur = _driver(conn).cursor()
    if not _pg(conn):
        packed = _packed_account(cur, account_id, columns, schema, params)
        if packed is not None:
            return packed
    mark = "%(account)s" if _pg(conn) else ":account"
    cur.execute(
        f"SELECT {', '.join(columns.values())} FROM contacts WHERE account_id = {mark}",
        {**params, "account": account_id},
    )
    parts = [pl.DataFrame(schema=schema)]
    while rows := cur.fetchmany(FETCH_ROWS):
        parts.append(_frame(rows, schema))
    return pl.concat(parts, rechunk=True)


#: Contact ids a packed read of a whole account covers at a time: each column's text is built
#: whole, so a bounded part at a time keeps the read's memory bounded.
PACKED_IDS = 200_000


def _packed_account(
    cur: Any,
    account_id: int,
    columns: dict[str, str],
    schema: dict[str, Any],
    params: dict[str, Any],
) -> pl.DataFrame | None:
    """SQLite: ``_whole_account`` as packed columns (see ``_packed_columns``), or ``None``.

    Through an index the rows are visited in the index's order, each a jump in the table; when
    the account is most of the table, the table is read in order instead, a range of ids at a
    time."""
    # One pass over the account's index entries; the table's size from its first and last id
    # (found at once; at least the count, as ids are never reused).
    mine, low, high, span = cur.execute(
        "SELECT count(*), min(id), max(id), "
        "(SELECT max(id) FROM contacts) - (SELECT min(id) FROM contacts) + 1 "
        "FROM contacts WHERE account_id = :account",
        {"account": account_id},
    ).fetchone()
    if not mine:
        return pl.DataFrame(schema=schema)
    if mine * 2 > span:
        rows = "FROM contacts WHERE id >= :start AND id < :end AND account_id + 0 = :account"
        ranges = [(start, start + PACKED_IDS) for start in range(low, high + 1, PACKED_IDS)]
    else:
        rows = "FROM contacts WHERE account_id = :account"
        ranges = [(low, high)]
    parts = [pl.DataFrame(schema=schema)]
    for start, end in ranges:
        part = _packed_columns(
            cur,
            columns,
            rows,
            {**params, "account": account_id, "start": start, "end": end},
        )
        if part is None:
            return None
        parts.append(part.cast(schema))  # type: ignore[arg-type]
    return pl.concat(parts, rechunk=True)


# --- writes ---------------------------------------------------------------------------------

#: The columns of a new contact row, in the order ``insert_contacts`` expects.
INSERT_COLUMNS = ("id", *VALUE_COLUMNS, "created_row", "import_print")


def insert_contacts(
    conn: Connection, frame: pl.DataFrame, *, account_id: int, import_id: int
) -> None:
    """Insert the contacts an import created (``INSERT_COLUMNS``; booleans as Boolean, custom
    as JSON text). Their creation is the import's: the row names the import and the row, and
    nothing else (see store/provenance.py)."""
    if frame.is_empty():
        return
    if "import_print" not in frame.columns:
        frame = frame.with_columns_seq(pl.lit(None, pl.Int64).alias("import_print"))
    frame = frame.select_seq(INSERT_COLUMNS)
    if _pg(conn):
        copy_frame(
            conn,
            "contacts",
            frame.with_columns_seq(
                pl.lit(account_id).alias("account_id"),
                pl.lit(import_id).alias("created_import_id"),
            ),
        )
        return
    # The yes/no flags a file does not set are the same for every new contact: written into
    # the statement rather than bound row by row.
    constant = {
        name: int(values[0])
        for name in ("opted_out", "archived")
        if (values := frame[name].unique()).len() == 1 and values[0] is not None
    }
    bound = [c for c in INSERT_COLUMNS if c not in constant]
    fixed = {**constant, "account_id": int(account_id), "created_import_id": int(import_id)}
    insert_rows(
        conn,
        f"INSERT OR FAIL INTO contacts ({', '.join([*bound, *fixed])})",
        f"({', '.join(['?'] * len(bound) + [str(v) for v in fixed.values()])})",
        frame.select_seq(bound),
    )


#: Rows per INSERT statement on SQLite (well within its 32,766 bound parameters).
ROWS_PER_STATEMENT = 500
#: Statements whose values are made Python objects together (``_in_statements``).
STATEMENTS_AT_ONCE = 10


def insert_rows(conn: Connection, head: str, row: str, frame: pl.DataFrame) -> None:
    """SQLite: ``frame``'s rows through ``head VALUES row, row, …``, many rows a statement.

    SQLite lets go of the interpreter while it runs a statement, and takes it back to bind the
    next. A statement per row makes the writing thread queue for the interpreter a million times
    while the reading and planning threads hold it; a statement per 500 rows asks 500 times
    less (docs/benchmarks.md). See ``_in_statements`` for why such statements say ``OR FAIL``."""
    _in_statements(conn, frame, lambda n: f"{head} VALUES {', '.join([row] * n)}")


def _in_statements(
    conn: Connection,
    frame: pl.DataFrame,
    statement: Callable[[int], str],
    shared: tuple[Any, ...] = (),
) -> None:
    """SQLite: ``frame``'s rows bound to ``statement(n)`` (a statement for ``n`` rows of the
    frame's width, after the ``shared`` values every statement binds first),
    ``ROWS_PER_STATEMENT`` rows at a time — fewer if the connection allows fewer bound values —
    and the rest in a shorter last statement.

    The statements say ``INSERT OR FAIL`` / ``UPDATE OR FAIL``. A plain statement that writes
    many rows may have to undo itself alone when a constraint stops it half-way, so SQLite copies
    every page it is about to change into a statement journal first: for a million new contacts
    with phones in no order, 7.5 GB copied into temporary files, nearly half the writing
    thread's time. ``OR FAIL`` stops the statement where it is instead, and needs no journal; a
    plan's writes never conflict, and if one did, the error undoes the whole import."""
    driver = _driver(conn)
    width, height = frame.width, frame.height
    room = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(shared)
    per = max(1, min(ROWS_PER_STATEMENT, room // width))
    cur = driver.cursor()
    step = per * width
    # The values become Python objects a few statements at a time: a batch's at once would be
    # tens of megabytes more at the import's peak.
    rows_at_once = per * STATEMENTS_AT_ONCE
    # Booleans are bound as 1 and 0, as SQLite stores them: Python's sqlite3 binds True and
    # False only after failing to find an adapter for them, which costs it more than the rest of
    # the value (an exception raised and dropped in C for each; ~1 s of a fresh million).
    frame = frame.with_columns_seq(pl.col(pl.Boolean).cast(pl.UInt8))
    for start in range(0, height, rows_at_once):
        part = frame.slice(start, rows_at_once)
        # Row by row, the columns side by side: each column put in its every width-th place
        # (a slice assignment in C; zipping the rows was four times slower).
        values: list[Any] = [None] * (part.height * width)
        for offset, column in enumerate(part.iter_columns()):
            values[offset::width] = column.to_list()
        whole = (part.height // per) * step
        if whole:
            cur.executemany(
                statement(per), ([*shared, *values[i : i + step]] for i in range(0, whole, step))
            )
        if whole < len(values):
            rest = values[whole:]
            cur.execute(statement(len(rest) // width), [*shared, *rest])


@functools.lru_cache(maxsize=64)
def _sqlite_time(at: datetime) -> str:
    """How SQLAlchemy's DateTime stores a timestamp on SQLite (so it reads it back).

    Kept for the few timestamps an import writes: every event and history row of an import has
    the import's time, and formatting it anew for each took ~0.1 s of the writing thread's
    interpreter time in a next-term import (63,000 rows)."""
    return at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def copy_frame(conn: Connection, table: str, frame: pl.DataFrame) -> None:
    """PostgreSQL: ``COPY`` a frame into ``table`` (its columns by name), as CSV."""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, null_value="", quote_style="non_numeric")
    columns = ", ".join(frame.columns)
    with (
        _driver(conn).cursor() as cur,
        cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv, NULL '')") as copy,
    ):
        copy.write(buf.getvalue())


def execute_many(
    conn: Connection, sqlite_sql: str, pg_sql: str, rows: Iterable[tuple[Any, ...]]
) -> None:
    """One prepared statement, many rows (``?`` placeholders on SQLite, ``%s`` on PostgreSQL)."""
    rows = list(rows)
    if rows:
        _driver(conn).cursor().executemany(pg_sql if _pg(conn) else sqlite_sql, rows)


#: The columns an import sets on a contact it changes, in this order, before the id.
UPDATE_COLUMNS = (
    "crm_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "opted_out",
    "archived",
    "custom",
)


def set_prints(conn: Connection, prints: pl.DataFrame) -> None:
    """Give contacts (``id``) their import ``print`` (importing/prints.py), where it differs."""
    if prints.is_empty():
        return
    if _pg(conn):
        _driver(conn).cursor().execute(
            "UPDATE contacts SET import_print = v.print "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, print) "
            "WHERE contacts.id = v.id AND contacts.import_print IS DISTINCT FROM v.print",
            (prints["id"].to_list(), prints["print"].to_list()),
        )
        return
    _in_statements(
        conn,
        prints.select_seq("id", "print"),
        lambda n: (
            "UPDATE OR FAIL contacts SET import_print = v.column2 FROM (VALUES "
            + ", ".join(["(?, ?)"] * n)
            + ") AS v WHERE contacts.id = v.column1 AND contacts.import_print IS NOT v.column2"
        ),
    )


def update_contacts(
    conn: Connection,
    frame: pl.DataFrame,
    *,
    at: datetime,
    source: str,
    import_id: int | None,
) -> None:
    """Give existing contacts their final values (``UPDATE_COLUMNS``, ``id``, ``phone_row``:
    the row that wrote the phone, whose history entry the contact now carries — or null;
    ``keys_moved``: whether the phone or CRM ID changed; ``import_print``, if given: the print
    the contact keeps, else none).

    A contact whose phone and CRM ID stay is updated without them: writing an indexed column,
    even with its own value, rewrites its index entries, which doubled the cost of an update."""
    if frame.is_empty():
        return
    if "import_print" not in frame.columns:
        frame = frame.with_columns_seq(pl.lit(None, pl.Int64).alias("import_print"))
    # Where it is not known whether the keys moved, they are written (always right).
    moved_keys = (
        pl.col("keys_moved").fill_null(True) if "keys_moved" in frame.columns else pl.lit(True)
    )
    frame = frame.with_columns_seq(moved_keys.alias("keys_moved"))
    stamp = _sqlite_time(at) if not _pg(conn) else at
    for moved in (True, False):
        columns = [c for c in UPDATE_COLUMNS if moved or c not in ("phone", "crm_id")]
        columns.append("import_print")
        for wrote in (True, False):
            part = frame.filter(
                (pl.col("keys_moved") == moved) & (pl.col("phone_row").is_not_null() == wrote)
            )
            if part.is_empty():
                continue
            sets = ["updated_at"]
            shared: tuple[Any, ...] = (stamp,)
            if wrote:
                sets += ["phone_since", "phone_source", "phone_import_id"]
                shared = (stamp, stamp, source, import_id)
            extra = ["phone_row"] if wrote else []
            _update_many(conn, part.select_seq("id", *columns, *extra), sets, shared)


def _update_many(
    conn: Connection, frame: pl.DataFrame, shared_columns: list[str], shared: tuple[Any, ...]
) -> None:
    """Update contacts (``frame``: ``id``, then the columns to set from it), each also getting
    the ``shared`` values of ``shared_columns``; a phone written (``phone_row`` among the
    columns) has no reason."""
    columns = frame.columns[1:]
    if _pg(conn):
        sets = [f"{c} = {'%s::jsonb' if c == 'custom' else '%s'}" for c in shared_columns]
        sets += [f"{c} = {'%s::jsonb' if c == 'custom' else '%s'}" for c in columns]
        if "phone_row" in columns:
            sets.append("phone_reason = NULL")
        values = [s.to_list() for s in frame.select_seq(*columns, "id").iter_columns()]
        _driver(conn).cursor().executemany(
            f"UPDATE contacts SET {', '.join(sets)} WHERE id = %s",
            ((*shared, *row) for row in zip(*values, strict=True)),
        )
        return
    # SQLite: ``UPDATE … FROM (VALUES …)``, many contacts a statement (see ``insert_rows``).
    # The final values are consistent — contacts that let go of a phone or CRM ID another takes
    # were released first (apply.py) — so the order of the rows within a statement is free.
    # VALUES columns are named column1, column2, … in the order they are given.
    sets = [f"{c} = ?" for c in shared_columns]
    sets += [f"{c} = v.column{n}" for n, c in enumerate(columns, start=2)]
    if "phone_row" in columns:
        sets.append("phone_reason = NULL")
    row = f"({', '.join('?' * frame.width)})"
    head = f"UPDATE OR FAIL contacts SET {', '.join(sets)} FROM (VALUES "
    _in_statements(conn, frame, partial(_update, head, row), shared)


def _update(head: str, row: str, n: int) -> str:
    return f"{head}{', '.join([row] * n)}) AS v WHERE contacts.id = v.column1"


def delete_bases(conn: Connection, pairs: Sequence[tuple[int, str]]) -> None:
    execute_many(
        conn,
        "DELETE FROM field_bases WHERE contact_id = ? AND field = ?",
        "DELETE FROM field_bases WHERE contact_id = %s AND field = %s",
        pairs,
    )


def insert_history(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(account_id, contact_id, phone, valid_from, valid_to, source, reason, import_id, row)."""
    if not rows:
        return
    pg = _pg(conn)
    if not pg:
        rows = [
            (*r[:3], _sqlite_time(r[3]) if r[3] else None, _sqlite_time(r[4]), *r[5:]) for r in rows
        ]
    columns = "account_id, contact_id, phone, valid_from, valid_to, source, reason, import_id, row"
    execute_many(
        conn,
        f"INSERT INTO phone_history ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        f"INSERT INTO phone_history ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def insert_events(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(account_id, contact_id, at, source, actor, import_id, row, changes as JSON text)."""
    if not rows:
        return
    if not _pg(conn):
        rows = [(r[0], r[1], _sqlite_time(r[2]), *r[3:]) for r in rows]
    columns = "account_id, contact_id, at, source, actor, import_id, row, reason, changes"
    execute_many(
        conn,
        f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        f"INSERT INTO events ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, %s::jsonb)",
        rows,
    )
