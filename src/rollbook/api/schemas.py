"""The shapes of the API's requests and responses (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rollbook.api.inputs import REASON, has_nul

#: Ids in paths, in the databases' ranges: contacts have 64-bit ids, the rest 32-bit.
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
SmallId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Model(BaseModel):
    """A request body: no unknown keys, no NUL character in any text (see ``api.inputs``)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError(REASON)
        return value


class AccountOut(BaseModel):
    slug: str
    name: str
    region: str = Field(description="Default phone region (two-letter country code).")
    required: list[str] = Field(description="Fields every new contact must have.")


class AccountPatch(Model):
    region: str | None = Field(None, min_length=2, max_length=2)
    required: list[str] | None = None


class FieldOut(BaseModel):
    key: str
    label: str
    type: str
    builtin: bool
    options: list[str]
    required: bool


class FieldIn(Model):
    key: str = Field(min_length=1, max_length=64)
    type: Literal["text", "number", "date", "boolean", "choice"] = "text"
    label: str | None = Field(None, max_length=200)
    options: list[str] = []


class FieldPatch(Model):
    key: str | None = Field(None, min_length=1, max_length=64)
    label: str | None = Field(None, min_length=1, max_length=200)


class ContactOut(BaseModel):
    id: int
    crm_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None = Field(description="E.164, e.g. +15551234567")
    opted_out: bool
    archived: bool
    custom: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    phone_since: str | None
    phone_source: str | None
    phone_reason: str | None


class PhoneHistoryEntry(BaseModel):
    phone: str
    from_: str | None = Field(alias="from")
    to: str | None
    source: str | None
    reason: str | None
    import_id: int | None
    row: int | None


class TimelineEntry(BaseModel):
    at: str | None
    what: Literal["created", "changed"]
    source: str | None
    actor: str | None
    import_id: int | None
    row: int | None
    reason: str | None
    changes: dict[str, list[Any]]


class ContactHistory(BaseModel):
    phone_history: list[PhoneHistoryEntry]
    timeline: list[TimelineEntry]
    bases: dict[str, str | None] = Field(
        description="Values kept from stale imports: the file still has them, the platform "
        "changed them."
    )


class ContactDetail(ContactOut, ContactHistory):
    pass


class ContactPage(BaseModel):
    items: list[ContactOut]
    total: int
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class ContactIn(Model):
    fields: dict[str, str] = Field(
        description="Field key to value, as typed (phones in any format, dates as YYYY-MM-DD…)."
    )


class ContactPatch(Model):
    fields: dict[str, str] = Field(
        min_length=1, description="Field key to value; the value UNSET clears the field."
    )
    source: Literal["staff", "contact"] = "staff"
    reason: str | None = Field(
        None,
        max_length=500,
        description="Why, e.g. 'student texted a new number' — kept with a phone change.",
    )


class Suggestion(BaseModel):
    field: str
    score: float
    why: str


class ColumnOut(BaseModel):
    column: str
    field: str | None
    how: str | None
    suggestions: list[Suggestion]


class FormatOut(BaseModel):
    kind: str
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    description: str


class SampleRow(BaseModel):
    row: int
    cells: list[str | None]


class UploadOut(BaseModel):
    upload_id: int
    filename: str
    size: int | None = None
    format: FormatOut
    headers: list[str]
    sample: list[SampleRow]
    mapping: list[ColumnOut]
    notes: list[str]
    drift_warning: str | None = Field(
        description="Set when the file maps no column to crm_id although the account's "
        "contacts have CRM IDs: the import would be refused unless allow_unmapped_crm_id."
    )
    drift_likely_column: str | None = Field(
        None, description="With a drift warning: the column most like the CRM ID column."
    )
    drift_previous_headers: list[str] = Field(
        [], description="With a drift warning: the headers earlier files had for CRM IDs."
    )


class ImportRequest(Model):
    mapping: dict[str, str] = Field(
        {},
        description="Header to field key, or 'ignore'. Headers mapped by earlier imports "
        "are mapped the same way unless given here.",
    )
    allow_unmapped_crm_id: bool = False


class Progress(BaseModel):
    done: int | None
    total: int | None


class JobOut(BaseModel):
    job_id: int
    kind: Literal["preview", "import"]
    status: Literal["queued", "running", "done", "failed"]
    upload_id: int | None
    options: dict[str, Any]
    attempts: int
    progress: Progress
    result: dict[str, Any] | None = Field(
        description="When done: the import's summary (counts, codes, duplicate_risk …)."
    )
    error: dict[str, Any] | None
    import_id: int | None
    retryable: bool
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class MappingPair(BaseModel):
    column: str
    field: str | None


class ImportOut(BaseModel):
    import_id: int
    filename: str
    status: str
    started_at: str | None
    finished_at: str | None
    rows: int
    blank_rows: int
    counts: dict[str, int]
    codes: dict[str, int]
    format: dict[str, Any]
    mapping: list[MappingPair]
    label: str
    actor: str | None


class TokenIn(Model):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "staff", "read-only"] = "staff"


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: str
    created_at: str | None = None
    created_by: str | None = None
    revoked_at: str | None = None


class NewToken(TokenOut):
    token: str = Field(description="The token itself. It is shown this once; keep it safe.")
