"""Planning a batch: decide every row of it, against the state left by the rows before it.

The batch's *candidates* (the contacts any of its rows can identify, clash with or resemble —
found with the key index) are read with their exact values into a ``BatchState``: the reference
``State`` with dictionaries in place of scans. Because every contact a row can reach is in it,
running the reference rules on it decides each row exactly as the reference would on the whole
account. The plan is data: the decisions, and the contacts as they stand after the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from rollbook.importing.index import KeyIndex
from rollbook.importing.keys import email_key, person_key
from rollbook.importing.normalise import NormalisedBatch, input_rows
from rollbook.importing.rules import (
    Decision,
    InputRow,
    State,
    apply_decision,
    decide_row,
    precheck,
)
from rollbook.model import BIRTH_DATE_KEY, AccountSettings, Code, ContactState, Status
from rollbook.store import contacts as store
from rollbook.store.contacts import ContactIds


def _person(values: Mapping[str, str | None]) -> str | None:
    return person_key(values.get("first_name"), values.get("last_name"), values.get(BIRTH_DATE_KEY))


class BatchState(State):
    """The reference ``State`` over a batch's candidates, with indexes instead of scans."""

    def __init__(
        self,
        contacts: Iterable[ContactState],
        *,
        aliases: Mapping[str, int],
        redirects: Mapping[int, int],
        former_phones: Iterable[tuple[int, str]],
        new_ids: ContactIds,
    ) -> None:
        super().__init__(contacts, aliases=aliases, redirects=redirects)
        self.new_ids = new_ids
        self._crm: dict[str, int] = {}
        self._phone: dict[str, int] = {}
        self._email: dict[str, set[int]] = {}
        self._person: dict[str, set[int]] = {}
        self._former: dict[str, set[int]] = {}
        for c in self.contacts.values():
            self._index(c)
        for cid, phone in former_phones:
            self._former.setdefault(phone, set()).add(cid)

    def _index(self, c: ContactState) -> None:
        v = c.values
        if v.get("crm_id"):
            self._crm[v["crm_id"]] = c.id  # type: ignore[index]
        if v.get("phone"):
            self._phone[v["phone"]] = c.id  # type: ignore[index]
        if v.get("email"):
            self._email.setdefault(email_key(v["email"]), set()).add(c.id)  # type: ignore[arg-type]
        if (p := _person(v)) is not None:
            self._person.setdefault(p, set()).add(c.id)

    def _unindex(self, c: ContactState) -> None:
        v = c.values
        if v.get("crm_id") and self._crm.get(v["crm_id"]) == c.id:  # type: ignore[arg-type]
            del self._crm[v["crm_id"]]  # type: ignore[arg-type]
        if v.get("phone") and self._phone.get(v["phone"]) == c.id:  # type: ignore[arg-type]
            del self._phone[v["phone"]]  # type: ignore[arg-type]
        if v.get("email"):
            self._email.get(email_key(v["email"]), set()).discard(c.id)  # type: ignore[arg-type]
        if (p := _person(v)) is not None:
            self._person.get(p, set()).discard(c.id)

    def allocate_id(self) -> int:
        return self.new_ids.take()

    def by_crm_id(self, crm_id: str) -> int | None:
        found = self._crm.get(crm_id)
        return found if found is not None else self.aliases.get(crm_id)

    def by_phone(self, phone: str) -> int | None:
        return self._phone.get(phone)

    def possible_duplicate(self, values: Mapping[str, str | None]) -> bool:
        email, phone, person = values.get("email"), values.get("phone"), _person(values)
        return bool(
            (email and self._email.get(email_key(email)))
            or (person and self._person.get(person))
            or (phone and self._former.get(phone))
        )

    def add(self, contact: ContactState) -> None:
        super().add(contact)
        self._index(contact)

    def change(self, contact: ContactState, values: Mapping[str, str | None]) -> None:
        old_phone = contact.values.get("phone")
        self._unindex(contact)
        super().change(contact, values)
        self._index(contact)
        if old_phone is not None and contact.values.get("phone") != old_phone:
            self._former.setdefault(old_phone, set()).add(contact.id)


@dataclass
class BatchPlan:
    #: The batch's rows in file order, and the decision on each (same positions).
    rows: list[InputRow]
    decisions: list[Decision]
    #: Existing contacts as they were before the batch, by id.
    before: dict[int, ContactState]
    #: Every contact the batch created or changed, as it stands after the batch.
    after: dict[int, ContactState]
    #: (row, contact id, the file's phone) for each row that identified a contact with a phone.
    file_phones: list[tuple[int, int, str]] = field(default_factory=list)


def plan_batch(
    conn: Connection,
    settings: AccountSettings,
    index: KeyIndex,
    nb: NormalisedBatch,
    repeated_crm_ids: set[str],
    repeated_ids: set[str],
    new_ids: store.ContactIds,
) -> BatchPlan:
    rows = input_rows(nb, settings)
    candidates = index.candidates(nb)
    fetched = store.fetch_states(conn, settings, candidates)
    before = {cid: _copy(c) for cid, c in fetched.items()}
    crm_ids = {v for r in rows if isinstance(v := r.changes.get("crm_id"), str)}
    ids = {int(v) for r in rows if isinstance(v := r.changes.get("id"), str)}
    phones = {v for r in rows if isinstance(v := r.changes.get("phone"), str)}
    state = BatchState(
        fetched.values(),
        aliases=store.aliases_for(conn, settings.account_id, crm_ids),
        redirects=store.redirects_for(conn, settings.account_id, ids),
        former_phones=store.history_holders(conn, settings.account_id, phones),
        new_ids=new_ids,
    )
    # The contacts that aliases and redirects lead to are candidates too.
    missing = (set(state.redirects.values()) | set(state.aliases.values())) - set(state.contacts)
    for c in store.fetch_states(conn, settings, missing).values():
        before[c.id] = _copy(c)
        state.add(c)

    decisions: list[Decision] = []
    touched: set[int] = set()
    file_phones: list[tuple[int, int, str]] = []
    for row in rows:
        decision = precheck(row, repeated_crm_ids, repeated_ids)
        if decision is None:
            decision = decide_row(state, row, settings)
            if decision.status is Status.CREATED and state.possible_duplicate(decision.values):
                decision.codes = (Code.POSSIBLE_DUPLICATE,)
            apply_decision(state, decision)
            phone = row.changes.get("phone")
            if _identified(decision) and isinstance(phone, str):
                assert decision.contact_id is not None
                file_phones.append((row.row, decision.contact_id, phone))
            if (
                decision.status in (Status.CREATED, Status.UPDATED)
                and decision.contact_id is not None
            ):
                touched.add(decision.contact_id)
        decisions.append(decision)
    after = {cid: state.contacts[cid] for cid in touched}
    return BatchPlan(rows, decisions, before, after, file_phones)


def _identified(decision: Decision) -> bool:
    """Did the row find (or make) its contact — whether or not it was applied?"""
    if decision.status is not Status.SKIPPED:
        return True
    return decision.codes == (Code.DUPLICATE_CONTACT,) and decision.contact_id is not None


def _copy(c: ContactState) -> ContactState:
    return ContactState(c.id, dict(c.values), dict(c.bases), list(c.history))
