"""Import prints (importing/prints.py): what a print is keyed by, and that it is the same in
another process (a print made tonight is checked by tomorrow's process)."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from rollbook.importing import prints
from rollbook.importing.mapping import Column, FileMapping
from rollbook.importing.read import Batch
from rollbook.model import AccountSettings, FieldDef, FieldType

FIELDS = (
    FieldDef("crm_id", FieldType.TEXT, "CRM ID"),
    FieldDef("phone", FieldType.PHONE, "Phone"),
)
SETTINGS = AccountSettings(1, "acme", "US", FIELDS)
MAPPING = FileMapping((Column(0, "ID", "crm_id", "exact"), Column(1, "Cell", "phone", "exact")))
BATCH = Batch(
    pl.Series([2, 3, 4], dtype=pl.Int64),
    pl.DataFrame({"0": ["A1", "A2", None], "1": ["(212) 555-0101", None, "2125550102"]}),
    [],
    0,
)


def test_the_seed_is_keyed_by_what_an_outcome_depends_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = prints.seed(SETTINGS, MAPPING)
    assert prints.seed(SETTINGS, MAPPING) == seed
    other_region = AccountSettings(1, "acme", "GB", FIELDS)
    fewer = FileMapping((Column(0, "ID", "crm_id", "exact"), Column(1, "Cell", None)))
    assert prints.seed(other_region, MAPPING) != seed
    assert prints.seed(SETTINGS, fewer) != seed
    # A field's key, type or options change what a row does; its label does not.
    relabelled = AccountSettings(
        1, "acme", "US", (FIELDS[0], FieldDef("phone", FieldType.PHONE, "Cell"))
    )
    assert prints.seed(relabelled, MAPPING) == seed
    retyped = AccountSettings(
        1, "acme", "US", (FieldDef("crm_id", FieldType.ID, "CRM ID"), FIELDS[1])
    )
    assert prints.seed(retyped, MAPPING) != seed
    monkeypatch.setattr(prints, "RULES_VERSION", prints.RULES_VERSION + 1)
    assert prints.seed(SETTINGS, MAPPING) != seed


def test_a_print_does_not_depend_on_where_the_columns_are() -> None:
    """Exports reorder their columns: the cells are hashed field by field."""
    moved = FileMapping((Column(0, "Cell", "phone", "exact"), Column(1, "ID", "crm_id", "exact")))
    cells = BATCH.cells.select(pl.col("1").alias("0"), pl.col("0").alias("1"))
    reordered = Batch(BATCH.rows, cells, [], 0)
    key = prints.seed(SETTINGS, MAPPING)
    assert prints.seed(SETTINGS, moved) == key
    assert prints.row_prints(reordered, moved, key).equals(prints.row_prints(BATCH, MAPPING, key))


def test_a_print_is_the_same_in_another_process() -> None:
    here = prints.row_prints(BATCH, MAPPING, prints.seed(SETTINGS, MAPPING)).to_list()
    assert len(set(here)) == 3
    code = (
        "import json; from tests.importing.test_prints import BATCH, MAPPING, SETTINGS; "
        "from rollbook.importing import prints; "
        "print(json.dumps(prints.row_prints(BATCH, MAPPING, "
        "prints.seed(SETTINGS, MAPPING)).to_list()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == here


def test_a_print_tells_an_empty_cell_from_an_empty_text() -> None:
    """Cells are null when empty; a print must still tell which column was empty."""
    batch = Batch(
        pl.Series([2, 3], dtype=pl.Int64),
        pl.DataFrame({"0": ["A1", None], "1": [None, "A1"]}),
        [],
        0,
    )
    first, second = prints.row_prints(batch, MAPPING, prints.seed(SETTINGS, MAPPING))
    assert first != second
