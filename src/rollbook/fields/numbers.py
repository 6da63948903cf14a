"""Numbers as their shortest plain decimal text, so that equal numbers are equal strings.

``007``, ``7.0``, ``+7`` and ``7e0`` are one number and must compare equal as canonical strings,
so the canonical form has no exponent, no ``+``, no leading or trailing zeros and no ``-0``.
Thousands separators are accepted only in the strict ``1,234,567.89`` grouping (anything looser
is more likely a list or a European decimal comma than a big number). The canonical text may hold
at most 30 digits: that bounds both precision and length, which an exponent could otherwise blow
up (``1e999999``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

import polars as pl

from rollbook.fields._series import fill_from_scalar

MAX_DIGITS: Final = 30

# sign, integer part (plain digits, or 1-3 digits then ",ddd" groups), fraction, exponent.
_GRAMMAR: Final = (
    r"([+-]?)((?:[1-9][0-9]{0,2}(?:,[0-9]{3})+)|[0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?"
)
_GRAMMAR_RE: Final = re.compile(_GRAMMAR)


def normalise_number(raw: str) -> str | None:
    """The definition: check the grammar, let ``Decimal`` read it, write the digits back out."""
    m = _GRAMMAR_RE.fullmatch(raw)
    if m is None:
        return None
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:  # an exponent beyond what decimal can hold
        return None
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # the grammar admits no NaN or Infinity
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "0"
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    # Digits written out: integer digits (none for 0.xxx) plus fraction digits.
    count = len(digits) + exponent if exponent >= 0 else max(len(digits), -exponent)
    if count > MAX_DIGITS:
        return None
    if exponent >= 0:
        text = digits + "0" * exponent
    else:
        point = len(digits) + exponent
        text = digits[:point] + "." + digits[point:] if point > 0 else "0." + "0" * -point + digits
    return "-" + text if sign else text


def normalise_number_series(raw: pl.Series) -> pl.Series:
    """Vectorised: plain and grouped decimals in Polars; anything with an exponent goes scalar."""
    parts = raw.str.extract_groups("^" + _GRAMMAR + "$")
    frame = pl.DataFrame({"raw": raw}).with_columns(parts.struct.unnest())
    sign, integer, fraction, exponent = (pl.col(str(i)) for i in range(1, 5))
    int_digits = integer.str.replace_all(",", "").str.strip_chars_start("0")
    frac_digits = fraction.fill_null("").str.strip_chars_end("0")
    count = int_digits.str.len_bytes() + frac_digits.str.len_bytes()
    body = pl.when(int_digits == "").then(pl.lit("0")).otherwise(int_digits) + pl.when(
        frac_digits == ""
    ).then(pl.lit("")).otherwise("." + frac_digits)
    negative = (sign == "-") & (count > 0)
    fast = (
        pl.when(integer.is_null() | (count > MAX_DIGITS))
        .then(pl.lit(None, dtype=pl.String))
        .when(negative)
        .then("-" + body)
        .otherwise(body)
    )
    out = frame.select(fast=fast, unsure=exponent.is_not_null())
    return fill_from_scalar(raw, out["fast"], out["unsure"], normalise_number)
