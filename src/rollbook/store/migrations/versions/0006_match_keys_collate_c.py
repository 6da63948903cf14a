"""CRM IDs and phones collated "C" on PostgreSQL, whatever the database's locale.

Contacts are matched by their CRM ID and phone, compared for equality only, byte by byte. Under
a language's collation (``en_US.UTF-8``, the usual default of a PostgreSQL server) every
comparison in their unique indexes went through the locale's rules: storing a million contacts
took ~3 s longer than in a database collated "C" (docs/benchmarks.md). Equal values stay equal
under "C" (the collations PostgreSQL offers by default are deterministic), so no index entry can
conflict anew. The columns keep their type; their indexes are rebuilt and the tables analysed
again. SQLite compares bytes already: nothing changes there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

#: table → its (column, type) matched byte by byte.
_KEYS = {
    "contacts": (("crm_id", "varchar(1000)"), ("phone", "varchar(32)")),
    "phone_history": (("phone", "varchar(32)"),),
    "crm_id_aliases": (("crm_id", "varchar(1000)"),),
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in _KEYS.items():
        changes = ", ".join(
            f"ALTER COLUMN {column} TYPE {kind} COLLATE {collation}" for column, kind in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")
        # A column's new type drops its statistics; the planner gets them back now rather than
        # whenever autovacuum next finds enough changed rows.
        op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
