"""Where a contact, and its current phone, came from: when, from which source, why, and — for
imports — which import and row.

A contact an import created stores only the import's id and the row; its time, source and actor
are the import's. Its phone's history entry stays empty while the phone is the one it was created
with. (A fresh import writes a million narrow rows instead of a million wide ones.) These
queries put the full story back together, the same way for every reader: the contact panel, the
changed-numbers report, the phone history an edit or an import writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.model import Source
from rollbook.store.schema import contacts, contacts_with_ids, imports

PHONE_META = ("phone_since", "phone_source", "phone_reason", "phone_import_id", "phone_row")

_created_by = imports.alias("created_by_import")


def _explicit() -> sa.ColumnElement[bool]:
    """Has the phone changed since the contact was created (so the row says where it is from)?"""
    return contacts.c.phone_source.is_not(None)


def creation_columns() -> list[sa.ColumnElement[Any]]:
    """created_at, created_source, created_by as they really are."""
    return [
        sa.func.coalesce(contacts.c.created_at, _created_by.c.started_at).label("created_at"),
        sa.func.coalesce(contacts.c.created_source, sa.literal(Source.IMPORT.value)).label(
            "created_source"
        ),
        sa.case(
            (contacts.c.created_import_id.is_(None), contacts.c.created_by),
            else_=_created_by.c.actor,
        ).label("created_by"),
    ]


def phone_meta_columns() -> list[sa.ColumnElement[Any]]:
    """phone_since, phone_source, phone_reason, phone_import_id, phone_row as they really are."""
    created_at, created_source, _ = creation_columns()
    changed = _explicit()
    return [
        sa.case((changed, contacts.c.phone_since), else_=created_at.element).label("phone_since"),
        sa.case((changed, contacts.c.phone_source), else_=created_source.element).label(
            "phone_source"
        ),
        sa.case((changed, contacts.c.phone_reason), else_=sa.null()).label("phone_reason"),
        sa.case((changed, contacts.c.phone_import_id), else_=contacts.c.created_import_id).label(
            "phone_import_id"
        ),
        sa.case((changed, contacts.c.phone_row), else_=contacts.c.created_row).label("phone_row"),
    ]


def with_provenance(*columns: Any) -> sa.Select[Any]:
    """``SELECT columns…, creation and phone provenance FROM contacts`` (joined to the import
    that created each contact)."""
    return sa.select(*columns, *creation_columns(), *phone_meta_columns()).select_from(
        contacts.outerjoin(_created_by, _created_by.c.id == contacts.c.created_import_id)
    )


def phone_meta(conn: Connection, account_id: int, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Since when, from where and why each contact has its current phone."""
    from rollbook.store.contacts import chunks

    result: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(set(ids))):
        q = with_provenance(contacts.c.id).where(contacts_with_ids(account_id, part))
        for row in conn.execute(q):
            result[row.id] = {k: getattr(row, k) for k in PHONE_META}
    return result


_DERIVED = {"created_at", "created_source", "created_by", "updated_at", *PHONE_META}


def contacts_with_provenance() -> sa.Select[Any]:
    """Every column of ``contacts``, with the provenance columns as they really are."""
    created_at = creation_columns()[0]
    return with_provenance(
        *(c for c in contacts.c if c.name not in _DERIVED),
        sa.func.coalesce(contacts.c.updated_at, created_at.element).label("updated_at"),
    )
