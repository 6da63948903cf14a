"""Queries on accounts, their custom fields and their remembered mapping."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.clock import now
from rollbook.errors import NotFound
from rollbook.model import BUILTIN_FIELDS, AccountSettings, FieldDef, FieldType
from rollbook.store.database import lock_account
from rollbook.store.schema import accounts, contacts, field_bases, field_defs, jobs, mappings


def insert_account(conn: Connection, slug: str, name: str, region: str) -> int:
    result = conn.execute(
        accounts.insert().values(
            slug=slug, name=name, region=region, required_fields=["phone"], created_at=now()
        )
    )
    (account_id,) = result.inserted_primary_key or (None,)
    assert isinstance(account_id, int)
    return account_id


def slug_taken(conn: Connection, slug: str) -> bool:
    return conn.execute(sa.select(accounts.c.id).where(accounts.c.slug == slug)).first() is not None


def account_row(conn: Connection, slug: str) -> sa.Row[Any]:
    row = conn.execute(accounts.select().where(accounts.c.slug == slug)).first()
    if row is None:
        raise NotFound(f"there is no account {slug!r}", account=slug)
    return row


def list_accounts(conn: Connection) -> list[sa.Row[Any]]:
    return list(conn.execute(accounts.select().order_by(accounts.c.slug)))


def custom_fields(conn: Connection, account_id: int) -> list[FieldDef]:
    rows = conn.execute(
        field_defs.select()
        .where(field_defs.c.account_id == account_id)
        .order_by(field_defs.c.position, field_defs.c.id)
    )
    return [FieldDef(r.key, FieldType(r.type), r.label, tuple(r.options or ())) for r in rows]


def settings_for(conn: Connection, slug: str) -> AccountSettings:
    """Everything an import or an edit needs to know about the account ``slug``."""
    row = account_row(conn, slug)
    return AccountSettings(
        account_id=row.id,
        slug=row.slug,
        region=row.region,
        fields=(*BUILTIN_FIELDS, *custom_fields(conn, row.id)),
        required=tuple(row.required_fields),
    )


def locked_settings(conn: Connection, slug: str) -> AccountSettings:
    """``settings_for`` the account, read once this transaction holds its writers' lock
    (``lock_account``). On PostgreSQL a read before the lock can miss what a writer it then
    waited for committed — a field renamed — and the transaction would go on with the old."""
    lock_account(conn, account_row(conn, slug).id)
    return settings_for(conn, slug)


def insert_field(conn: Connection, account_id: int, f: FieldDef) -> None:
    position = conn.execute(
        sa.select(sa.func.count())
        .select_from(field_defs)
        .where(field_defs.c.account_id == account_id)
    ).scalar_one()
    conn.execute(
        field_defs.insert().values(
            account_id=account_id,
            key=f.key,
            label=f.label,
            type=f.type.value,
            options=list(f.options),
            position=position,
        )
    )


def rename_field(
    conn: Connection, account_id: int, key: str, new_key: str, label: str | None
) -> None:
    """Give the custom field ``key`` the key ``new_key`` wherever the account keeps it: its
    definition, the required fields, the remembered mapping, the merge bases, every contact's
    custom values and the mappings of queued jobs and previews. (Past imports, finished
    imports' jobs and events keep the key they were made with.)"""
    account = accounts.c.id == account_id
    values: dict[str, Any] = {"key": new_key}
    if label is not None:
        values["label"] = label
    conn.execute(
        field_defs.update()
        .where(field_defs.c.account_id == account_id, field_defs.c.key == key)
        .values(**values)
    )
    if new_key == key:
        return
    required = conn.execute(sa.select(accounts.c.required_fields).where(account)).scalar_one()
    if key in required:
        renamed = [new_key if k == key else k for k in required]
        conn.execute(accounts.update().where(account).values(required_fields=renamed))
    conn.execute(
        mappings.update()
        .where(mappings.c.account_id == account_id, mappings.c.field == key)
        .values(field=new_key)
    )
    conn.execute(
        field_bases.update()
        .where(field_bases.c.account_id == account_id, field_bases.c.field == key)
        .values(field=new_key)
    )
    # The mappings jobs still act on: a queued job's, and a preview's ("Import now" reuses it).
    waiting = conn.execute(
        sa.select(jobs.c.id, jobs.c.options).where(
            jobs.c.account_id == account_id,
            sa.or_(jobs.c.status == "queued", jobs.c.kind == "preview"),
        )
    )
    for job_id, options in waiting.all():
        mapped: dict[str, str] = options.get("mapping") or {}
        if key in mapped.values():
            remapped = {h: new_key if f == key else f for h, f in mapped.items()}
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(options={**options, "mapping": remapped})
            )
    # Keys are letters, digits and underscores: safe inside a JSON path. Every value is a JSON
    # string (importing/prepare.custom_json, store/contacts.to_columns), which ``json_set``
    # writes back as one.
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "UPDATE contacts SET custom = (custom - CAST(:key AS text)) "
                "|| jsonb_build_object(CAST(:new_key AS text), custom -> CAST(:key AS text)) "
                "WHERE account_id = :account AND custom ? CAST(:key AS text)"
            ),
            {"key": key, "new_key": new_key, "account": account_id},
        )
    else:
        conn.execute(
            sa.text(
                "UPDATE contacts SET custom = json_set(json_remove(custom, :old_path), "
                ":new_path, json_extract(custom, :old_path)) "
                "WHERE account_id = :account AND json_type(custom, :old_path) IS NOT NULL"
            ),
            {"old_path": f"$.{key}", "new_path": f"$.{new_key}", "account": account_id},
        )


def set_account_options(conn: Connection, account_id: int, **values: Any) -> None:
    conn.execute(accounts.update().where(accounts.c.id == account_id).values(**values))


def has_contacts(conn: Connection, account_id: int) -> bool:
    q = sa.select(contacts.c.id).where(contacts.c.account_id == account_id).limit(1)
    return conn.execute(q).first() is not None


def has_prints(conn: Connection, account_id: int) -> bool:
    """Does any contact of the account have an import print (importing/prints.py)?"""
    q = sa.select(contacts.c.id).where(
        contacts.c.account_id == account_id, contacts.c.import_print.is_not(None)
    )
    return conn.execute(q.limit(1)).first() is not None


def uses_crm_ids(conn: Connection, account_id: int) -> bool:
    """Does any contact of the account have a CRM ID?"""
    q = sa.select(contacts.c.id).where(
        contacts.c.account_id == account_id, contacts.c.crm_id.is_not(None)
    )
    return conn.execute(q.limit(1)).first() is not None


def remembered_mapping(conn: Connection, account_id: int) -> dict[str, tuple[str, str]]:
    """header key -> (header as last seen, field) for every header an import has mapped."""
    rows = conn.execute(mappings.select().where(mappings.c.account_id == account_id))
    return {r.header_key: (r.header, r.field) for r in rows}


def remember_mapping(
    conn: Connection, account_id: int, pairs: Iterable[tuple[str, str, str]], import_id: int
) -> None:
    """Store (header key, header, field) triples; the latest import wins."""
    at = now()
    for key, header, field in pairs:
        conn.execute(
            mappings.delete().where(
                mappings.c.account_id == account_id, mappings.c.header_key == key
            )
        )
        conn.execute(
            mappings.insert().values(
                account_id=account_id,
                header_key=key,
                header=header,
                field=field,
                import_id=import_id,
                updated_at=at,
            )
        )
