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


@pytest.fixture
def running(store: Store, monkeypatch: pytest.MonkeyPatch) -> tuple[auth.Principal, int]:
    """A job whose import has reported 7 of 10 rows done (in a progress table of this test's
    own, so that nothing is left for the next test's job of the same id)."""
    monkeypatch.setattr(jobs_service, "_progress", {})
    account_id = accounts_service.create_account(store, "acme")
    principal = auth.Principal(account_id, "acme", auth.Role.STAFF, "staff@example.edu")
    data = b"Student ID,Mobile Phone\nS1,555-201-0001\n"
    upload = jobs_service.save_upload(store, principal, "f.csv", data, ReadLimits())
    job_id = jobs_service.create_job(store, principal, upload["upload_id"], "import", {})["job_id"]
    assert jobs_service.claim(store, job_id)
    heartbeat = jobs_service._Heartbeat(store, job_id)
    heartbeat.progress(7, 10)
    heartbeat.stop()  # as a finished import's is, before its end is written
    return principal, job_id


def _finish(store: Store, job_id: int) -> None:
    jobs_service._finish(store, job_id, jobs_service.DONE, result={})


def test_a_poll_before_the_end_is_written_sees_the_last_progress(
    store: Store, running: tuple[auth.Principal, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    principal, job_id = running
    polled: list[dict[str, Any]] = []
    write = store.write

    @contextmanager
    def polling_write(**kwargs: Any) -> Iterator[Any]:
        # A poll from another connection, in the moment before the job's final status is
        # written (on SQLite the write would hold the lock).
        polled.append(jobs_service.get_job(store, principal, job_id))
        with write(**kwargs) as conn:
            yield conn

    with monkeypatch.context() as m:
        m.setattr(store, "write", polling_write)
        _finish(store, job_id)

    assert [(p["status"], p["progress"]) for p in polled] == [("running", {"done": 7, "total": 10})]
    done = jobs_service.get_job(store, principal, job_id)
    assert (done["status"], done["progress"]) == ("done", {"done": 7, "total": 10})
    assert job_id not in jobs_service._progress  # nothing kept for a job that ended


@pytest.mark.parametrize("poll", ["get_job", "list_jobs"])
def test_a_poll_that_read_the_row_before_the_end_sees_the_last_progress(
    store: Store,
    running: tuple[auth.Principal, int],
    monkeypatch: pytest.MonkeyPatch,
    poll: str,
) -> None:
    """The poll reads the job's row while it is running, then the job ends, then the poll
    makes the row's JSON: it must still show the figures."""
    principal, job_id = running
    as_json = jobs_service._job_json

    def end_then_json(*args: Any) -> dict[str, Any]:
        _finish(store, job_id)
        return as_json(*args)

    monkeypatch.setattr(jobs_service, "_job_json", end_then_json)
    if poll == "get_job":
        got = jobs_service.get_job(store, principal, job_id)
    else:
        (got,) = jobs_service.list_jobs(store, principal)
    assert (got["status"], got["progress"]) == ("running", {"done": 7, "total": 10})
