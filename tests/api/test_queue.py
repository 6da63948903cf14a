"""The job queue (procrastinate, on PostgreSQL): the API defers, ``rollbook worker`` processes
run each job exactly once, and SQLite refuses the queue with a clear message."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.support.cli import Rollbook

from rollbook.api import ApiSettings, create_app
from rollbook.errors import StoreError
from rollbook.importing.read import ReadLimits
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import contacts as contacts_service
from rollbook.services import jobs as jobs_service
from rollbook.store import Store


def _file(account: int) -> bytes:
    rows = "".join(f"S{account}-{i},2125{account:02d}{i:04d}\n" for i in range(200))
    return ("Student ID,Mobile Phone\n" + rows).encode()


def test_the_queue_needs_postgresql(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(StoreError, match="the job queue needs PostgreSQL"):
        create_app(ApiSettings(jobs="queue"), store=store)
    store.dispose()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("serve", "--jobs", "queue"), {}, "Error: the job queue needs PostgreSQL"),
        (("serve",), {"ROLLBOOK_JOBS": "bogus"}, "Error: ROLLBOOK_JOBS is thread or queue"),
        (("worker", "--once"), {"ROLLBOOK_JOBS": "bogus"}, "Error: ROLLBOOK_JOBS is thread"),
        (("worker", "--once"), {"ROLLBOOK_MAX_ROWS": "2e6"}, "Error: ROLLBOOK_MAX_ROWS is a whole"),
    ],
)
def test_the_service_refuses_a_bad_setting_with_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    """Not a traceback: the error line, and exit status 1, before anything starts."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The commands set up logging for their process first: the test process gets its own back.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run = Rollbook(store, tmp_path)(*args, ok=False)
    store.dispose()
    assert (run.exit_code, run.stderr.strip().splitlines()[-1][: len(message)]) == (1, message)


@pytest.mark.slow
def test_two_workers_run_every_job_once(postgres: Store) -> None:
    with postgres.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS procrastinate CASCADE"))
    tokens = []
    for n in range(4):
        accounts_service.create_account(postgres, f"school-{n}")
        tokens.append(auth.create_token(postgres, f"school-{n}", "nightly")[0])
    app = create_app(ApiSettings(jobs="queue"), store=postgres)
    job_ids = []
    with TestClient(app) as client:
        for n, token in enumerate(tokens):
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(2):  # the second upload of the same file changes nothing
                r = client.post(
                    "/api/v1/imports",
                    headers=headers,
                    files={"file": ("f.csv", _file(n))},
                    data={"mapping": '{"Student ID": "crm_id", "Mobile Phone": "phone"}'},
                )
                assert r.status_code == 202, r.text
                assert r.json()["status"] == "queued"
                job_ids.append((headers, r.json()["job_id"]))
    url = postgres.engine.url.render_as_string(hide_password=False)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "rollbook", "--db", url, "worker", "--once"],
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()
    with TestClient(create_app(ApiSettings(jobs="queue"), store=postgres)) as client:
        for headers, job_id in job_ids:
            job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
            assert (job["status"], job["attempts"]) == ("done", 1), job
    for n in range(4):
        assert contacts_service.count_contacts(postgres, f"school-{n}") == 200
    assert _deferred(postgres) == [("succeeded", 8)]


@pytest.mark.slow
def test_a_job_saved_but_never_put_on_the_queue_still_runs(postgres: Store) -> None:
    """The job's row was written, then its process stopped before deferring it: the next server
    to start puts it on the queue (once: a worker starting finds it there already)."""
    with postgres.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS procrastinate CASCADE"))
    account_id = accounts_service.create_account(postgres, "acme")
    principal = auth.Principal(account_id, "acme", auth.Role.STAFF, "staff@example.edu")
    upload = jobs_service.save_upload(postgres, principal, "f.csv", _file(1), ReadLimits())
    options = {"mapping": {"Student ID": "crm_id", "Mobile Phone": "phone"}}
    job = jobs_service.create_job(postgres, principal, upload["upload_id"], "import", options)
    with TestClient(create_app(ApiSettings(jobs="queue"), store=postgres)):
        pass  # the server starts, and stops
    assert _deferred(postgres) == [("todo", 1)]
    url = postgres.engine.url.render_as_string(hide_password=False)
    worker = subprocess.run(
        [sys.executable, "-m", "rollbook", "--db", url, "worker", "--once"],
        capture_output=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stderr.decode()
    done = jobs_service.get_job(postgres, principal, job["job_id"])
    assert (done["status"], done["attempts"]) == ("done", 1), done
    assert contacts_service.count_contacts(postgres, "acme") == 200
    assert _deferred(postgres) == [("succeeded", 1)]


def test_a_job_a_worker_is_taking_is_not_put_back(postgres: Store) -> None:
    """A worker has taken the job off the queue but not claimed it yet (its row says queued):
    a process starting then leaves it, rather than deferring it a second time."""
    with postgres.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS procrastinate CASCADE"))
    account_id = accounts_service.create_account(postgres, "acme")
    principal = auth.Principal(account_id, "acme", auth.Role.STAFF, "staff@example.edu")
    upload = jobs_service.save_upload(postgres, principal, "f.csv", _file(1), ReadLimits())
    options = {"mapping": {"Student ID": "crm_id", "Mobile Phone": "phone"}}
    jobs_service.create_job(postgres, principal, upload["upload_id"], "import", options)
    with TestClient(create_app(ApiSettings(jobs="queue"), store=postgres)):
        pass  # the job goes on the queue
    with postgres.engine.begin() as conn:  # a worker takes it
        conn.execute(sa.text("SET LOCAL search_path TO procrastinate"))
        conn.execute(sa.text("UPDATE procrastinate_jobs SET status = 'doing'"))
    with TestClient(create_app(ApiSettings(jobs="queue"), store=postgres)):
        pass  # another process starts
    assert _deferred(postgres) == [("doing", 1)]


def _deferred(store: Store) -> list[tuple[str, int]]:
    """How many of rollbook's jobs procrastinate holds, by its status."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT status, count(*) FROM procrastinate.procrastinate_jobs "
                "WHERE task_name = 'rollbook.run_job' GROUP BY status ORDER BY status"
            )
        ).all()
    return [(str(status), int(n)) for status, n in rows]
