"""Contacts on the platform: list, show, create, edit (SPEC §4), export.

Edits follow the same validation and uniqueness rules as imports. A phone change records its
source and reason and goes into the phone history; the old number is free for others at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.clock import iso, now
from rollbook.editing import EditPlan, plan_edit
from rollbook.errors import Conflict, InvalidInput, NotFound
from rollbook.fields import clean_cell, invalid_reason, normalise_value
from rollbook.importing.mapping import PLATFORM_ID_HEADER
from rollbook.importing.reports import safe_cell, writer
from rollbook.model import (
    CLEAR,
    AccountSettings,
    Changes,
    ContactState,
    FieldType,
    Source,
)
from rollbook.store import Store
from rollbook.store import accounts as q_accounts
from rollbook.store import contacts as q
from rollbook.store import imports as q_imports
from rollbook.store.provenance import contacts_with_provenance, phone_meta, with_provenance
from rollbook.store.schema import (
    contact_redirects,
    contacts,
    crm_id_aliases,
    events,
    field_bases,
    phone_history,
)

EDIT_SOURCES = (Source.STAFF, Source.CONTACT)


def parse_changes(raw: Mapping[str, str], settings: AccountSettings) -> Changes:
    """Typed-in values → changes. ``UNSET`` clears a field; every problem is reported at once."""
    changes: Changes = {}
    problems: list[dict[str, str]] = []
    for key, text in raw.items():
        if key not in settings.keys:
            problems.append({"field": key, "reason": "not a field of this account"})
            continue
        f = settings.field(key)
        if f.type is FieldType.ID:
            problems.append({"field": key, "reason": "the platform id cannot be changed"})
            continue
        cell = clean_cell(text)
        if cell is None:
            problems.append({"field": key, "reason": "empty; type UNSET to clear the field"})
        elif cell is CLEAR:
            changes[key] = CLEAR
        else:
            assert isinstance(cell, str)
            value = normalise_value(f, cell, settings.region)
            if value is None:
                problems.append({"field": key, "reason": invalid_reason(f, settings.region)})
            else:
                changes[key] = value
    if problems:
        raise InvalidInput(
            "; ".join(f"{p['field']}: {p['reason']}" for p in problems), errors=problems
        )
    return changes


def _resolve_id(conn: Connection, account_id: int, contact_id: int) -> int:
    exists = conn.execute(
        sa.select(contacts.c.id).where(
            contacts.c.account_id == account_id, contacts.c.id == contact_id
        )
    ).scalar()
    if exists is not None:
        return contact_id
    survivor = conn.execute(
        sa.select(contact_redirects.c.contact_id).where(
            contact_redirects.c.account_id == account_id,
            contact_redirects.c.old_id == contact_id,
        )
    ).scalar()
    if survivor is None:
        raise NotFound(f"there is no contact {contact_id} in this account", contact_id=contact_id)
    return int(survivor)


def _holder(conn: Connection, account_id: int, column: str, value: str, not_id: int | None) -> Any:
    q_ = sa.select(contacts.c.id, contacts.c.first_name, contacts.c.last_name).where(
        contacts.c.account_id == account_id, contacts.c[column] == value
    )
    if not_id is not None:
        q_ = q_.where(contacts.c.id != not_id)
    return conn.execute(q_).first()


def _describe(row: Any) -> str:
    """The other contact, by id only: messages travel into logs, names must not."""
    return f"contact {row.id}"


def _check_unique(
    conn: Connection, account_id: int, written: Mapping[str, str | None], contact_id: int | None
) -> None:
    phone = written.get("phone")
    if phone and (other := _holder(conn, account_id, "phone", phone, contact_id)):
        raise Conflict(f"this phone belongs to {_describe(other)}", field="phone", other=other.id)
    crm = written.get("crm_id")
    if crm:
        other = _holder(conn, account_id, "crm_id", crm, contact_id)
        alias_of = conn.execute(
            sa.select(crm_id_aliases.c.contact_id).where(
                crm_id_aliases.c.account_id == account_id, crm_id_aliases.c.crm_id == crm
            )
        ).scalar()
        if other is not None:
            raise Conflict(
                f"this CRM ID belongs to {_describe(other)}", field="crm_id", other=other.id
            )
        if alias_of is not None and alias_of != contact_id:
            raise Conflict(
                f"this CRM ID belongs to contact {alias_of} (it was merged into it)",
                field="crm_id",
                other=alias_of,
            )


@dataclass(frozen=True)
class EditSource:
    source: Source = Source.STAFF
    reason: str | None = None
    actor: str | None = None


def set_contact(
    store: Store,
    slug: str,
    contact_id: int,
    raw: Mapping[str, str],
    how: EditSource = EditSource(),
) -> dict[str, Any]:
    """Change fields of one contact; ``UNSET`` clears. Returns the contact as it is now."""
    if how.source not in EDIT_SOURCES:
        raise InvalidInput("an edit comes from staff or from the contact", field="source")
    with store.write() as conn:
        settings = q_accounts.locked_settings(conn, slug)
        changes = parse_changes(raw, settings)
        cid = _resolve_id(conn, settings.account_id, contact_id)
        contact = q.fetch_states(conn, settings, [cid])[cid]
        plan = plan_edit(contact, changes, settings)
        _write_edit(conn, settings, contact, plan, how)
        return _contact_json(conn, settings, cid)


def _write_edit(
    conn: Connection,
    settings: AccountSettings,
    contact: ContactState,
    plan: EditPlan,
    how: EditSource,
) -> None:
    if not plan.written:
        return
    account_id = settings.account_id
    _check_unique(conn, account_id, plan.written, contact.id)
    at = now()
    columns = q.to_columns({**contact.values, **plan.written}, settings)
    # Only the columns the edit changes: a column written again as it was would still count as
    # changed where the store watches it (the kept possible-duplicate index, migration 0005).
    written = {k: v for k, v in columns.items() if k in plan.written}
    if any(k not in columns for k in plan.written):  # a custom field
        written["custom"] = columns["custom"]
    row: dict[str, Any] = {"id": contact.id, **written, "updated_at": at}
    if "phone" in plan.written:
        old_phone = plan.old.get("phone")
        if old_phone is not None:
            meta = phone_meta(conn, account_id, [contact.id])[contact.id]
            q.insert_phone_history(
                conn,
                [
                    {
                        "account_id": account_id,
                        "contact_id": contact.id,
                        "phone": old_phone,
                        "valid_from": meta["phone_since"],
                        "valid_to": at,
                        "source": meta["phone_source"],
                        "reason": meta["phone_reason"],
                        "import_id": meta["phone_import_id"],
                        "row": meta["phone_row"],
                    }
                ],
            )
        # Also when the phone is cleared: when, by whom and why it went stays with the contact.
        row.update(
            phone_since=at,
            phone_source=how.source.value,
            phone_reason=how.reason,
            phone_import_id=None,
            phone_row=None,
        )
    q.update_contacts(conn, [row])
    q.drop_bases(conn, ((contact.id, k) for k in plan.drop_bases))
    q.set_bases(conn, account_id, ((contact.id, k, b) for k, b in plan.set_bases.items()))
    q.insert_events(
        conn,
        [
            {
                "account_id": account_id,
                "contact_id": contact.id,
                "at": at,
                "source": how.source.value,
                "actor": how.actor,
                "import_id": None,
                "row": None,
                "reason": how.reason,
                "changes": {k: [plan.old.get(k), v] for k, v in plan.written.items()},
            }
        ],
    )


def create_contact(
    store: Store, slug: str, raw: Mapping[str, str], how: EditSource = EditSource()
) -> dict[str, Any]:
    """Create one contact on the platform. Required fields and uniqueness as for imports."""
    with store.write() as conn:
        settings = q_accounts.locked_settings(conn, slug)
        changes = parse_changes(raw, settings)
        values = {f.key: f.cleared_value for f in settings.fields if f.type is not FieldType.ID}
        values.update({k: v for k, v in changes.items() if isinstance(v, str)})
        missing = [k for k in settings.required if not values.get(k)]
        if missing:
            raise InvalidInput(f"a new contact needs {', '.join(missing)}", missing=missing)
        _check_unique(conn, settings.account_id, values, None)
        at = now()
        ids = q.ContactIds(conn, block=1)
        cid = ids.take()
        ids.close()
        q.insert_contacts(
            conn,
            [
                {
                    "id": cid,
                    "account_id": settings.account_id,
                    **q.to_columns(values, settings),
                    "created_at": at,
                    "created_source": how.source.value,
                    "created_by": how.actor,
                    # The phone it is created with: its history entry is the creation's, but
                    # for a reason given with it.
                    **(
                        {
                            "phone_since": at,
                            "phone_source": how.source.value,
                            "phone_reason": how.reason,
                        }
                        if how.reason and values.get("phone")
                        else {}
                    ),
                }
            ],
        )
        # Set on the platform: no import sent these values, there is nothing to protect.
        q.set_bases(
            conn,
            settings.account_id,
            ((cid, k, None) for k, v in changes.items() if isinstance(v, str)),
        )
        return _contact_json(conn, settings, cid)


def find_contact(
    store: Store, slug: str, *, crm_id: str | None = None, phone: str | None = None
) -> dict[str, Any]:
    """The contact with this CRM ID (or one merged into it), or this phone (any format)."""
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        account = settings.account_id
        cid: int | None = None
        if crm_id is not None:
            crm_id = crm_id.strip()
            holder = _holder(conn, account, "crm_id", crm_id, None)
            cid = (
                holder.id
                if holder is not None
                else conn.execute(
                    sa.select(crm_id_aliases.c.contact_id).where(
                        crm_id_aliases.c.account_id == account, crm_id_aliases.c.crm_id == crm_id
                    )
                ).scalar()
            )
        elif phone is not None:
            e164 = normalise_value(settings.field("phone"), phone.strip(), settings.region)
            holder = _holder(conn, account, "phone", e164, None) if e164 else None
            cid = holder.id if holder is not None else None
        if cid is None:
            raise NotFound("no contact of this account has it")
        return _contact_json(conn, settings, cid)


def contact_history(store: Store, slug: str, contact_id: int) -> dict[str, Any]:
    detail = get_contact(store, slug, contact_id)
    return {k: detail[k] for k in ("phone_history", "timeline", "bases")}


def get_contact(store: Store, slug: str, contact_id: int) -> dict[str, Any]:
    """One contact with its phone history and its timeline."""
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        cid = _resolve_id(conn, settings.account_id, contact_id)
        result = _contact_json(conn, settings, cid)
        result["phone_history"] = _phone_history(conn, settings.account_id, cid)
        result["timeline"] = _timeline(conn, settings.account_id, cid)
        result["bases"] = {
            k: b
            for k, b in conn.execute(
                sa.select(field_bases.c.field, field_bases.c.base).where(
                    field_bases.c.contact_id == cid, field_bases.c.base.is_not(None)
                )
            )
        }
        return result


def typed(value: str | None, kind: FieldType) -> Any:
    """A canonical value as JSON shows it: booleans and numbers typed, the rest as text."""
    if value is None:
        return None
    if kind is FieldType.BOOLEAN:
        return value == "true"
    if kind is FieldType.NUMBER:
        d = Decimal(value)
        if d == d.to_integral_value() and abs(d) < 2**53:
            return int(d)
        if repr(float(value)) == value:
            return float(value)
    return value


def contact_json(row: Any, settings: AccountSettings) -> dict[str, Any]:
    values = q.to_values(row, settings)
    result: dict[str, Any] = {"id": row.id}
    custom: dict[str, Any] = {}
    for f in settings.fields:
        if f.type is FieldType.ID:
            continue
        (result if f.builtin else custom)[f.key] = typed(values.get(f.key), f.type)
    result["custom"] = custom
    result["created_at"] = iso(row.created_at)
    result["updated_at"] = iso(row.updated_at)
    result["phone_since"] = iso(row.phone_since)
    result["phone_source"] = row.phone_source
    result["phone_reason"] = row.phone_reason
    return result


def _contact_json(conn: Connection, settings: AccountSettings, cid: int) -> dict[str, Any]:
    row = conn.execute(
        contacts_with_provenance().where(
            contacts.c.account_id == settings.account_id, contacts.c.id == cid
        )
    ).first()
    if row is None:
        raise NotFound(f"there is no contact {cid} in this account", contact_id=cid)
    return contact_json(row, settings)


def _phone_history(conn: Connection, account_id: int, cid: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        phone_history.select()
        .where(phone_history.c.account_id == account_id, phone_history.c.contact_id == cid)
        .order_by(phone_history.c.valid_to, phone_history.c.id)
    )
    return [
        {
            "phone": r.phone,
            "from": iso(r.valid_from),
            "to": iso(r.valid_to),
            "source": r.source,
            "reason": r.reason,
            "import_id": r.import_id,
            "row": r.row,
        }
        for r in rows
    ]


def _timeline(conn: Connection, account_id: int, cid: int) -> list[dict[str, Any]]:
    created = conn.execute(
        with_provenance(contacts.c.created_import_id, contacts.c.created_row).where(
            contacts.c.id == cid
        )
    ).one()
    items: list[dict[str, Any]] = [
        {
            "at": iso(created.created_at),
            "what": "created",
            "source": created.created_source,
            "actor": created.created_by,
            "import_id": created.created_import_id,
            "row": created.created_row,
            "reason": None,
            "changes": {},
        }
    ]
    rows = conn.execute(
        events.select()
        .where(events.c.account_id == account_id, events.c.contact_id == cid)
        .order_by(events.c.id)
    )
    items.extend(
        {
            "at": iso(r.at),
            "what": "changed",
            "source": r.source,
            "actor": r.actor,
            "import_id": r.import_id,
            "row": r.row,
            "reason": r.reason,
            "changes": r.changes,
        }
        for r in rows
    )
    return items


@dataclass(frozen=True)
class ContactFilter:
    label: str | None = None
    search: str | None = None
    archived: bool | None = None
    opted_out: bool | None = None
    missing_phone: bool | None = None


def _where(conn: Connection, settings: AccountSettings, flt: ContactFilter) -> list[Any]:
    cond: list[Any] = [contacts.c.account_id == settings.account_id]
    if flt.label:
        label = q_imports.label_id(conn, settings.account_id, flt.label)
        if label is None:
            raise NotFound(f"there is no label {flt.label!r} in this account", label=flt.label)
        cond.append(q_imports.contacts_in_label(label))
    if flt.archived is not None:
        cond.append(contacts.c.archived.is_(flt.archived))
    if flt.opted_out is not None:
        cond.append(contacts.c.opted_out.is_(flt.opted_out))
    if flt.missing_phone is not None:
        cond.append(
            contacts.c.phone.is_(None) if flt.missing_phone else contacts.c.phone.is_not(None)
        )
    if flt.search:
        cond.append(_search(flt.search, settings))
    return cond


def _search(text: str, settings: AccountSettings) -> Any:
    text = text.strip()
    like = f"%{text.lower()}%"
    options = [
        sa.func.lower(contacts.c.first_name).like(like),
        sa.func.lower(contacts.c.last_name).like(like),
        sa.func.lower(
            sa.func.coalesce(contacts.c.first_name, "")
            + " "
            + sa.func.coalesce(contacts.c.last_name, "")
        ).like(like),
        sa.func.lower(contacts.c.email).like(like),
        contacts.c.crm_id == text,
    ]
    phone_field = settings.field("phone")
    phone = normalise_value(phone_field, text, settings.region)
    if phone:
        options.append(contacts.c.phone == phone)
    if re.fullmatch(r"[0-9]{1,18}", text):  # a platform id (ASCII digits, in range)
        options.append(contacts.c.id == int(text))
    return sa.or_(*options)


def list_contacts(
    store: Store,
    slug: str,
    flt: ContactFilter = ContactFilter(),
    *,
    limit: int | None = None,
    offset: int = 0,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """The matching contacts, in id order (a page of them, with ``limit``; ``after`` an id)."""
    return list(iter_contacts(store, slug, flt, limit=limit, offset=offset, after=after))


def iter_contacts(
    store: Store,
    slug: str,
    flt: ContactFilter = ContactFilter(),
    *,
    limit: int | None = None,
    offset: int = 0,
    after: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Like ``list_contacts``, streamed: the read transaction stays open until the iterator is
    exhausted or closed — use it whole (``rollbook contacts list`` does)."""
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        cond = _where(conn, settings, flt)
        if after is not None:
            cond.append(contacts.c.id > after)
        stmt = contacts_with_provenance().where(*cond).order_by(contacts.c.id)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        for row in conn.execution_options(yield_per=5000).execute(stmt):
            yield contact_json(row, settings)


def count_contacts(store: Store, slug: str, flt: ContactFilter = ContactFilter()) -> int:
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(contacts).where(*_where(conn, settings, flt))
            ).scalar_one()
        )


def export_contacts(
    store: Store, slug: str, out: TextIO, flt: ContactFilter = ContactFilter()
) -> int:
    """Write the account's contacts as CSV — formula-safe, and importable back unchanged."""
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        keys = ["id", *(f.key for f in settings.fields if f.key != "id")]
        w = writer(out)
        w.writerow([PLATFORM_ID_HEADER, *keys[1:]])
        n = 0
        stmt = contacts.select().where(*_where(conn, settings, flt)).order_by(contacts.c.id)
        for row in conn.execution_options(yield_per=5000).execute(stmt):
            values = q.to_values(row, settings)
            w.writerow([safe_cell(row.id), *(safe_cell(values.get(k)) for k in keys[1:])])
            n += 1
        return n
