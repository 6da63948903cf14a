"""Text, platform ids, booleans and choices, and the dispatch over field types."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import invalid_reason, normalise_series, normalise_value
from rollbook.model import FieldDef, FieldType
from tests.fields.agreement import (
    BOOLEAN,
    DATE,
    EMAIL,
    ID,
    NUMBER,
    PHONE,
    TERM,
    TEXT,
    assert_agree,
)

# -- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["Ada", "Zoë  O'Brien", "李", "a" * 1000, "tab\u00a0less", "🙂"])
def test_text_is_kept_as_it_is(cell: str) -> None:
    assert normalise_value(TEXT, cell, "US") == cell
    assert_agree(TEXT, [cell])


@pytest.mark.parametrize("cell", ["a\tb", "line\nbreak", "nul\x00", "del\x7f", "a" * 1001])
def test_text_refuses_control_characters_and_length(cell: str) -> None:
    assert normalise_value(TEXT, cell, "US") is None
    assert_agree(TEXT, [cell])


@settings(max_examples=100, deadline=None)
@given(
    cells=st.lists(
        st.one_of(st.text(max_size=10), st.text(min_size=995, max_size=1005)), max_size=20
    )
)
def test_text_vectorised_equals_scalar(cells: list[str]) -> None:
    assert_agree(TEXT, cells)


# -- platform id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "canonical"),
    [("7", "7"), ("007", "7"), ("123456789012345678", "123456789012345678"), ("0001", "1")],
)
def test_ids(cell: str, canonical: str) -> None:
    assert normalise_value(ID, cell, "US") == canonical
    assert_agree(ID, [cell])


@pytest.mark.parametrize(
    "cell", ["0", "000", "-1", "+1", "1.0", "1e3", "1234567890123456789", " 1", "x7", "١"]
)
def test_refused_ids(cell: str) -> None:
    assert normalise_value(ID, cell, "US") is None
    assert_agree(ID, [cell])


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.one_of(st.text("0123456789", max_size=20), st.text(max_size=4))))
def test_id_vectorised_equals_scalar(cells: list[str]) -> None:
    assert_agree(ID, cells)


# -- boolean --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "canonical"),
    [
        *[(c, "true") for c in ["true", "TRUE", "True", "yes", "Yes", "Y", "y", "1"]],
        *[(c, "false") for c in ["false", "FALSE", "no", "No", "N", "n", "0"]],
    ],
)
def test_booleans(cell: str, canonical: str) -> None:
    assert normalise_value(BOOLEAN, cell, "US") == canonical
    assert_agree(BOOLEAN, [cell])


@pytest.mark.parametrize("cell", ["t", "f", "on", "off", "2", "yes please", "ｙｅｓ", "01"])
def test_refused_booleans(cell: str) -> None:
    assert normalise_value(BOOLEAN, cell, "US") is None
    assert_agree(BOOLEAN, [cell])


words = st.sampled_from(["true", "yes", "y", "1", "no", "N", "fAlSe", "0", "K", "ſ", "İ", "ye"])


@settings(max_examples=100, deadline=None)
@given(
    cells=st.lists(
        st.one_of(
            st.lists(words, min_size=1, max_size=2).map("".join),
            st.text(max_size=5),
            st.text("yesnotruefalsYESNOTRUEFALS10", max_size=5),
        )
    )
)
def test_boolean_vectorised_equals_scalar(cells: list[str]) -> None:
    assert_agree(BOOLEAN, cells)


# -- choice ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "canonical"),
    [
        ("Fall", "Fall"),
        ("fall", "Fall"),
        ("SPRING", "Spring"),
        ("STRASSE", "Straße"),  # casefold: ß is ss
        ("strasse", "Straße"),
        ("ǆemal", "ǅemal"),
    ],
)
def test_choices(cell: str, canonical: str) -> None:
    assert normalise_value(TERM, cell, "US") == canonical
    assert_agree(TERM, [cell])


@pytest.mark.parametrize("cell", ["Autumn", "Fal", "Fall ", "Spring, Fall"])
def test_refused_choices(cell: str) -> None:
    assert normalise_value(TERM, cell, "US") is None
    assert_agree(TERM, [cell])


def test_first_option_wins_when_options_differ_only_in_case() -> None:
    field = FieldDef("level", FieldType.CHOICE, "Level", options=("High", "HIGH"))
    assert normalise_value(field, "high", "US") == "High"


def test_choice_reason_lists_the_options() -> None:
    assert invalid_reason(TERM, "US") == "not one of: Fall, Spring, Straße, ǅemal"


choice_words = st.sampled_from(["fall", "FALL", "Spring", "straße", "STRASSE", "ǆEMAL", "ǅemal"])


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.one_of(choice_words, st.text(max_size=6))))
def test_choice_vectorised_equals_scalar(cells: list[str]) -> None:
    assert_agree(TERM, cells)


# -- the dispatch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [PHONE, EMAIL, DATE, NUMBER, BOOLEAN, TEXT, ID, TERM])
def test_every_type_keeps_nulls_and_gives_a_reason(field: FieldDef) -> None:
    got = normalise_series(field, pl.Series("c", [None, None], dtype=pl.String), "US")
    assert got.to_list() == [None, None]
    assert got.dtype == pl.String
    reason = invalid_reason(field, "US")
    assert 0 < len(reason) < 120
    assert "\n" not in reason


def test_empty_series() -> None:
    for field in (PHONE, EMAIL, DATE, NUMBER, BOOLEAN, TEXT, ID, TERM):
        got = normalise_series(field, pl.Series("c", [], dtype=pl.String), "US")
        assert got.to_list() == []
        assert got.dtype == pl.String
