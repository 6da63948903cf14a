"""What a row would create, worked out before the database is asked: the custom fields' JSON."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.importing.prepare import custom_json

KEYS = ["birth_date", "gpa", "x_2"]
values = st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab"\\é{}:,null '), max_size=6))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(values, values, values), max_size=40))
def test_custom_json_holds_the_set_fields_in_order(rows: list[tuple[str | None, ...]]) -> None:
    """Set fields only, in the fields' order, the values as they are; ``{}`` when none is set
    (the rows with unset fields and those without take two ways)."""
    frame = pl.DataFrame(rows, schema={k: pl.String for k in KEYS}, orient="row")
    got = custom_json(frame, KEYS).to_list()
    want = [{k: v for k, v in zip(KEYS, row, strict=True) if v is not None} for row in rows]
    assert [json.loads(g) for g in got] == want
    assert [list(json.loads(g)) for g in got] == [list(w) for w in want]
    assert all(
        g == json.dumps(w, ensure_ascii=False, separators=(",", ":"))
        for g, w in zip(got, want, strict=True)
    )
