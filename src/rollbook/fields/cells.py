"""Raw cells to "not given", "clear" or text, and the key names are compared by.

A cell from a file is first *cleaned*: surrounding white space goes, an empty cell means the field
is not given, ``UNSET`` means clear it, and the apostrophe our own exports put in front of
formula-like text is taken off again so that export → import round-trips. The white space set is
spelled out (not ``str.isspace``) so that Python and Polars trim exactly the same characters.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from rollbook.fields._series import fill_from_scalar, is_ascii
from rollbook.model import CLEAR, UNSET_WORD, _Clear

#: Characters trimmed from both ends of a cell: ASCII white space, no-break space, the Unicode
#: spaces U+2000–U+200A, line and paragraph separators, narrow and medium mathematical spaces,
#: the ideographic space and the byte-order mark that spreadsheets leave behind.
WHITESPACE: Final = (
    " \t\n\r\x0b\x0c"
    "\u00a0"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

#: The characters a spreadsheet reads as the start of a formula; exports put "'" before them.
FORMULA_STARTS: Final = "=+-@"

# Everything name_key removes: the trimmed set plus whatever else Python calls white space
# (no code point above U+3000 is white space to Python).
_NAME_SPACE: Final = frozenset(WHITESPACE) | frozenset(
    c for c in map(chr, range(0x3000 + 1)) if c.isspace()
)
_ASCII_NAME_SPACE_RE: Final = (
    "[" + "".join(f"\\x{ord(c):02x}" for c in sorted(_NAME_SPACE) if ord(c) < 0x80) + "]"
)


def clean_cell(raw: str | None) -> str | _Clear | None:
    """One cell: ``None`` if not given, ``CLEAR`` for ``UNSET``, else the trimmed text."""
    if raw is None:
        return None
    text = raw.strip(WHITESPACE)
    if not text:
        return None
    if text == UNSET_WORD:
        return CLEAR
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_STARTS:
        return text[1:]
    return text


def clean_series(raw: pl.Series) -> pl.Series:
    """Vectorised ``clean_cell``; ``UNSET`` stays the string ``"UNSET"`` for the caller to see."""
    trimmed = raw.cast(pl.String).str.strip_chars(WHITESPACE)
    out = pl.select(
        pl.when(trimmed.str.len_bytes() == 0).then(pl.lit(None, dtype=pl.String)).otherwise(trimmed)
    ).to_series()
    quoted = out.str.starts_with("'").fill_null(False)
    if quoted.any():  # rare: only our own exports write the apostrophe
        index = quoted.arg_true()
        part = out.gather(index)
        protected = part.str.slice(1, 1).is_in(list(FORMULA_STARTS))
        out = out.scatter(
            index, pl.select(pl.when(protected).then(part.str.slice(1)).otherwise(part)).to_series()
        )
    return out.rename(raw.name)


def clean_frame(cells: pl.DataFrame, columns: list[str], *, trimmed: bool = False) -> pl.DataFrame:
    """``clean_series`` of each of ``columns``, all in one query: the trimmed text is computed
    once per column (a query shares it between its two uses; one call per column computes it
    twice), and the columns side by side. ``trimmed``: the cells come trimmed already (as the
    file reader leaves them)."""
    text = {c: pl.col(c).cast(pl.String) for c in columns}
    if not trimmed:
        text = {c: t.str.strip_chars(WHITESPACE) for c, t in text.items()}
    out = (
        cells.lazy()
        .select(pl.when(t.str.len_bytes() > 0).then(t).alias(c) for c, t in text.items())
        .collect()
    )
    quoted = out.select(pl.col(c).str.starts_with("'").any() for c in columns).row(0)
    if any(quoted):  # rare: only our own exports write the apostrophe
        out = out.with_columns(
            clean_series(out[c]) for c, q in zip(columns, quoted, strict=True) if q
        )
    return out


def name_key(name: str) -> str:
    """Casefolded, without any white space: "Mary Ann" and "maryann" are the same name."""
    return "".join(c for c in name.casefold() if c not in _NAME_SPACE)


def name_key_series(s: pl.Series) -> pl.Series:
    """Vectorised ``name_key``. Polars has no casefold, so only ASCII text is done in Polars."""
    s = s.cast(pl.String)
    ascii_only = is_ascii(s)
    fast = s.str.to_lowercase().str.replace_all(_ASCII_NAME_SPACE_RE, "")
    return fill_from_scalar(s, fast, ~ascii_only, name_key)
