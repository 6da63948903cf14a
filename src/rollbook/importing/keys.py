"""The keys contacts are matched and compared by, in Python and as Polars expressions.

The rules compare exact values; the engine first narrows the candidates with a hashed in-memory
index built from these keys. A hash can collide but never misses: two values the rules call equal
always have equal keys here, in Python and in Polars alike (a property test holds them together).
"""

from __future__ import annotations

import polars as pl

_SEP = "\x1f"


def name_key(name: str) -> str:
    """Names are compared with case and spacing ignored."""
    return "".join(name.lower().split())


def email_key(email: str) -> str:
    """Emails are the same address when they are equal ignoring case."""
    return email.lower()


def person_key(first: str | None, last: str | None, born: str | None) -> str | None:
    """The "same name and birth date" key; None unless all three are known."""
    nf, nl = name_key(first or ""), name_key(last or "")
    if not (nf and nl and born):
        return None
    return nf + _SEP + nl + _SEP + born


def name_key_expr(col: pl.Expr) -> pl.Expr:
    return col.str.to_lowercase().str.replace_all(r"\s+", "")


def email_key_expr(col: pl.Expr) -> pl.Expr:
    return col.str.to_lowercase()


def person_key_expr(first: pl.Expr, last: pl.Expr, born: pl.Expr) -> pl.Expr:
    nf, nl = name_key_expr(first), name_key_expr(last)
    ok = (nf.str.len_chars() > 0) & (nl.str.len_chars() > 0) & born.is_not_null()
    return pl.when(ok).then(pl.concat_str([nf, nl, born], separator=_SEP)).otherwise(None)


def phone_number_expr(col: pl.Expr) -> pl.Expr:
    """An E.164 phone as a 64-bit integer (its digits): compact and exact."""
    return col.str.slice(1).cast(pl.Int64, strict=False)


def phone_number(phone: str) -> int:
    return int(phone[1:])
