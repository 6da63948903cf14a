"""Importing a file: inspect it (format, mapping, suggestions, drift guard), preview it (a dry
run: the same results, nothing kept), run it, read its reports, list past imports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.clock import iso, now
from rollbook.errors import Conflict, DriftGuardRefused
from rollbook.importing.apply import ImportContext
from rollbook.importing.engine import BATCH_ROWS, Progress
from rollbook.importing.engine import run_import as run_engine
from rollbook.importing.mapping import (
    FileMapping,
    drift_guard,
    header_key,
    resolve_mapping,
)
from rollbook.importing.read import FileFormat, ReadLimits, SourceFile, open_file
from rollbook.importing.reports import write_changed_numbers, write_row_report
from rollbook.model import ENGINE_COLUMNS, IGNORE, AccountSettings, Code, ImportCounts
from rollbook.store import Store
from rollbook.store import accounts as q_accounts
from rollbook.store import imports as q_imports
from rollbook.store.schema import contacts

SAMPLE_ROWS = 20


@dataclass
class ImportOptions:
    explicit: Mapping[str, str] = field(default_factory=dict)
    allow_unmapped_crm_id: bool = False
    sheet: str | None = None
    actor: str | None = None
    filename: str | None = None
    limits: ReadLimits = field(default_factory=ReadLimits)
    #: Rows planned and written together; bounds the memory an import uses.
    batch_rows: int = BATCH_ROWS


@dataclass
class FileInspection:
    """What the user sees before running: the format, the first rows, the mapping."""

    format: FileFormat
    headers: tuple[str, ...]
    sample: list[tuple[int, list[str | None]]]
    mapping: FileMapping
    drift_warning: str | None
    #: With a warning: the column most like the CRM ID column, and the headers used before.
    drift_likely_column: str | None = None
    drift_previous_headers: tuple[str, ...] = ()


@dataclass
class ImportResult:
    import_id: int | None
    dry_run: bool
    format: FileFormat
    mapping: FileMapping
    counts: ImportCounts
    rows: int
    blank_rows: int
    label: str | None
    changed_numbers: int
    report: list[pl.DataFrame] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    #: Rows reported ``unchanged`` because their import print matched (importing/prints.py).
    passed: int = 0

    @property
    def duplicate_risk(self) -> int:
        """Rows that create a contact resembling an existing one (the possible-duplicate flag)."""
        return self.counts.codes[Code.POSSIBLE_DUPLICATE]

    def summary(self) -> dict[str, Any]:
        """The stable JSON summary (docs/cli.md)."""
        return {
            "import_id": self.import_id,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "blank_rows": self.blank_rows,
            **self.counts.as_json(),
            "duplicate_risk": self.duplicate_risk,
            "changed_numbers": self.changed_numbers,
            "label": self.label,
            "format": format_json(self.format),
            "mapping": [
                {"column": c.header, "field": c.field, "how": c.how} for c in self.mapping.columns
            ],
            "unmapped": [c.header for c in self.mapping.unmapped],
        }


def format_json(fmt: FileFormat) -> dict[str, Any]:
    return {
        "kind": fmt.kind,
        "encoding": fmt.encoding,
        "delimiter": fmt.delimiter,
        "sheet": fmt.sheet,
        "description": fmt.describe(),
    }


def _resolve(
    conn: Connection, settings: AccountSettings, source: SourceFile, options: ImportOptions
) -> tuple[FileMapping, dict[str, tuple[str, str]], list[tuple[int, list[str | None]]]]:
    remembered = q_accounts.remembered_mapping(conn, settings.account_id)
    sample = source.sample(SAMPLE_ROWS)
    mapping = resolve_mapping(
        source.headers,
        settings,
        explicit=options.explicit,
        remembered=remembered,
        samples=[cells for _, cells in sample],
    )
    return mapping, remembered, sample


def _crm_id_hits(
    conn: Connection,
    settings: AccountSettings,
    mapping: FileMapping,
    sample: Sequence[tuple[int, list[str | None]]],
) -> dict[int, tuple[int, int]]:
    """For each unmapped column: how many of its first values are CRM IDs of existing contacts."""
    hits: dict[int, tuple[int, int]] = {}
    for column in mapping.columns:
        if column.field not in (None, IGNORE):
            continue
        values = {v.strip() for _, cells in sample if (v := cells[column.index]) and v.strip()}
        if not values:
            continue
        found = conn.execute(
            sa.select(sa.func.count()).where(
                contacts.c.account_id == settings.account_id, contacts.c.crm_id.in_(values)
            )
        ).scalar_one()
        hits[column.index] = (found, len(values))
    return hits


def _guard(
    conn: Connection,
    settings: AccountSettings,
    mapping: FileMapping,
    remembered: Mapping[str, tuple[str, str]],
    sample: Sequence[tuple[int, list[str | None]]],
    allow: bool,
) -> None:
    drift_guard(
        mapping,
        account_uses_crm_ids=q_accounts.uses_crm_ids(conn, settings.account_id),
        allow_unmapped_crm_id=allow,
        remembered=remembered,
        crm_id_hits=_crm_id_hits(conn, settings, mapping, sample),
    )


def refuse_engine_keys(settings: AccountSettings) -> None:
    """Refuse to import into an account with a custom field named like a column of the import
    engine's own (``model.ENGINE_COLUMNS``): such keys are refused when a field is added, but
    a field added before they were would have the engine's values written into it (a field
    ``ph`` got each row's phone) or fail the import. It must be renamed first."""
    clash = sorted(f.key for f in settings.fields if not f.builtin and f.key in ENGINE_COLUMNS)
    if clash:
        key = clash[0]
        raise Conflict(
            f"the account's field {key!r} has a name rollbook's imports use for a column of "
            "their own (it was added before such names were refused), so nothing was imported: "
            "an admin renames the field first (Settings → Rename a field; "
            f"rollbook fields rename -a {settings.slug} {key} NEW_KEY; "
            f"or PATCH /api/v1/fields/{key})",
            account_field=key,
        )


def inspect_file(
    store: Store, slug: str, path: Path, options: ImportOptions | None = None
) -> FileInspection:
    """Read the file's format, first rows and mapping, without importing anything."""
    options = options or ImportOptions()
    source = open_file(path, limits=options.limits, sheet=options.sheet)
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        refuse_engine_keys(settings)  # said at once, not when the import is asked for
        mapping, remembered, sample = _resolve(conn, settings, source, options)
        try:
            _guard(conn, settings, mapping, remembered, sample, options.allow_unmapped_crm_id)
        except DriftGuardRefused as refused:
            return FileInspection(
                source.format,
                source.headers,
                sample,
                mapping,
                refused.message,
                refused.details.get("likely_column"),
                tuple(refused.details.get("previous_headers") or ()),
            )
    return FileInspection(source.format, source.headers, sample, mapping, None)


def import_file(
    store: Store,
    slug: str,
    path: Path,
    options: ImportOptions | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    keep_report: bool = False,
) -> ImportResult:
    """Import (or, with ``dry_run``, preview) a file into the account ``slug``.

    One transaction: a refused file (mapping, drift guard) or a crash leaves nothing behind, not
    even the remembered mapping. A dry run is the same run, rolled back at the end."""
    options = options or ImportOptions()
    source = open_file(path, limits=options.limits, sheet=options.sheet)
    transaction = store.preview(bulk=True) if dry_run else store.write(bulk=True)
    with transaction as conn:
        settings = q_accounts.locked_settings(conn, slug)
        refuse_engine_keys(settings)
        mapping, remembered, sample = _resolve(conn, settings, source, options)
        _guard(conn, settings, mapping, remembered, sample, options.allow_unmapped_crm_id)
        at = now()
        import_id = q_imports.insert_import(
            conn,
            account_id=settings.account_id,
            filename=options.filename or path.name,
            format=format_json(source.format),
            mapping=mapping.as_pairs(),
            actor=options.actor,
            at=at,
        )
        ctx = ImportContext(import_id, settings, at, options.actor, preview=dry_run)
        outcome = run_engine(
            conn,
            ctx,
            source,
            mapping,
            progress=progress,
            keep_report=keep_report or dry_run,
            batch_rows=options.batch_rows,
        )
        q_accounts.remember_mapping(
            conn,
            settings.account_id,
            [(header_key(c.header), c.header, c.field) for c in mapping.columns if c.field],
            import_id,
        )
        q_imports.finish_import(
            conn,
            import_id,
            finished_at=now(),
            rows=outcome.rows,
            blank_rows=outcome.blank_rows,
            counts={s.value: n for s, n in outcome.counts.statuses.items()},
            codes={c.value: n for c, n in outcome.counts.codes.items() if n},
        )
    return ImportResult(
        None if dry_run else import_id,
        dry_run,
        source.format,
        mapping,
        outcome.counts,
        outcome.rows,
        outcome.blank_rows,
        None if dry_run else outcome.label,
        len(outcome.changed),
        outcome.report,
        outcome.changed,
        outcome.passed,
    )


def list_imports(store: Store, slug: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        return [_import_json(r) for r in q_imports.list_imports(conn, settings.account_id)]


def show_import(store: Store, slug: str, import_id: int) -> dict[str, Any]:
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        return _import_json(q_imports.import_row(conn, settings.account_id, import_id))


def _import_json(r: Any) -> dict[str, Any]:
    return {
        "import_id": r.id,
        "filename": r.filename,
        "status": r.status,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "rows": r.rows,
        "blank_rows": r.blank_rows,
        "counts": r.counts,
        "codes": r.codes,
        "format": r.format,
        "mapping": [{"column": h, "field": f} for h, f in r.mapping],
        "label": f"import-{r.id}",
        "actor": r.actor,
    }


def row_report(store: Store, slug: str, import_id: int) -> Iterator[pl.DataFrame]:
    """The import's row report, chunk by chunk."""
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        q_imports.import_row(conn, settings.account_id, import_id)
        yield from q_imports.read_report(conn, import_id)


def changed_numbers(store: Store, slug: str, import_id: int) -> list[dict[str, Any]]:
    with store.read() as conn:
        settings = q_accounts.settings_for(conn, slug)
        q_imports.import_row(conn, settings.account_id, import_id)
        return [dict(r._mapping) for r in q_imports.read_changed_numbers(conn, import_id)]


def write_row_report_csv(store: Store, slug: str, import_id: int, out: TextIO) -> int:
    """The import's row report as CSV into ``out``; the number of rows."""
    return write_row_report(row_report(store, slug, import_id), out)


def write_changed_numbers_csv(store: Store, slug: str, import_id: int, out: TextIO) -> int:
    """The import's changed-numbers report as CSV into ``out``; the number of rows."""
    return write_changed_numbers(changed_numbers(store, slug, import_id), out)
