"""Cells: trimmed, empty means not given, UNSET means clear, export apostrophes come off."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import (
    WHITESPACE,
    clean_cell,
    clean_frame,
    clean_series,
    name_key,
    name_key_series,
)
from rollbook.model import CLEAR

CLEANED = [
    ("  Ada  ", "Ada"),
    ("\u00a0Ada\u3000", "Ada"),
    ("\ufeffAda", "Ada"),  # a byte-order mark left at the start of a file
    ("\tAda\r\n", "Ada"),
    ("Ada  Lovelace", "Ada  Lovelace"),  # inside white space is the value's own
    ("'=SUM(A1)", "=SUM(A1)"),  # our export's formula guard, taken off again
    ("'+15551234567", "+15551234567"),
    ("'-5", "-5"),
    ("'@home", "@home"),
    ("  '=x ", "=x"),
    ("'hello", "'hello"),  # an apostrophe before anything else is data
    ("''=x", "''=x"),
    ("'", "'"),
    ("unset", "unset"),  # only the exact capitals clear
    (" UNSET x", "UNSET x"),
]


@pytest.mark.parametrize(("raw", "cleaned"), CLEANED)
def test_clean_cell(raw: str, cleaned: str) -> None:
    assert clean_cell(raw) == cleaned


@pytest.mark.parametrize("raw", [None, "", "   ", "\u00a0\u2003\ufeff", "\n"])
def test_empty_cells_are_not_given(raw: str | None) -> None:
    assert clean_cell(raw) is None


@pytest.mark.parametrize("raw", ["UNSET", "  UNSET\t", "\u00a0UNSET"])
def test_unset_clears(raw: str) -> None:
    assert clean_cell(raw) is CLEAR


def test_series_leaves_unset_for_the_caller() -> None:
    got = clean_series(pl.Series("c", [" UNSET ", None, " ", "'=1", "x"]))
    assert got.to_list() == ["UNSET", None, None, "=1", "x"]
    assert got.name == "c"


def test_whitespace_set() -> None:
    for char in ("\u00a0", "\u2000", "\u200a", "\u3000", "\ufeff", "\x0b"):
        assert char in WHITESPACE
    assert "\u200b" not in WHITESPACE  # zero-width space is not in the list
    assert "x" not in WHITESPACE


cell_text = st.lists(
    st.one_of(
        st.sampled_from([*WHITESPACE, "'", "=", "+", "-", "@", "UNSET", "\u200b", "\x1c", "a"]),
        st.text(max_size=3),
    ),
    max_size=6,
).map("".join)


def scalar_clean(raw: str | None) -> str | None:
    cleaned = clean_cell(raw)
    if cleaned is None or isinstance(cleaned, str):
        return cleaned
    return "UNSET"


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.one_of(st.none(), cell_text), max_size=30))
def test_clean_series_equals_clean_cell(cells: list[str | None]) -> None:
    got = clean_series(pl.Series(cells, dtype=pl.String)).to_list()
    assert got == [scalar_clean(c) for c in cells]


@settings(max_examples=200, deadline=None)
@given(
    columns=st.lists(st.lists(st.one_of(st.none(), cell_text), min_size=8, max_size=8), min_size=1)
)
def test_clean_frame_equals_clean_series(columns: list[list[str | None]]) -> None:
    frame = pl.DataFrame({str(i): pl.Series(c, dtype=pl.String) for i, c in enumerate(columns)})
    names = [str(i) for i in range(len(columns))][::-1]  # not in the frame's order
    got = clean_frame(frame, names)
    assert got.columns == names
    for name in names:
        assert got[name].to_list() == [scalar_clean(c) for c in frame[name].to_list()]


# -- name keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Mary Ann", "maryann"),
        ("MARY-ANN", "mary-ann"),
        ("O'Brien", "o' brien"),
        ("Strauß", "STRAUSS"),
        ("Zoë\u00a0Li", "zoëli"),
        ("\tAda\n", "ada"),
    ],
)
def test_same_names(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(("a", "b"), [("Ann", "Anne"), ("Zoë", "Zoe"), ("Mary-Ann", "MaryAnn")])
def test_different_names(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


name_text = st.lists(
    st.one_of(
        st.sampled_from([" ", "\t", "\x1c", "\u00a0", "\u2003", "\u3000", "ß", "İ", "Σ", "ﬁ"]),
        st.text(max_size=4),
        st.text("ABCdef -'", max_size=6),
    ),
    max_size=5,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(st.one_of(st.none(), name_text), max_size=30))
def test_name_key_series_equals_name_key(names: list[str | None]) -> None:
    got = name_key_series(pl.Series(names, dtype=pl.String)).to_list()
    assert got == [None if n is None else name_key(n) for n in names]
