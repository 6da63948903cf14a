"""The tables, as SQLAlchemy Core metadata. Alembic migrations (``migrations/versions``) create
them; a test checks that the migrated database and this metadata agree.

A few choices that shape everything else (docs/design.md tells the story):

* ``contacts`` holds the built-in fields as columns and the custom fields as one JSON object of
  canonical strings. The current phone's history entry lives on the contact row (``phone_since``,
  ``phone_source`` …); ``phone_history`` holds the numbers a contact *had*. A created contact's
  creation event lives on the row too (``created_*``). So a fresh import writes one row per
  contact — and a narrow one: what it shares with the import (time, source, actor) it leaves to
  the import record.
* ``field_bases`` is sparse: a row exists only where the platform has changed a field since the
  last import (the *base* of the three-way merge), or where the value was never sent by an import.
* ``import_rows`` keeps the row report of an import as compressed Arrow chunks; ``label_ranges``
  keeps which contacts carry a label as runs of consecutive contact ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

#: JSON stored as text on SQLite and as jsonb on PostgreSQL.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: Timestamps are always UTC.
Timestamp = sa.DateTime(timezone=True)
#: Ids of things counted in millions (contacts, events): 64-bit. On SQLite every INTEGER PRIMARY
#: KEY is 64-bit already, and must be spelled INTEGER to be the rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The keys contacts are matched by (CRM IDs, E.164 phones) are compared for equality only, byte
#: by byte, as the rules compare them (importing/keys.py). On PostgreSQL they are collated "C"
#: whatever the database's locale: under a language's collation (``en_US.UTF-8``, the usual
#: default), every comparison in their unique indexes goes through the locale's rules, and a
#: million contacts took ~3 s longer to store (docs/benchmarks.md). SQLite compares bytes anyway.
CrmId = sa.String(1000).with_variant(sa.String(1000, collation="C"), "postgresql")
Phone = sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")


def _account_fk() -> sa.Column[int]:
    return sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )


def _contact_fk(nullable: bool = False) -> sa.Column[int]:
    return sa.Column(
        "contact_id",
        BigId,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=nullable,
    )


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(2), nullable=False),
    sa.Column("required_fields", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

field_defs = sa.Table(
    "field_defs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("options", JSONType, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("account_id", "key"),
)

#: The remembered mapping: the latest field each header was mapped to in an import that ran.
mappings = sa.Table(
    "mappings",
    metadata,
    _account_fk(),
    sa.Column("header_key", sa.String(300), nullable=False),
    sa.Column("header", sa.String(300), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("import_id", sa.Integer, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "header_key"),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    _account_fk(),
    sa.Column("crm_id", CrmId),
    sa.Column("first_name", sa.String(1000)),
    sa.Column("last_name", sa.String(1000)),
    sa.Column("email", sa.String(1000)),
    sa.Column("phone", Phone),
    sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("custom", JSONType, nullable=False),
    # The creation event. A contact an import created names the import and row; its time, source
    # and actor are the import's (these three columns stay empty, see store/provenance.py).
    sa.Column("created_at", Timestamp),
    sa.Column("created_source", sa.String(16)),
    sa.Column("created_by", sa.String(200)),
    sa.Column("created_import_id", sa.Integer),
    sa.Column("created_row", sa.Integer),
    # Empty until the contact changes after its creation.
    sa.Column("updated_at", Timestamp),
    # The current phone's history entry — since when, from where, why — once the phone has
    # changed after the contact's creation; empty means "the phone it was created with".
    sa.Column("phone_since", Timestamp),
    sa.Column("phone_source", sa.String(16)),
    sa.Column("phone_reason", sa.String(500)),
    sa.Column("phone_import_id", sa.Integer),
    sa.Column("phone_row", sa.Integer),
    # A hash of the import row that last left the contact as it is, emptied by triggers when
    # anything else changes it (importing/prints.py, migration 0004).
    sa.Column("import_print", sa.BigInteger),
    sa.UniqueConstraint("account_id", "phone"),
    sa.UniqueConstraint("account_id", "crm_id"),
    sqlite_autoincrement=True,  # ids are never reused, on SQLite as on PostgreSQL
)


def contacts_with_ids(account_id: int, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """The account's contacts among ``ids`` — found by their primary key, then checked for
    their account. Written plainly (``account_id = ? AND id IN (…)``), SQLite without statistics
    walks the account's whole unique phone index (every contact) to find a few hundred ids; the
    ``+ 0`` keeps it from choosing an index for the account check."""
    return sa.and_(contacts.c.id.in_(ids), (contacts.c.account_id + 0) == account_id)


#: The base of the three-way merge, per contact and field. ``base`` NULL means "the current value
#: was set on the platform and no import ever sent this field": there is nothing to protect.
field_bases = sa.Table(
    "field_bases",
    metadata,
    _account_fk(),
    _contact_fk(),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("base", sa.String(1000)),
    sa.PrimaryKeyConstraint("contact_id", "field"),
)

#: The numbers a contact had before its current one.
phone_history = sa.Table(
    "phone_history",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    _account_fk(),
    _contact_fk(),
    sa.Column("phone", Phone, nullable=False),
    sa.Column("valid_from", Timestamp),
    sa.Column("valid_to", Timestamp, nullable=False),
    sa.Column("source", sa.String(16)),
    sa.Column("reason", sa.String(500)),
    sa.Column("import_id", sa.Integer),
    sa.Column("row", sa.Integer),
    sa.Index(None, "account_id", "phone"),
    sa.Index(None, "contact_id"),
)

#: The account's possible-duplicate index as the last import left it (importing/flags.py): every
#: contact's email and name-and-birth-date key hashes, as Arrow IPC files of ``PART_ROWS``
#: contacts each (``part`` 0, 1, …), so that neither writing nor reading them holds a whole
#: account's at once. It holds while the account's contacts are those it was written for: as
#: many (``contacts``), none newer (``max_id``; ids are never reused) and none of their keys
#: changed — a trigger deletes the rows when an update changes a contact's email, names or
#: custom fields (migration 0005). ``stamp`` names what the hashes depend on (the versions, the
#: seeds, whether the account has a birth date).
flag_index_snapshots = sa.Table(
    "flag_index_snapshots",
    metadata,
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("stamp", sa.String(64), nullable=False),
    sa.Column("contacts", sa.BigInteger, nullable=False),
    sa.Column("max_id", sa.BigInteger),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)

#: CRM IDs of contacts merged into another; imports match them to the survivor.
crm_id_aliases = sa.Table(
    "crm_id_aliases",
    metadata,
    _account_fk(),
    sa.Column("crm_id", CrmId, nullable=False),
    _contact_fk(),
    sa.PrimaryKeyConstraint("account_id", "crm_id"),
)

#: Ids of contacts merged into another; they resolve to the survivor.
contact_redirects = sa.Table(
    "contact_redirects",
    metadata,
    _account_fk(),
    sa.Column("old_id", BigId, primary_key=True, autoincrement=False),
    _contact_fk(),
)

#: Every change to a contact that is not its creation: who/what, when, which fields, old and new.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    _account_fk(),
    _contact_fk(),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("import_id", sa.Integer),
    sa.Column("row", sa.Integer),
    sa.Column("reason", sa.String(500)),
    sa.Column("changes", JSONType, nullable=False),  # {field: [old, new]}
    sa.Index(None, "contact_id", "id"),
    sa.Index(None, "import_id"),
)

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("filename", sa.String(500), nullable=False),
    sa.Column("format", JSONType, nullable=False),
    sa.Column("mapping", JSONType, nullable=False),  # [[header, field], …] in column order
    sa.Column("status", sa.String(16), nullable=False),  # done | undone
    sa.Column("actor", sa.String(200)),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("blank_rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("counts", JSONType, nullable=False),
    sa.Column("codes", JSONType, nullable=False),
    sa.Column("undone_at", Timestamp),
)

#: The row report of an import: Arrow IPC (zstd) chunks of
#: (row, status, codes, contact_id, message).
import_rows = sa.Table(
    "import_rows",
    metadata,
    sa.Column(
        "import_id", sa.Integer, sa.ForeignKey("imports.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("first_row", sa.Integer, nullable=False),
    sa.Column("last_row", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("import_id", "seq"),
)

#: The changed-numbers report of an import: every row that identified a contact whose phone after
#: the import differs from the file's, as it stood when the import finished.
changed_numbers = sa.Table(
    "changed_numbers",
    metadata,
    sa.Column(
        "import_id", sa.Integer, sa.ForeignKey("imports.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("row", sa.Integer, nullable=False),
    _contact_fk(),
    sa.Column("crm_id", sa.String(1000)),
    sa.Column("first_name", sa.String(1000)),
    sa.Column("last_name", sa.String(1000)),
    sa.Column("file_phone", sa.String(32), nullable=False),
    sa.Column("current_phone", sa.String(32)),
    sa.Column("phone_since", Timestamp),
    sa.Column("phone_source", sa.String(16)),
    sa.Column("phone_reason", sa.String(500)),
    sa.PrimaryKeyConstraint("import_id", "row"),
    sa.Index(None, "contact_id"),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id", ondelete="CASCADE")),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("account_id", "name"),
)

#: Which contacts carry a label: runs of consecutive contact ids [first_id, last_id].
label_ranges = sa.Table(
    "label_ranges",
    metadata,
    sa.Column(
        "label_id", sa.Integer, sa.ForeignKey("labels.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("first_id", BigId, nullable=False),
    sa.Column("last_id", BigId, nullable=False),
    sa.PrimaryKeyConstraint("label_id", "first_id"),
)

# --- the service: people, tokens, uploads, background jobs -----------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
)

#: Who may do what in an account: admin, staff, read-only.
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _account_fk(),
    sa.Column("role", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("user_id", "account_id"),
)

#: API tokens: shown once, stored as a SHA-256 of their secret, found by their public prefix.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("last_used_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
)

#: Files uploaded for an import, kept in the database so that any worker can read them.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("filename", sa.String(500), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200)),
)

#: Background work: a preview or an import of an upload. The import itself is one
#: transaction; the job only records that it was asked for, how far it got, and how it ended.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _account_fk(),
    sa.Column("kind", sa.String(16), nullable=False),  # preview | import
    sa.Column(
        "upload_id", sa.Integer, sa.ForeignKey("uploads.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("options", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued | running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", JSONType),
    sa.Column("error", JSONType),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id", ondelete="SET NULL")),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("started_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("heartbeat_at", Timestamp),
    sa.Column("runner", sa.String(100)),
    sa.Column("progress_done", sa.Integer),
    sa.Column("progress_total", sa.Integer),
    sa.Index(None, "status"),
)

#: Dashboard sign-ins: the cookie holds a random token, the table its SHA-256, the account the
#: user is working in, and the session's CSRF token.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL")),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)
