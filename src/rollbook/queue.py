"""Import jobs on a real queue, for deployments of several processes on PostgreSQL.

The queue is procrastinate's (PostgreSQL-backed: no broker to run). The API defers a job's id
to it; ``rollbook worker`` processes take each id once and run the job; a periodic task marks
jobs whose worker died (their heartbeat stopped) as failed and retryable. rollbook's own jobs
table stays the record of a job — status, progress, result — whoever runs it.

procrastinate's tables live in their own PostgreSQL schema, ``procrastinate``, created on first
use; rollbook's schema and migrations do not mix with them.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import procrastinate
import sqlalchemy as sa

from rollbook.errors import StoreError
from rollbook.importing.read import ReadLimits
from rollbook.services import jobs as jobs_service
from rollbook.store import Store

log = logging.getLogger("rollbook.jobs")

SCHEMA = "procrastinate"
QUEUE = "rollbook"
RUN_JOB = "rollbook.run_job"
RECOVER = "rollbook.recover"
#: Serialises the schema's creation between processes that start at once.
_SCHEMA_LOCK = 0x726F6C6C  # "roll"


def conninfo(store: Store) -> str:
    """The store's PostgreSQL as a libpq connection string whose search path is the queue's
    schema."""
    if not store.is_postgres:
        raise StoreError(
            "the job queue needs PostgreSQL; on SQLite, import jobs run in the server "
            "(rollbook serve --jobs thread, the default)"
        )
    url = store.engine.url
    parts = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        **{k: v for k, v in url.query.items() if isinstance(v, str)},
    }
    given = " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items() if v is not None)
    return f"{given} options={_quote(f'-c search_path={SCHEMA}')}"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_schema(store: Store, app: procrastinate.App) -> None:
    """Create the queue's schema and tables, once, whoever starts first."""
    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _SCHEMA_LOCK})
        try:
            present = conn.execute(
                sa.text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.procrastinate_jobs"}
            ).scalar()
            if present is None:
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
                conn.commit()
                app.schema_manager.apply_schema()
                log.info("created the job queue's tables")
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _SCHEMA_LOCK})
            conn.commit()


def queue_app(store: Store, limits: ReadLimits, stale_after: timedelta) -> procrastinate.App:
    """The procrastinate app with rollbook's two tasks: run a job, recover dead ones."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(store)))

    @app.task(name=RUN_JOB, queue=QUEUE)
    def run_job(job_id: int) -> None:
        if jobs_service.claim(store, job_id):
            log.info("job %d started", job_id)
            jobs_service.run_job(store, job_id, limits)
            log.info("job %d ended", job_id)

    @app.periodic(cron="* * * * *", periodic_id="recover")
    @app.task(name=RECOVER, queue=QUEUE, queueing_lock=RECOVER)
    def recover(timestamp: int) -> None:
        recovered = jobs_service.recover(store, stale_after)
        if recovered:
            log.warning("marked %d interrupted job(s) as failed", len(recovered))

    return app


def _defer(app: procrastinate.App, job_id: int) -> bool:
    """Put a job's id on the queue, unless it waits there already (its queueing lock)."""
    try:
        app.tasks[RUN_JOB].configure(queueing_lock=f"rollbook-job-{job_id}").defer(job_id=job_id)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


def requeue(store: Store, app: procrastinate.App) -> None:
    """Defer every job rollbook's table holds as queued that the queue does not: one saved but
    never deferred (its process stopped in between) would otherwise wait for ever. A job is
    claimed once whoever defers it (``jobs_service.claim``).

    A job the queue holds waiting or being started is left alone: a worker that has just taken
    it has not claimed it yet, and a second deferral would only add a job that finds nothing
    to do."""
    on_queue = _on_queue(store)
    waiting = [job_id for job_id in jobs_service.queued_jobs(store) if job_id not in on_queue]
    if requeued := sum(_defer(app, job_id) for job_id in waiting):
        log.warning("put %d queued job(s) back on the queue", requeued)


def _on_queue(store: Store) -> set[int]:
    """The ids of rollbook's jobs the queue holds waiting or running."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT (args ->> 'job_id')::bigint FROM {SCHEMA}.procrastinate_jobs "
                "WHERE task_name = :task AND status IN ('todo', 'doing')"
            ),
            {"task": RUN_JOB},
        ).scalars()
        return {int(job_id) for job_id in rows}


class QueueRunner:
    """The API's side of the queue: it only defers job ids; workers run them."""

    def __init__(self, store: Store, limits: ReadLimits, stale_after: timedelta) -> None:
        self.store = store
        self.app = queue_app(store, limits, stale_after)

    def start(self) -> None:
        self.app.open()
        ensure_schema(self.store, self.app)
        requeue(self.store, self.app)

    def submit(self, job_id: int) -> None:
        _defer(self.app, job_id)

    def stop(self) -> None:
        self.app.close()


def run_worker(
    store: Store, limits: ReadLimits, stale_after: timedelta, *, once: bool = False
) -> None:
    """``rollbook worker``: run queued jobs until stopped (SIGINT/SIGTERM let the job at hand
    finish), or — ``once`` — until the queue is empty."""
    app = queue_app(store, limits, stale_after)
    with app.open():
        ensure_schema(store, app)
        requeue(store, app)
    recovered = jobs_service.recover(store, stale_after)
    if recovered:
        log.warning("marked %d interrupted job(s) as failed", len(recovered))
    options: dict[str, Any] = {"queues": [QUEUE], "wait": not once, "name": jobs_service.RUNNER_ID}
    app.run_worker(**options)
