"""Dates in the handful of shapes student systems export, written back as ISO ``YYYY-MM-DD``.

Accepted: ``YYYY-MM-DD`` and ``YYYY/MM/DD`` (one- or two-digit month and day), an ISO date-time
``YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH[:MM]]`` or the same with a space instead of ``T`` (the date is
kept, the time only has to be a real time), ``M/D/YYYY`` and ``M-D-YYYY`` in the regions that
write the month first and ``D/M/YYYY``, ``D-M-YYYY`` everywhere else, ``D.M.YYYY`` (always day
first), and English
month names: ``Mon D, YYYY``, ``Month D YYYY``, ``D Mon YYYY``, ``D Month YYYY`` (any case, an
optional dot after the name, ``Sept`` too). Two-digit years are refused: the century would be a
guess. The year must be 1000–9999 and the day must exist in that month.
"""

from __future__ import annotations

import datetime
import re
from typing import Final

import polars as pl

#: Regions whose people write a slashed date month first (M/D/YYYY).
MONTH_FIRST_REGIONS: Final = frozenset(
    {"US", "PR", "GU", "VI", "AS", "MP", "UM", "PH", "FM", "MH", "PW"}
)

MONTHS: Final[dict[str, int]] = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}

# The shapes, each with named parts. Only ASCII digits and letters: "\d" would admit other
# scripts' digits, which Python and Polars would then read differently.
_D = "[0-9]{1,2}"
_TIME = (
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?"
)
_SHAPES: Final[dict[str, str]] = {
    # year first
    "ymd_dash": rf"(?P<y>[0-9]{{4}})-(?P<m>{_D})-(?P<d>{_D})",
    "ymd_slash": rf"(?P<y>[0-9]{{4}})/(?P<m>{_D})/(?P<d>{_D})",
    "iso_time": rf"(?P<y>[0-9]{{4}})-(?P<m>[0-9]{{2}})-(?P<d>[0-9]{{2}})[T ]{_TIME}",
    # slashed or dashed, order by region: read as (a, b) and sorted out below
    "slash": rf"(?P<a>{_D})/(?P<b>{_D})/(?P<y>[0-9]{{4}})",
    "dash": rf"(?P<a>{_D})-(?P<b>{_D})-(?P<y>[0-9]{{4}})",
    # always day first
    "dmy_dot": rf"(?P<d>{_D})\.(?P<m>{_D})\.(?P<y>[0-9]{{4}})",
    # month names
    "name_first": rf"(?P<name>[A-Za-z]+)\.? +(?P<d>{_D}),? +(?P<y>[0-9]{{4}})",
    "day_first": rf"(?P<d>{_D}) +(?P<name>[A-Za-z]+)\.? +(?P<y>[0-9]{{4}})",
}
_BY_REGION: Final = ("slash", "dash")
_SHAPE_RES: Final = {key: re.compile(pattern) for key, pattern in _SHAPES.items()}


def month_first(region: str) -> bool:
    return region.upper() in MONTH_FIRST_REGIONS


def normalise_date(raw: str, region: str) -> str | None:
    """The definition: try each shape with ``re.fullmatch``, then ``datetime.date`` decides."""
    for key, shape in _SHAPE_RES.items():
        m = shape.fullmatch(raw)
        if m is None:
            continue
        parts = m.groupdict()
        year = int(parts["y"])
        if key in _BY_REGION:
            month, day = (
                (parts["a"], parts["b"]) if month_first(region) else (parts["b"], parts["a"])
            )
        elif "name" in parts:
            number = MONTHS.get(parts["name"].lower())
            if number is None:
                return None
            month, day = str(number), parts["d"]
        else:
            month, day = parts["m"], parts["d"]
        if year < 1000:
            return None
        try:
            return datetime.date(year, int(month), int(day)).isoformat()
        except ValueError:
            return None
    return None


def normalise_date_series(raw: pl.Series, region: str) -> pl.Series:
    """Vectorised. Most exports write ISO dates: those are checked with one cheap pattern and
    a calendar test; the other shapes only see the values that are not ISO."""
    raw = raw.cast(pl.String)
    iso = raw.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").fill_null(False)
    if not iso.any():
        return _shapes_series(raw, region)
    parsed = raw.str.to_date("%Y-%m-%d", strict=False)
    fast = pl.select(
        pl.when(iso & parsed.is_not_null() & (parsed.dt.year() >= 1000))
        .then(raw)
        .otherwise(pl.lit(None, dtype=pl.String))
    ).to_series()
    rest = ~iso & raw.is_not_null()
    if rest.any():
        index = rest.arg_true()
        fast = fast.scatter(index, _shapes_series(raw.gather(index), region))
    return fast.rename(raw.name)


def _shapes_series(raw: pl.Series, region: str) -> pl.Series:
    """Each shape's parts by one regex, then calendar arithmetic in Polars."""
    years: list[pl.Expr] = []
    months: list[pl.Expr] = []
    days: list[pl.Expr] = []
    for key, pattern in _SHAPES.items():
        parts = pl.col("raw").str.extract_groups(f"^(?:{pattern})$")
        if key in _BY_REGION:
            first, second = parts.struct.field("a"), parts.struct.field("b")
            month, day = (first, second) if month_first(region) else (second, first)
        elif "(?P<name>" in pattern:
            name = parts.struct.field("name")
            number = name.str.to_lowercase().replace_strict(
                list(MONTHS), [str(n) for n in MONTHS.values()], default="0"
            )
            month = pl.when(name.is_not_null()).then(number)
            day = parts.struct.field("d")
        else:
            month, day = parts.struct.field("m"), parts.struct.field("d")
        years.append(parts.struct.field("y"))
        months.append(month)
        days.append(day)
    # The shapes exclude each other, so at most one of them has parts for a value.
    y = pl.coalesce(years).cast(pl.Int32)
    m = pl.coalesce(months).cast(pl.Int32)
    d = pl.coalesce(days).cast(pl.Int32)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    month_days = (
        pl.when(m == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(m.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    real = (y >= 1000) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= month_days)
    iso = pl.format(
        "{}-{}-{}",
        y.cast(pl.String),
        m.cast(pl.String).str.zfill(2),
        d.cast(pl.String).str.zfill(2),
    )
    out = pl.DataFrame({"raw": raw.cast(pl.String)}).select(
        pl.when(real).then(iso).otherwise(pl.lit(None, dtype=pl.String)).alias(raw.name)
    )
    return out.to_series()
