"""Cells → canonical values (SPEC §3.2), a whole batch at a time.

A normalised batch is a Polars frame: ``row``, then for each mapped field ``f`` a String column
``f`` — null where the cell was empty (the field is not given), ``CLEAR_MARK`` where it said
``UNSET``, else the canonical value — and a Boolean column ``!f``, true where the cell could not
be normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rollbook.fields import clean_frame, normalise_series
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


def normalise_batch(
    batch: Batch,
    mapping: FileMapping,
    settings: AccountSettings,
    only: frozenset[str] | None = None,
) -> NormalisedBatch:
    """Normalise the mapped columns of ``batch`` (``only`` these fields, if given)."""
    columns: list[pl.Series] = [batch.rows.alias("row")]
    cleared: set[str] = set()
    fields = tuple(k for k in mapping.fields if only is None or k in only)
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
    return NormalisedBatch(
        pl.DataFrame(columns),
        fields,
        list(batch.bad_rows),
        batch.blank_rows,
        frozenset(cleared),
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
