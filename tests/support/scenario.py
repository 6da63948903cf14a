"""Putting a reference ``State`` into a database and reading one back, so that the engine and the
reference rules can start from the same contacts and be compared on where they end."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa

from rollbook.fields import clean_cell, normalise_value
from rollbook.importing import flags
from rollbook.importing.flags import FlagIndex, IndexRead
from rollbook.importing.rules import InputRow, State
from rollbook.model import (
    BIRTH_DATE_KEY,
    CLEAR,
    AccountSettings,
    Code,
    ContactState,
    FieldType,
    _Clear,
)
from rollbook.store import Store, bulk, flag_index
from rollbook.store import contacts as q
from rollbook.store.accounts import settings_for
from rollbook.store.schema import (
    contact_redirects,
    contacts,
    crm_id_aliases,
    field_bases,
    metadata,
    phone_history,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def reset(store: Store) -> None:
    """Empty every table (for the examples of one Hypothesis test, which share a database)."""
    with store.engine.begin() as conn:
        if store.is_postgres:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in reversed(metadata.sorted_tables):
                conn.execute(t.delete())
            conn.exec_driver_sql("DELETE FROM sqlite_sequence")


def seed(store: Store, settings: AccountSettings, state: State) -> None:
    """Write ``state``'s contacts, bases, former phones, aliases and redirects."""
    aid = settings.account_id
    with store.write() as conn:
        for c in sorted(state.contacts.values(), key=lambda c: c.id):
            conn.execute(
                contacts.insert().values(
                    id=c.id,
                    account_id=aid,
                    **q.to_columns(c.values, settings),
                    created_at=T0,
                    created_source="system",
                    updated_at=T0,
                    phone_since=T0 if c.values.get("phone") else None,
                    phone_source="system" if c.values.get("phone") else None,
                )
            )
            for key, base in c.bases.items():
                conn.execute(
                    field_bases.insert().values(
                        account_id=aid, contact_id=c.id, field=key, base=base
                    )
                )
            for phone in c.history:
                conn.execute(
                    phone_history.insert().values(
                        account_id=aid, contact_id=c.id, phone=phone, valid_to=T0, source="system"
                    )
                )
        for crm, cid in state.aliases.items():
            conn.execute(crm_id_aliases.insert().values(account_id=aid, crm_id=crm, contact_id=cid))
        for old, cid in state.redirects.items():
            conn.execute(
                contact_redirects.insert().values(account_id=aid, old_id=old, contact_id=cid)
            )
        # Ids are never reused, merged-away ones included: the id sequence has passed them.
        top = max([*state.contacts, *state.redirects], default=0)
        if top and store.is_postgres:
            conn.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('contacts', 'id'), :n)"), {"n": top}
            )
        elif top:
            conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'contacts'")
            conn.exec_driver_sql(
                "INSERT INTO sqlite_sequence(name, seq) VALUES ('contacts', ?)", (top,)
            )


def snapshot(store: Store, slug: str) -> dict[int, ContactState]:
    """Every contact of the account, with values, bases and former phones (oldest first)."""
    with store.read() as conn:
        settings = settings_for(conn, slug)
        ids = conn.execute(
            sa.select(contacts.c.id).where(contacts.c.account_id == settings.account_id)
        ).scalars()
        states = q.fetch_states(conn, settings, list(ids))
        rows = conn.execute(
            sa.select(phone_history.c.contact_id, phone_history.c.phone)
            .where(phone_history.c.account_id == settings.account_id)
            .order_by(phone_history.c.id)
        )
        for cid, phone in rows:
            states[cid].history.append(phone)
        return states


def reference_rows(
    headers: list[str], cells: list[list[str]], settings: AccountSettings, explicit: dict[str, str]
) -> list[InputRow]:
    """A file's rows as the reference reads them, cell by cell with the scalar normalisers —
    not the engine's reader and vectorised ones."""
    rows = []
    for number, record in enumerate(cells, start=2):
        changes: dict[str, str | _Clear] = {}
        invalid: dict[str, Code] = {}
        for header, raw in zip(headers, record, strict=True):
            f = settings.field(explicit[header])
            cell = clean_cell(raw)
            if cell is None:
                continue
            if cell is CLEAR:
                if f.type is FieldType.ID:
                    invalid[f.key] = f.invalid_code
                else:
                    changes[f.key] = CLEAR
                continue
            assert isinstance(cell, str)
            value = normalise_value(f, cell, settings.region)
            if value is None:
                invalid[f.key] = f.invalid_code
            else:
                changes[f.key] = value
        if changes or invalid:
            rows.append(InputRow(number, changes, invalid))
    return rows


def kept_index(store: Store, slug: str) -> pl.DataFrame | None:
    """The possible-duplicate index the last import kept, if the next import would use it."""
    with store.read() as conn:
        settings = settings_for(conn, slug)
        return flag_index.read_snapshot(conn, settings.account_id, flags.stamp(settings))


def computed_index(store: Store, slug: str) -> pl.DataFrame:
    """The possible-duplicate index's keys as an import that finds none kept makes them:
    every contact's keys, read and hashed (by id)."""
    with store.read() as conn:
        settings = settings_for(conn, slug)
        born = BIRTH_DATE_KEY if settings.has_birth_date else None
        stored = bulk.contact_keys(conn, settings.account_id, born)
    index = FlagIndex()
    none = pl.DataFrame(schema={"phone": pl.String, "id": pl.Int64})
    index.load(IndexRead(None, stored, none), replay=False)
    return index.keys.sort("id")
