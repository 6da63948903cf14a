"""The process running an import, killed in the middle (SIGKILL), leaves nothing half-applied:
after a restart the job is failed and retryable, the contacts are exactly as before, and a retry
completes. Real processes: ``rollbook serve`` (jobs in the server) and ``rollbook worker`` (jobs
from the queue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from benchmarks.datagen import population, write
from tests.support.processes import Process, Server, until

from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import contacts as contacts_service
from rollbook.store import Store

ROWS = 150_000
#: A worker's progress reaches the job's row with its heartbeat, every 2 s: the import must
#: outlast a few of them for a poll to see it running with progress before it ends. With
#: 150,000 rows, a CI run once found the job done before it saw it running.
QUEUE_ROWS = 450_000


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _kill_an_import_and_retry(
    store: Store, tmp_path: Path, server: Server, runner: Process, rows: int = ROWS
) -> None:
    """Start an import of a large file, SIGKILL ``runner`` (the process running the job) in
    the middle, restart it, check nothing was applied, retry, check it completes."""
    accounts_service.create_account(store, "north")
    token, _ = auth.create_token(store, "north", "crash test")
    before = contacts_service.count_contacts(store, "north")
    path = write(tmp_path / "students.csv", population(rows))
    headers = {"Authorization": f"Bearer {token}"}
    server.start()
    if runner is not server:
        runner.start()
    with path.open("rb") as f:
        job = httpx.post(
            f"{server.base}/api/v1/imports",
            headers=headers,
            files={"file": ("students.csv", f, "text/csv")},
            data={"mapping": '{"Student ID": "crm_id", "Mobile Phone": "phone"}'},
            timeout=120,
        ).json()
    url = f"{server.base}/api/v1/jobs/{job['job_id']}"

    def running() -> bool:
        state = httpx.get(url, headers=headers).json()
        assert state["status"] in ("queued", "running"), state  # not done before the kill
        return state["status"] == "running" and (state["progress"]["done"] or 0) > 0

    until(running)
    runner.kill()

    assert contacts_service.count_contacts(store, "north") == before
    with store.read() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM jobs WHERE id = :id"), {"id": job["job_id"]}
        ).scalar()
    assert status == "running"  # the dead process could not say otherwise

    runner.start()  # on starting, a runner fails the jobs whose runner died

    def failed() -> Any:
        state = httpx.get(url, headers=headers).json()
        return state if state["status"] == "failed" else None

    after = until(failed)
    assert after["retryable"] is True
    assert after["error"]["code"] == "interrupted"
    assert contacts_service.count_contacts(store, "north") == before

    retried = httpx.post(f"{url}/retry", headers=headers)
    assert retried.status_code == 202
    done = until(
        lambda: (s := httpx.get(url, headers=headers).json())["status"] == "done" and s, timeout=300
    )
    assert done["attempts"] == 2
    created = done["result"]["counts"]["created"]
    assert created > rows * 0.9
    assert contacts_service.count_contacts(store, "north") == before + created


@pytest.mark.slow
def test_killed_server_applies_nothing_and_the_job_retries(store: Store, tmp_path: Path) -> None:
    """The default: the job runs in the server's process, and the server is killed."""
    server = Server(_url(store), tmp_path / "server.log")
    try:
        _kill_an_import_and_retry(store, tmp_path, server, server)
    finally:
        server.stop()


@pytest.mark.slow
def test_killed_worker_applies_nothing_and_the_job_retries(postgres: Store, tmp_path: Path) -> None:
    """With the job queue: the server defers, a worker runs the job, the worker is killed."""
    server = Server(_url(postgres), tmp_path / "server.log", "--jobs", "queue")
    worker = Process(_url(postgres), tmp_path / "worker.log", "worker")
    try:
        _kill_an_import_and_retry(postgres, tmp_path, server, worker, QUEUE_ROWS)
    finally:
        worker.stop()
        server.stop()
