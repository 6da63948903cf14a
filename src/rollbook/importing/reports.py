"""The import's two CSV reports, written formula-safe.

* The **row report**: every input row — its number, status, codes, a readable message and the
  contact id. It is how staff fix their file.
* The **changed-numbers report**: every row that identified a contact whose phone after the
  import differs from the file's, with the current number and when and why it changed. Staff
  load it into their student system so that the next file is right.

A cell that a spreadsheet would run as a formula (it starts with ``= + - @``, a tab or a carriage
return) is written with a leading apostrophe; rollbook's importer removes that apostrophe again,
so an export imports back unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

import polars as pl

from rollbook.clock import iso

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

ROW_REPORT_COLUMNS = ("row", "status", "codes", "message", "contact_id")
CHANGED_NUMBERS_COLUMNS = (
    "row",
    "contact_id",
    "crm_id",
    "first_name",
    "last_name",
    "file_phone",
    "current_phone",
    "changed_at",
    "change_source",
    "change_reason",
)


def safe_cell(value: Any) -> str:
    """One CSV cell's text, defused against spreadsheet formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value) or ""
    text = str(value)
    if text.startswith(_FORMULA_START) or (text.startswith("'") and text[1:2] in _FORMULA_START):
        return "'" + text
    return text


def writer(out: TextIO) -> Any:
    return csv.writer(out, lineterminator="\r\n")


def write_row_report(chunks: Iterable[pl.DataFrame], out: TextIO) -> int:
    """Write the row report; returns the number of rows written."""
    w = writer(out)
    w.writerow(ROW_REPORT_COLUMNS)
    n = 0
    for chunk in chunks:
        for record in chunk.select_seq(ROW_REPORT_COLUMNS).iter_rows():
            w.writerow([safe_cell(v) for v in record])
            n += 1
    return n


def write_changed_numbers(rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    w = writer(out)
    w.writerow(CHANGED_NUMBERS_COLUMNS)
    n = 0
    for r in rows:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    r["row"],
                    r["contact_id"],
                    r["crm_id"],
                    r["first_name"],
                    r["last_name"],
                    r["file_phone"],
                    r["current_phone"],
                    r["phone_since"],
                    r["phone_source"],
                    r["phone_reason"],
                )
            ]
        )
        n += 1
    return n
