"""Schema migrations with Alembic. The scripts live in ``migrations/versions``; every schema change
is a new script there. ``upgrade`` brings a database to the newest revision and is cheap when it is
already there, so opening a store can always call it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from rollbook.store.database import Store

MIGRATIONS = Path(__file__).with_name("migrations")
#: Any constant shared by all rollbook processes: they queue on it while one of them migrates.
_PG_MIGRATION_LOCK = 0x726F6C6C


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default)."""
    if revision == "head" and current_revision(store) == head_revision():
        return
    cfg = alembic_config()
    with store.engine.connect() as conn:
        if store.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        finally:
            if store.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()


def downgrade(store: Store, revision: str) -> None:
    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
