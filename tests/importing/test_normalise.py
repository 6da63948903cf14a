"""A batch's cells to canonical values (importing/normalise.py): a small batch is normalised cell
by cell, by the scalar definitions, and a large one in columns — and both give the same batch."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import WHITESPACE
from rollbook.importing import normalise
from rollbook.importing.mapping import Column, FileMapping
from rollbook.importing.normalise import CLEAR_MARK, NormalisedBatch, normalise_batch
from rollbook.importing.read import BadRow, Batch
from rollbook.model import BUILTIN_FIELDS, AccountSettings, FieldDef, FieldType

FIELDS = (
    *BUILTIN_FIELDS,
    FieldDef("birth_date", FieldType.DATE, "Birth date"),
    FieldDef("gpa", FieldType.NUMBER, "GPA"),
    FieldDef("term", FieldType.CHOICE, "Term", options=("Fall", "Spring")),
)
SETTINGS = AccountSettings(1, "acme", "US", FIELDS)
MAPPING = FileMapping(tuple(Column(n, f.label, f.key, "exact") for n, f in enumerate(FIELDS)))

#: Cells of every kind the batch logic tells apart: not given, UNSET, an export's apostrophe,
#: white space around a value, values valid and invalid for each field.
CELLS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "UNSET",
            " UNSET ",
            "unset",
            "'UNSET",
            "'=1+2",
            "'-5",
            "'plain",
            "12",
            "0",
            "-3",
            "3.58",
            "1,024.5",
            "yes",
            "N",
            "true",
            "Fall",
            " spring ",
            "Winter",
            "2008-08-16",
            "8/16/2008",
            "16/8/2008",
            "(206) 205-8819",
            "+1 206 205 8819",
            "555-12",
            "robert.salsals0@students.example.edu",
            "not an email",
            "Ana María",
            "\u00a0Zoë\u3000",
            "bad\x01text",
        ]
    ),
    st.text(max_size=12),
)


def _row(**cells: str) -> list[str | None]:
    """A row of cells, by field key (the fields not named are empty)."""
    return [cells.get(f.key) for f in FIELDS]


def _batch(rows: list[list[str | None]], *, trimmed: bool) -> Batch:
    width = len(FIELDS)
    if trimmed:  # as the file reader leaves cells: trimmed, and empty ones null
        rows = [[c.strip(WHITESPACE) or None if c is not None else None for c in r] for r in rows]
    return Batch(
        pl.Series("row", [2 + n for n in range(len(rows))], dtype=pl.Int64),
        pl.DataFrame(
            {str(c): [r[c] for r in rows] for c in range(width)},
            schema={str(c): pl.String for c in range(width)},
        ),
        [BadRow(99, "a row of 3 cells where the header has 11")],
        1,
        trimmed,
    )


def _assert_same(a: NormalisedBatch, b: NormalisedBatch) -> None:
    assert a.frame.schema == b.frame.schema
    assert a.frame.to_dicts() == b.frame.to_dicts()
    assert (a.fields, a.bad_rows, a.blank_rows, a.cleared) == (
        b.fields,
        b.bad_rows,
        b.blank_rows,
        b.cleared,
    )


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.lists(CELLS, min_size=len(FIELDS), max_size=len(FIELDS)), min_size=1, max_size=12
    ),
    trimmed=st.booleans(),
    only=st.one_of(st.none(), st.sets(st.sampled_from([f.key for f in FIELDS]), min_size=1)),
)
def test_cell_by_cell_is_the_columnar_pass(
    rows: list[list[str | None]], trimmed: bool, only: set[str] | None
) -> None:
    batch = _batch(rows, trimmed=trimmed)
    fields = tuple(k for k in MAPPING.fields if only is None or k in only)
    _assert_same(
        normalise._normalise_few(batch, MAPPING, SETTINGS, fields),
        normalise._normalise_columns(batch, MAPPING, SETTINGS, fields),
    )


def test_a_small_batch_goes_cell_by_cell_and_a_large_one_in_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[str] = []
    for name in ("_normalise_few", "_normalise_columns"):
        original = getattr(normalise, name)
        monkeypatch.setattr(
            normalise, name, lambda *a, _f=original, _n=name: passes.append(_n) or _f(*a)
        )
    row = _row(
        id="UNSET", crm_id="A1", first_name=" Ana ", phone="2062058819", opted_out="y", gpa="3.5"
    )
    out = normalise_batch(_batch([row], trimmed=False), MAPPING, SETTINGS).frame.row(0, named=True)
    assert out["id"] is None and out["!id"]  # the platform id cannot be cleared
    assert (out["crm_id"], out["first_name"], out["phone"]) == ("A1", "Ana", "+12062058819")
    assert (out["opted_out"], out["gpa"], out["term"]) == ("true", "3.5", None)
    many = _batch([_row(id="", crm_id="A1", first_name="UNSET", phone="x")] * 300, trimmed=False)
    nb = normalise_batch(many, MAPPING, SETTINGS)
    assert nb.frame["first_name"].to_list() == [CLEAR_MARK] * 300
    assert nb.frame["!phone"].all() and nb.cleared == frozenset({"first_name"})
    assert passes == ["_normalise_few", "_normalise_columns"]
    assert 1 <= normalise.FEW_ROWS < 300
