"""An API over the test database (SQLite and PostgreSQL), two accounts, tokens of each role."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from rollbook.api import ApiSettings, create_app
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.store import Store


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]  # "a-admin", "a-staff", "a-read", "b-admin"

    def headers(self, who: str = "a-admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, url: str, who: str = "a-admin", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self.headers(who), **kw)  # type: ignore[arg-type]

    def post(self, url: str, who: str = "a-admin", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.post(url, headers=self.headers(who), **kw)  # type: ignore[arg-type]

    def patch(self, url: str, who: str = "a-admin", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.patch(url, headers=self.headers(who), **kw)  # type: ignore[arg-type]

    def delete(self, url: str, who: str = "a-admin", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.delete(url, headers=self.headers(who), **kw)  # type: ignore[arg-type]

    def wait(self) -> None:
        """Until every background job so far has ended."""
        self.client.app.state.runner.wait()  # type: ignore[attr-defined]


def make_api(store: Store, **settings: object) -> Iterator[Api]:
    accounts_service.create_account(store, "north", region="US")
    accounts_service.create_account(store, "south", region="US")
    tokens = {}
    for who, slug, role in (
        ("a-admin", "north", "admin"),
        ("a-staff", "north", "staff"),
        ("a-read", "north", "read-only"),
        ("b-admin", "south", "admin"),
    ):
        tokens[who], _ = auth.create_token(store, slug, who, role)
    app = create_app(ApiSettings(**{"rate_limit_per_minute": 100_000, **settings}), store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield Api(client, tokens)


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    yield from make_api(store)


CLIENT_LOGGERS = {"httpx", "httpx2", "httpcore"}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.tests: list[str] = []  # the test that logged each line
        self.current = ""
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # The test client's own request lines (httpx) are the caller's log, not the server's.
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            return
        self.lines.append(self.format(record))
        self.tests.append(self.current)


CAPTURE = _Capture()


@pytest.fixture(scope="session", autouse=True)
def _capture_logs() -> Iterator[_Capture]:
    """Every log line the API tests produce, for test_logs (which runs last)."""
    root = logging.getLogger()
    root.addHandler(CAPTURE)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield CAPTURE
    root.removeHandler(CAPTURE)
    root.setLevel(previous)


@pytest.fixture(autouse=True)
def _name_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    CAPTURE.current = request.node.nodeid
    yield
    CAPTURE.current = ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The log scan runs after every other API test."""
    last = [i for i in items if "test_logs.py" in i.nodeid]
    items[:] = [i for i in items if i not in last] + last
