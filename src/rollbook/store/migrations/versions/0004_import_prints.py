"""The import print: what a re-import needs to know that a row would change nothing.

``contacts.import_print`` holds a hash of the cells of the import row that last left the contact
as it is (see importing/prints.py). Triggers empty it whenever anything else changes the contact
or its bases, so that a print always vouches for the contact as the store holds it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# SQLite: an AFTER trigger empties the print (recursive triggers are off, so its own UPDATE does
# not fire it again). An UPDATE that writes a new print keeps it.
_SQLITE = [
    """CREATE TRIGGER contacts_print_stale AFTER UPDATE ON contacts
    FOR EACH ROW WHEN OLD.import_print IS NOT NULL AND NEW.import_print IS OLD.import_print
    BEGIN UPDATE contacts SET import_print = NULL WHERE id = OLD.id; END""",
    *(
        f"""CREATE TRIGGER field_bases_print_stale_{when.lower()} AFTER {when} ON field_bases
    FOR EACH ROW BEGIN
    UPDATE contacts SET import_print = NULL
    WHERE id = {row}.contact_id AND import_print IS NOT NULL; END"""
        for when, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ),
]
_SQLITE_DROP = [
    "DROP TRIGGER contacts_print_stale",
    "DROP TRIGGER field_bases_print_stale_insert",
    "DROP TRIGGER field_bases_print_stale_update",
    "DROP TRIGGER field_bases_print_stale_delete",
]

_POSTGRES = [
    """CREATE FUNCTION contacts_print_stale() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.import_print IS NOT NULL AND NEW.import_print IS NOT DISTINCT FROM OLD.import_print
        THEN NEW.import_print := NULL;
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER contacts_print_stale BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_print_stale()""",
    """CREATE FUNCTION field_bases_print_stale() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE contacts SET import_print = NULL
        WHERE id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.contact_id ELSE NEW.contact_id END)
        AND import_print IS NOT NULL;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER field_bases_print_stale AFTER INSERT OR UPDATE OR DELETE ON field_bases
    FOR EACH ROW EXECUTE FUNCTION field_bases_print_stale()""",
]
_POSTGRES_DROP = [
    "DROP TRIGGER field_bases_print_stale ON field_bases",
    "DROP FUNCTION field_bases_print_stale()",
    "DROP TRIGGER contacts_print_stale ON contacts",
    "DROP FUNCTION contacts_print_stale()",
]


def upgrade() -> None:
    op.add_column("contacts", sa.Column("import_print", sa.BigInteger(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in _POSTGRES if postgres else _SQLITE:
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in _POSTGRES_DROP if postgres else _SQLITE_DROP:
        op.execute(sql)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("import_print")
