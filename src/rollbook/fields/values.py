"""Text, platform ids, booleans and choices: the kinds whose rules fit in a line each.

Each kind has a scalar definition and a vectorised twin over a Polars ``String`` series that must
give the same answer value by value; the tests hold them to that.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from rollbook.fields._series import fill_from_scalar, is_ascii

TEXT_MAX_CHARS: Final = 1000
ID_MAX_DIGITS: Final = 18

_CONTROL_RE: Final = r"[\x00-\x1f\x7f]"
_CONTROL_CHARS: Final = frozenset(map(chr, [*range(0x20), 0x7F]))

BOOLEAN_WORDS: Final[dict[str, str]] = {
    "true": "true",
    "yes": "true",
    "y": "true",
    "1": "true",
    "false": "false",
    "no": "false",
    "n": "false",
    "0": "false",
}


def _null_string() -> pl.Expr:
    return pl.lit(None, dtype=pl.String)


# -- text -----------------------------------------------------------------------------------------


def normalise_text(raw: str) -> str | None:
    """Any text without control characters, up to 1,000 characters."""
    if len(raw) > TEXT_MAX_CHARS or any(c in _CONTROL_CHARS for c in raw):
        return None
    return raw


def normalise_text_series(raw: pl.Series) -> pl.Series:
    ok = (raw.str.len_chars() <= TEXT_MAX_CHARS) & ~raw.str.contains(_CONTROL_RE)
    return pl.select(pl.when(ok).then(raw).otherwise(_null_string())).to_series()


# -- platform id ----------------------------------------------------------------------------------


def normalise_id(raw: str) -> str | None:
    """1 to 18 ASCII digits, not zero; leading zeros are dropped (``007`` → ``7``)."""
    if not (1 <= len(raw) <= ID_MAX_DIGITS) or not all("0" <= c <= "9" for c in raw):
        return None
    value = int(raw)
    return str(value) if value >= 1 else None


def normalise_id_series(raw: pl.Series) -> pl.Series:
    shaped = raw.str.contains(rf"^[0-9]{{1,{ID_MAX_DIGITS}}}$")
    number = pl.select(
        pl.when(shaped).then(raw).otherwise(_null_string()).cast(pl.Int64)
    ).to_series()
    return pl.select(
        pl.when(number >= 1).then(number.cast(pl.String)).otherwise(_null_string())
    ).to_series()


# -- boolean --------------------------------------------------------------------------------------


def normalise_boolean(raw: str) -> str | None:
    """``true/false/yes/no/1/0/y/n`` in any case → ``"true"`` or ``"false"``."""
    return BOOLEAN_WORDS.get(raw.lower())


def normalise_boolean_series(raw: pl.Series) -> pl.Series:
    # str.lower and Polars' to_lowercase agree on every letter that lower-cases into ASCII.
    return raw.str.to_lowercase().replace_strict(
        list(BOOLEAN_WORDS), list(BOOLEAN_WORDS.values()), default=None, return_dtype=pl.String
    )


# -- choice ---------------------------------------------------------------------------------------


def _choice_table(options: tuple[str, ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for option in options:
        table.setdefault(option.casefold(), option)
    return table


def normalise_choice(raw: str, options: tuple[str, ...]) -> str | None:
    """The option that equals ``raw`` ignoring case (casefold), in the option's own spelling."""
    return _choice_table(options).get(raw.casefold())


def normalise_choice_series(raw: pl.Series, options: tuple[str, ...]) -> pl.Series:
    # Polars has no casefold; for ASCII text casefold is plain lower-casing, the rest goes scalar.
    table = _choice_table(options)
    fast = raw.str.to_lowercase().replace_strict(
        list(table), list(table.values()), default=None, return_dtype=pl.String
    )
    ascii_only = is_ascii(raw)
    return fill_from_scalar(raw, fast, ~ascii_only, lambda v: normalise_choice(v, options))
