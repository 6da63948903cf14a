"""Run last, over the whole API suite: every operation was exercised; the log lines carry no
phone number, email or token; a dump of the database contains no issued token in clear."""

from __future__ import annotations

import io
import logging
import re

import pytest
import sqlalchemy as sa
from tests.api.conftest import CAPTURE, Api
from tests.api.test_api import _import

from rollbook.logs import NoTracebacks, configure
from rollbook.store import Store
from rollbook.store.schema import metadata

PHONE = re.compile(r"\+\d{11}|\(\d{3}\) ?\d{3}-\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b|\b\d{10}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
TOKEN = re.compile(r"rbk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def test_logs_carry_no_personal_data_or_secrets(api: Api) -> None:
    # This module runs last; it adds a scenario of its own so it means something alone too.
    _import(api)
    maria = api.get("/api/v1/contacts/by-phone/(212) 555-0101").json()
    api.patch(f"/api/v1/contacts/{maria['id']}", json={"fields": {"phone": "555-12"}})
    api.get("/api/v1/contacts/by-crm-id/S9")
    api.client.get("/api/v1/contacts", headers={"Authorization": "Bearer rbk_0000aaaa_" + "x" * 40})
    text = "\n".join(CAPTURE.lines)
    assert CAPTURE.lines, "nothing was logged: the capture is not working"
    assert "GET /api/v1/contacts/by-phone/{phone} 200" in text
    assert PHONE.findall(text) == []
    assert EMAIL.findall(text) == []
    assert TOKEN.findall(text) == []


def test_the_api_suite_calls_every_operation(api: Api, request: pytest.FixtureRequest) -> None:
    """Every operation of the OpenAPI document appears with a successful status in the access
    log of the API suite's own tests (Schemathesis's generated calls do not count)."""
    if not any("test_api.py" in item.nodeid for item in request.session.items):
        pytest.skip("counts the operations the whole tests/api suite calls; run it all")
    called = set(
        re.findall(r"rollbook\.access INFO (\w+) (\S+) [23]\d\d ", "\n".join(CAPTURE.lines))
    )
    spec = api.client.get("/openapi.json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if (method.upper(), path) not in called
    ]
    assert missing == []


def test_no_token_in_clear_in_the_database(api: Api, store: Store) -> None:
    issued = list(api.tokens.values())
    issued.append(api.post("/api/v1/tokens", json={"name": "dump"}).json()["token"])
    with store.read() as conn:
        dump = "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table))
        )
    assert dump
    for token in issued:
        assert token not in dump
        # The secret is all after "rbk_<prefix>_" (it may hold "_" itself).
        secret = re.fullmatch(r"rbk_[0-9a-f]{8}_(.+)", token)
        assert secret and secret[1] not in dump


def test_the_servers_own_error_lines_carry_no_exception_text() -> None:
    """The server logs an unexpected error again after the app answered it, traceback and all;
    the service's log set-up keeps the type and drops the text, which can quote a value."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure()
        assert all(any(isinstance(f, NoTracebacks) for f in h.filters) for h in root.handlers)
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        for f in root.handlers[0].filters:
            handler.addFilter(f)
        server = logging.getLogger("uvicorn.error")
        server.addHandler(handler)
        try:
            raise ValueError("invalid literal for int(): '+12125550142' maria@example.edu")
        except ValueError:
            server.exception("Exception in ASGI application")
        finally:
            server.removeHandler(handler)
        line = out.getvalue()
        assert "Exception in ASGI application: ValueError" in line
        assert "2125550142" not in line and "maria" not in line and "Traceback" not in line
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
