"""Cells → canonical values (SPEC §3.2), a whole batch at a time.

A normalised batch is a Polars frame: ``row``, then for each mapped field ``f`` a String column
``f`` — null where the cell was empty (the field is not given), ``CLEAR_MARK`` where it said
``UNSET``, else the canonical value — and a Boolean column ``!f``, true where the cell could not
be normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rollbook.fields import clean_cell, clean_frame, normalise_series, normalise_value
from rollbook.importing.mapping import FileMapping
from rollbook.importing.read import BadRow, Batch
from rollbook.importing.rules import InputRow
from rollbook.model import CLEAR, UNSET_WORD, AccountSettings, Changes, Code, FieldType

#: In a normalised frame: the cell said UNSET. Text with control characters is refused by the
#: normalisers, so no real value can be this.
CLEAR_MARK = "\x00"


def invalid_column(key: str) -> str:
    return f"!{key}"


@dataclass
class NormalisedBatch:
    frame: pl.DataFrame
    fields: tuple[str, ...]
    bad_rows: list[BadRow]
    blank_rows: int
    #: The fields that may hold ``CLEAR_MARK`` (a cell said UNSET), as ``normalise_batch`` found
    #: them: ``prepare`` looks for it only there. ``None`` (batches joined or split from others)
    #: means any field may.
    cleared: frozenset[str] | None = None

    def may_clear(self, key: str) -> bool:
        return self.cleared is None or key in self.cleared

    def __len__(self) -> int:
        return self.frame.height + len(self.bad_rows)


#: Batches of at most this many rows are normalised cell by cell, by the scalar definitions
#: (``fields.normalise_value``), rather than in columns. The columnar pass costs ~20 ms of CPU
#: however few the rows (forty-odd Polars calls), and inside an import each call queues for the
#: interpreter and for Polars' threads behind the reading threads' work: the 44-127 rows of a
#: next-term group that an earlier batch reached, put back among the rows to plan on the planning
#: thread, took it 1.2-1.5 s of wall time in seven groups for 0.25-0.35 s of CPU. Cell by cell costs
#: ~0.13 ms a row (phones and emails through their libraries) and waits for nothing; the two
#: cost the same at about this many rows (docs/benchmarks.md).
FEW_ROWS = 128


def normalise_batch(
    batch: Batch,
    mapping: FileMapping,
    settings: AccountSettings,
    only: frozenset[str] | None = None,
) -> NormalisedBatch:
    """Normalise the mapped columns of ``batch`` (``only`` these fields, if given)."""
    fields = tuple(k for k in mapping.fields if only is None or k in only)
    if batch.cells.height <= FEW_ROWS:
        return _normalise_few(batch, mapping, settings, fields)
    return _normalise_columns(batch, mapping, settings, fields)


def _normalise_columns(
    batch: Batch, mapping: FileMapping, settings: AccountSettings, fields: tuple[str, ...]
) -> NormalisedBatch:
    """``normalise_batch`` a column at a time, by the vectorised normalisers."""
    columns: list[pl.Series] = [batch.rows.alias("row")]
    cleared: set[str] = set()
    cells = clean_frame(
        batch.cells, sorted({str(mapping.fields[key]) for key in fields}), trimmed=batch.trimmed
    )
    for key in fields:
        f = settings.field(key)
        cleaned = cells[str(mapping.fields[key])]
        unset = (cleaned == UNSET_WORD).fill_null(False)
        any_unset = unset.any()
        values = normalise_series(
            f, _where(unset, None, cleaned) if any_unset else cleaned, settings.region
        )
        invalid = cleaned.is_not_null() & ~unset & values.is_null()
        if f.type is FieldType.ID:  # the platform id cannot be cleared
            invalid = invalid | unset
        elif any_unset:
            values = _where(unset, CLEAR_MARK, values)
            cleared.add(key)
        columns.append(values.alias(key))
        columns.append(invalid.alias(invalid_column(key)))
    return _normalised(batch, fields, columns, cleared)


def _normalise_few(
    batch: Batch, mapping: FileMapping, settings: AccountSettings, fields: tuple[str, ...]
) -> NormalisedBatch:
    """``normalise_batch`` cell by cell: the same frame, from ``clean_cell`` and
    ``normalise_value``, which the columnar normalisers are tested against."""
    columns: list[pl.Series] = [batch.rows.alias("row")]
    cleared: set[str] = set()
    for key in fields:
        f = settings.field(key)
        values: list[str | None] = []
        invalid: list[bool] = []
        for raw in batch.cells[str(mapping.fields[key])].cast(pl.String).to_list():
            cell = clean_cell(raw)
            if cell is None:
                values.append(None)
                invalid.append(False)
            elif cell is CLEAR:
                # The platform id cannot be cleared: UNSET is an invalid id.
                is_id = f.type is FieldType.ID
                values.append(None if is_id else CLEAR_MARK)
                invalid.append(is_id)
                if not is_id:
                    cleared.add(key)
            else:
                value = normalise_value(f, str(cell), settings.region)
                values.append(value)
                invalid.append(value is None)
        columns.append(pl.Series(key, values, dtype=pl.String))
        columns.append(pl.Series(invalid_column(key), invalid, dtype=pl.Boolean))
    return _normalised(batch, fields, columns, cleared)


def _normalised(
    batch: Batch, fields: tuple[str, ...], columns: list[pl.Series], cleared: set[str]
) -> NormalisedBatch:
    return NormalisedBatch(
        pl.DataFrame(columns), fields, list(batch.bad_rows), batch.blank_rows, frozenset(cleared)
    )


def _where(mask: pl.Series, yes: str | None, no: pl.Series) -> pl.Series:
    return pl.select(pl.when(mask).then(pl.lit(yes, dtype=pl.String)).otherwise(no)).to_series()


def input_rows(nb: NormalisedBatch, settings: AccountSettings) -> list[InputRow]:
    """The batch as the reference rules read it: one ``InputRow`` per row, in file order,
    unreadable rows included."""
    rows: list[InputRow] = []
    codes = {key: settings.field(key).invalid_code for key in nb.fields}
    for record in nb.frame.iter_rows(named=True):
        changes: Changes = {}
        invalid: dict[str, Code] = {}
        for key in nb.fields:
            if record[invalid_column(key)]:
                invalid[key] = codes[key]
            elif (value := record[key]) is not None:
                changes[key] = CLEAR if value == CLEAR_MARK else value
        rows.append(InputRow(record["row"], changes, invalid))
    rows.extend(InputRow(b.row, {}, unreadable=b.reason) for b in nb.bad_rows)
    rows.sort(key=lambda r: r.row)
    return rows
