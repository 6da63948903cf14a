"""The import rules of SPEC §3.3, written plainly, row by row, over in-memory data.

**This module is the definition.** It is deliberately small and slow: one row at a time, in file
order, every lookup a scan. The real engine (``plan.py`` and ``apply.py``) plans in bulk and writes
through the database; a property test generates files and starting states and requires the
engine to end with exactly the outcomes and contacts this module produces. When the two
disagree, this module is right, and ``docs/import-rules.md`` says the same in words.

The engine also uses ``decide_row`` and ``apply_decision`` directly, for the few rows whose keys
(contact, phone, CRM ID) touch another row of the same batch: those must see the state left by
the rows before them, and nothing is clearer than running the definition on them.

Vocabulary: a row's ``changes`` map a field to a canonical value or ``CLEAR``; a field that is not
given (an empty cell) is absent. A contact's ``bases`` map a field to its *base* (the value the
last import sent, kept because the platform has changed the field since) or to ``None`` (the
current value was set on the platform and no import has sent this field: nothing to protect).
A field with no entry in ``bases`` is in sync with the last import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollbook.importing.keys import email_key, name_key, person_key
from rollbook.model import (
    BIRTH_DATE_KEY,
    CLEAR,
    CODE_ORDER,
    AccountSettings,
    Changes,
    Code,
    ContactState,
    FieldDef,
    FieldType,
    RowOutcome,
    Status,
)


@dataclass
class InputRow:
    """One row of a file after mapping and normalisation (SPEC §3.2)."""

    row: int
    changes: Changes
    #: Fields whose cell could not be normalised, with the code that says so.
    invalid: dict[str, Code] = field(default_factory=dict)
    #: Set when the row could not even be split into cells (wrong number of cells).
    unreadable: str | None = None


@dataclass
class Decision:
    """What one row does, decided against the state left by the rows before it."""

    row: int
    status: Status
    codes: tuple[Code, ...] = ()
    contact_id: int | None = None
    #: For a created contact: its values. For an updated one: the fields written, old and new.
    values: dict[str, str | None] = field(default_factory=dict)
    old: dict[str, str | None] = field(default_factory=dict)
    #: Fields whose base is dropped (the source system caught up, or wrote the field).
    drop_bases: tuple[str, ...] = ()
    #: Fields kept on the platform's value because the file still has the base.
    kept: tuple[str, ...] = ()
    #: What a message needs to explain the row (the other contact, the missing fields …).
    detail: dict[str, Any] = field(default_factory=dict)

    def outcome(self) -> RowOutcome:
        return RowOutcome(self.row, self.status, self.codes, self.contact_id)


class State:
    """An account's contacts in memory, with the lookups the rules need."""

    def __init__(
        self,
        contacts: Iterable[ContactState] = (),
        *,
        aliases: Mapping[str, int] | None = None,
        redirects: Mapping[int, int] | None = None,
        next_id: int = 1,
    ) -> None:
        self.contacts: dict[int, ContactState] = {c.id: c for c in contacts}
        self.aliases: dict[str, int] = dict(aliases or {})
        self.redirects: dict[int, int] = dict(redirects or {})
        # Ids are never reused: not those of contacts merged away (redirected) either.
        used = [*self.contacts, *self.redirects]
        self.next_id = max([next_id, *(cid + 1 for cid in used)])

    def __repr__(self) -> str:
        return (
            f"State(contacts={list(self.contacts.values())!r}, aliases={self.aliases!r}, "
            f"redirects={self.redirects!r})"
        )

    def resolve_id(self, contact_id: int) -> int | None:
        contact_id = self.redirects.get(contact_id, contact_id)
        return contact_id if contact_id in self.contacts else None

    def by_crm_id(self, crm_id: str) -> int | None:
        for c in self.contacts.values():
            if c.values.get("crm_id") == crm_id:
                return c.id
        return self.aliases.get(crm_id)

    def by_phone(self, phone: str) -> int | None:
        for c in self.contacts.values():
            if c.values.get("phone") == phone:
                return c.id
        return None

    def possible_duplicate(self, values: Mapping[str, str | None]) -> bool:
        """Would a new contact with these values share an email, a name and birth date, or a
        former phone with a contact already here?"""
        email = values.get("email")
        person = _person(values)
        phone = values.get("phone")
        for c in self.contacts.values():
            theirs = c.values.get("email")
            if email and theirs and email_key(theirs) == email_key(email):
                return True
            if person and _person(c.values) == person:
                return True
            if phone and phone in c.history:
                return True
        return False

    def allocate_id(self) -> int:
        new_id = self.next_id
        self.next_id += 1
        return new_id

    def add(self, contact: ContactState) -> None:
        self.contacts[contact.id] = contact

    def change(self, contact: ContactState, values: Mapping[str, str | None]) -> None:
        """Write ``values`` into ``contact``; a replaced phone goes into its history."""
        old_phone = contact.values.get("phone")
        if "phone" in values and old_phone is not None and values["phone"] != old_phone:
            contact.history.append(old_phone)
        contact.values.update(values)


def empty_values(fields: Iterable[FieldDef]) -> dict[str, str | None]:
    """A contact with nothing set: every field empty, the built-in flags false."""
    return {f.key: f.cleared_value for f in fields if f.type is not FieldType.ID}


def _person(values: Mapping[str, str | None]) -> str | None:
    return person_key(values.get("first_name"), values.get("last_name"), values.get(BIRTH_DATE_KEY))


def _names_agree(contact: ContactState, changes: Changes) -> bool:
    """Case and spacing ignored; a blank side agrees. A name the row clears (UNSET) is not
    blank: it disagrees with any name the contact has — clearing a name is not agreeing to it."""
    for key in ("first_name", "last_name"):
        mine, theirs = changes.get(key), contact.values.get(key)
        if mine is None or not theirs:
            continue
        if mine is CLEAR or name_key(mine) != name_key(theirs):  # type: ignore[arg-type]
            return False
    return True


def _sorted_codes(codes: Iterable[Code]) -> tuple[Code, ...]:
    present = set(codes)
    return tuple(c for c in CODE_ORDER if c in present)


def repeated_keys(rows: Iterable[InputRow]) -> tuple[set[str], set[str]]:
    """The CRM IDs and the ids that more than one row of the file has."""
    crm_ids: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    for r in rows:
        if isinstance(crm := r.changes.get("crm_id"), str):
            crm_ids[crm] += 1
        if isinstance(cid := r.changes.get("id"), str):
            ids[cid] += 1
    return {k for k, n in crm_ids.items() if n > 1}, {k for k, n in ids.items() if n > 1}


def precheck(row: InputRow, repeated_crm_ids: set[str], repeated_ids: set[str]) -> Decision | None:
    """The whole-file checks (repeats) and validation: a skip, or None if the row goes on."""
    if row.unreadable is not None:
        return Decision(row.row, Status.SKIPPED, (Code.INVALID_VALUE,), detail={"unreadable": True})
    codes = set(row.invalid.values())
    if row.changes.get("crm_id") in repeated_crm_ids:
        codes.add(Code.DUPLICATE_UNIQUE_ID_CRM_ID)
    if row.changes.get("id") in repeated_ids:
        codes.add(Code.DUPLICATE_UNIQUE_ID_ID)
    if codes:
        return Decision(row.row, Status.SKIPPED, _sorted_codes(codes))
    return None


def decide_row(state: State, row: InputRow, settings: AccountSettings) -> Decision:
    """Steps 2–5 of SPEC §3.3 for one valid row: identify, required, three-way, phone unique.
    Does not change ``state``; ``apply_decision`` does."""
    changes = row.changes
    raw_id, crm_id, phone = changes.get("id"), changes.get("crm_id"), changes.get("phone")
    crm_id = crm_id if isinstance(crm_id, str) else None
    phone = phone if isinstance(phone, str) else None

    def skip(code: Code, contact_id: int | None = None, **detail: Any) -> Decision:
        return Decision(row.row, Status.SKIPPED, (code,), contact_id, detail=detail)

    # 2. Identify.
    target: int | None = None
    crm_via_alias = False
    if isinstance(raw_id, str):
        target = state.resolve_id(int(raw_id))
        if target is None:
            return skip(Code.UNKNOWN_ID)
        if crm_id is not None:
            holder = state.by_crm_id(crm_id)
            if holder is not None and holder != target:
                return skip(Code.CRM_ID_CONFLICT, target, other=holder)
            theirs = state.contacts[target].values["crm_id"]
            if holder is None and theirs is not None:
                # A CRM ID nobody has names a new contact; the id's contact has another one.
                return skip(Code.CRM_ID_CONFLICT, target, other=None)
            crm_via_alias = holder == target and theirs != crm_id
    elif crm_id is not None:
        target = state.by_crm_id(crm_id)
        crm_via_alias = target is not None and state.contacts[target].values["crm_id"] != crm_id
    elif phone is not None and (owner := state.by_phone(phone)) is not None:
        if not _names_agree(state.contacts[owner], changes):
            return skip(Code.DUPLICATE_CONTACT, other=owner, names_differ=True)
        target = owner

    if target is None:
        return _decide_new(state, row, settings, phone)

    # 4. Platform edits are sticky: the three-way merge, field by field. A row found by the
    # platform id is the platform's own data (an export, a clean-up sheet), not the student
    # system catching up: its values equal to the platform's keep the bases.
    by_platform_id = isinstance(raw_id, str)
    contact = state.contacts[target]
    written: dict[str, str | None] = {}
    old: dict[str, str | None] = {}
    drop: list[str] = []
    kept: list[str] = []
    for key, change in changes.items():
        if key == "id" or (key == "crm_id" and crm_via_alias):
            continue
        current = contact.values[key]
        has_base = key in contact.bases
        if change is CLEAR:
            cleared = settings.field(key).cleared_value
            if current != cleared:
                written[key], old[key] = cleared, current
            if has_base:
                drop.append(key)
        elif change == current:
            if has_base and not by_platform_id:
                drop.append(key)
        elif has_base and contact.bases[key] is not None and change == contact.bases[key]:
            kept.append(key)
        else:
            assert isinstance(change, str)
            written[key], old[key] = change, current
            if has_base:
                drop.append(key)

    # 5. Phone is unique: the phone this row would actually write.
    new_phone = written.get("phone")
    if new_phone is not None:
        holder = state.by_phone(new_phone)
        if holder is not None and holder != target:
            return skip(Code.DUPLICATE_CONTACT, target, other=holder)

    codes = (Code.CONTACT_OUT_OF_SYNC,) if kept else ()
    return Decision(
        row.row,
        Status.UPDATED if written else Status.UNCHANGED,
        codes,
        target,
        values=written,
        old=old,
        drop_bases=tuple(drop),
        kept=tuple(kept),
    )


def _decide_new(
    state: State, row: InputRow, settings: AccountSettings, phone: str | None
) -> Decision:
    # 3. Required fields of a new contact.
    missing = [k for k in settings.required if not isinstance(row.changes.get(k), str)]
    if missing:
        return Decision(
            row.row, Status.SKIPPED, (Code.BLANK_REQUIRED,), detail={"missing": missing}
        )
    # 5. Phone is unique.
    if phone is not None and (holder := state.by_phone(phone)) is not None:
        return Decision(
            row.row, Status.SKIPPED, (Code.DUPLICATE_CONTACT,), detail={"other": holder}
        )
    values = empty_values(settings.fields)
    for key, change in row.changes.items():
        if key != "id" and isinstance(change, str):
            values[key] = change
    return Decision(row.row, Status.CREATED, (), None, values=values)


def apply_decision(state: State, decision: Decision) -> int | None:
    """Step 6: make the decision true in ``state``; returns the contact id (new ones get one)."""
    if decision.status is Status.SKIPPED:
        return None
    if decision.status is Status.CREATED:
        new = ContactState(state.allocate_id(), dict(decision.values))
        state.add(new)
        decision.contact_id = new.id
        return new.id
    assert decision.contact_id is not None
    contact = state.contacts[decision.contact_id]
    for key in decision.drop_bases:
        contact.bases.pop(key, None)
    state.change(contact, decision.values)
    return contact.id


def reference_import(
    state: State, rows: list[InputRow], settings: AccountSettings
) -> list[Decision]:
    """Import ``rows`` into ``state``, in file order. Returns one decision per row."""
    repeated_crm_ids, repeated_ids = repeated_keys(rows)
    decisions = []
    for row in rows:
        decision = precheck(row, repeated_crm_ids, repeated_ids)
        if decision is None:
            decision = decide_row(state, row, settings)
            if decision.status is Status.CREATED and state.possible_duplicate(decision.values):
                decision.codes = (Code.POSSIBLE_DUPLICATE,)
            apply_decision(state, decision)
        decisions.append(decision)
    return decisions
