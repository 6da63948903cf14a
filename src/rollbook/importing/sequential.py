"""The rows of a batch that touch each other, decided one by one by the reference rules.

When two rows of a batch share a contact, a phone or a CRM ID, the second must see what the
first did. Those rows are few, and nothing is clearer than running the definition on them: the
reference ``State``, holding just the contacts these rows can reach (indexed by CRM ID and phone
instead of scanned), decides them in file order with ``decide_row`` and ``apply_decision``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rollbook.importing.keys import email_key, person_key
from rollbook.importing.rules import Decision, InputRow, State, apply_decision, decide_row
from rollbook.model import BIRTH_DATE_KEY, AccountSettings, ContactState, Status


class BatchState(State):
    """The reference ``State`` over a batch's candidates, with indexes instead of scans."""

    def __init__(
        self,
        contacts: Iterable[ContactState],
        *,
        aliases: Mapping[str, int],
        redirects: Mapping[int, int],
        allocate: Callable[[], int],
    ) -> None:
        super().__init__(contacts, aliases=aliases, redirects=redirects)
        self._allocate = allocate
        self._crm: dict[str, int] = {}
        self._phone: dict[str, int] = {}
        for c in self.contacts.values():
            self._index(c)

    def _index(self, c: ContactState) -> None:
        if crm := c.values.get("crm_id"):
            self._crm[crm] = c.id
        if phone := c.values.get("phone"):
            self._phone[phone] = c.id

    def _unindex(self, c: ContactState) -> None:
        crm, phone = c.values.get("crm_id"), c.values.get("phone")
        if crm and self._crm.get(crm) == c.id:
            del self._crm[crm]
        if phone and self._phone.get(phone) == c.id:
            del self._phone[phone]

    def allocate_id(self) -> int:
        return self._allocate()

    def by_crm_id(self, crm_id: str) -> int | None:
        found = self._crm.get(crm_id)
        return found if found is not None else self.aliases.get(crm_id)

    def by_phone(self, phone: str) -> int | None:
        return self._phone.get(phone)

    def add(self, contact: ContactState) -> None:
        super().add(contact)
        self._index(contact)

    def change(self, contact: ContactState, values: Mapping[str, str | None]) -> None:
        self._unindex(contact)
        super().change(contact, values)
        self._index(contact)


@dataclass
class KeyEvent:
    """A contact's email or name-and-birth-date key before and after a row (for the flags)."""

    row: int
    email: tuple[str | None, str | None]
    person: tuple[str | None, str | None]
    former_phone: str | None = None


def _keys(values: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    email = values.get("email")
    person = person_key(
        values.get("first_name"), values.get("last_name"), values.get(BIRTH_DATE_KEY)
    )
    return (email_key(email) if email else None), person


@dataclass
class SequentialResult:
    rows: list[InputRow]
    decisions: list[Decision]
    state: BatchState
    #: The contacts' values before the first row.
    before: dict[int, dict[str, str | None]]
    #: Each row's phone, when the file sets one.
    phones: list[str | None] = field(default_factory=list)
    events: list[KeyEvent] = field(default_factory=list)


def decide_in_order(
    state: BatchState, rows: list[InputRow], settings: AccountSettings
) -> SequentialResult:
    """Decide ``rows`` (valid rows, in file order) one by one against ``state``."""
    before = {cid: dict(c.values) for cid, c in state.contacts.items()}
    result = SequentialResult(rows, [], state, before)
    for row in rows:
        phone = row.changes.get("phone")
        result.phones.append(phone if isinstance(phone, str) else None)
        decision = decide_row(state, row, settings)
        was: tuple[str | None, str | None] = (None, None)
        old_phone = None
        if decision.status is Status.UPDATED and decision.contact_id is not None:
            contact = state.contacts[decision.contact_id]
            was = _keys(contact.values)
            old_phone = contact.values.get("phone") if "phone" in decision.values else None
        apply_decision(state, decision)
        if decision.status in (Status.CREATED, Status.UPDATED) and decision.contact_id is not None:
            now = _keys(state.contacts[decision.contact_id].values)
            result.events.append(KeyEvent(row.row, (was[0], now[0]), (was[1], now[1]), old_phone))
        result.decisions.append(decision)
    return result
