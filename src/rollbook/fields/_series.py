"""The one way a vectorised normaliser hands the values it is unsure of to its scalar definition.

Every fast path in this package answers "valid, and here is the canonical text", "invalid" or
"not sure". The "not sure" values are normalised by the scalar function, once per distinct value,
so the result is the definition's by construction and repeated values cost one call.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def fill_from_scalar(
    values: pl.Series,
    fast: pl.Series,
    unsure: pl.Series,
    scalar: Callable[[str], str | None],
) -> pl.Series:
    """``fast`` where it is sure, ``scalar(value)`` where ``unsure``; null values stay null."""
    # Polars runs nearly every Series method as a query of its own (~0.1 ms each, even on a few
    # rows, and an import makes thousands of these calls): the result and the values to ask the
    # scalar function for come from one query.
    given = pl.col("values").is_not_null()
    out = pl.DataFrame([values.alias("values"), fast.alias("fast"), unsure.alias("unsure")])
    out = out.select_seq(
        pl.when(given).then(pl.col("fast")).cast(pl.String).alias("result"),
        (pl.col("unsure").fill_null(False) & given).alias("todo"),
    )
    result = out["result"]
    index = out["todo"].arg_true() if out["todo"].any() else None
    if index is not None:
        todo = values.gather(index)
        distinct = todo.unique()
        answers = pl.Series([scalar(v) for v in distinct.to_list()], dtype=pl.String)
        result = result.scatter(
            index, todo.replace_strict(distinct, answers, return_dtype=pl.String)
        )
    return result.rename(values.name)


def is_ascii(values: pl.Series) -> pl.Series:
    """Whether each text is ASCII only (null stays null): as many bytes as characters, since
    UTF-8 writes every other character in more than one byte. Several times cheaper than a
    pattern over every character."""
    return values.str.len_bytes() == values.str.len_chars()
