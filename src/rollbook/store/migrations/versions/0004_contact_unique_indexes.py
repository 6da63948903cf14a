"""A contact's phone and CRM ID stay unique per account through named unique indexes instead of
table constraints, so that an import into an empty contacts table can build them once, after
writing, inside its transaction (store/bulk.py, docs/benchmarks.md) — the uniqueness is the
database's either way.

SQLite cannot drop a table constraint: the table is rebuilt as SQLite's documented procedure
says (foreign keys off — rollbook's migration runner does that — new table, copy, drop, rename,
foreign key check), keeping its AUTOINCREMENT high-water mark so that ids are never reused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import re
from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

UNIQUE = {
    "uq_contacts_account_id_crm_id": ["account_id", "crm_id"],
    "uq_contacts_account_id_phone": ["account_id", "phone"],
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(constraints=False)
    else:
        for name in UNIQUE:
            op.drop_constraint(name, "contacts", type_="unique")
    for name, columns in UNIQUE.items():
        op.create_index(name, "contacts", columns, unique=True)


def downgrade() -> None:
    for name in UNIQUE:
        op.drop_index(name, "contacts")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(constraints=True)
    else:
        for name, columns in UNIQUE.items():
            op.create_unique_constraint(name, "contacts", columns)


def _rebuild_sqlite(*, constraints: bool) -> None:
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'contacts'"
    ).scalar_one()
    seq = bind.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = 'contacts'"
    ).scalar_one_or_none()
    if constraints:
        extra = "".join(
            f", \n\tCONSTRAINT {name} UNIQUE ({', '.join(cols)})" for name, cols in UNIQUE.items()
        )
        new = re.sub(r"\)\s*$", extra + "\n)", sql)
    else:
        new, found = re.subn(r",\s*CONSTRAINT uq_contacts_account_id_\w+ UNIQUE \([^)]*\)", "", sql)
        assert found == len(UNIQUE), "the contacts table is not as migration 0003 left it"
    # (A renamed table's SQL names it in quotes.)
    new, named = re.subn(
        r'^CREATE TABLE\s+("?)contacts\1\s*\(', "CREATE TABLE contacts_rebuilt (", new
    )
    assert named == 1, "the contacts table's definition was not recognised"
    bind.exec_driver_sql(new)
    bind.exec_driver_sql("INSERT INTO contacts_rebuilt SELECT * FROM contacts")
    bind.exec_driver_sql("DROP TABLE contacts")
    bind.exec_driver_sql("ALTER TABLE contacts_rebuilt RENAME TO contacts")
    if seq is not None:
        bind.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'contacts'", (seq,)
        )
        bind.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'contacts', ? "
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'contacts')",
            (seq,),
        )
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    assert not problems, f"foreign keys broken by the rebuild: {problems[:5]}"
