"""Who runs background jobs.

``JobRunner`` is the interface: ``submit`` a job id, ``start`` and ``stop``. The default,
``ThreadRunner``, runs jobs in a thread of the server's own process — right for the embedded
SQLite default, where one process writes. A deployment with several processes on PostgreSQL
uses the queue instead (``rollbook.queue.QueueRunner``, procrastinate): the API defers job ids,
``rollbook worker`` processes run them.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from rollbook.importing.read import ReadLimits
from rollbook.services import jobs as jobs_service
from rollbook.store import Store

log = logging.getLogger("rollbook.jobs")


class JobRunner(Protocol):
    def submit(self, job_id: int) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class ThreadRunner:
    """Jobs in this process, one at a time (imports into one database queue up anyway)."""

    def __init__(self, store: Store, limits: ReadLimits, stale_after: timedelta) -> None:
        self.store = store
        self.limits = limits
        self.stale_after = stale_after
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def start(self) -> None:
        recovered = jobs_service.recover(self.store, self.stale_after)
        if recovered:
            log.warning("marked %d interrupted job(s) as failed", len(recovered))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollbook-job")
        for job_id in jobs_service.queued_jobs(self.store):
            self.submit(job_id)

    def submit(self, job_id: int) -> None:
        assert self._pool is not None, "the runner is not started"
        self._pending.append(self._pool.submit(self._run, job_id))

    def wait(self) -> None:
        """Until every job submitted so far has ended (for tests and orderly shutdowns)."""
        while self._pending:
            self._pending.pop(0).result()

    def _run(self, job_id: int) -> None:
        if jobs_service.claim(self.store, job_id):
            log.info("job %d started", job_id)
            jobs_service.run_job(self.store, job_id, self.limits)
            log.info("job %d ended", job_id)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
