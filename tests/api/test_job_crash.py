"""The process running an import, killed in the middle (SIGKILL), leaves nothing half-applied:
after a restart the job is failed and retryable, the contacts are exactly as before, and a retry
completes. Real processes: ``rollbook serve`` (jobs in the server) and ``rollbook worker`` (jobs
from the queue)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from benchmarks.datagen import population, write

from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import contacts as contacts_service
from rollbook.store import Store

ROWS = 150_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``what`` until it returns something truthy (an external process is the one to
    wait for here)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = what()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


class Process:
    """``python -m rollbook --db URL <args>`` as a real process."""

    def __init__(self, url: str, log: Path, *args: str) -> None:
        self.url, self.log, self.args = url, log, args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "ROLLBOOK_STALE_JOB_SECONDS": "0", "ROLLBOOK_LOG_LEVEL": "WARNING"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rollbook", "--db", self.url, *self.args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Server(Process):
    def __init__(self, url: str, log: Path, *args: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(url, log, "serve", "--port", str(self.port), *args)

    def start(self) -> None:
        super().start()
        _until(lambda: httpx.get(f"{self.base}/healthz").status_code == 200)


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _kill_an_import_and_retry(
    store: Store, tmp_path: Path, server: Server, runner: Process
) -> None:
    """Start an import of a large file, SIGKILL ``runner`` (the process running the job) in
    the middle, restart it, check nothing was applied, retry, check it completes."""
    accounts_service.create_account(store, "north")
    token, _ = auth.create_token(store, "north", "crash test")
    before = contacts_service.count_contacts(store, "north")
    path = write(tmp_path / "students.csv", population(ROWS))
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

    _until(running)
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

    after = _until(failed)
    assert after["retryable"] is True
    assert after["error"]["code"] == "interrupted"
    assert contacts_service.count_contacts(store, "north") == before

    retried = httpx.post(f"{url}/retry", headers=headers)
    assert retried.status_code == 202
    done = _until(
        lambda: (s := httpx.get(url, headers=headers).json())["status"] == "done" and s, timeout=300
    )
    assert done["attempts"] == 2
    created = done["result"]["counts"]["created"]
    assert created > ROWS * 0.9
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
        _kill_an_import_and_retry(postgres, tmp_path, server, worker)
    finally:
        worker.stop()
        server.stop()
