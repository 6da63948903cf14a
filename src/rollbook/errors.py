"""The one exception tree of rollbook.

Problems with single rows of a file are *data* (a ``RowOutcome`` with codes), never exceptions.
Exceptions are for requests that cannot be carried out at all; each says why in words a user can
act on, and the shells (CLI, API, dashboard) translate them without adding rules of their own::

    RollbookError
    ├── NotFound              an account, contact, import … does not exist (in this account)
    ├── Conflict              the request clashes with the data (a phone held by another contact,
    │                         a slug taken, an import already undone)
    ├── InvalidInput          a value or argument is wrong; names the field and the reason
    ├── FileRefused           a file cannot be read as asked (encoding, duplicate headers, size)
    ├── MappingRefused        the columns cannot be mapped as asked (a field twice, unknown field)
    │   └── DriftGuardRefused the file has no CRM ID column although the account uses CRM IDs
    └── StoreError            the database is not usable (unknown URL, migrations behind)
"""

from __future__ import annotations

from typing import Any


class RollbookError(Exception):
    """Base of every error rollbook raises on purpose."""

    #: A stable, machine-readable name for the API's error body.
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class NotFound(RollbookError):
    code = "not-found"


class Conflict(RollbookError):
    code = "conflict"


class InvalidInput(RollbookError):
    code = "invalid-input"


class FileRefused(RollbookError):
    code = "file-refused"


class MappingRefused(RollbookError):
    code = "mapping-refused"


class DriftGuardRefused(MappingRefused):
    code = "drift-guard"


class StoreError(RollbookError):
    code = "store-error"
