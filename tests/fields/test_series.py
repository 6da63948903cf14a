"""The hand-over from a vectorised normaliser to its scalar definition (``fill_from_scalar``)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields._series import fill_from_scalar

texts = st.one_of(st.none(), st.text(alphabet=st.sampled_from("aB É1 "), max_size=4))
flags = st.one_of(st.none(), st.booleans())


def scalar(value: str) -> str | None:
    return value.casefold() or None


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(texts, texts, flags), max_size=30))
def test_each_value_is_the_fast_one_the_scalar_ones_or_null(
    rows: list[tuple[str | None, str | None, bool | None]],
) -> None:
    """Null where the value is null; the scalar function's answer where the fast path is unsure
    (a null "unsure" is sure); else the fast path's value, null included."""
    values = pl.Series("given", [v for v, _, _ in rows], dtype=pl.String)
    fast = pl.Series("fast", [f for _, f, _ in rows], dtype=pl.String)
    unsure = pl.Series("unsure", [u for _, _, u in rows], dtype=pl.Boolean)
    got = fill_from_scalar(values, fast, unsure, scalar)
    want = [None if v is None else scalar(v) if u else f for v, f, u in rows]
    assert got.to_list() == want
    assert got.name == "given"
    assert got.dtype == pl.String
