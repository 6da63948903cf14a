"""Uploads and the background jobs that preview or import them.

An upload is a file kept in the database (so that any worker, on any machine, can read it)
with what ``inspect_file`` found: its format, first rows and mapping. A job asks for a preview
or an import of an upload; a runner (``rollbook.runner``) picks it up and calls ``run_job``.

The import a job runs is one transaction. If the process dies half-way, nothing of it is
applied; the job is left ``running`` with a heartbeat that stops, and ``recover`` marks it
``failed`` — retryable — once the heartbeat is stale (on SQLite, where a single process runs the
jobs, every ``running`` job is stale when the runner starts).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.clock import iso, now
from rollbook.errors import Conflict, InvalidInput, NotFound, RollbookError
from rollbook.importing.read import ReadLimits
from rollbook.services import imports as imports_service
from rollbook.services.auth import Principal, Role
from rollbook.store import Store
from rollbook.store.schema import jobs, uploads

log = logging.getLogger("rollbook.jobs")

#: Who runs jobs in this process (recorded on the jobs it runs).
RUNNER_ID = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
KINDS = ("preview", "import")

#: Progress of the jobs running in this process: job id -> (rows done, rows in the file).
_progress: dict[int, tuple[int, int]] = {}
_progress_lock = threading.Lock()


# --- uploads --------------------------------------------------------------------------------


@contextmanager
def _as_file(data: bytes, filename: str) -> Iterator[Path]:
    """The upload as a file on disk, for the reader; removed afterwards."""
    suffix = Path(filename).suffix[:10]
    fd, name = tempfile.mkstemp(prefix="rollbook-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def save_upload(
    store: Store,
    principal: Principal,
    filename: str,
    data: bytes,
    limits: ReadLimits,
) -> dict[str, Any]:
    """Keep an uploaded file and say what it is: format, first rows, mapping, drift guard."""
    filename = _filename(filename, data)
    with _as_file(data, filename) as path:
        inspection = imports_service.inspect_file(
            store, principal.slug, path, imports_service.ImportOptions(limits=limits)
        )
    upload_id = _keep(store, principal, filename, data)
    return {
        "upload_id": upload_id,
        "filename": filename,
        "size": len(data),
        **inspection_json(inspection),
    }


def start_import(
    store: Store,
    principal: Principal,
    filename: str,
    data: bytes,
    kind: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Keep a file and queue a job on it at once: the one call of a nightly upload. The file
    is read by the job; what is wrong with it is the job's error."""
    _check_options(options)
    upload_id = _keep(store, principal, _filename(filename, data), data)
    return create_job(store, principal, upload_id, kind, options)


def _filename(filename: str, data: bytes) -> str:
    if not data:
        raise InvalidInput("the file is empty", field="file")
    # Only the name, without folders or control characters (which PostgreSQL cannot store).
    name = "".join(c for c in Path(filename).name if c.isprintable())[:500]
    return name or "upload.csv"


def _keep(store: Store, principal: Principal, filename: str, data: bytes) -> int:
    with store.write() as conn:
        result = conn.execute(
            uploads.insert().values(
                account_id=principal.account_id,
                filename=filename,
                size=len(data),
                data=data,
                created_at=now(),
                created_by=principal.actor,
            )
        )
        (upload_id,) = result.inserted_primary_key or (0,)
        return int(upload_id)


def inspection_json(found: imports_service.FileInspection) -> dict[str, Any]:
    return {
        "format": imports_service.format_json(found.format),
        "headers": list(found.headers),
        "sample": [{"row": row, "cells": cells} for row, cells in found.sample],
        "mapping": [
            {
                "column": c.header,
                "field": c.field,
                "how": c.how,
                "suggestions": [
                    {"field": s.field, "score": s.score, "why": s.why} for s in c.suggestions
                ],
            }
            for c in found.mapping.columns
        ],
        "notes": list(found.mapping.notes),
        "drift_warning": found.drift_warning,
        "drift_likely_column": found.drift_likely_column,
        "drift_previous_headers": list(found.drift_previous_headers),
    }


def _upload(conn: Connection, principal: Principal, upload_id: int) -> Any:
    row = conn.execute(
        uploads.select().where(
            uploads.c.account_id == principal.account_id, uploads.c.id == upload_id
        )
    ).first()
    if row is None:
        raise NotFound(f"there is no upload {upload_id} in this account", upload_id=upload_id)
    return row


def inspect_upload(
    store: Store, principal: Principal, upload_id: int, options: dict[str, Any], limits: ReadLimits
) -> dict[str, Any]:
    """The upload's mapping as these options would make it (for the mapping table)."""
    with store.read() as conn:
        row = _upload(conn, principal, upload_id)
    with _as_file(row.data, row.filename) as path:
        found = imports_service.inspect_file(
            store, principal.slug, path, _import_options(options, principal, row.filename, limits)
        )
    return {"upload_id": upload_id, "filename": row.filename, **inspection_json(found)}


def delete_upload(store: Store, principal: Principal, upload_id: int) -> None:
    with store.write() as conn:
        _upload(conn, principal, upload_id)
        conn.execute(uploads.delete().where(uploads.c.id == upload_id))


# --- jobs -----------------------------------------------------------------------------------


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    mapping = options.get("mapping") or {}
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InvalidInput("mapping is an object of header: field", field="mapping")
    return {
        "mapping": mapping,
        "allow_unmapped_crm_id": bool(options.get("allow_unmapped_crm_id", False)),
    }


def create_job(
    store: Store, principal: Principal, upload_id: int, kind: str, options: dict[str, Any]
) -> dict[str, Any]:
    if kind not in KINDS:
        raise InvalidInput(f"a job is a {' or '.join(KINDS)}", field="kind")
    checked = _check_options(options)
    with store.write() as conn:
        _upload(conn, principal, upload_id)
        result = conn.execute(
            jobs.insert().values(
                account_id=principal.account_id,
                kind=kind,
                upload_id=upload_id,
                options=checked,
                status=QUEUED,
                created_at=now(),
                created_by=principal.actor,
            )
        )
        (job_id,) = result.inserted_primary_key or (None,)
        return _job_json(conn.execute(jobs.select().where(jobs.c.id == job_id)).one())


def get_job(store: Store, principal: Principal, job_id: int) -> dict[str, Any]:
    live = _live_progress()
    with store.read() as conn:
        return _job_json(_job(conn, principal.account_id, job_id), live)


def list_jobs(store: Store, principal: Principal, limit: int = 50) -> list[dict[str, Any]]:
    live = _live_progress()
    with store.read() as conn:
        rows = conn.execute(
            jobs.select()
            .where(jobs.c.account_id == principal.account_id)
            .order_by(jobs.c.id.desc())
            .limit(limit)
        )
        return [_job_json(r, live) for r in rows]


def _live_progress() -> dict[int, tuple[int, int]]:
    """The running jobs' progress, taken before their rows are read. A job's live progress
    goes only once its row holds the final figures (``_finish``), so whichever the poll sees,
    the row read after or these figures, is the job's last."""
    with _progress_lock:
        return dict(_progress)


#: Failures that say nothing about the file: running the same job again may well succeed.
#: Other failures (a drift guard, a file that cannot be read) would fail the same way again;
#: they are fixed by a new job on the upload, with a mapping or options that answer them.
TRANSIENT = ("interrupted", "internal-error")


def _retryable(r: Any) -> bool:
    return bool(
        r.status == FAILED and r.upload_id is not None and (r.error or {}).get("code") in TRANSIENT
    )


def retry_job(store: Store, principal: Principal, job_id: int) -> dict[str, Any]:
    """Queue a failed job again, when its failure was not the file's."""
    with store.write() as conn:
        row = _job(conn, principal.account_id, job_id)
        if row.status != FAILED:
            raise Conflict(f"job {job_id} is {row.status}; only a failed job is retried")
        if row.upload_id is None:
            raise Conflict(f"job {job_id}'s file is gone; upload it again")
        if not _retryable(row):
            raise Conflict(
                f"job {job_id} failed because of its file or options ({row.error['code']}); "
                "running it again would fail the same way: start a new job on the upload "
                "with a mapping or options that answer it"
            )
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(status=QUEUED, error=None, result=None, finished_at=None)
        )
        return _job_json(conn.execute(jobs.select().where(jobs.c.id == job_id)).one())


def _job(conn: Connection, account_id: int, job_id: int) -> Any:
    row = conn.execute(
        jobs.select().where(jobs.c.account_id == account_id, jobs.c.id == job_id)
    ).first()
    if row is None:
        raise NotFound(f"there is no job {job_id} in this account", job_id=job_id)
    return row


def _job_json(r: Any, live: dict[int, tuple[int, int]] | None = None) -> dict[str, Any]:
    """The job's JSON; ``live``: the running jobs' progress, if taken before ``r`` was read."""
    progress = (live if live is not None else _live_progress()).get(r.id)
    done, total = progress if progress is not None else (r.progress_done, r.progress_total)
    return {
        "job_id": r.id,
        "kind": r.kind,
        "status": r.status,
        "upload_id": r.upload_id,
        "options": r.options,
        "attempts": r.attempts,
        "progress": {"done": done, "total": total},
        "result": r.result,
        "error": r.error,
        "import_id": r.import_id,
        "retryable": _retryable(r),
        "created_at": iso(r.created_at),
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
    }


def queued_jobs(store: Store) -> list[int]:
    with store.read() as conn:
        return list(
            conn.execute(
                sa.select(jobs.c.id).where(jobs.c.status == QUEUED).order_by(jobs.c.id)
            ).scalars()
        )


def claim(store: Store, job_id: int) -> bool:
    """Mark a queued job as running here; False if someone else took it first."""
    with store.write() as conn:
        at = now()
        result = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
            .values(
                status=RUNNING,
                started_at=at,
                heartbeat_at=at,
                runner=RUNNER_ID,
                attempts=jobs.c.attempts + 1,
                progress_done=0,
                progress_total=None,
            )
        )
        return result.rowcount == 1


def recover(store: Store, stale_after: timedelta) -> list[int]:
    """Jobs whose runner died (a stale heartbeat) become failed and retryable."""
    with store.write() as conn:
        running = jobs.c.status == RUNNING
        if store.is_postgres:
            running = running & (jobs.c.heartbeat_at < now() - stale_after)
        ids = list(conn.execute(sa.select(jobs.c.id).where(running)).scalars())
        if ids:
            conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(ids))
                .values(
                    status=FAILED,
                    finished_at=now(),
                    error={
                        "code": "interrupted",
                        "message": "The job stopped before it finished (the server stopped or "
                        "crashed); nothing of it was applied. Retry it.",
                    },
                )
            )
        return ids


def _import_options(
    options: dict[str, Any], principal: Principal, filename: str, limits: ReadLimits
) -> imports_service.ImportOptions:
    return imports_service.ImportOptions(
        explicit=options.get("mapping") or {},
        allow_unmapped_crm_id=bool(options.get("allow_unmapped_crm_id")),
        actor=principal.actor,
        filename=filename,
        limits=limits,
    )


def run_job(store: Store, job_id: int, limits: ReadLimits) -> None:
    """Run a claimed job to its end: done with its result, or failed with the reason."""
    with store.read() as conn:
        row = conn.execute(jobs.select().where(jobs.c.id == job_id)).one()
        upload = conn.execute(uploads.select().where(uploads.c.id == row.upload_id)).first()
        slug = conn.execute(
            sa.text("SELECT slug FROM accounts WHERE id = :id"), {"id": row.account_id}
        ).scalar_one()
    principal = Principal(row.account_id, slug, Role.STAFF, row.created_by or "job")
    heartbeat = _Heartbeat(store, job_id)
    try:
        if upload is None:
            raise Conflict("the job's file is gone; upload it again")
        with _as_file(upload.data, upload.filename) as path:
            result = imports_service.import_file(
                store,
                slug,
                path,
                _import_options(row.options, principal, upload.filename, limits),
                dry_run=row.kind == "preview",
                progress=heartbeat.progress,
            )
    except RollbookError as error:
        heartbeat.stop()  # before the end is written, as on success
        _finish(store, job_id, FAILED, error={"code": error.code, "message": error.message})
        return
    except Exception as error:
        heartbeat.stop()
        # The stack, not the message: a database error's message can quote a row's values.
        log.error(
            "job %d failed with %s:\n%s",
            job_id,
            type(error).__name__,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        _finish(
            store,
            job_id,
            FAILED,
            error={
                "code": "internal-error",
                "message": f"The job failed ({type(error).__name__}); nothing of it was applied. "
                "Retry it, or tell your administrator.",
            },
        )
        return
    finally:
        heartbeat.stop()
    _finish(store, job_id, DONE, result=result.summary(), import_id=result.import_id)


def _finish(store: Store, job_id: int, status: str, **values: Any) -> None:
    """The job's end, with its last progress, in its row. The live progress is dropped only
    once the row holds it: a poll in between would see neither, and a bar go back to its
    start."""
    with _progress_lock:
        progress = _progress.get(job_id, (None, None))
    try:
        with store.write() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    status=status,
                    finished_at=now(),
                    progress_done=progress[0],
                    progress_total=progress[1],
                    **values,
                )
            )
    finally:
        with _progress_lock:
            _progress.pop(job_id, None)


class _Heartbeat:
    """Publishes a running job's progress: in this process at once, and — on PostgreSQL, where
    other processes read it and the import's transaction does not lock the jobs table — in the
    job's row every few seconds, from a thread of its own, with a heartbeat that says the
    runner is alive even while the import is busy committing."""

    every = 2.0

    def __init__(self, store: Store, job_id: int) -> None:
        self.store = store
        self.job_id = job_id
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if store.is_postgres:
            self._thread = threading.Thread(
                target=self._beat, name=f"rollbook-heartbeat-{job_id}", daemon=True
            )
            self._thread.start()

    def progress(self, done: int, total: int) -> None:
        with _progress_lock:
            _progress[self.job_id] = (done, total)

    def _beat(self) -> None:
        while not self._stopping.wait(self.every):
            with _progress_lock:
                done, total = _progress.get(self.job_id, (None, None))
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(
                        jobs.update()
                        .where(jobs.c.id == self.job_id, jobs.c.status == RUNNING)
                        .values(heartbeat_at=now(), progress_done=done, progress_total=total)
                    )
            except sa.exc.SQLAlchemyError as error:  # the next beat tries again
                log.warning("job %d: heartbeat failed (%s)", self.job_id, type(error).__name__)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
