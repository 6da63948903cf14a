"""Queries on imports: the import record, its row report chunks, its changed-numbers rows, and
labels with their contact-id ranges."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.errors import NotFound
from rollbook.store.schema import (
    changed_numbers,
    contacts,
    import_rows,
    imports,
    label_ranges,
    labels,
)


def insert_import(
    conn: Connection,
    *,
    account_id: int,
    filename: str,
    format: dict[str, Any],
    mapping: list[list[str | None]],
    actor: str | None,
    at: datetime,
) -> int:
    result = conn.execute(
        imports.insert().values(
            account_id=account_id,
            filename=filename,
            format=format,
            mapping=mapping,
            status="running",
            actor=actor,
            started_at=at,
            counts={},
            codes={},
        )
    )
    (import_id,) = result.inserted_primary_key or (None,)
    assert isinstance(import_id, int)
    return import_id


def finish_import(conn: Connection, import_id: int, **values: Any) -> None:
    conn.execute(imports.update().where(imports.c.id == import_id).values(status="done", **values))


def import_row(conn: Connection, account_id: int, import_id: int) -> sa.Row[Any]:
    row = conn.execute(
        imports.select().where(imports.c.account_id == account_id, imports.c.id == import_id)
    ).first()
    if row is None:
        raise NotFound(f"there is no import {import_id} in this account", import_id=import_id)
    return row


def list_imports(conn: Connection, account_id: int, limit: int = 100) -> list[sa.Row[Any]]:
    q = (
        imports.select()
        .where(imports.c.account_id == account_id)
        .order_by(imports.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(q))


@dataclass(frozen=True)
class ReportChunk:
    """A part of an import's row report as it is stored: compressed Arrow, and its rows."""

    first_row: int
    last_row: int
    data: bytes

    @classmethod
    def of(cls, frame: pl.DataFrame) -> ReportChunk:
        """``frame``'s rows (``row`` …), compressed: it takes no connection, so an import
        does it off the thread that holds the connection."""
        buf = io.BytesIO()
        frame.write_ipc(buf, compression="zstd")
        first, last = frame.select(
            pl.col("row").min().alias("first"), pl.col("row").max().alias("last")
        ).row(0)
        return cls(int(first or 0), int(last or 0), buf.getvalue())


def write_report_chunk(conn: Connection, import_id: int, seq: int, chunk: ReportChunk) -> None:
    conn.execute(
        import_rows.insert().values(
            import_id=import_id,
            seq=seq,
            first_row=chunk.first_row,
            last_row=chunk.last_row,
            data=chunk.data,
        )
    )


def read_report(conn: Connection, import_id: int) -> Iterator[pl.DataFrame]:
    q = (
        sa.select(import_rows.c.data)
        .where(import_rows.c.import_id == import_id)
        .order_by(import_rows.c.seq)
    )
    for (data,) in conn.execute(q):
        yield pl.read_ipc(io.BytesIO(data))


def insert_changed_numbers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(changed_numbers.insert(), rows)


def read_changed_numbers(conn: Connection, import_id: int) -> list[sa.Row[Any]]:
    q = (
        changed_numbers.select()
        .where(changed_numbers.c.import_id == import_id)
        .order_by(changed_numbers.c.row)
    )
    return list(conn.execute(q))


def create_label(
    conn: Connection, account_id: int, name: str, at: datetime, import_id: int | None = None
) -> int:
    result = conn.execute(
        labels.insert().values(account_id=account_id, name=name, import_id=import_id, created_at=at)
    )
    (label_id,) = result.inserted_primary_key or (None,)
    assert isinstance(label_id, int)
    return label_id


def id_ranges(ids: pl.Series) -> list[tuple[int, int]]:
    """Contact ids → runs of consecutive ids, [(first, last), …]."""
    s = ids.unique().sort()
    if s.len() == 0:
        return []
    frame = pl.DataFrame({"id": s}).with_columns(
        (pl.col("id").diff().fill_null(1) != 1).cum_sum().alias("run")
    )
    runs = frame.group_by("run", maintain_order=True).agg(
        pl.col("id").min().alias("first"), pl.col("id").max().alias("last")
    )
    return list(zip(runs["first"].to_list(), runs["last"].to_list(), strict=True))


def add_to_label(conn: Connection, label_id: int, ranges: Iterable[tuple[int, int]]) -> None:
    rows = [{"label_id": label_id, "first_id": a, "last_id": b} for a, b in ranges]
    if rows:
        conn.execute(label_ranges.insert(), rows)


def label_id(conn: Connection, account_id: int, name: str) -> int | None:
    return conn.execute(
        sa.select(labels.c.id).where(labels.c.account_id == account_id, labels.c.name == name)
    ).scalar()


def contacts_in_label(label: int) -> sa.ColumnElement[bool]:
    """A condition on ``contacts`` that holds for the contacts carrying the label."""
    r = label_ranges.alias("r")
    return sa.exists().where(
        r.c.label_id == label, contacts.c.id.between(r.c.first_id, r.c.last_id)
    )
