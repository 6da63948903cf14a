"""The product's words as plain types: fields, sources, statuses, codes, row outcomes.

Nothing here touches the database, a file or the network. Every other module speaks in these
terms, and so do the docs (``docs/import-rules.md``, ``docs/codes.md``) and the CLI.

Values inside the engine are *canonical strings*: a phone is its E.164 text, a date its ISO
text, a boolean ``"true"``/``"false"``, a number its shortest decimal text. Comparing two values
is comparing two strings, the same way in the reference rules, the bulk planner and the store.

Three different things can be said about a field in one row or one edit, and they are kept
apart explicitly:

* the field is **not given** (an empty cell, a field left out of an edit): the key is absent;
* the field is **cleared** (a cell or an edit holding exactly ``UNSET``): the value is ``CLEAR``;
* the field is **set**: the value is a canonical string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal, TypeAlias

UNSET_WORD: Final = "UNSET"


class _Clear:
    """The instruction to clear a field: a cell or an edit holding exactly ``UNSET``."""

    _instance: _Clear | None = None

    def __new__(cls) -> _Clear:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CLEAR"

    def __reduce__(self) -> str:
        return "CLEAR"


CLEAR: Final = _Clear()

#: What a row or an edit says about one field: a canonical value, or CLEAR.
Change: TypeAlias = str | _Clear
#: One row or one edit: field key -> change. A field that is not given is absent.
Changes: TypeAlias = dict[str, Change]


class Source(StrEnum):
    """Who or what made a change."""

    IMPORT = "import"
    STAFF = "staff"
    CONTACT = "contact"
    MERGE = "merge"
    SYSTEM = "system"


class Status(StrEnum):
    """Where an input row ended. Every row ends in exactly one of these."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


class Code(StrEnum):
    """Why a row was skipped, or what to know about a row that was applied."""

    UNKNOWN_ID = "unknown-id"
    CRM_ID_CONFLICT = "crm-id-conflict"
    DUPLICATE_UNIQUE_ID_CRM_ID = "duplicate-unique-id-crmId"
    DUPLICATE_UNIQUE_ID_ID = "duplicate-unique-id-id"
    INVALID_PHONE = "invalid-phone"
    INVALID_EMAIL = "invalid-email"
    INVALID_VALUE = "invalid-value"
    BLANK_REQUIRED = "blank-required-data-in-record"
    DUPLICATE_CONTACT = "duplicate-contact"
    CONTACT_OUT_OF_SYNC = "contact-out-of-sync"
    POSSIBLE_DUPLICATE = "possible-duplicate"

    @property
    def skips(self) -> bool:
        """True for the codes that skip a row; False for the flags on an applied row."""
        return self not in (Code.CONTACT_OUT_OF_SYNC, Code.POSSIBLE_DUPLICATE)

    @property
    def summary(self) -> str:
        return CODE_SUMMARIES[self]


#: One line per code. docs/codes.md says the same at length; a test keeps them in step.
CODE_SUMMARIES: Final[dict[Code, str]] = {
    Code.UNKNOWN_ID: "The row's id names no contact in this account; the row is skipped.",
    Code.CRM_ID_CONFLICT: "The row's id and CRM ID point at two different contacts; skipped.",
    Code.DUPLICATE_UNIQUE_ID_CRM_ID: "Several rows of the file share this CRM ID; all are skipped.",
    Code.DUPLICATE_UNIQUE_ID_ID: "Several rows of the file share this id; all are skipped.",
    Code.INVALID_PHONE: "A phone cell is not a valid number for the account's region; skipped.",
    Code.INVALID_EMAIL: "An email cell is not a valid address; skipped.",
    Code.INVALID_VALUE: "A cell does not fit its field (date, number, choice…); skipped.",
    Code.BLANK_REQUIRED: "The row would create a contact without a required field; skipped.",
    Code.DUPLICATE_CONTACT: "The row's phone belongs to another contact; the whole row is skipped.",
    Code.CONTACT_OUT_OF_SYNC: "The file still has a value the platform has since changed; the "
    "platform's value was kept.",
    Code.POSSIBLE_DUPLICATE: "A new contact was created that shares an email, or a name and "
    "birth date, with another contact, or whose phone is in another contact's phone history.",
}

#: The order codes are listed in, in reports and summaries.
CODE_ORDER: Final[tuple[Code, ...]] = tuple(Code)


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    PHONE = "phone"
    EMAIL = "email"
    ID = "id"


#: The types a custom field may have.
CUSTOM_TYPES: Final = (
    FieldType.TEXT,
    FieldType.NUMBER,
    FieldType.DATE,
    FieldType.BOOLEAN,
    FieldType.CHOICE,
)


@dataclass(frozen=True)
class FieldDef:
    """One field of an account's contacts, built in or custom."""

    key: str
    type: FieldType
    label: str
    options: tuple[str, ...] = ()
    builtin: bool = False

    @property
    def invalid_code(self) -> Code:
        if self.type is FieldType.PHONE:
            return Code.INVALID_PHONE
        if self.type is FieldType.EMAIL:
            return Code.INVALID_EMAIL
        return Code.INVALID_VALUE

    @property
    def cleared_value(self) -> str | None:
        """What the field holds after ``UNSET``: nothing, or ``false`` for the built-in flags."""
        return "false" if self.builtin and self.type is FieldType.BOOLEAN else None


BUILTIN_FIELDS: Final[tuple[FieldDef, ...]] = (
    FieldDef("id", FieldType.ID, "Platform ID", builtin=True),
    FieldDef("crm_id", FieldType.TEXT, "CRM ID", builtin=True),
    FieldDef("first_name", FieldType.TEXT, "First name", builtin=True),
    FieldDef("last_name", FieldType.TEXT, "Last name", builtin=True),
    FieldDef("email", FieldType.EMAIL, "Email", builtin=True),
    FieldDef("phone", FieldType.PHONE, "Phone", builtin=True),
    FieldDef("opted_out", FieldType.BOOLEAN, "Opted out", builtin=True),
    FieldDef("archived", FieldType.BOOLEAN, "Archived", builtin=True),
)
BUILTIN_KEYS: Final = frozenset(f.key for f in BUILTIN_FIELDS)
#: Names the import engine gives columns of its own beside the fields' (a batch's row numbers
#: and match keys, who each row found, the columns of the contacts it writes). A custom field
#: under one of them would be taken for it: an import failed, or wrote the engine's value
#: (the row's phone, for a field ``ph``) into the field.
ENGINE_COLUMNS: Final = frozenset(
    {
        "i",
        "row",
        "idv",
        "crm",
        "ph",
        "live",
        "target",
        "id_target",
        "crm_holder",
        "phone_owner",
        "via_alias",
        "unknown",
        "conflict",
        "names_differ",
        "one_by_one",
        "created_row",
        "phone_row",
        "keys_moved",
        "custom",
        "import_print",
    }
)
#: The fields a contact stores (everything but the platform id, which is its identity).
STORED_BUILTIN_KEYS: Final = tuple(f.key for f in BUILTIN_FIELDS if f.key != "id")
#: The custom date field that, with the names, makes the "same person" evidence.
BIRTH_DATE_KEY: Final = "birth_date"
#: A mapping target that drops the column.
IGNORE: Final = "ignore"
DEFAULT_REQUIRED: Final = ("phone",)


@dataclass(frozen=True)
class AccountSettings:
    """What an import needs to know about its account."""

    account_id: int
    slug: str
    region: str
    fields: tuple[FieldDef, ...]
    required: tuple[str, ...] = DEFAULT_REQUIRED

    def field(self, key: str) -> FieldDef:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    @property
    def has_birth_date(self) -> bool:
        return any(f.key == BIRTH_DATE_KEY and f.type is FieldType.DATE for f in self.fields)


@dataclass
class ContactState:
    """One contact as the import rules see it: canonical values, bases, former phones.

    ``bases`` maps a field to its *base* — the value the last import sent, kept because the
    platform has changed the field since — or to ``None``: the value was set on the platform and
    no import has sent the field, so there is nothing to protect. A field without an entry is in
    step with the last import."""

    id: int
    values: dict[str, str | None]
    bases: dict[str, str | None] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # former phones, oldest first


@dataclass(frozen=True)
class RowOutcome:
    """Where one input row ended, and why."""

    row: int
    status: Status
    codes: tuple[Code, ...] = ()
    contact_id: int | None = None
    message: str = ""


@dataclass
class ImportCounts:
    """Rows per status and rows per code; a row counts once per status, once per code it has."""

    statuses: dict[Status, int] = field(default_factory=lambda: {s: 0 for s in Status})
    codes: dict[Code, int] = field(default_factory=lambda: {c: 0 for c in Code})

    @property
    def rows(self) -> int:
        return sum(self.statuses.values())

    def add(self, status: Status, codes: tuple[Code, ...] = ()) -> None:
        self.statuses[status] += 1
        for c in codes:
            self.codes[c] += 1

    def as_json(self) -> dict[str, dict[str, int]]:
        return {
            "counts": {s.value: n for s, n in self.statuses.items()},
            "codes": {c.value: n for c, n in self.codes.items() if n},
        }


PhoneChangeSource: TypeAlias = Literal["staff", "contact"]
