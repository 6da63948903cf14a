"""Test fixtures. Every test that uses ``store`` runs twice: on SQLite and on a real PostgreSQL
(a throwaway cluster started from the installed server binaries, see tests/support/postgres.py).

``ROLLBOOK_TEST_BACKENDS=sqlite`` narrows a local run to one backend; CI runs both.
``ROLLBOOK_TEST_POSTGRES_URL`` uses an existing PostgreSQL server instead of starting one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rollbook.store import Store
from rollbook.store.schema import metadata
from tests.support.cli import Rollbook
from tests.support.postgres import Cluster, start_cluster

BACKENDS = [
    b.strip()
    for b in os.environ.get("ROLLBOOK_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("ROLLBOOK_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    cluster: Cluster = start_cluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "rollbook.db"
    Store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(scope="session")
def postgres_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    yield store
    store.dispose()


def _truncate_all(store: Store) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated database on the backend under test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "rollbook.db"
        shutil.copyfile(template, path)
        s = Store(f"sqlite:///{path}")
        yield s
        s.dispose()
    else:
        pg: Store = request.getfixturevalue("postgres_store")
        _truncate_all(pg)
        yield pg


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Store:
    """An empty, migrated PostgreSQL database, for what only PostgreSQL does (the job queue)."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is left out of this run by ROLLBOOK_TEST_BACKENDS")
    pg: Store = request.getfixturevalue("postgres_store")
    _truncate_all(pg)
    return pg


@pytest.fixture
def rb(store: Store, tmp_path: Path) -> Rollbook:
    """The ``rollbook`` command, on the test database."""
    return Rollbook(store, tmp_path)
