"""The possible-duplicate index an import keeps for the next one (store/flag_index.py): used
while it describes the account, and never once anything could have made it stale."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from tests.support.scenario import computed_index, kept_index

from rollbook.importing import flags
from rollbook.importing.flags import FlagIndex, IndexRead
from rollbook.model import BIRTH_DATE_KEY, Code
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store, bulk, flag_index
from rollbook.store.accounts import settings_for
from rollbook.store.schema import contacts, flag_index_snapshots

FIRST = """crm_id,first_name,last_name,phone,email,birth_date
A1,Ann,Lee,(212) 555-0101,ann@example.edu,2001-02-03
A2,Bob,Park,(212) 555-0102,bob@example.edu,2002-03-04
"""


def _import(store: Store, tmp_path: Path, text: str) -> dict[int, tuple[str, tuple[str, ...]]]:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    result = imports_service.import_file(
        store, "acme", path, imports_service.ImportOptions(), keep_report=True
    )
    rows = {}
    for chunk in result.report:
        for row, status, codes in chunk.select("row", "status", "codes").iter_rows():
            rows[row] = (status, tuple(codes.split(";")) if codes else ())
    return rows


@pytest.fixture
def acme(store: Store, tmp_path: Path) -> Store:
    accounts_service.create_account(store, "acme", region="US")
    accounts_service.add_field(store, "acme", BIRTH_DATE_KEY, type="date")
    accounts_service.add_field(store, "acme", "term", type="choice", options=["Fall", "Spring"])
    _import(store, tmp_path, FIRST)
    return store


def _ids(store: Store) -> dict[str, int]:
    return {c["crm_id"]: c["id"] for c in contacts_service.list_contacts(store, "acme")}


def test_an_import_keeps_the_index_the_next_one_loads(acme: Store, tmp_path: Path) -> None:
    kept = kept_index(acme, "acme")
    assert kept is not None
    assert kept.sort("id").equals(computed_index(acme, "acme"))
    with acme.read() as conn:
        read = FlagIndex.read(conn, settings_for(conn, "acme"))
    assert read.hashed is not None and read.stored is None  # nothing read from the contacts
    rows = _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email,birth_date\n"
        "B1,Eve,Ray,(212) 555-0111,ANN@example.edu,\n"  # Ann's email
        "B2,bob,PARK,(212) 555-0112,,2002-03-04\n"  # Bob's name and birth date
        "B3,Cy,Diaz,(212) 555-0113,cy@example.edu,2002-03-04\n",
    )
    assert rows[2] == ("created", (Code.POSSIBLE_DUPLICATE,))
    assert rows[3] == ("created", (Code.POSSIBLE_DUPLICATE,))
    assert rows[4] == ("created", ())
    # And it keeps the index as it leaves the account, the new contacts in it.
    kept = kept_index(acme, "acme")
    assert kept is not None and kept.height == 5
    assert kept.sort("id").equals(computed_index(acme, "acme"))


def test_loading_the_index_lets_go_of_what_was_read(acme: Store) -> None:
    """The read is handed over by futures the import keeps to its end: the index, once loaded,
    must not leave a whole account's keys in it."""
    with acme.read() as conn:
        settings = settings_for(conn, "acme")
        kept = FlagIndex.read(conn, settings)
        keys = bulk.contact_keys(conn, settings.account_id, BIRTH_DATE_KEY)
    former = pl.DataFrame({"phone": ["+12125550199"], "id": [1]})
    stored = IndexRead(None, keys, former)
    assert kept.hashed is not None
    for read in (kept, stored):
        index = FlagIndex()
        index.load(read, replay=False)
        assert index.keys.height == 2
        assert index.former.height == (1 if read is stored else 0)
        assert (read.hashed, read.stored, read.former.height) == (None, None, 0)


@pytest.mark.parametrize(
    ("field", "value", "row", "flagged"),
    [
        # Ann's email changes: a new contact with her new email is a possible duplicate, one
        # with her old email is not.
        ("email", "ann.lee@example.edu", "B1,Eve,Ray,(212) 555-0111,ann.lee@example.edu,", True),
        ("email", "ann.lee@example.edu", "B1,Eve,Ray,(212) 555-0111,ann@example.edu,", False),
        ("first_name", "Anna", "B1,anna,lee,(212) 555-0111,,2001-02-03", True),
        ("first_name", "Anna", "B1,Ann,Lee,(212) 555-0111,,2001-02-03", False),
        ("last_name", "Li", "B1,Ann,Li,(212) 555-0111,,2001-02-03", True),
        (BIRTH_DATE_KEY, "2001-02-04", "B1,Ann,Lee,(212) 555-0111,,2001-02-04", True),
        (BIRTH_DATE_KEY, "2001-02-04", "B1,Ann,Lee,(212) 555-0111,,2001-02-03", False),
    ],
)
def test_an_edit_of_a_key_drops_the_kept_index(
    acme: Store, tmp_path: Path, field: str, value: str, row: str, flagged: bool
) -> None:
    """A platform edit of an email, a name or a custom field deletes the kept index (a
    trigger): the next import reads the contacts as they are. Kept, it would miss the new key
    and flag the old one."""
    contacts_service.set_contact(acme, "acme", _ids(acme)["A1"], {field: value})
    assert kept_index(acme, "acme") is None
    rows = _import(acme, tmp_path, f"crm_id,first_name,last_name,phone,email,birth_date\n{row}\n")
    assert rows[2] == ("created", (Code.POSSIBLE_DUPLICATE,) if flagged else ())


def test_an_edit_of_other_fields_keeps_it(acme: Store) -> None:
    contacts_service.set_contact(acme, "acme", _ids(acme)["A2"], {"phone": "(212) 555-0199"})
    assert kept_index(acme, "acme") is not None


def test_a_contact_created_since_is_noticed(acme: Store, tmp_path: Path) -> None:
    """A contact created on the platform since the last import is not in the kept index: the
    account's newest id says so, and the next import reads the contacts."""
    contacts_service.create_contact(
        acme, "acme", {"first_name": "Dee", "phone": "(212) 555-0131", "email": "dee@example.edu"}
    )
    assert kept_index(acme, "acme") is None
    rows = _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email,birth_date\n"
        "B1,Eve,Ray,(212) 555-0111,dee@example.edu,\n",
    )
    assert rows[2] == ("created", (Code.POSSIBLE_DUPLICATE,))


def test_a_contact_deleted_since_is_noticed(acme: Store, tmp_path: Path) -> None:
    with acme.write() as conn:
        conn.execute(sa.delete(contacts).where(contacts.c.id == _ids(acme)["A1"]))
    assert kept_index(acme, "acme") is None
    rows = _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email,birth_date\n"
        "B1,Eve,Ray,(212) 555-0111,ann@example.edu,\n",
    )
    assert rows[2] == ("created", ())


def test_an_index_made_otherwise_is_not_used(acme: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made by another version (of rollbook, Polars, the keys) are not compared with
    this one's."""
    assert kept_index(acme, "acme") is not None
    monkeypatch.setattr(flags, "INDEX_VERSION", flags.INDEX_VERSION + 1)
    assert kept_index(acme, "acme") is None


def test_an_index_made_for_other_settings_is_not_used(store: Store, tmp_path: Path) -> None:
    """Without a birth date field there is no name-and-birth-date key; once the account has
    one, the index kept before it is not used."""
    accounts_service.create_account(store, "acme", region="US")
    _import(store, tmp_path, "crm_id,first_name,last_name,phone\nA1,Ann,Lee,(212) 555-0101\n")
    assert kept_index(store, "acme") is not None
    accounts_service.add_field(store, "acme", BIRTH_DATE_KEY, type="date")
    assert kept_index(store, "acme") is None


def test_the_index_is_kept_in_parts(
    acme: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept a bounded number of contacts a row, read back whole; with a part missing, not
    used."""
    monkeypatch.setattr(flag_index, "PART_ROWS", 2)
    _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email,birth_date\n"
        "B1,Eve,Ray,(212) 555-0111,eve@example.edu,\n"
        "B2,Flo,Roy,(212) 555-0112,flo@example.edu,\n"
        "B3,Gus,Sim,(212) 555-0113,gus@example.edu,\n",
    )
    with acme.read() as conn:
        parts = conn.execute(sa.select(flag_index_snapshots.c.part)).scalars().all()
    assert sorted(parts) == [0, 1, 2]  # 5 contacts, 2 a part
    kept = kept_index(acme, "acme")
    assert kept is not None and kept.sort("id").equals(computed_index(acme, "acme"))
    with acme.write() as conn:
        conn.execute(sa.delete(flag_index_snapshots).where(flag_index_snapshots.c.part == 1))
    assert kept_index(acme, "acme") is None
