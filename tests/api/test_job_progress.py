"""A job's progress as a poll sees it while the job ends: the last figures, never a blank in
between (the dashboard's bar would flash back to "Reading rows…")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rollbook.importing.read import ReadLimits
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import jobs as jobs_service
from rollbook.store import Store


def test_a_poll_while_the_job_ends_sees_its_last_progress(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = accounts_service.create_account(store, "acme")
    principal = auth.Principal(account_id, "acme", auth.Role.STAFF, "staff@example.edu")
    data = b"Student ID,Mobile Phone\nS1,555-201-0001\n"
    upload = jobs_service.save_upload(store, principal, "f.csv", data, ReadLimits())
    job_id = jobs_service.create_job(store, principal, upload["upload_id"], "import", {})["job_id"]
    heartbeat = jobs_service._Heartbeat(store, job_id)
    heartbeat.progress(7, 10)
    heartbeat.stop()  # as a finished import's is, before its end is written

    polled: list[dict[str, Any]] = []
    write = store.write

    @contextmanager
    def polling_write(**kwargs: Any) -> Iterator[Any]:
        # A poll from another connection, in the moment before the job's final status is
        # written (on SQLite the write would hold the lock).
        polled.append(jobs_service.get_job(store, principal, job_id))
        with write(**kwargs) as conn:
            yield conn

    monkeypatch.setattr(store, "write", polling_write)
    jobs_service._finish(store, job_id, jobs_service.DONE, result={})
    monkeypatch.undo()

    assert [p["progress"] for p in polled] == [{"done": 7, "total": 10}]
    done = jobs_service.get_job(store, principal, job_id)
    assert (done["status"], done["progress"]) == ("done", {"done": 7, "total": 10})
    assert job_id not in jobs_service._progress  # nothing kept for a job that ended
