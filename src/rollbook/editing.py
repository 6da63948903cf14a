"""The rules of editing a contact on the platform (SPEC §4), as a pure function: which fields
change, and what happens to their bases (the other half of the three-way merge of imports).

A platform change to a field that is in step with the last import remembers the import's value
as the field's base, so that a stale file cannot bring it back. A change to a field that already
has a base keeps it — unless the field is set back to its base, which drops it. A field no import
ever sent has nothing to remember (its base is recorded as ``None``: nothing to protect) — but
for the built-in flags, which are never empty: their ``false`` is remembered like a value an
import sent, so that a stale file's ``false`` cannot undo an opt-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rollbook.model import AccountSettings, Changes, ContactState


@dataclass
class EditPlan:
    written: dict[str, str | None] = field(default_factory=dict)
    old: dict[str, str | None] = field(default_factory=dict)
    #: field -> base to store (``None``: nothing to protect)
    set_bases: dict[str, str | None] = field(default_factory=dict)
    drop_bases: list[str] = field(default_factory=list)


def plan_edit(contact: ContactState, changes: Changes, settings: AccountSettings) -> EditPlan:
    plan = EditPlan()
    for key, change in changes.items():
        new = change if isinstance(change, str) else settings.field(key).cleared_value
        current = contact.values.get(key)
        if new == current:
            continue
        plan.written[key], plan.old[key] = new, current
        if key in contact.bases:
            base = contact.bases[key]
            if base is not None and new == base:
                plan.drop_bases.append(key)
        else:
            plan.set_bases[key] = current
    return plan


def apply_edit(contact: ContactState, plan: EditPlan) -> None:
    """Make ``plan`` true of ``contact`` (in memory)."""
    old_phone = contact.values.get("phone")
    contact.values.update(plan.written)
    if "phone" in plan.written and old_phone is not None:
        contact.history.append(old_phone)
    for key in plan.drop_bases:
        contact.bases.pop(key, None)
    contact.bases.update(plan.set_bases)
