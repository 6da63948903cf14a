"""Settling a batch read ahead (importing/ahead.py): the rows passed by their print that an
earlier batch reached are planned after all, and the batch's cells are let go of."""

from __future__ import annotations

import polars as pl

from rollbook.importing.ahead import ReadBatch, settle
from rollbook.importing.mapping import Column, FileMapping
from rollbook.importing.normalise import normalise_batch
from rollbook.importing.prepare import prepare
from rollbook.importing.prints import Passed
from rollbook.importing.read import Batch
from rollbook.model import BUILTIN_FIELDS, AccountSettings

SETTINGS = AccountSettings(1, "acme", "US", BUILTIN_FIELDS)
FIELDS = ("crm_id", "first_name", "phone")
MAPPING = FileMapping(tuple(Column(n, key, key, "exact") for n, key in enumerate(FIELDS)))


def _batch(rows: list[int], cells: list[tuple[str, str, str]]) -> Batch:
    frame = pl.DataFrame(
        [pl.Series(str(n), [c[n] for c in cells], dtype=pl.String) for n in range(len(FIELDS))]
    )
    return Batch(pl.Series("row", rows, dtype=pl.Int64), frame, [], 0)


def test_a_passed_row_whose_contact_an_earlier_batch_reached_is_planned() -> None:
    whole = _batch(
        [2, 3, 4],
        [("A1", "Ann", "2125550101"), ("A2", "Bob", "2125550102"), ("A3", "Cy", "2125550103")],
    )
    planned = _batch([2], [("A1", "Ann", "2125550101")])
    passed = Passed(
        pl.DataFrame(
            {
                "row": [3, 4],
                "contact_id": [12, 13],
                "ph": ["+12125550102", "+12125550103"],
                "phone": ["+12125550102", "+12125550103"],
            }
        ),
        whole,
    )
    read = ReadBatch(
        prepare(normalise_batch(planned, MAPPING, SETTINGS), SETTINGS),
        passed,
        pl.DataFrame({"row": [2, 3, 4], "print": [1, 2, 3]}),
    )
    prepared, still = settle(read, pl.Series("id", [13], dtype=pl.Int64), MAPPING, SETTINGS)
    assert prepared.frame["row"].to_list() == [2, 4]
    assert prepared.frame["crm"].to_list() == ["A1", "A3"]
    assert prepared.frame["i"].to_list() == [0, 1]
    assert still is not None
    assert still["row"].to_list() == [3]
    # The engine holds the read until the next one's is planned: its cells are let go of.
    assert read.passed is None
