"""Dates: the common export shapes to ISO, month-first only where people write it that way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import invalid_reason, normalise_value
from tests.fields.agreement import DATE, assert_agree

ANY_REGION = [
    ("2024-01-05", "2024-01-05"),
    ("2024-1-5", "2024-01-05"),
    ("2024/01/05", "2024-01-05"),
    ("2024-01-05T14:30", "2024-01-05"),
    ("2024-01-05T14:30:59.123Z", "2024-01-05"),
    ("2024-01-05T23:30:00-05:00", "2024-01-05"),  # the date as written; no time-zone shift
    ("2024-01-05 14:30:00", "2024-01-05"),
    ("5.1.2024", "2024-01-05"),
    ("Jan 5, 2024", "2024-01-05"),
    ("JANUARY 5 2024", "2024-01-05"),
    ("Sept. 30, 2024", "2024-09-30"),
    ("5 Jan 2024", "2024-01-05"),
    ("29 February 2024", "2024-02-29"),
    ("1000-01-01", "1000-01-01"),
    ("9999-12-31", "9999-12-31"),
]

SLASHED = [
    # (cell, month first (US), day first (GB))
    ("1/5/2024", "2024-01-05", "2024-05-01"),
    ("12/31/2024", "2024-12-31", None),
    ("31/12/2024", None, "2024-12-31"),
    ("02/29/2023", None, None),
    ("1-5-2024", "2024-01-05", "2024-05-01"),  # dashed like slashed: the region decides
    ("12-25-2024", "2024-12-25", None),
]

REFUSED = [
    "2024-02-30",
    "2023-02-29",
    "1900-02-29",  # not a leap year
    "2000-02-29x",
    "0999-12-31",  # year before 1000
    "24-01-05",  # two-digit years are a guess
    "1/5/24",
    "2024-13-01",
    "2024-00-10",
    "2024-01-05T24:00",
    "2024-01-05T14",
    "2024-1-5T14:30",  # date-times are strict ISO
    "2024-01/05",
    "20240105",
    "Jnu 5, 2024",
    "5th Jan 2024",
    "Jan 32, 2024",
    "yesterday",
    "٢٠٢٤-٠١-٠٥",  # only ASCII digits
]


@pytest.mark.parametrize(("cell", "iso"), ANY_REGION)
@pytest.mark.parametrize("region", ["US", "GB"])
def test_accepted_dates(region: str, cell: str, iso: str) -> None:
    assert normalise_value(DATE, cell, region) == iso
    assert_agree(DATE, [cell], region)


@pytest.mark.parametrize(("cell", "us", "gb"), SLASHED)
def test_slashed_dates_follow_the_region(cell: str, us: str | None, gb: str | None) -> None:
    assert normalise_value(DATE, cell, "US") == us
    assert normalise_value(DATE, cell, "PH") == us
    assert normalise_value(DATE, cell, "GB") == gb
    assert normalise_value(DATE, cell, "DE") == gb
    for region in ("US", "GB"):
        assert_agree(DATE, [cell], region)


@pytest.mark.parametrize("cell", REFUSED)
def test_refused_dates(cell: str) -> None:
    assert normalise_value(DATE, cell, "US") is None
    assert_agree(DATE, [cell], "US")


def test_reason_shows_the_region_order() -> None:
    assert invalid_reason(DATE, "US") == "not a date (use YYYY-MM-DD or MM/DD/YYYY)"
    assert invalid_reason(DATE, "FR") == "not a date (use YYYY-MM-DD or DD/MM/YYYY)"


# -- Hypothesis ----------------------------------------------------------------------------------

MONTH_NAMES = ["Jan", "january", "FEB", "Sept", "sep", "May", "June", "Dec", "Decem", "Mai", "ſep"]


@st.composite
def date_like(draw: st.DrawFn) -> str:
    # Parts drawn independently and uniformly (Hypothesis' own draws favour small values), so
    # that month ends and leap days in century years come up often; now and then one flaw.
    rnd = draw(st.randoms(use_true_random=False))
    y = rnd.choice(["1900", "2000", "2100", "2024", "2023", "1000", "0999", "9999"])
    if rnd.random() < 0.5:
        y = str(rnd.randint(1000, 9999))
    month = rnd.choice([rnd.randint(1, 12), 2, rnd.choice([4, 6, 9, 11])])
    day = rnd.choice([rnd.randint(0, 32), rnd.randint(28, 31)])
    m = rnd.choice([str(month), f"{month:02d}"])
    d = rnd.choice([str(day), f"{day:02d}"])
    name = rnd.choice(MONTH_NAMES)
    time = rnd.choice(["T10:20", " 10:20:30", "T23:59:59.5Z", "T10:20+01:00", "T25:00", "T1:2"])
    flaw = rnd.choice(["", "", "", "", "", "pad", "noise"])
    if flaw == "pad":
        padding = rnd.choice(["0", "00", "1"])
        y, m, d = rnd.choice([(padding + y, m, d), (y, padding + m, d), (y, m, padding + d)])
    text = rnd.choice(
        [
            f"{y}-{m}-{d}",
            f"{y}/{m}/{d}",
            f"{y}-{m}-{d}{time}",
            f"{m}/{d}/{y}",
            f"{d}.{m}.{y}",
            f"{d}-{m}-{y}",
            f"{name} {d}, {y}",
            f"{name}. {d} {y}",
            f"{d} {name} {y}",
            f"{d}  {name}.  {y}",
        ]
    )
    if flaw == "noise":
        noise = rnd.choice([" ", "\n", "x", "/", "-", "T"])
        text = rnd.choice([text + noise, noise + text])
    return text


@pytest.mark.parametrize("region", ["US", "GB", "PH", "IN"])
@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.one_of(date_like(), st.text(max_size=12)), min_size=20, max_size=60))
def test_vectorised_equals_scalar(region: str, cells: list[str]) -> None:
    assert_agree(DATE, cells, region)
