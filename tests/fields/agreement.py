"""The check the tests in this folder end with: the vectorised normaliser equals the scalar one."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from rollbook.fields import normalise_series, normalise_value
from rollbook.model import FieldDef, FieldType

PHONE = FieldDef("phone", FieldType.PHONE, "Phone", builtin=True)
EMAIL = FieldDef("email", FieldType.EMAIL, "Email", builtin=True)
DATE = FieldDef("birth_date", FieldType.DATE, "Birth date")
NUMBER = FieldDef("credits", FieldType.NUMBER, "Credits")
BOOLEAN = FieldDef("opted_out", FieldType.BOOLEAN, "Opted out", builtin=True)
TEXT = FieldDef("first_name", FieldType.TEXT, "First name", builtin=True)
ID = FieldDef("id", FieldType.ID, "Platform ID", builtin=True)
TERM = FieldDef("term", FieldType.CHOICE, "Term", options=("Fall", "Spring", "Straße", "ǅemal"))


def assert_agree(field: FieldDef, values: Sequence[str | None], region: str = "US") -> None:
    """``normalise_series`` must equal ``normalise_value`` element-wise (nulls stay null) — on
    the values as given, and repeated as a file repeats them (where kinds whose values repeat
    are normalised once per distinct value)."""
    _assert_agree(field, values, region)
    if values:
        times = max(4, -(-64 // len(values)))  # at least 64 values, each at least 4 times
        _assert_agree(field, [v for _ in range(times) for v in values], region)


def _assert_agree(field: FieldDef, values: Sequence[str | None], region: str) -> None:
    expected = [None if v is None else normalise_value(field, v, region) for v in values]
    got = normalise_series(field, pl.Series("cells", list(values), dtype=pl.String), region)
    assert got.dtype == pl.String
    assert got.name == "cells"
    mismatches = [
        (v, e, g) for v, e, g in zip(values, expected, got.to_list(), strict=True) if e != g
    ]
    assert not mismatches, f"{field.type} in {region}: (value, scalar, vectorised) {mismatches[:5]}"
