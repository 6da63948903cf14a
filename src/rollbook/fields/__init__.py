"""Cell values to canonical strings: one normaliser per field type, scalar and vectorised.

Every kind has a scalar *definition* (``normalise_value``), written to be obviously right or
delegated to the field's standard library (phonenumbers, email-validator, ``decimal``,
``datetime``), and a vectorised twin over Polars series (``normalise_series``) for bulk imports.
The twin must give the same answer for every value; where its fast path is not certain it asks
the definition. Tests generate values with Hypothesis and compare the two.

A value is first cleaned (``clean_cell`` / ``clean_series``), then normalised: ``None`` from a
normaliser means the value is invalid for its field, and ``invalid_reason`` says why in one
sentence fit for a row report (it never repeats the value).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from rollbook.fields.cells import (
    WHITESPACE,
    clean_cell,
    clean_frame,
    clean_series,
    name_key,
    name_key_series,
)
from rollbook.fields.dates import month_first, normalise_date, normalise_date_series
from rollbook.fields.email import normalise_email, normalise_email_series
from rollbook.fields.numbers import MAX_DIGITS, normalise_number, normalise_number_series
from rollbook.fields.phone import normalise_phone, normalise_phone_series
from rollbook.fields.values import (
    ID_MAX_DIGITS,
    TEXT_MAX_CHARS,
    normalise_boolean,
    normalise_boolean_series,
    normalise_choice,
    normalise_choice_series,
    normalise_id,
    normalise_id_series,
    normalise_text,
    normalise_text_series,
)
from rollbook.model import FieldDef, FieldType

__all__ = [
    "WHITESPACE",
    "clean_cell",
    "clean_frame",
    "clean_series",
    "invalid_reason",
    "name_key",
    "name_key_series",
    "normalise_series",
    "normalise_value",
]


def normalise_value(field: FieldDef, raw: str, region: str) -> str | None:
    """The canonical string for a cleaned cell (non-empty, not ``UNSET``), or ``None`` if invalid.

    ``region`` is the account's ISO 3166 region (``"US"``): phones without a country code are
    read in it, and it decides whether ``1/2/2024`` is January or February.
    """
    match field.type:
        case FieldType.PHONE:
            return normalise_phone(raw, region)
        case FieldType.EMAIL:
            return normalise_email(raw)
        case FieldType.DATE:
            return normalise_date(raw, region)
        case FieldType.NUMBER:
            return normalise_number(raw)
        case FieldType.BOOLEAN:
            return normalise_boolean(raw)
        case FieldType.CHOICE:
            return normalise_choice(raw, field.options)
        case FieldType.TEXT:
            return normalise_text(raw)
        case FieldType.ID:
            return normalise_id(raw)


#: The kinds whose values a file repeats most (a GPA, a date of birth, a yes/no, an option),
#: and whose normalising costs more than finding the distinct values: those are normalised once
#: each. A batch's GPAs took 8x less time so.
_BY_DISTINCT: Final = frozenset(
    {FieldType.NUMBER, FieldType.DATE, FieldType.BOOLEAN, FieldType.CHOICE}
)


def normalise_series(field: FieldDef, raw: pl.Series, region: str) -> pl.Series:
    """``normalise_value`` over a ``String`` series: nulls stay null, invalid values become null."""
    raw = raw.cast(pl.String)
    if field.type in _BY_DISTINCT and len(raw) >= 64:
        distinct = raw.drop_nulls().unique()
        if len(distinct) * 4 <= len(raw):
            canonical = _normalise_all(field, distinct, region)
            out = raw.replace_strict(distinct, canonical, default=None, return_dtype=pl.String)
            return out.rename(raw.name)
    return _normalise_all(field, raw, region).rename(raw.name)


def _normalise_all(field: FieldDef, raw: pl.Series, region: str) -> pl.Series:
    match field.type:
        case FieldType.PHONE:
            out = normalise_phone_series(raw, region)
        case FieldType.EMAIL:
            out = normalise_email_series(raw)
        case FieldType.DATE:
            out = normalise_date_series(raw, region)
        case FieldType.NUMBER:
            out = normalise_number_series(raw)
        case FieldType.BOOLEAN:
            out = normalise_boolean_series(raw)
        case FieldType.CHOICE:
            out = normalise_choice_series(raw, field.options)
        case FieldType.TEXT:
            out = normalise_text_series(raw)
        case FieldType.ID:
            out = normalise_id_series(raw)
    return out


def invalid_reason(field: FieldDef, region: str) -> str:
    """Why a value was refused, in one short sentence without the value itself."""
    match field.type:
        case FieldType.PHONE:
            return f"not a valid phone number for region {region}"
        case FieldType.EMAIL:
            return "not a valid email address"
        case FieldType.DATE:
            usual = "MM/DD/YYYY" if month_first(region) else "DD/MM/YYYY"
            return f"not a date (use YYYY-MM-DD or {usual})"
        case FieldType.NUMBER:
            return f"not a number (digits, an optional decimal point, at most {MAX_DIGITS} digits)"
        case FieldType.BOOLEAN:
            return "not a yes/no value (use true/false, yes/no, y/n or 1/0)"
        case FieldType.CHOICE:
            if not field.options:
                return "not an option (the field has no options defined)"
            return "not one of: " + ", ".join(field.options)
        case FieldType.TEXT:
            return f"contains a control character or is longer than {TEXT_MAX_CHARS:,} characters"
        case FieldType.ID:
            return f"not a platform id (a whole number of up to {ID_MAX_DIGITS} digits)"
