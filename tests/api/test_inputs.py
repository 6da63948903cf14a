"""Text with a NUL character (U+0000) is refused where it enters — JSON body, query, path or
form — with the usual invalid-input error, and nothing is stored (PostgreSQL cannot store it;
found by Schemathesis)."""

from __future__ import annotations

import sqlalchemy as sa
from tests.api.conftest import Api

from rollbook.store import Store, schema


def _refused(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid-input"
    assert field in body["message"] and "NUL" in body["message"]


def test_nul_in_a_json_body_is_refused_and_nothing_is_stored(api: Api, store: Store) -> None:
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(schema.api_tokens)).scalar()
    _refused(api.post("/api/v1/tokens", json={"name": "\x00", "role": "staff"}), "name")
    _refused(api.post("/api/v1/contacts", json={"fields": {"first_name": "A\x00na"}}), "fields")
    _refused(api.post("/api/v1/fields", json={"key": "k", "options": ["a", "\x00"]}), "options")
    with store.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(schema.api_tokens)).scalar()
    assert after == before


def test_nul_in_the_query_or_path_is_refused(api: Api) -> None:
    _refused(api.get("/api/v1/contacts", params={"q": "ma\x00ria"}), "q")
    _refused(api.get("/api/v1/contacts/by-crm-id/S%001"), "crm_id")


def test_nul_in_a_form_field_is_refused(api: Api) -> None:
    # Escaped in the JSON, the NUL is found once the mapping is read; raw, by the guard.
    response = api.post(
        "/api/v1/imports",
        files={"file": ("f.csv", b"Phone\n2025550123\n", "text/csv")},
        data={"mapping": '{"Phone\\u0000": "phone"}', "dry_run": "true"},
    )
    _refused(response, "mapping")
    response = api.post(
        "/api/v1/imports",
        files={"file": ("f.csv", b"Phone\n2025550123\n", "text/csv")},
        data={"mapping": '{"Phone\x00": "phone"}', "dry_run": "true"},
    )
    _refused(response, "mapping")


def test_an_uploaded_file_keeps_only_a_printable_name(api: Api) -> None:
    # Written by hand: an HTTP client would escape the name's control characters.
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; '
        b'filename="../../etc/fa\x00ll\x07.csv"\r\nContent-Type: text/csv\r\n\r\n'
        b"Phone\n2025550123\n\r\n--XyZ--\r\n"
    )
    response = api.client.post(
        "/api/v1/uploads",
        content=body,
        headers={**api.headers(), "Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["filename"] == "fall.csv"
