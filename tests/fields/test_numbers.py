"""Numbers: the shortest plain decimal text, so equal numbers are equal strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import invalid_reason, normalise_value
from tests.fields.agreement import NUMBER, assert_agree

ACCEPTED = [
    ("0", "0"),
    ("007", "7"),
    ("+7", "7"),
    ("-0", "0"),
    ("-0.000", "0"),
    ("3.20", "3.2"),
    ("-3.20", "-3.2"),
    ("0.5", "0.5"),
    ("00.050", "0.05"),
    ("1e3", "1000"),
    ("2.5E-2", "0.025"),
    ("-1.5e+2", "-150"),
    ("0e99999999", "0"),
    ("1,234", "1234"),
    ("1,234.50", "1234.5"),
    ("-1,234,567.89", "-1234567.89"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),  # 30 digits
    ("0.000000000000000000000000000001", "0.000000000000000000000000000001"),
    ("1e29", "100000000000000000000000000000"),
]

REFUSED = [
    "",
    "-",
    "1.",  # a point needs digits on both sides
    ".5",
    "1,23",  # grouping must be strict
    "12,34,567",
    "1234,567",
    "0,123",
    "1 234",
    "1.234,5",  # European decimal comma
    "1e",
    "e3",
    "1e3.5",
    "--1",
    "0x1F",
    "1_000",
    "NaN",
    "Infinity",
    "١٢",  # only ASCII digits
    "1234567890123456789012345678901",  # 31 digits
    "1e30",
    "1e-31",
    "0.0000000000000000000000000000001",  # 31 digits after the point
    "1e999999999999999999999",
]


@pytest.mark.parametrize(("cell", "canonical"), ACCEPTED)
def test_accepted_numbers(cell: str, canonical: str) -> None:
    assert normalise_value(NUMBER, cell, "US") == canonical
    assert_agree(NUMBER, [cell])


@pytest.mark.parametrize("cell", REFUSED)
def test_refused_numbers(cell: str) -> None:
    assert normalise_value(NUMBER, cell, "US") is None
    assert_agree(NUMBER, [cell])


def test_reason() -> None:
    assert invalid_reason(NUMBER, "US").startswith("not a number")


@st.composite
def number_like(draw: st.DrawFn) -> str:
    rnd = draw(st.randoms(use_true_random=False))
    sign = rnd.choice(["", "", "-", "+", "--"])
    zeros = "0" * rnd.choice([0, 0, 1, 3])
    integer = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 32)))
    if rnd.random() < 0.2:  # zero, or small: -0, 0.000…1
        integer = rnd.choice(["", "0", "000"])
    if rnd.random() < 0.3 and integer:  # thousands groups, mostly right
        groups = [integer[max(0, i - 3) : i] for i in range(len(integer), 0, -3)][::-1]
        integer = ",".join(groups)
        if rnd.random() < 0.2:
            integer = integer.replace(",", ",0", 1)
    fraction = "".join(rnd.choice("00123456789") for _ in range(rnd.randint(0, 32)))
    if rnd.random() < 0.2:
        fraction = "0" * rnd.randint(25, 34) + rnd.choice(["", "0", "1", "25"])
    point = rnd.choice([".", ".", "", ","]) if fraction or rnd.random() < 0.1 else ""
    exponent = ""
    if rnd.random() < 0.3:
        exponent = rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randint(0, 40))
    return sign + zeros + integer + point + fraction + exponent


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(
        st.one_of(number_like(), st.text("0123456789.,+-eE ", max_size=8), st.text(max_size=5)),
        min_size=10,
        max_size=50,
    )
)
def test_vectorised_equals_decimal(cells: list[str]) -> None:
    assert_agree(NUMBER, cells)
