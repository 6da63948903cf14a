"""Schemathesis against the app's own OpenAPI document: generated calls to every operation
never get a server error, and every response matches the documented schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api.conftest import Api

FILE = "Student ID,First Name,Mobile Phone\nS1,Maria,(212) 555-0101\nS2,Wei,(212) 555-0102\n"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


@pytest.mark.slow
def test_api_against_its_own_schema(api: Api) -> None:
    up = api.post("/api/v1/uploads", files={"file": ("f.csv", FILE.encode())}).json()
    api.post(
        f"/api/v1/uploads/{up['upload_id']}/import",
        json={"mapping": {"Student ID": "crm_id", "Mobile Phone": "phone"}},
    )
    api.wait()
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) == (
            "DELETE",
            "/api/v1/tokens/{token_id}",
        ):
            continue  # revoking random ids would revoke the run's own token

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=api.headers("a-admin"), checks=CHECKS)
            api.wait()

        call()
        operations += 1
    assert operations >= 20
