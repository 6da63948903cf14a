"""Every operation of the API, on SQLite and PostgreSQL, the way an integration engineer's
nightly upload uses them."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import Api, make_api

from rollbook.api import ApiSettings, create_app
from rollbook.services import auth
from rollbook.services import jobs as jobs_service
from rollbook.store import Store, database

FALL = (
    "Student ID,First Name,Last Name,Mobile Phone,Email\n"
    "S1,Maria,Lopez,(212) 555-0101,maria@example.edu\n"
    "S2,Wei,Chen,212.555.0102,wei@example.edu\n"
    "S3,Ana,Ruiz,555-12,ana@example.edu\n"
)
MAPPING = {"Student ID": "crm_id", "Mobile Phone": "phone"}


def _error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def _import(api: Api, text: str = FALL, mapping: dict | None = None) -> dict:  # type: ignore[type-arg]
    up = api.post("/api/v1/uploads", files={"file": ("fall.csv", text.encode(), "text/csv")})
    assert up.status_code == 201, up.text
    job = api.post(
        f"/api/v1/uploads/{up.json()['upload_id']}/import",
        json={"mapping": MAPPING if mapping is None else mapping},
    )
    assert job.status_code == 202, job.text
    api.wait()
    done = api.get(f"/api/v1/jobs/{job.json()['job_id']}").json()
    assert done["status"] == "done", done
    return done


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_account_and_fields(api: Api) -> None:
    assert api.get("/api/v1/account").json() == {
        "slug": "north",
        "name": "north",
        "region": "US",
        "required": ["phone"],
    }
    r = api.patch("/api/v1/account", json={"region": "ca"})
    assert r.json()["region"] == "CA"
    r = api.post(
        "/api/v1/fields", json={"key": "term", "type": "choice", "options": ["Fall", "Spring"]}
    )
    assert r.status_code == 201
    assert r.json()["options"] == ["Fall", "Spring"]
    keys = [f["key"] for f in api.get("/api/v1/fields").json()]
    assert keys[-1] == "term"
    assert "phone" in keys
    _error(api.post("/api/v1/fields", json={"key": "term"}), 409, "conflict")
    _error(api.post("/api/v1/fields", json={"key": "x", "type": "choice"}), 422, "invalid-input")
    reserved = _error(api.post("/api/v1/fields", json={"key": "ph"}), 422, "invalid-input")
    assert reserved["details"] == {"field": "key"}
    r = api.patch("/api/v1/fields/term", json={"key": "start_term", "label": "Start term"})
    assert r.status_code == 200
    assert (r.json()["key"], r.json()["label"]) == ("start_term", "Start term")
    r = api.patch("/api/v1/fields/start_term", json={"label": "First term"})
    assert (r.json()["key"], r.json()["label"]) == ("start_term", "First term")
    assert [f["key"] for f in api.get("/api/v1/fields").json()][-1] == "start_term"
    _error(api.patch("/api/v1/fields/term", json={"key": "x"}), 404, "not-found")
    api.post("/api/v1/fields", json={"key": "campus"})
    taken = _error(api.patch("/api/v1/fields/start_term", json={"key": "campus"}), 409, "conflict")
    assert taken["details"] == {"field": "new_key"}
    _error(api.patch("/api/v1/fields/email", json={"key": "mail"}), 422, "invalid-input")
    renamed = _error(
        api.patch("/api/v1/fields/start_term", json={"key": "target"}), 422, "invalid-input"
    )
    assert renamed["details"] == {"field": "new_key"}


def test_nightly_upload_preview_import_reports(api: Api) -> None:
    up = api.post("/api/v1/uploads", files={"file": ("fall.csv", FALL.encode(), "text/csv")})
    assert up.status_code == 201
    upload = up.json()
    assert upload["format"]["description"] == "CSV, UTF-8, comma-separated"
    assert upload["sample"][0] == {
        "row": 2,
        "cells": ["S1", "Maria", "Lopez", "(212) 555-0101", "maria@example.edu"],
    }
    columns = {c["column"]: c for c in upload["mapping"]}
    assert columns["First Name"]["field"] == "first_name"
    assert columns["Mobile Phone"]["field"] is None
    assert columns["Mobile Phone"]["suggestions"][0]["field"] == "phone"
    mapped = api.post(
        f"/api/v1/uploads/{upload['upload_id']}/mapping", json={"mapping": MAPPING}
    ).json()
    assert {c["column"]: c["field"] for c in mapped["mapping"]}["Student ID"] == "crm_id"

    preview = api.post(f"/api/v1/uploads/{upload['upload_id']}/preview", json={"mapping": MAPPING})
    assert preview.status_code == 202
    assert preview.json()["status"] in ("queued", "running", "done")
    api.wait()
    job = api.get(f"/api/v1/jobs/{preview.json()['job_id']}").json()
    assert job["status"] == "done", job["error"]
    assert job["result"]["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "skipped": 1}
    assert job["result"]["import_id"] is None
    assert api.get("/api/v1/contacts").json()["total"] == 0  # a preview keeps nothing

    done = _import(api)
    assert done["progress"]["done"] == done["progress"]["total"] == 3
    import_id = done["import_id"]
    assert done["result"]["codes"] == {"invalid-phone": 1}
    assert [i["import_id"] for i in api.get("/api/v1/imports").json()] == [import_id]
    one = api.get(f"/api/v1/imports/{import_id}").json()
    assert one["counts"]["created"] == 2
    rows = _csv(api.get(f"/api/v1/imports/{import_id}/rows").text)
    assert [(r["row"], r["status"]) for r in rows] == [
        ("2", "created"),
        ("3", "created"),
        ("4", "skipped"),
    ]
    changed = api.get(f"/api/v1/imports/{import_id}/changed-numbers")
    assert changed.headers["content-type"].startswith("text/csv")
    assert _csv(changed.text) == []
    assert [j["kind"] for j in api.get("/api/v1/jobs").json()] == ["import", "preview"]
    assert api.delete(f"/api/v1/uploads/{upload['upload_id']}").status_code == 204


def test_one_call_nightly_upload(api: Api) -> None:
    """Upload and import in one call; the answer is the job, at once."""
    job = api.post(
        "/api/v1/imports",
        files={"file": ("fall.csv", FALL.encode(), "text/csv")},
        data={"mapping": '{"Student ID": "crm_id", "Mobile Phone": "phone"}'},
    )
    assert job.status_code == 202, job.text
    assert job.json()["status"] in ("queued", "running", "done")
    api.wait()
    done = api.get(f"/api/v1/jobs/{job.json()['job_id']}").json()
    assert done["status"] == "done", done
    assert done["result"]["counts"]["created"] == 2
    assert api.get("/api/v1/contacts/by-crm-id/S2").json()["phone"] == "+12125550102"
    dry = api.post(
        "/api/v1/imports",
        files={"file": ("x.csv", b"Student ID,Mobile Phone\nS9,2125550109\n")},
        data={"dry_run": "true"},
    ).json()
    api.wait()
    assert api.get(f"/api/v1/jobs/{dry['job_id']}").json()["kind"] == "preview"
    _error(api.get("/api/v1/contacts/by-crm-id/S9"), 404, "not-found")
    bad = api.post("/api/v1/imports", files={"file": ("x.csv", b"a\n1\n")}, data={"mapping": "{"})
    assert _error(bad, 422, "invalid-input")["details"] == {"field": "mapping"}
    _error(api.post("/api/v1/imports", files={"file": ("x.csv", b"")}), 422, "invalid-input")


def test_contacts(api: Api) -> None:
    _import(api)
    page = api.get("/api/v1/contacts", params={"limit": 1}).json()
    assert page["total"] == 2
    assert page["items"][0]["crm_id"] == "S1"
    second = api.get("/api/v1/contacts", params={"limit": 1, "after": page["next_after"]}).json()
    assert [c["crm_id"] for c in second["items"]] == ["S2"]
    assert second["next_after"] is None
    maria = api.get("/api/v1/contacts/by-crm-id/S1").json()
    assert api.get("/api/v1/contacts/by-phone/2125550101").json()["id"] == maria["id"]
    assert api.get("/api/v1/contacts", params={"search": "+1 212 555 0102"}).json()["total"] == 1
    assert api.get("/api/v1/contacts", params={"label": "import-1"}).json()["total"] == 2

    r = api.patch(
        f"/api/v1/contacts/{maria['id']}",
        json={
            "fields": {"phone": "(917) 555-0199", "email": "UNSET"},
            "source": "contact",
            "reason": "parent sent the student's number",
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["phone"], r.json()["email"]) == ("+19175550199", None)
    history = api.get(f"/api/v1/contacts/{maria['id']}/history").json()
    assert history["phone_history"][0]["phone"] == "+12125550101"
    assert history["timeline"][-1]["reason"] == "parent sent the student's number"
    assert history["bases"]["phone"] == "+12125550101"
    detail = api.get(f"/api/v1/contacts/{maria['id']}").json()
    assert detail["phone_reason"] == "parent sent the student's number"

    assert api.post(f"/api/v1/contacts/{maria['id']}/archive").json()["archived"] is True
    assert api.get("/api/v1/contacts", params={"archived": True}).json()["total"] == 1
    assert api.post(f"/api/v1/contacts/{maria['id']}/restore").json()["archived"] is False

    new = api.post("/api/v1/contacts", json={"fields": {"first_name": "Bo", "phone": "2125550111"}})
    assert new.status_code == 201
    clash = _error(
        api.patch(f"/api/v1/contacts/{new.json()['id']}", json={"fields": {"phone": "2125550102"}}),
        409,
        "conflict",
    )
    assert clash["details"]["field"] == "phone"
    bad = _error(
        api.patch(
            f"/api/v1/contacts/{maria['id']}", json={"fields": {"phone": "555-12", "email": "x"}}
        ),
        422,
        "invalid-input",
    )
    assert [e["field"] for e in bad["details"]["errors"]] == ["phone", "email"]

    export = api.get("/api/v1/export").text
    assert export.splitlines()[0].startswith("rollbook_id,crm_id,")
    assert len(_csv(export)) == 3


def test_drift_guard_over_http(api: Api) -> None:
    _import(api)
    renamed = FALL.replace("Student ID", "StudentID")
    up = api.post("/api/v1/uploads", files={"file": ("spring.csv", renamed.encode())}).json()
    assert "'StudentID'" in up["drift_warning"]
    assert up["drift_likely_column"] == "StudentID"
    assert up["drift_previous_headers"] == ["Student ID"]
    job = api.post(f"/api/v1/uploads/{up['upload_id']}/import", json={}).json()
    api.wait()
    failed = api.get(f"/api/v1/jobs/{job['job_id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "drift-guard"
    assert failed["retryable"] is False  # the same job would fail the same way
    _error(api.post(f"/api/v1/jobs/{job['job_id']}/retry"), 409, "conflict")
    assert api.get("/api/v1/contacts").json()["total"] == 2
    # The answer is a new job on the same upload, mapping the renamed column.
    again = api.post(
        f"/api/v1/uploads/{up['upload_id']}/import", json={"mapping": {"StudentID": "crm_id"}}
    ).json()
    api.wait()
    assert api.get(f"/api/v1/jobs/{again['job_id']}").json()["status"] == "done"
    assert api.get("/api/v1/contacts").json()["total"] == 2


def test_restart_fails_interrupted_jobs_and_retry_runs_them(api: Api, store: Store) -> None:
    """A job a runner took and never finished (its process died) is failed and retryable when
    the service starts again; the retry runs it. (test_job_crash does this with a real kill.)"""
    up = api.post("/api/v1/uploads", files={"file": ("fall.csv", FALL.encode())}).json()
    caller = auth.authenticate_token(store, api.tokens["a-admin"])
    assert caller is not None
    # Recorded, not handed to this server's runner: the job of a process about to die.
    job = jobs_service.create_job(store, caller, up["upload_id"], "import", {"mapping": MAPPING})
    assert job["status"] == "queued"
    assert jobs_service.claim(store, job["job_id"])  # a worker takes it, then dies
    restarted = create_app(ApiSettings(stale_job_seconds=0), store=store)
    with TestClient(restarted) as client:
        url = f"/api/v1/jobs/{job['job_id']}"
        failed = client.get(url, headers=api.headers()).json()
        assert (failed["status"], failed["error"]["code"]) == ("failed", "interrupted")
        assert failed["retryable"] is True
        assert client.get("/api/v1/contacts", headers=api.headers()).json()["total"] == 0
        _error(client.post(f"{url}/retry", headers=api.headers("a-read")), 403, "forbidden")
        assert client.post(f"{url}/retry", headers=api.headers()).status_code == 202
        restarted.state.runner.wait()
        done = client.get(url, headers=api.headers()).json()
        assert (done["status"], done["attempts"]) == ("done", 2)
        assert client.get("/api/v1/contacts", headers=api.headers()).json()["total"] == 2
        _error(client.post(f"{url}/retry", headers=api.headers()), 409, "conflict")


def test_tokens(api: Api) -> None:
    made = api.post("/api/v1/tokens", json={"name": "nightly", "role": "read-only"})
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("rbk_")
    listed = api.get("/api/v1/tokens").json()
    assert all("token" not in t and token not in str(t) for t in listed)
    reader = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/account", headers=reader).status_code == 200
    _error(
        api.client.post("/api/v1/contacts", headers=reader, json={"fields": {}}), 403, "forbidden"
    )
    revoked = api.delete(f"/api/v1/tokens/{made.json()['id']}").json()
    assert revoked["revoked_at"] is not None
    _error(api.client.get("/api/v1/account", headers=reader), 401, "unauthenticated")


def test_roles_and_authentication(api: Api) -> None:
    _error(api.client.get("/api/v1/contacts"), 401, "unauthenticated")
    _error(
        api.client.get("/api/v1/contacts", headers={"Authorization": "Bearer rbk_nope_x"}),
        401,
        "unauthenticated",
    )
    _error(
        api.post("/api/v1/contacts", who="a-read", json={"fields": {"phone": "2125550101"}}),
        403,
        "forbidden",
    )
    _error(api.post("/api/v1/fields", who="a-staff", json={"key": "gpa"}), 403, "forbidden")
    _error(api.patch("/api/v1/fields/gpa", who="a-staff", json={"key": "grade"}), 403, "forbidden")
    assert (
        api.post(
            "/api/v1/contacts", who="a-staff", json={"fields": {"phone": "2125550101"}}
        ).status_code
        == 201
    )
    _error(api.get("/api/v1/nothing-here"), 404, "not-found")
    _error(api.get("/api/v1/contacts/notanumber"), 422, "invalid-input")


def test_upload_limits(store: Store) -> None:
    for api in make_api(store, max_upload_bytes=100, max_rows=2):
        _error(
            api.post("/api/v1/uploads", files={"file": ("f.csv", FALL.encode() * 3)}),
            413,
            "too-large",
        )
        rows = "crm_id,phone\n" + "".join(f"C{i},212555010{i}\n" for i in range(4))
        refused = _error(
            api.post("/api/v1/uploads", files={"file": ("f.csv", rows.encode())}),
            422,
            "file-refused",
        )
        assert "more than 2 rows" in refused["message"]


def test_rate_limit(store: Store) -> None:
    for api in make_api(store, rate_limit_per_minute=3):
        for _ in range(3):
            assert api.get("/api/v1/account").status_code == 200
        limited = api.get("/api/v1/account")
        _error(limited, 429, "rate-limited")
        assert int(limited.headers["Retry-After"]) >= 1
        assert api.get("/api/v1/account", who="a-staff").status_code == 200  # per token


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz"])
def test_public_pages(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 200


def test_every_operation_is_described(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            assert op.get("description"), f"{method} {path} has no description"


def test_a_busy_database_answers_503_try_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's write lock held past the busy timeout (as by a long import): 503, not 500."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "busy.db"
    store = Store(f"sqlite:///{path}")
    for api in make_api(store):
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        busy = api.post("/api/v1/contacts", json={"fields": {"phone": "2125550111"}})
        holder.rollback()
        holder.close()
        assert (busy.status_code, busy.json()["error"]["code"]) == (503, "store-error")
        assert busy.headers["Retry-After"] == "5"
        again = api.post("/api/v1/contacts", json={"fields": {"phone": "2125550111"}})
        assert again.status_code == 201, again.text
    store.dispose()
