"""Contacts in and out of the database: the codec between rows and canonical values, fetches by
id, and the set-based writes an import or an edit makes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.model import STORED_BUILTIN_KEYS, AccountSettings, ContactState
from rollbook.store.schema import (
    contact_redirects,
    contacts,
    contacts_with_ids,
    crm_id_aliases,
    events,
    field_bases,
    phone_history,
)

_FLAGS = ("opted_out", "archived")
_TEXT_COLUMNS = tuple(k for k in STORED_BUILTIN_KEYS if k not in _FLAGS)
CHUNK = 5000


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def to_columns(values: dict[str, str | None], settings: AccountSettings) -> dict[str, Any]:
    """Canonical values → the contacts table's columns."""
    row: dict[str, Any] = {k: values.get(k) for k in _TEXT_COLUMNS}
    for k in _FLAGS:
        row[k] = values.get(k) == "true"
    row["custom"] = {
        f.key: values[f.key]
        for f in settings.fields
        if not f.builtin and values.get(f.key) is not None
    }
    return row


def to_values(row: Any, settings: AccountSettings) -> dict[str, str | None]:
    """A contacts row → canonical values, every field of the account present."""
    values: dict[str, str | None] = {k: getattr(row, k) for k in _TEXT_COLUMNS}
    for k in _FLAGS:
        values[k] = "true" if getattr(row, k) else "false"
    custom = row.custom or {}
    for f in settings.fields:
        if not f.builtin:
            values[f.key] = custom.get(f.key)
    return values


def fetch_states(
    conn: Connection, settings: AccountSettings, ids: Iterable[int]
) -> dict[int, ContactState]:
    """The contacts with these ids (those that exist in the account), with their bases."""
    wanted = sorted(set(ids))
    found: dict[int, ContactState] = {}
    for part in chunks(wanted):
        q = contacts.select().where(contacts_with_ids(settings.account_id, part))
        for row in conn.execute(q):
            found[row.id] = ContactState(row.id, to_values(row, settings))
        q = sa.select(field_bases.c.contact_id, field_bases.c.field, field_bases.c.base).where(
            field_bases.c.account_id == settings.account_id, field_bases.c.contact_id.in_(part)
        )
        for cid, key, base in conn.execute(q):
            if cid in found:
                found[cid].bases[key] = base
    return found


def history_holders(
    conn: Connection, account_id: int, phones: Iterable[str]
) -> list[tuple[int, str]]:
    """(contact id, phone) for every former phone among ``phones``."""
    result: list[tuple[int, str]] = []
    for part in chunks(sorted(set(phones))):
        q = sa.select(phone_history.c.contact_id, phone_history.c.phone).where(
            phone_history.c.account_id == account_id, phone_history.c.phone.in_(part)
        )
        result.extend((cid, phone) for cid, phone in conn.execute(q))
    return result


def aliases_for(conn: Connection, account_id: int, crm_ids: Iterable[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for part in chunks(sorted(set(crm_ids))):
        q = sa.select(crm_id_aliases.c.crm_id, crm_id_aliases.c.contact_id).where(
            crm_id_aliases.c.account_id == account_id, crm_id_aliases.c.crm_id.in_(part)
        )
        result.update(dict(conn.execute(q).all()))
    return result


def redirects_for(conn: Connection, account_id: int, ids: Iterable[int]) -> dict[int, int]:
    result: dict[int, int] = {}
    for part in chunks(sorted(set(ids))):
        q = sa.select(contact_redirects.c.old_id, contact_redirects.c.contact_id).where(
            contact_redirects.c.account_id == account_id, contact_redirects.c.old_id.in_(part)
        )
        result.update(dict(conn.execute(q).all()))
    return result


class ContactIds:
    """Hands out fresh contact ids, in order, never used before (deleted contacts' included).

    On SQLite the caller holds the database's write lock (``BEGIN IMMEDIATE``) for the whole
    transaction, so the next id is read once and counted up; AUTOINCREMENT's sqlite_sequence
    remembers the highest id ever used. On PostgreSQL ids come from the contacts sequence, a
    block at a time, over a connection of their own (sequences do not wait for transactions),
    so that handing out ids never waits for the import's writes. An unused rest of a block
    leaves a gap, which is harmless."""

    def __init__(self, conn: Connection, block: int = 1000) -> None:
        self.conn = conn
        self.block = block
        self._next: int | None = None
        self._pool: list[int] = []
        self._sequence_conn: Connection | None = None
        if conn.dialect.name != "postgresql":
            seq = conn.exec_driver_sql(
                "SELECT seq FROM sqlite_sequence WHERE name = 'contacts'"
            ).scalar()
            top = conn.execute(sa.select(sa.func.max(contacts.c.id))).scalar()
            self._next = max(seq or 0, top or 0) + 1

    def take_many(self, count: int) -> list[int]:
        """``count`` fresh ids, ascending."""
        if count == 0:
            return []
        if self._next is not None:
            first, self._next = self._next, self._next + count
            return list(range(first, first + count))
        if len(self._pool) < count:
            if self._sequence_conn is None:
                self._sequence_conn = self.conn.engine.connect()
            q = sa.text(
                "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) "
                "FROM generate_series(1, :n)"
            )
            more = self._sequence_conn.execute(q, {"n": max(count - len(self._pool), self.block)})
            self._sequence_conn.commit()
            self._pool = sorted([*self._pool, *more.scalars()], reverse=True)
        return [self._pool.pop() for _ in range(count)]

    def take(self) -> int:
        return self.take_many(1)[0]

    def close(self) -> None:
        if self._sequence_conn is not None:
            self._sequence_conn.close()
            self._sequence_conn = None


def insert_contacts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(contacts.insert(), rows)


def release_unique_values(
    conn: Connection, account_id: int, ids: Sequence[int], column: str
) -> None:
    """Set ``column`` (phone or crm_id) to NULL on these contacts, so that a batch of changes can
    move values between contacts (even swap them) without tripping the unique index half-way."""
    for part in chunks(list(ids)):
        conn.execute(
            contacts.update().where(contacts_with_ids(account_id, part)).values({column: None})
        )


def update_contacts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Write each row's columns to the contact ``row['id']``; all rows carry the same keys."""
    if not rows:
        return
    keys = [k for k in rows[0] if k != "id"]
    stmt = (
        contacts.update()
        .where(contacts.c.id == sa.bindparam("_id"))
        .values({k: sa.bindparam(k) for k in keys})
    )
    conn.execute(stmt, [{**{k: r[k] for k in keys}, "_id": r["id"]} for r in rows])


def drop_bases(conn: Connection, pairs: Iterable[tuple[int, str]]) -> None:
    pairs = list(pairs)
    if pairs:
        stmt = field_bases.delete().where(
            field_bases.c.contact_id == sa.bindparam("cid"),
            field_bases.c.field == sa.bindparam("key"),
        )
        conn.execute(stmt, [{"cid": c, "key": k} for c, k in pairs])


def set_bases(
    conn: Connection, account_id: int, rows: Iterable[tuple[int, str, str | None]]
) -> None:
    """Set (contact, field) -> base, replacing what was there."""
    rows = list(rows)
    if not rows:
        return
    drop_bases(conn, ((c, k) for c, k, _ in rows))
    conn.execute(
        field_bases.insert(),
        [{"account_id": account_id, "contact_id": c, "field": k, "base": b} for c, k, b in rows],
    )


def insert_phone_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(phone_history.insert(), rows)


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(events.insert(), rows)
