"""The keys contacts are matched and compared by, in Python and over Polars series.

The rules compare exact values; the engine first narrows the candidates with a hashed in-memory
index built from these keys. A hash can collide but never misses: two values the rules call
equal always get equal keys here, in Python and in Polars alike (where Polars cannot do exactly
what Python does — case folding outside ASCII — the series functions ask the Python one).
"""

from __future__ import annotations

import polars as pl

from rollbook.fields import name_key, name_key_series
from rollbook.fields._series import fill_from_scalar, is_ascii

__all__ = [
    "email_key",
    "email_key_series",
    "name_key",
    "person_key",
    "person_key_series",
    "phone_number",
    "phone_number_series",
]

_SEP = "\x1f"


def email_key(email: str) -> str:
    """Emails are the same address when they are equal ignoring case."""
    return email.casefold()


def email_key_series(s: pl.Series) -> pl.Series:
    s = s.cast(pl.String)
    ascii_only = is_ascii(s)
    return fill_from_scalar(s, s.str.to_lowercase(), ~ascii_only, email_key)


def person_key(first: str | None, last: str | None, born: str | None) -> str | None:
    """The "same name and birth date" key; None unless all three are known."""
    nf, nl = name_key(first or ""), name_key(last or "")
    if not (nf and nl and born):
        return None
    return nf + _SEP + nl + _SEP + born


def person_key_series(first: pl.Series, last: pl.Series, born: pl.Series) -> pl.Series:
    nf, nl = name_key_series(first), name_key_series(last)
    frame = pl.DataFrame({"f": nf, "l": nl, "b": born.cast(pl.String)})
    ok = (
        (pl.col("f").str.len_bytes() > 0)
        & (pl.col("l").str.len_bytes() > 0)
        & pl.col("b").is_not_null()
    )
    return frame.select_seq(
        pl.when(ok)
        .then(pl.concat_str(["f", "l", "b"], separator=_SEP))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("person")
    ).to_series()


def phone_number(phone: str) -> int:
    """An E.164 phone as a 64-bit integer (its digits): compact and exact."""
    return int(phone[1:])


def phone_number_series(s: pl.Series) -> pl.Series:
    return s.cast(pl.String).str.slice(1).cast(pl.Int64, strict=False)
