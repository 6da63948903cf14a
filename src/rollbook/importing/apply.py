"""Writing a batch's plan through the store, set-based.

Order matters only for the unique phone and CRM ID: contacts whose phone or CRM ID the batch
changes first let go of them, then every changed contact gets its final values, then the new
contacts are inserted. The plan's final state is consistent (the rules saw to that), so no
statement trips the unique indexes half-way, even when a batch swaps two contacts' numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from rollbook.importing.plan import BatchPlan
from rollbook.importing.rules import Decision
from rollbook.model import AccountSettings, ContactState, Source, Status
from rollbook.store import contacts as store


@dataclass(frozen=True)
class ImportContext:
    import_id: int
    settings: AccountSettings
    at: datetime
    actor: str | None = None
    #: A dry run: everything happens and is rolled back at the end.
    preview: bool = False


def apply_plan(conn: Connection, ctx: ImportContext, plan: BatchPlan) -> list[tuple[str, int]]:
    """Write ``plan``. Returns the phones that became former phones, with their contact."""
    account_id = ctx.settings.account_id
    # Who wrote each contact's phone last in this batch, and the history it leaves behind.
    phone_written = {
        d.contact_id
        for d in plan.decisions
        if d.status is Status.UPDATED and "phone" in d.values and d.contact_id is not None
    }
    phone_meta = store.phone_meta(conn, account_id, phone_written & set(plan.before))
    history: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    bases: list[tuple[int, str]] = []
    created: dict[int, int] = {}  # contact id -> the row that created it, in row order
    for d in plan.decisions:
        if d.contact_id is None or d.status is Status.SKIPPED:
            continue
        cid = d.contact_id
        if d.status is Status.CREATED:
            created[cid] = d.row
            phone_meta[cid] = _meta(ctx, d.row) if d.values.get("phone") else _no_meta()
            continue
        bases.extend((cid, key) for key in d.drop_bases)
        if d.status is Status.UNCHANGED:
            continue
        events.append(_event(ctx, cid, d))
        if "phone" in d.values:
            old_phone = d.old.get("phone")
            if old_phone is not None:
                history.append(_history_row(account_id, cid, old_phone, phone_meta[cid], ctx.at))
            phone_meta[cid] = _meta(ctx, d.row) if d.values["phone"] else _no_meta()

    changed = {cid: c for cid, c in plan.after.items() if cid not in created}
    for column in ("phone", "crm_id"):
        moving = [
            cid
            for cid, c in changed.items()
            if c.values.get(column) != plan.before[cid].values.get(column)
        ]
        store.release_unique_values(conn, account_id, moving, column)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for cid, c in changed.items():
        row = {"id": cid, **store.to_columns(c.values, ctx.settings), "updated_at": ctx.at}
        if cid in phone_written:
            row.update(phone_meta[cid])
        by_shape.setdefault(tuple(row), []).append(row)
    for rows in by_shape.values():
        store.update_contacts(conn, rows)
    store.insert_contacts(
        conn,
        [_new_row(ctx, cid, row, plan.after[cid], phone_meta[cid]) for cid, row in created.items()],
    )
    store.drop_bases(conn, bases)
    store.insert_phone_history(conn, history)
    store.insert_events(conn, events)
    return [(h["phone"], h["contact_id"]) for h in history]


def _event(ctx: ImportContext, cid: int, d: Decision) -> dict[str, Any]:
    return {
        "account_id": ctx.settings.account_id,
        "contact_id": cid,
        "at": ctx.at,
        "source": Source.IMPORT.value,
        "actor": ctx.actor,
        "import_id": ctx.import_id,
        "row": d.row,
        "reason": None,
        "changes": {k: [d.old.get(k), v] for k, v in d.values.items()},
    }


def _meta(ctx: ImportContext, row: int) -> dict[str, Any]:
    return {
        "phone_since": ctx.at,
        "phone_source": Source.IMPORT.value,
        "phone_reason": None,
        "phone_import_id": ctx.import_id,
        "phone_row": row,
    }


def _no_meta() -> dict[str, Any]:
    return dict.fromkeys(store.PHONE_META)


def _history_row(
    account_id: int, cid: int, phone: str, meta: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "contact_id": cid,
        "phone": phone,
        "valid_from": meta.get("phone_since"),
        "valid_to": at,
        "source": meta.get("phone_source"),
        "reason": meta.get("phone_reason"),
        "import_id": meta.get("phone_import_id"),
        "row": meta.get("phone_row"),
    }


def _new_row(
    ctx: ImportContext, cid: int, row: int, c: ContactState, meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": cid,
        "account_id": ctx.settings.account_id,
        **store.to_columns(c.values, ctx.settings),
        "created_at": ctx.at,
        "created_source": Source.IMPORT.value,
        "created_by": ctx.actor,
        "created_import_id": ctx.import_id,
        "created_row": row,
        "updated_at": ctx.at,
        **meta,
    }
