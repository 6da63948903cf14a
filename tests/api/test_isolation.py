"""One account never sees another's: every operation of the OpenAPI document, called with
account A's token on account B's objects, answers 404 — and lists show none of B's data."""

from __future__ import annotations

import re

from tests.api.conftest import Api

FILE = "Student ID,First Name,Mobile Phone,Email\nB1,Bea,(212) 555-0177,bea@south.example.edu\n"


def _objects_of_b(api: Api) -> dict[str, str]:
    """An object of each kind in account B, by the path parameter that names it."""
    up = api.post(
        "/api/v1/uploads", who="b-admin", files={"file": ("b.csv", FILE.encode(), "text/csv")}
    ).json()
    job = api.post(
        f"/api/v1/uploads/{up['upload_id']}/import",
        who="b-admin",
        json={"mapping": {"Student ID": "crm_id", "Mobile Phone": "phone"}},
    ).json()
    api.wait()
    job = api.get(f"/api/v1/jobs/{job['job_id']}", who="b-admin").json()
    assert job["status"] == "done", job
    contact = api.get("/api/v1/contacts/by-crm-id/B1", who="b-admin").json()
    up2 = api.post(
        "/api/v1/uploads", who="b-admin", files={"file": ("b2.csv", FILE.encode(), "text/csv")}
    ).json()
    token = api.post("/api/v1/tokens", who="b-admin", json={"name": "b"}).json()
    api.post("/api/v1/fields", who="b-admin", json={"key": "b_only"})
    return {
        "contact_id": str(contact["id"]),
        "crm_id": "B1",
        "phone": "+12125550177",
        "upload_id": str(up2["upload_id"]),
        "job_id": str(job["job_id"]),
        "import_id": str(job["import_id"]),
        "token_id": str(token["id"]),
        "key": "b_only",
    }


BODIES = {
    "patch /api/v1/contacts/{contact_id}": {"fields": {"first_name": "Hacked"}},
    "post /api/v1/uploads/{upload_id}/mapping": {},
    "post /api/v1/uploads/{upload_id}/preview": {},
    "post /api/v1/uploads/{upload_id}/import": {},
    "patch /api/v1/fields/{key}": {"key": "hacked"},
}


def test_account_a_cannot_reach_account_b(api: Api) -> None:
    b = _objects_of_b(api)
    spec = api.client.get("/openapi.json").json()
    tried = 0
    for path, operations in spec["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        for method in operations:
            url = path
            for name in names:
                url = url.replace("{" + name + "}", b[name])
            body = BODIES.get(f"{method} {path}")
            response = api.client.request(
                method.upper(),
                url,
                headers=api.headers("a-admin"),
                json=body if body is not None else None,
            )
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
            assert response.json()["error"]["code"] == "not-found"
            assert "Bea" not in response.text and "555-0177" not in response.text
            tried += 1
    assert tried >= 15
    # B's contact and field are untouched, and none of B's data shows in A's lists.
    assert "b_only" in [f["key"] for f in api.get("/api/v1/fields", who="b-admin").json()]
    assert (
        api.get(f"/api/v1/contacts/{b['contact_id']}", who="b-admin").json()["first_name"] == "Bea"
    )
    lists = [
        path
        for path, operations in spec["paths"].items()
        if "get" in operations and "{" not in path
    ]
    assert len(lists) >= 7
    for url in [*lists, "/api/v1/contacts?search=Bea"]:
        text = api.get(url, who="a-admin").text
        for of_b in ("Bea", "B1", "b.csv", "south"):
            assert of_b not in text, f"{url} shows {of_b}"
    assert (
        api.get("/api/v1/contacts", who="a-admin", params={"label": "import-1"}).status_code == 404
    )
