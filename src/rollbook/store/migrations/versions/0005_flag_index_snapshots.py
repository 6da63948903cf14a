"""The possible-duplicate index, kept between imports.

An import that creates a contact needs every contact's email and name-and-birth-date keys
(importing/flags.py): reading and hashing them was about a fifth of the CPU of a re-import of a
million rows. ``flag_index_snapshots`` keeps them hashed, as the last import left them, in parts
of a bounded number of contacts. They are used only while they still describe the account: the
import checks the number of contacts and the newest id (ids are never reused), and a trigger
deletes them when an update changes a contact's email, first or last name, or custom fields (the
birth date among them).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The condition calls no function: a trigger that may call one (``json_extract`` to compare only
# the birth date, say) makes SQLite keep a statement journal for every statement that updates
# contacts — for an import's 50,000 updates, ~500 MB written to a temporary file. So any change
# of a custom field counts, as it does on PostgreSQL, for the same rule on both.
_SQLITE = [
    """CREATE TRIGGER contacts_flag_index_stale
    AFTER UPDATE OF email, first_name, last_name, custom ON contacts FOR EACH ROW
    WHEN NEW.email IS NOT OLD.email OR NEW.first_name IS NOT OLD.first_name
        OR NEW.last_name IS NOT OLD.last_name OR NEW.custom IS NOT OLD.custom
    BEGIN DELETE FROM flag_index_snapshots WHERE account_id = OLD.account_id; END"""
]
_SQLITE_DROP = ["DROP TRIGGER contacts_flag_index_stale"]

_POSTGRES = [
    # Hashes do not compress: PostgreSQL's attempt at it took ~1.5 s of every million kept.
    "ALTER TABLE flag_index_snapshots ALTER COLUMN hashes SET STORAGE EXTERNAL",
    """CREATE FUNCTION contacts_flag_index_stale() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM flag_index_snapshots WHERE account_id = OLD.account_id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER contacts_flag_index_stale
    AFTER UPDATE OF email, first_name, last_name, custom ON contacts FOR EACH ROW
    WHEN (NEW.email IS DISTINCT FROM OLD.email OR NEW.first_name IS DISTINCT FROM OLD.first_name
        OR NEW.last_name IS DISTINCT FROM OLD.last_name OR NEW.custom IS DISTINCT FROM OLD.custom)
    EXECUTE FUNCTION contacts_flag_index_stale()""",
]
_POSTGRES_DROP = [
    "DROP TRIGGER contacts_flag_index_stale ON contacts",
    "DROP FUNCTION contacts_flag_index_stale()",
]


def upgrade() -> None:
    op.create_table(
        "flag_index_snapshots",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=64), nullable=False),
        sa.Column("contacts", sa.BigInteger(), nullable=False),
        sa.Column("max_id", sa.BigInteger(), nullable=True),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_flag_index_snapshots_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "part", name=op.f("pk_flag_index_snapshots")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in _POSTGRES if postgres else _SQLITE:
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in _POSTGRES_DROP if postgres else _SQLITE_DROP:
        op.execute(sql)
    op.drop_table("flag_index_snapshots")
