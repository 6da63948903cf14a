"""The first pass's search for repeated values (``engine._repeated``): the rows whose value
another row has too, in the file's order."""

from __future__ import annotations

from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.importing.engine import _repeated


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(alphabet="ab1é ", max_size=3), max_size=40))
def test_repeated_finds_the_rows_whose_value_another_row_has(values: list[str]) -> None:
    rows = [5 + 2 * k for k in range(len(values))]
    frame = pl.DataFrame(
        {"row": rows, "value": values}, schema={"row": pl.Int64, "value": pl.String}
    )

    got = _repeated(frame)

    count = Counter(values)
    want = [(r, v) for r, v in zip(rows, values, strict=True) if count[v] > 1]
    assert got.columns == ["row", "value"]
    assert list(got.iter_rows()) == want
