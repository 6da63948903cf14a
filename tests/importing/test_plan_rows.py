"""Taking some of a batch's rows for the rows decided one by one, the skipped rows' messages and
the new contacts (``plan._rows_of``): by each row's place in the batch, only the columns asked
for."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.importing.plan import _rows_of


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(min_value=0, max_value=30),
    data=st.data(),
)
def test_rows_of_takes_the_subsets_rows_in_the_batchs_order(
    height: int, data: st.DataObject
) -> None:
    """The subset's rows (repeated or out of order, as joins and sorts leave them), in the
    batch's order, with the asked columns in the asked order: as a filter by membership takes
    them. Every row and no row included."""
    frame = pl.DataFrame(
        {
            "i": pl.int_range(height, eager=True),
            "row": [10 + 3 * k for k in range(height)],
            "a": [f"a{k}" if k % 3 else None for k in range(height)],
            "b": [float(k) / 2 for k in range(height)],
        }
    )
    places = data.draw(st.lists(st.integers(min_value=0, max_value=max(height - 1, 0))))
    places = [p for p in places if p < height]
    subset = pl.DataFrame({"i": places}, schema={"i": pl.Int64}).with_columns(
        pl.lit("x").alias("other")
    )
    columns = data.draw(st.permutations(["row", "a", "b", "i"]).map(lambda c: c[:3]))

    got = _rows_of(frame, subset, columns)

    want = frame.filter(pl.col("i").is_in(pl.Series(places, dtype=pl.Int64).implode())).select(
        columns
    )
    assert got.columns == columns
    assert got.equals(want)
