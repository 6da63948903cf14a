"""One import, start to finish, inside the caller's transaction:
``read → map → normalise → plan → apply → report``, a batch at a time.

Memory stays bounded by the batch size and the account's key index: rows are read, planned,
written and reported batch by batch; what is kept across batches is the key index, the counts,
and a few integers per row for the changed-numbers report and the import's label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.importing.apply import ImportContext, apply_plan
from rollbook.importing.index import KeyIndex
from rollbook.importing.mapping import FileMapping
from rollbook.importing.messages import MessageContext, row_message
from rollbook.importing.normalise import CLEAR_MARK, normalise_batch
from rollbook.importing.plan import plan_batch
from rollbook.importing.read import SourceFile
from rollbook.model import ImportCounts, Status
from rollbook.store import imports as store_imports
from rollbook.store.contacts import PHONE_META, ContactIds, chunks
from rollbook.store.schema import contacts

#: Rows per batch: large enough for set-based writes, small enough to bound memory.
BATCH_ROWS = 50_000
REPORT_SCHEMA = {
    "row": pl.Int64,
    "status": pl.String,
    "codes": pl.String,
    "contact_id": pl.Int64,
    "message": pl.String,
}

Progress = Callable[[int, int], None]


@dataclass
class EngineResult:
    counts: ImportCounts
    rows: int
    blank_rows: int
    label: str | None
    #: The changed-numbers report's rows (also stored with the import).
    changed: list[dict[str, Any]]
    #: The row report, chunk by chunk, when asked for (it is stored with the import anyway).
    report: list[pl.DataFrame] = field(default_factory=list)


@dataclass
class _Repeats:
    crm_rows: dict[str, list[int]]
    id_rows: dict[str, list[int]]
    total_rows: int


def _find_repeats(source: SourceFile, mapping: FileMapping, ctx: ImportContext) -> _Repeats:
    """The first pass over the file: which CRM IDs and ids appear in more than one row."""
    keys = frozenset({"crm_id", "id"}) & set(mapping.fields)
    seen: dict[str, dict[str, list[int]]] = {k: defaultdict(list) for k in keys}
    total = 0
    for batch in source.batches(BATCH_ROWS):
        total += batch.cells.height + len(batch.bad_rows)
        if not keys:
            continue
        nb = normalise_batch(batch, mapping, ctx.settings, only=keys)
        for key in keys:
            frame = nb.frame.select("row", key).filter(
                pl.col(key).is_not_null() & (pl.col(key) != CLEAR_MARK)
            )
            for row, value in frame.iter_rows():
                seen[key][value].append(row)
    repeated = {k: {v: rows for v, rows in seen[k].items() if len(rows) > 1} for k in keys}
    return _Repeats(repeated.get("crm_id", {}), repeated.get("id", {}), total)


def run_import(
    conn: Connection,
    ctx: ImportContext,
    source: SourceFile,
    mapping: FileMapping,
    *,
    progress: Progress | None = None,
    keep_report: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> EngineResult:
    settings = ctx.settings
    repeats = _find_repeats(source, mapping, ctx)
    index = KeyIndex.load(conn, settings)
    new_ids = ContactIds(conn, block=min(batch_rows, 1000))
    messages = MessageContext(
        settings,
        {key: mapping.header_of(key) for key in mapping.fields},
        repeats.crm_rows,
        repeats.id_rows,
    )
    counts = ImportCounts()
    done = blank = 0
    report: list[pl.DataFrame] = []
    file_phones: list[tuple[int, int, str]] = []
    labelled: list[int] = []
    if progress:
        progress(0, repeats.total_rows)
    for seq, batch in enumerate(source.batches(batch_rows)):
        nb = normalise_batch(batch, mapping, settings)
        plan = plan_batch(
            conn, settings, index, nb, set(repeats.crm_rows), set(repeats.id_rows), new_ids
        )
        former = apply_plan(conn, ctx, plan)
        index.update(plan.after.values(), former)
        records = []
        for d, row in zip(plan.decisions, plan.rows, strict=True):
            counts.add(d.status, d.codes)
            # A preview cannot know the id a new contact will get (ids are never handed out
            # twice, and on PostgreSQL a rolled-back transaction does not give them back).
            shown_id = None if ctx.preview and d.status is Status.CREATED else d.contact_id
            records.append(
                (
                    d.row,
                    d.status.value,
                    ";".join(c.value for c in d.codes) or None,
                    shown_id,
                    row_message(d, row, messages),
                )
            )
            if d.status is not Status.SKIPPED and d.contact_id is not None:
                labelled.append(d.contact_id)
        chunk = pl.DataFrame(records, schema=REPORT_SCHEMA, orient="row")
        if chunk.height:
            store_imports.write_report_chunk(conn, ctx.import_id, seq, chunk)
            if keep_report:
                report.append(chunk)
        file_phones.extend(plan.file_phones)
        blank += nb.blank_rows
        done += len(nb)
        if progress:
            progress(done, repeats.total_rows)

    label = None
    if labelled:
        label = f"import-{ctx.import_id}"
        label_id = store_imports.create_label(
            conn, settings.account_id, label, ctx.at, ctx.import_id
        )
        store_imports.add_to_label(conn, label_id, store_imports.id_ranges(pl.Series(labelled)))
    changed = _changed_numbers(conn, ctx, file_phones)
    store_imports.insert_changed_numbers(conn, changed)
    return EngineResult(counts, done, blank, label, changed, report)


def _changed_numbers(
    conn: Connection, ctx: ImportContext, file_phones: list[tuple[int, int, str]]
) -> list[dict[str, Any]]:
    """Rows that identified a contact whose phone, after the import, differs from the file's."""
    if not file_phones:
        return []
    ids = sorted({cid for _, cid, _ in file_phones})
    now: dict[int, Any] = {}
    cols = [
        contacts.c.id,
        contacts.c.crm_id,
        contacts.c.first_name,
        contacts.c.last_name,
        contacts.c.phone,
        *(contacts.c[k] for k in PHONE_META),
    ]
    for part in chunks(ids):
        q = sa.select(*cols).where(
            contacts.c.account_id == ctx.settings.account_id, contacts.c.id.in_(part)
        )
        now.update({r.id: r for r in conn.execute(q)})
    rows = []
    for row, cid, phone in file_phones:
        c = now.get(cid)
        if c is None or c.phone == phone:
            continue
        rows.append(
            {
                "import_id": ctx.import_id,
                "row": row,
                "contact_id": cid,
                "crm_id": c.crm_id,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "file_phone": phone,
                "current_phone": c.phone,
                "phone_since": c.phone_since,
                "phone_source": c.phone_source,
                "phone_reason": c.phone_reason,
            }
        )
    return rows
