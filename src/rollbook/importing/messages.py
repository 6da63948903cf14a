"""The readable message of each row in the row report: what happened and how to fix the file.

Messages name columns, fields, rows and contact ids — never names, phones, emails or other
personal data (the row report outlives the contacts it mentions, and messages travel into
logs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rollbook.fields import invalid_reason
from rollbook.importing.rules import Decision, InputRow
from rollbook.model import AccountSettings, Code, Status


@dataclass
class MessageContext:
    settings: AccountSettings
    #: field key -> the header of the column it came from
    headers: Mapping[str, str]
    #: repeated CRM ID / id -> the rows it appears in (the first few)
    repeated_crm_rows: Mapping[str, Sequence[int]] = field(default_factory=dict)
    repeated_id_rows: Mapping[str, Sequence[int]] = field(default_factory=dict)


def _rows(rows: Sequence[int], this: int) -> str:
    others = [r for r in rows if r != this]
    shown = ", ".join(str(r) for r in others[:5])
    more = "…" if len(others) > 5 else ""
    return f"row{'s' if len(others) > 1 else ''} {shown}{more}"


def _fields(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def row_message(d: Decision, row: InputRow, ctx: MessageContext) -> str:
    if d.status is Status.CREATED:
        text = "New contact."
        if Code.POSSIBLE_DUPLICATE in d.codes:
            text += (
                " It shares an email, a name and birth date, or a former phone with an existing"
                " contact: check it under Duplicates."
            )
        return text
    if d.status in (Status.UPDATED, Status.UNCHANGED):
        text = f"Updated {_fields(list(d.values))}." if d.status is Status.UPDATED else "No change."
        if d.kept:
            text += (
                f" Kept the platform's {_fields(d.kept)}: the file still has the value it had "
                "before it was changed on the platform. Update your student system (see the "
                "changed-numbers report)."
            )
        return text
    return " ".join(_skip_reason(code, d, row, ctx) for code in d.codes)


def _skip_reason(code: Code, d: Decision, row: InputRow, ctx: MessageContext) -> str:
    other = d.detail.get("other")
    if code in (Code.INVALID_PHONE, Code.INVALID_EMAIL, Code.INVALID_VALUE):
        if row.unreadable is not None:
            return f"The row cannot be read: {row.unreadable}."
        parts = [
            f"Column {ctx.headers.get(key, key)!r}: "
            f"{invalid_reason(ctx.settings.field(key), ctx.settings.region)}."
            for key, c in row.invalid.items()
            if c is code
        ]
        return " ".join(parts)
    if code is Code.DUPLICATE_UNIQUE_ID_CRM_ID:
        crm = row.changes.get("crm_id")
        rows = ctx.repeated_crm_rows.get(crm, ()) if isinstance(crm, str) else ()
        return (
            f"This CRM ID is also in {_rows(rows, row.row)}; rollbook cannot know which row is "
            "right, so all of them are skipped."
        )
    if code is Code.DUPLICATE_UNIQUE_ID_ID:
        cid = row.changes.get("id")
        rows = ctx.repeated_id_rows.get(cid, ()) if isinstance(cid, str) else ()
        return f"This id is also in {_rows(rows, row.row)}; all of them are skipped."
    if code is Code.UNKNOWN_ID:
        return f"No contact of this account has the id {row.changes.get('id')}."
    if code is Code.CRM_ID_CONFLICT:
        return (
            f"The id is contact {d.contact_id}'s, but the CRM ID belongs to contact {other}; "
            "fix one of them."
        )
    if code is Code.BLANK_REQUIRED:
        missing = d.detail.get("missing", [])
        return f"A new contact needs {_fields(missing)}; the row has none, so it was not created."
    if code is Code.DUPLICATE_CONTACT:
        if d.detail.get("names_differ"):
            return (
                f"The phone belongs to contact {other}, whose name differs: it is someone else's "
                "number (a shared family phone never renames a person). The row was skipped."
            )
        if d.contact_id is None:
            return (
                f"The phone belongs to contact {other}, so no new contact can have it; the row "
                f"was skipped. If it is the same person, give contact {other} this CRM ID — on "
                "the platform, or with a file that has its rollbook_id and the CRM ID."
            )
        return (
            f"The phone belongs to contact {other}; the whole row was skipped. If the number "
            f"really moved to this person, clear it on contact {other} first."
        )
    return code.summary
