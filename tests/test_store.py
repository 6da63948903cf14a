"""Storage: migrations agree with the schema, ids are never reused, the database enforces the
unique phone and CRM ID itself."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from benchmarks.datagen import population, write

from rollbook.clock import now
from rollbook.importing.read import ReadLimits
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.services import jobs as jobs_service
from rollbook.services.auth import Principal, Role
from rollbook.store import Store, bulk, database, lock_account
from rollbook.store import contacts as contacts_store
from rollbook.store.database import SCHEMA_REVISION
from rollbook.store.migrate import current_revision, downgrade, head_revision, upgrade
from rollbook.store.provenance import phone_meta
from rollbook.store.schema import contacts, field_bases, metadata


def test_migrations_create_exactly_the_schema(store: Store) -> None:
    assert current_revision(store) == head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_store_knows_the_newest_migration() -> None:
    """A store opens without Alembic when its database is at ``SCHEMA_REVISION``: a new
    migration must move it, or stores would not run it."""
    assert head_revision() == SCHEMA_REVISION


def test_migrations_go_down_and_up_again(store: Store) -> None:
    downgrade(store, "base")
    with store.engine.connect() as conn:
        assert "contacts" not in sa.inspect(conn).get_table_names()
    upgrade(store)
    assert current_revision(store) == head_revision()


def test_ids_are_never_reused(store: Store) -> None:
    accounts_service.create_account(store, "acme")
    first = contacts_service.create_contact(store, "acme", {"phone": "2125550101"})
    with store.write() as conn:
        conn.execute(contacts.delete().where(contacts.c.id == first["id"]))
    second = contacts_service.create_contact(store, "acme", {"phone": "2125550101"})
    assert second["id"] > first["id"]


@pytest.mark.parametrize("column", ["phone", "crm_id"])
def test_the_database_itself_keeps_phone_and_crm_id_unique(store: Store, column: str) -> None:
    account_id = accounts_service.create_account(store, "acme")
    row = {
        "account_id": account_id,
        "custom": {},
        "created_at": now(),
        "created_source": "system",
        "updated_at": now(),
        column: "+12125550101",
    }
    with store.write() as conn:
        conn.execute(contacts.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        conn.execute(contacts.insert().values(**row))
    # Another account may have the same.
    other = accounts_service.create_account(store, "other")
    with store.write() as conn:
        conn.execute(contacts.insert().values(**{**row, "account_id": other}))


def test_an_import_print_is_emptied_by_any_other_change(store: Store) -> None:
    """The print vouches for the contact as the store holds it (migration 0004): an update that
    writes a new print keeps it; any other change to the contact or its bases empties it."""
    account_id = accounts_service.create_account(store, "acme")
    with store.write() as conn:
        cid = conn.execute(
            contacts.insert()
            .values(account_id=account_id, custom={}, phone="+12125550101", import_print=7)
            .returning(contacts.c.id)
        ).scalar_one()

    def print_after(*statements: sa.Executable) -> int | None:
        with store.write() as conn:
            for statement in statements:
                conn.execute(statement)
            return conn.execute(
                sa.select(contacts.c.import_print).where(contacts.c.id == cid)
            ).scalar_one()

    this = contacts.update().where(contacts.c.id == cid)
    assert print_after(this.values(first_name="Ana", import_print=8)) == 8
    assert print_after(this.values(import_print=9)) == 9
    assert print_after(this.values(first_name="Eva")) is None
    assert print_after(this.values(import_print=10), this.values(phone=None)) is None
    base = {"account_id": account_id, "contact_id": cid, "field": "email"}
    bases = field_bases.update().where(field_bases.c.contact_id == cid)
    assert print_after(this.values(import_print=11), field_bases.insert().values(**base)) is None
    assert print_after(this.values(import_print=12), bases.values(base="a@x.org")) is None
    assert print_after(this.values(import_print=13), field_bases.delete()) is None


def test_writing_the_print_a_contact_has_leaves_it(store: Store) -> None:
    """``bulk.set_prints`` writes only where the print differs: on PostgreSQL writing the same
    print again would be "any other change", and the trigger would empty it."""
    account_id = accounts_service.create_account(store, "acme")
    with store.write() as conn:
        ids = [
            conn.execute(
                contacts.insert()
                .values(account_id=account_id, custom={}, import_print=p)
                .returning(contacts.c.id)
            ).scalar_one()
            for p in (5, 6, None)
        ]
        bulk.set_prints(conn, pl.DataFrame({"id": ids, "print": [5, 7, 8]}))
        got = conn.execute(
            sa.select(contacts.c.import_print).where(contacts.c.id.in_(ids)).order_by(contacts.c.id)
        ).scalars()
        assert list(got) == [5, 7, 8]


@pytest.mark.parametrize(("limit", "rows"), [(None, 1234), (25, 7), (25, 6), (None, 3)])
def test_sqlite_bulk_insert_writes_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None, rows: int
) -> None:
    """Many rows a statement, a shorter last statement, and never more bound values than the
    connection allows (a limit of 25 leaves two rows of twelve columns a statement)."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 100)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    columns = [f"c{i}" for i in range(12)]
    frame = pl.DataFrame(
        {
            c: [None if (r + i) % 5 == 0 else f"{c}-{r}" for r in range(rows)]
            for i, c in enumerate(columns)
        }
    ).with_columns(pl.int_range(rows).alias("c0"))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE t ({', '.join(columns)}, k)")
        if limit:
            conn.connection.driver_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        bulk.insert_rows(
            conn, f"INSERT INTO t ({', '.join(columns)}, k)", f"({', '.join('?' * 12)}, 7)", frame
        )
        got = conn.exec_driver_sql(f"SELECT {', '.join(columns)}, k FROM t ORDER BY c0").all()
    assert [tuple(r[:12]) for r in got] == frame.rows()
    assert {r[12] for r in got} == {7}


def test_an_import_s_many_row_statements_need_no_statement_journal(store: Store) -> None:
    """On SQLite the statements that write many contacts at once say ``OR FAIL`` (no statement
    journal: ``bulk._in_statements``), and a conflict still stops the import: the error is
    raised and the transaction leaves nothing behind."""
    account_id = accounts_service.create_account(store, "acme")
    with store.write() as conn:
        conn.execute(
            contacts.insert(),
            {"account_id": account_id, "phone": "+12125550000", "custom": {}},
        )
    frame = pl.DataFrame(
        {
            "id": [101, 102, 103],
            "crm_id": ["A", "B", "C"],
            "first_name": [None, None, None],
            "last_name": [None, None, None],
            "email": [None, None, None],
            "phone": ["+12125550001", "+12125550000", "+12125550002"],  # the second is taken
            "opted_out": [False] * 3,
            "archived": [False] * 3,
            "custom": ["{}"] * 3,
            "created_row": [2, 3, 4],
        },
        schema_overrides={k: pl.String for k in ("first_name", "last_name", "email")},
    )
    statements: list[str] = []
    # bulk speaks the drivers' own language: their errors come as they are
    refused = (sqlite3.IntegrityError, psycopg.errors.IntegrityError)

    def insert() -> None:
        with store.write(bulk=True) as conn:
            if not store.is_postgres:
                conn.connection.driver_connection.set_trace_callback(statements.append)
            bulk.insert_contacts(conn, frame, account_id=account_id, import_id=1)

    with pytest.raises(refused):
        insert()
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 1
    if not store.is_postgres:
        writes = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
        assert writes and all(s.startswith("INSERT OR FAIL INTO contacts") for s in writes)


@pytest.mark.parametrize(("per_statement", "limit"), [(500, None), (3, None), (500, 23)])
def test_an_import_gives_existing_contacts_their_final_values(
    store: Store, monkeypatch: pytest.MonkeyPatch, per_statement: int, limit: int | None
) -> None:
    """``bulk.update_contacts``: every contact in the frame, and only those, ends with its
    values (NULLs, quotes, JSON), the import's time, its import print, and — where the row
    wrote the phone — the phone's provenance; contacts whose phone and CRM ID stay
    (``keys_moved`` false) keep them; on SQLite many contacts a statement, with a shorter last
    one, and never more bound values than the connection allows (23: one contact of eleven
    values a statement, after the four every statement binds)."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", per_statement)
    account_id = accounts_service.create_account(store, "acme")
    with store.write() as conn:
        conn.execute(
            contacts.insert(),
            [
                {
                    "account_id": account_id,
                    "crm_id": f"S{i}",
                    "first_name": "Old",
                    "phone": f"+1212555{i:04d}",
                    "custom": {"term": "fall"},
                    "created_source": "system",
                }
                for i in range(11)
            ],
        )
        ids = [r.id for r in conn.execute(sa.select(contacts.c.id).order_by(contacts.c.id))]
    changed = ids[:10]  # the last contact is not in the frame
    stay = {3, 6, 7}  # phone and CRM ID stay (3: written, and back to where it was)
    frame = pl.DataFrame(
        {
            "id": changed,
            "crm_id": [f"S{i}" if i in stay else f"N{i}" if i % 3 else None for i in range(10)],
            "first_name": ["O'Brien", None, *[f"F{i}" for i in range(2, 10)]],
            "last_name": [None] * 10,
            "email": [f"e{i}@x.edu" for i in range(10)],
            "phone": [f"+1{212 if i in stay else 646}555{i:04d}" for i in range(10)],
            "opted_out": [i % 2 == 0 for i in range(10)],
            "archived": [False] * 10,
            "custom": [json.dumps({"term": f"t{i}"}) for i in range(10)],
            "phone_row": [i + 2 if i < 4 else None for i in range(10)],
            # 9: not known (null), so written
            "keys_moved": [None if i == 9 else i not in stay for i in range(10)],
            "import_print": [i * 1000 - 4000 if i % 4 else None for i in range(10)],
        },
        schema_overrides={"phone_row": pl.Int64, "last_name": pl.String},
    )
    at = now()
    with store.write() as conn:
        if limit and not store.is_postgres:
            driver = conn.connection.driver_connection
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        bulk.update_contacts(conn, frame, at=at, source="import", import_id=None)
    with store.read() as conn:
        got = {r.id: r for r in conn.execute(sa.select(contacts).order_by(contacts.c.id))}
    for i, cid in enumerate(changed):
        r = got[cid]
        expect = frame.row(i, named=True)
        assert (r.crm_id, r.first_name, r.last_name, r.email, r.phone) == (
            expect["crm_id"],
            expect["first_name"],
            None,
            expect["email"],
            expect["phone"],
        )
        assert (r.opted_out, r.archived, r.custom) == (i % 2 == 0, False, {"term": f"t{i}"})
        assert r.import_print == expect["import_print"]
        assert r.updated_at is not None
        if i < 4:
            assert (r.phone_source, r.phone_row, r.phone_since) == ("import", i + 2, r.updated_at)
        else:
            assert (r.phone_source, r.phone_row) == (None, None)
    untouched = got[ids[10]]
    assert (untouched.crm_id, untouched.first_name, untouched.updated_at) == ("S10", "Old", None)


def test_sqlite_finds_contacts_by_id_through_the_primary_key(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Fetching a batch's contacts by id (lookups, phone provenance, releases, reports) must not
    walk the account's whole index: SQLite without statistics chose that for
    ``account_id = ? AND id IN (…)`` once the list held more than a few ids."""
    path = tmp_path / "plan.db"
    shutil.copyfile(sqlite_template, path)
    store = Store(f"sqlite:///{path}")
    account_id = accounts_service.create_account(store, "acme")
    settings_row = {"account_id": account_id, "custom": {}, "created_source": "system"}
    with store.write() as conn:
        conn.execute(
            contacts.insert(),
            [{**settings_row, "phone": f"+1212555{i:04d}", "crm_id": f"S{i}"} for i in range(300)],
        )
    ids = list(range(1, 201))
    statements: list[str] = []
    with store.write() as conn:
        driver = conn.connection.driver_connection
        driver.set_trace_callback(statements.append)
        bulk.contacts_where_in(conn, account_id, "id", ids)
        phone_meta(conn, account_id, ids)
        contacts_store.release_unique_values(conn, account_id, ids, "phone")
        driver.set_trace_callback(None)
        # (The trace repeats a statement for each row a trigger of migration 0004 runs for.)
        touching = list(dict.fromkeys(s for s in statements if "contacts" in s and "IN (" in s))
        assert len(touching) == 3
        for sql in touching:
            plan = " ".join(str(r[-1]) for r in driver.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "SEARCH contacts USING INTEGER PRIMARY KEY" in plan, (sql, plan)
            assert "sqlite_autoindex_contacts" not in plan, (sql, plan)
    store.dispose()


def test_sqlite_reads_a_whole_account_in_table_order_when_it_is_most_of_the_table(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The possible-duplicate index reads a whole account: through the account's index when
    the account is a small part of the table, in the table's order, a range of ids at a time,
    when it is most of it."""
    monkeypatch.setattr(bulk, "PACKED_IDS", 7)
    path = tmp_path / "plan.db"
    shutil.copyfile(sqlite_template, path)
    store = Store(f"sqlite:///{path}")
    big = accounts_service.create_account(store, "big")
    small = accounts_service.create_account(store, "small")
    shared = {"custom": {}, "created_source": "system"}
    with store.write() as conn:
        conn.execute(
            contacts.insert(),
            [{**shared, "account_id": big, "crm_id": f"B{i}"} for i in range(30)]
            + [{**shared, "account_id": small, "crm_id": f"S{i}"} for i in range(10)],
        )

    def plans_of(account_id: int) -> tuple[list[str], list[str]]:
        statements: list[str] = []
        with store.read() as conn:
            driver = conn.connection.driver_connection
            driver.set_trace_callback(statements.append)
            keys = bulk.contact_keys(conn, account_id, None)
            driver.set_trace_callback(None)
            plans = [
                " ".join(str(r[-1]) for r in driver.execute(f"EXPLAIN QUERY PLAN {sql}"))
                for sql in statements
                if "group_concat" in sql
            ]
        return plans, keys["id"].to_list()

    plans, ids = plans_of(big)
    assert len(plans) == 5 and len(ids) == len(set(ids)) == 30  # ids 1–30, 7 at a time
    assert all("USING INTEGER PRIMARY KEY" in p and "autoindex" not in p for p in plans), plans
    plans, ids = plans_of(small)
    assert len(plans) == 1 and len(set(ids)) == 10
    assert "SEARCH contacts USING INDEX" in plans[0], plans
    store.dispose()


def test_contacts_come_back_exactly_as_stored(store: Store) -> None:
    """The import's lookups (bulk.contacts_where_in) return every column as stored: NULLs,
    flags, JSON, ids — also when a value holds the characters the SQLite path packs rows with
    (it then reads them the ordinary way)."""
    account_id = accounts_service.create_account(store, "acme")
    other = accounts_service.create_account(store, "other")
    rows = [
        {"crm_id": "S1", "first_name": "Ann", "email": None, "phone": "+12125550101"},
        {"crm_id": "S2", "first_name": None, "email": "b@x.edu", "phone": None, "opted_out": True},
        {"crm_id": "S3", "first_name": "", "last_name": "=1+2", "archived": True},
    ]
    base = {
        "account_id": account_id,
        "custom": {"term": "Fall"},
        "created_source": "system",
        **dict.fromkeys(["first_name", "last_name", "email", "phone"]),
        "opted_out": False,
        "archived": False,
    }
    with store.write() as conn:
        conn.execute(contacts.insert(), [{**base, **r} for r in rows])
        conn.execute(contacts.insert(), [{**base, "account_id": other, "crm_id": "S1"}])
    expected = {
        "S1": ("Ann", None, None, "+12125550101", False, False),
        "S2": (None, None, "b@x.edu", None, True, False),
        "S3": ("", "=1+2", None, None, False, True),
    }
    columns = ["first_name", "last_name", "email", "phone", "opted_out", "archived"]

    def fetch(column: str, values: list[object]) -> dict[str, tuple[object, ...]]:
        with store.read() as conn:
            found = bulk.contacts_where_in(conn, account_id, column, values)
        assert found.schema == pl.Schema(bulk.READ_SCHEMA)
        assert all(json.loads(c) == {"term": "Fall"} for c in found["custom"])
        return {r["crm_id"]: tuple(r[c] for c in columns) for r in found.iter_rows(named=True)}

    assert fetch("crm_id", ["S1", "S2", "S3", "S9"]) == expected
    with store.read() as conn:
        ids = [
            r.id
            for r in conn.execute(
                sa.select(contacts.c.id).where(contacts.c.account_id == account_id)
            )
        ]
    assert fetch("id", ids) == expected
    assert fetch("phone", ["+12125550101"]) == {"S1": expected["S1"]}
    assert fetch("crm_id", []) == {}
    with store.write() as conn:  # separators in a value: read the ordinary way, still exact
        conn.execute(
            contacts.update().where(contacts.c.crm_id == "S1").values(first_name="A\x1fn\x1e")
        )
    assert fetch("crm_id", ["S1", "S2"])["S1"][0] == "A\x1fn\x1e"
    assert fetch("crm_id", ["S1", "S2"])["S2"] == expected["S2"]
    with store.write() as conn:  # a value that is the packed read's NULL mark: still exact
        conn.execute(contacts.update().where(contacts.c.crm_id == "S1").values(first_name="\x1d"))
    assert fetch("crm_id", ["S1", "S2"]) == {
        "S1": ("\x1d", *expected["S1"][1:]),
        "S2": expected["S2"],
    }


@pytest.mark.parametrize("odd_name", [None, "\x1d", "a\x1eb"])
def test_the_duplicate_keys_of_a_whole_account_are_read_exactly(
    store: Store, monkeypatch: pytest.MonkeyPatch, odd_name: str | None
) -> None:
    """The possible-duplicate index reads every contact of the account (and no other's); the
    birth date comes out of the custom fields. On SQLite the columns come back packed; a value
    the packing cannot carry (the NULL mark, the record separator) sends the read the ordinary
    way, a bounded number of rows at a time — with the same result."""
    monkeypatch.setattr(bulk, "FETCH_ROWS", 2)
    account_id = accounts_service.create_account(store, "acme")
    other = accounts_service.create_account(store, "other")
    blank = dict.fromkeys(["crm_id", "first_name", "last_name", "email", "phone"])
    with store.write() as conn:
        conn.execute(
            contacts.insert(),
            [
                {
                    **blank,
                    "account_id": account_id,
                    "first_name": f"N{i}",
                    "email": f"e{i}@x.edu" if i % 2 else None,
                    "custom": {"birth_date": f"2001-01-0{i}"} if i < 4 else {},
                    "created_source": "system",
                }
                for i in range(1, 6)
            ]
            + [{**blank, "account_id": other, "custom": {}, "created_source": "system"}],
        )
    if odd_name is not None:
        with store.write() as conn:
            conn.execute(
                contacts.update().where(contacts.c.first_name == "N4").values(last_name=odd_name)
            )
    with store.read() as conn:
        keys = bulk.contact_keys(conn, account_id, "birth_date")
        none = bulk.contact_keys(conn, account_id, None)
    assert keys.schema == pl.Schema(bulk.KEYS_SCHEMA)
    assert keys.filter(pl.col("first_name") == "N4")["last_name"].to_list() == [odd_name]
    assert keys["last_name"].null_count() == (5 if odd_name is None else 4)
    assert sorted(keys.select("first_name", "email", "born").rows()) == [
        ("N1", "e1@x.edu", "2001-01-01"),
        ("N2", None, "2001-01-02"),
        ("N3", "e3@x.edu", "2001-01-03"),
        ("N4", None, None),
        ("N5", "e5@x.edu", None),
    ]
    assert none["born"].null_count() == 5 and none.height == 5


def test_an_account_locked_by_a_writer_still_takes_uploads(postgres: Store) -> None:
    """An import holds its account's lock to the end; other writers of the account wait, but an
    upload (a row that only refers to the account) goes in meanwhile. (PostgreSQL's row lock:
    SQLite has one write lock for the whole database.)"""
    account_id = accounts_service.create_account(postgres, "acme", region="US")
    principal = Principal(account_id, "acme", Role.STAFF, "staff@example.edu")
    done: dict[str, bool] = {}

    def upload() -> None:
        jobs_service.save_upload(postgres, principal, "f.csv", b"Student ID\nS1\n", ReadLimits())
        done["upload"] = True

    def writer() -> None:
        with postgres.write() as other:
            lock_account(other, account_id)
            done["writer"] = True

    with postgres.write() as conn:
        lock_account(conn, account_id)
        threads = [threading.Thread(target=upload), threading.Thread(target=writer)]
        for t in threads:
            t.start()
        threads[0].join(timeout=30)
        threads[1].join(timeout=1)
        while_locked = dict(done)
    for t in threads:
        t.join(timeout=30)
    assert while_locked == {"upload": True}
    assert done == {"upload": True, "writer": True}


def test_a_bulk_transaction_on_sqlite_has_its_own_settings_and_gives_them_back(
    tmp_path: Path,
) -> None:
    """An import's transaction (``write(bulk=True)``, ``preview(bulk=True)``) runs without
    foreign-key checks, and with a larger page cache once it writes contacts (``grow_cache``;
    nothing elsewhere); the pooled connection gets SQLite's usual settings back afterwards —
    after a rollback and after an error too — so that every other write still has its foreign
    keys checked."""
    from rollbook.store.database import BULK_CACHE_KIB, grow_cache

    store = Store(f"sqlite:///{tmp_path / 'bulk.db'}")
    store.engine.pool.dispose()

    drivers: set[int] = set()  # one pooled connection throughout

    def settings(conn: sa.Connection) -> tuple[int, int]:
        drivers.add(id(conn.connection.driver_connection))
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        return int(cache or 0), int(keys or 0)

    usual = (-2000, 1)
    with store.write() as conn:
        assert settings(conn) == usual
    with store.write(bulk=True) as conn:
        assert settings(conn) == (-2000, 0)
        grow_cache(conn)
        assert settings(conn) == (-BULK_CACHE_KIB, 0)
    with store.write() as conn:
        assert settings(conn) == usual
        grow_cache(conn)  # not a bulk transaction: nothing
        assert settings(conn) == usual
    with store.preview(bulk=True) as conn:
        grow_cache(conn)
        assert settings(conn) == (-BULK_CACHE_KIB, 0)
    with store.write() as conn:
        assert settings(conn) == usual

    def fails() -> None:
        with store.write(bulk=True) as conn:
            grow_cache(conn)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fails()
    with store.write() as conn:
        assert settings(conn) == usual
        # and the foreign keys are really checked again
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                contacts.insert(), {"account_id": 999, "custom": {}, "created_source": "system"}
            )
    assert len(drivers) == 1
    store.dispose()


@pytest.mark.parametrize("outcome", ["committed", "preview", "failed"])
def test_sqlite_cuts_the_wal_an_import_grew_back_while_connections_stay_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """An import is one transaction: all it writes goes into SQLite's ``-wal`` file before the
    commit copies it into the database. A server keeps its connections open, and SQLite kept
    the file at its largest for as long as they were (a fresh million: ~340 MB beside the
    database). At the next write it is cut back to ``WAL_SIZE_LIMIT`` (here made 1 MiB,
    against the import's ~12 MB) — after a preview or a failed import too, whose pages SQLite
    left in the file past the last commit (they were cut only ~1,000 pages of writes later)."""
    limit = 1024 * 1024
    monkeypatch.setattr(database, "WAL_SIZE_LIMIT", limit)
    # A million rows' pages overflow the import's page cache into the WAL; here 50,000 must.
    monkeypatch.setattr(database, "BULK_CACHE_KIB", 1024)
    db = tmp_path / "wal.db"
    store = Store(f"sqlite:///{db}")
    wal = Path(f"{db}-wal")
    accounts_service.create_account(store, "north")
    path = write(tmp_path / "students.csv", population(50_000))
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", "Email": "email"}
    options = imports_service.ImportOptions(explicit=mapping)
    if outcome == "failed":  # after the engine wrote every row, before the commit

        def fail(*_: object) -> None:
            raise RuntimeError("the import failed")

        monkeypatch.setattr(imports_service.q_accounts, "remember_mapping", fail)
        with pytest.raises(RuntimeError, match="the import failed"):
            imports_service.import_file(store, "north", path, options)
    else:
        imports_service.import_file(store, "north", path, options, dry_run=outcome == "preview")
    assert wal.stat().st_size > 8 * limit
    accounts_service.create_account(store, "south")  # the next write, on a pooled connection
    assert wal.exists()  # the connection is still open: the file stays, cut back
    assert wal.stat().st_size <= limit
    expected = 50_000 - 1_500 if outcome == "committed" else 0
    assert contacts_service.count_contacts(store, "north") >= expected
    if outcome != "committed":
        assert contacts_service.count_contacts(store, "north") == 0
    store.dispose()


@pytest.mark.usefixtures("postgres")  # skipped where PostgreSQL is left out of the run
def test_on_postgresql_crm_ids_and_phones_compare_byte_by_byte_whatever_the_locale(
    postgres_url: str,
) -> None:
    """In a database collated by a language's rules (ICU's en-US, as a server's locale usually
    is), the keys contacts are matched by are still collated "C": their unique indexes compare
    bytes, not the locale's rules, which cost ~3 s a million contacts (migration 0006)."""
    server = sa.make_url(postgres_url)
    name = f"rollbook_en_us_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(
                f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C' "
                "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            )
        except psycopg.errors.FeatureNotSupported as error:  # a server built without ICU
            pytest.skip(f"this PostgreSQL cannot make a language-collated database: {error}")
    store: Store | None = None
    try:
        store = Store(server.set(database=name).render_as_string(hide_password=False))
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 'a' < 'B'")).scalar(), "not a language's order"
            collations = dict(
                conn.execute(
                    sa.text(
                        "SELECT table_name || '.' || column_name, collation_name "
                        "FROM information_schema.columns WHERE column_name IN ('crm_id', 'phone')"
                    )
                ).all()
            )
        keys = ["contacts.crm_id", "contacts.phone", "phone_history.phone", "crm_id_aliases.crm_id"]
        assert {k: collations[k] for k in keys} == dict.fromkeys(keys, "C")
        account_id = accounts_service.create_account(store, "acme")
        for i, crm_id in enumerate(("b", "B", "a")):
            contacts_service.create_contact(
                store, "acme", {"crm_id": crm_id, "phone": f"212555010{i}"}
            )
        with store.read() as conn:
            ordered = conn.execute(
                sa.select(contacts.c.crm_id)
                .where(contacts.c.account_id == account_id)
                .order_by(contacts.c.crm_id)
            ).scalars()
            assert list(ordered) == ["B", "a", "b"]  # bytes: upper case first
    finally:
        if store is not None:
            store.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name}")
