"""Writing a batch's plan through the store, set-based.

Order matters only for the unique phone and CRM ID: contacts whose phone or CRM ID moves within
the batch (rows decided one by one can pass a number from one contact to another, even swap two)
first let go of it, then every changed contact gets its final values, then the new contacts are
inserted. The plan's final state is consistent — the rules saw to that — so no statement trips
the unique indexes half-way.

A plan's phone history and events are written apart (``apply_rest``): no read of the import
needs them, so the engine queues them once the next batch comes — after its read, where it
has one, which would otherwise wait for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from rollbook.importing.plan import BatchPlan
from rollbook.model import AccountSettings, Source
from rollbook.store import bulk
from rollbook.store import contacts as store
from rollbook.store.database import grow_cache
from rollbook.store.provenance import phone_meta


@dataclass(frozen=True)
class ImportContext:
    import_id: int
    settings: AccountSettings
    at: datetime
    actor: str | None = None
    #: A dry run: everything happens and is rolled back at the end.
    preview: bool = False


def _store_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical values -> the store's columns (the flags as booleans; custom is JSON already)."""
    return frame.with_columns_seq(
        (pl.col("opted_out") == "true").alias("opted_out"),
        (pl.col("archived") == "true").alias("archived"),
    )


def apply_plan(conn: Connection, ctx: ImportContext, plan: BatchPlan) -> list[tuple[Any, ...]]:
    """Write ``plan``'s contacts (values, bases, new contacts). Returns the history entries of
    the numbers it replaced, made from their contacts' phone details as they were before its
    updates: for ``apply_rest``, later on the same connection."""
    settings = ctx.settings
    account_id = settings.account_id
    if plan.created.height or plan.updated.height:
        grow_cache(conn)
    for column, ids in plan.moving.items():
        store.release_unique_values(conn, account_id, ids, column)

    # The history entry of each replaced phone: since when, from where, why it was there.
    movers = {cid for cid, _, _ in plan.former_phones}
    meta = phone_meta(conn, account_id, movers - set(plan.created["id"]))
    for cid, row in (
        plan.created.filter(pl.col("id").is_in(list(movers)))
        .select_seq("id", "created_row")
        .iter_rows()
    ):
        meta[cid] = _import_meta(ctx, row)
    history = []
    for cid, phone, row in plan.former_phones:
        history.append(_history_row(account_id, cid, phone, meta[cid], ctx.at))
        meta[cid] = _import_meta(ctx, row)

    # The bases go first: dropping one empties the contact's print (a trigger), and the update
    # writes the print the contact keeps.
    bulk.delete_bases(conn, plan.dropped_bases)
    bulk.update_contacts(
        conn,
        _store_columns(plan.updated),
        at=ctx.at,
        source=Source.IMPORT.value,
        import_id=ctx.import_id,
    )
    bulk.insert_contacts(
        conn,
        _store_columns(plan.created),
        account_id=account_id,
        import_id=ctx.import_id,
    )
    return history


def apply_rest(
    conn: Connection, ctx: ImportContext, plan: BatchPlan, history: list[tuple[Any, ...]]
) -> None:
    """Write ``plan``'s phone history (``history``, from ``apply_plan``) and events."""
    account_id = ctx.settings.account_id
    bulk.insert_history(conn, history)
    bulk.insert_events(
        conn,
        [
            (account_id, cid, ctx.at, Source.IMPORT.value, ctx.actor, ctx.import_id, row, changes)
            for cid, row, changes in plan.events
        ],
    )


def _import_meta(ctx: ImportContext, row: int) -> dict[str, Any]:
    return {
        "phone_since": ctx.at,
        "phone_source": Source.IMPORT.value,
        "phone_reason": None,
        "phone_import_id": ctx.import_id,
        "phone_row": row,
    }


def _history_row(
    account_id: int, cid: int, phone: str, meta: dict[str, Any], at: datetime
) -> tuple[Any, ...]:
    return (
        account_id,
        cid,
        phone,
        meta.get("phone_since"),
        at,
        meta.get("phone_source"),
        meta.get("phone_reason"),
        meta.get("phone_import_id"),
        meta.get("phone_row"),
    )
