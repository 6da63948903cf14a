"""Every code of SPEC §7, produced by the smallest file that should produce it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbook.importing import engine
from rollbook.model import Code, Source
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store

BASE = """crm_id,first_name,last_name,phone,email
A1,Ann,Lee,(212) 555-0101,ann@example.edu
A2,Bob,Park,(212) 555-0102,bob@example.edu
"""


@pytest.fixture
def acme(store: Store, tmp_path: Path) -> Store:
    accounts_service.create_account(store, "acme", region="US")
    accounts_service.add_field(store, "acme", "birth_date", type="date")
    accounts_service.add_field(store, "acme", "term", type="choice", options=["Fall", "Spring"])
    _import(store, tmp_path, BASE)
    return store


def _import(store: Store, tmp_path: Path, text: str, **options: object) -> dict[int, tuple]:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    result = imports_service.import_file(
        store, "acme", path, imports_service.ImportOptions(**options), keep_report=True
    )
    rows = {}
    for chunk in result.report:
        for row, status, codes, message in chunk.select(
            "row", "status", "codes", "message"
        ).iter_rows():
            rows[row] = (status, tuple((codes or "").split(";")) if codes else (), message)
    return rows


def _ids(store: Store) -> dict[str, int]:
    return {c["crm_id"]: c["id"] for c in contacts_service.list_contacts(store, "acme")}


def test_unknown_id(acme: Store, tmp_path: Path) -> None:
    rows = _import(acme, tmp_path, "rollbook_id,first_name\n999,Zed\n", allow_unmapped_crm_id=True)
    assert rows[2][:2] == ("skipped", (Code.UNKNOWN_ID,))


def test_crm_id_conflict(acme: Store, tmp_path: Path) -> None:
    ann = _ids(acme)["A1"]
    rows = _import(acme, tmp_path, f"rollbook_id,crm_id\n{ann},A2\n")
    assert rows[2][:2] == ("skipped", (Code.CRM_ID_CONFLICT,))


def test_duplicate_unique_id_crm_id(acme: Store, tmp_path: Path) -> None:
    rows = _import(acme, tmp_path, "crm_id,first_name\nA1,Ann\nA1,Annie\nA2,Bob\n")
    assert rows[2][:2] == rows[3][:2] == ("skipped", (Code.DUPLICATE_UNIQUE_ID_CRM_ID,))
    assert "row 3" in rows[2][2]
    assert rows[4][0] == "unchanged"


def test_duplicate_unique_id_id(acme: Store, tmp_path: Path) -> None:
    ann = _ids(acme)["A1"]
    rows = _import(
        acme,
        tmp_path,
        f"rollbook_id,first_name\n{ann},Ann\n{ann},Annie\n",
        allow_unmapped_crm_id=True,
    )
    assert rows[2][:2] == rows[3][:2] == ("skipped", (Code.DUPLICATE_UNIQUE_ID_ID,))


def test_invalid_phone_email_and_value_together(acme: Store, tmp_path: Path) -> None:
    rows = _import(
        acme, tmp_path, "crm_id,phone,email,birth_date,term\nA1,555-12,nope,31/31/2001,Winter\n"
    )
    status, codes, message = rows[2]
    assert status == "skipped"
    assert codes == (Code.INVALID_PHONE, Code.INVALID_EMAIL, Code.INVALID_VALUE)
    assert "'phone'" in message and "'term'" in message and "'birth_date'" in message
    assert "555-12" not in message  # no cell contents in messages


def test_rows_with_cells_that_do_not_normalise_each_say_which(acme: Store, tmp_path: Path) -> None:
    """Each row's codes and message name its own columns that did not normalise, in the file's
    order of fields, whatever the other rows of its batch have; a repeated CRM ID comes first."""
    rows = _import(
        acme,
        tmp_path,
        "crm_id,phone,email,birth_date\n"
        "A1,555-12,ann@example.edu,2001-02-03\n"  # the phone
        "A2,(212) 555-0102,nope,2001-02-03\n"  # the email
        "A3,555-12,nope,31/31/2001\n"  # all three
        "A4,555-13,x@example.edu,\n"  # the phone again
        "A5,555-12,,\n"  # a repeated CRM ID and the phone
        "A5,(212) 555-0105,,\n",
    )
    phone = "Column 'phone': not a valid phone number for region US."
    email = "Column 'email': not a valid email address."
    date = "Column 'birth_date': not a date (use YYYY-MM-DD or MM/DD/YYYY)."
    assert rows[2] == ("skipped", (Code.INVALID_PHONE,), phone)
    assert rows[3] == ("skipped", (Code.INVALID_EMAIL,), email)
    assert rows[4] == (
        "skipped",
        (Code.INVALID_PHONE, Code.INVALID_EMAIL, Code.INVALID_VALUE),
        f"{phone} {email} {date}",
    )
    assert rows[5] == rows[2]
    assert rows[6][1] == (Code.DUPLICATE_UNIQUE_ID_CRM_ID, Code.INVALID_PHONE)
    assert rows[6][2].startswith("This CRM ID is also in row 7;") and rows[6][2].endswith(phone)
    assert rows[7][1] == (Code.DUPLICATE_UNIQUE_ID_CRM_ID,)


def test_ragged_row_is_invalid_value(acme: Store, tmp_path: Path) -> None:
    rows = _import(acme, tmp_path, "crm_id,first_name\nA1,Ann,extra\nA2,Bob\n")
    assert rows[2][:2] == ("skipped", (Code.INVALID_VALUE,))
    assert "cannot be read" in rows[2][2]
    assert rows[3][0] == "unchanged"


def test_blank_required_data_in_record(acme: Store, tmp_path: Path) -> None:
    rows = _import(acme, tmp_path, "crm_id,first_name,phone\nA9,Nia,\nA8,Ola,UNSET\n")
    assert rows[2][:2] == rows[3][:2] == ("skipped", (Code.BLANK_REQUIRED,))
    # An existing contact may lose its phone; required applies to new contacts only.
    rows = _import(acme, tmp_path, "crm_id,phone\nA1,UNSET\n")
    assert rows[2][0] == "updated"


def test_required_custom_field(acme: Store, tmp_path: Path) -> None:
    accounts_service.set_account(acme, "acme", required=["phone", "term"])
    rows = _import(
        acme, tmp_path, "crm_id,phone,term\nA9,(212) 555-0199,\nA8,(212) 555-0198,fall\n"
    )
    assert rows[2][:2] == ("skipped", (Code.BLANK_REQUIRED,))
    assert rows[3][0] == "created"


def test_duplicate_contact_when_the_phone_is_taken(acme: Store, tmp_path: Path) -> None:
    rows = _import(acme, tmp_path, "crm_id,phone\nA2,(212) 555-0101\n")
    assert rows[2][:2] == ("skipped", (Code.DUPLICATE_CONTACT,))


def test_duplicate_contact_when_names_disagree(acme: Store, tmp_path: Path) -> None:
    rows = _import(
        acme,
        tmp_path,
        "first_name,last_name,phone\nRose,Lee,(212) 555-0101\n",
        allow_unmapped_crm_id=True,
    )
    assert rows[2][:2] == ("skipped", (Code.DUPLICATE_CONTACT,))
    assert "whose name differs" in rows[2][2]


def test_phone_identifies_when_names_agree(acme: Store, tmp_path: Path) -> None:
    rows = _import(
        acme,
        tmp_path,
        "first_name,last_name,phone,email\n ANN , lee ,2125550101,ann.lee@example.edu\n",
        allow_unmapped_crm_id=True,
    )
    assert rows[2][0] == "updated"
    assert contacts_service.get_contact(acme, "acme", _ids(acme)["A1"])["email"] == (
        "ann.lee@example.edu"
    )


def test_contact_out_of_sync(acme: Store, tmp_path: Path) -> None:
    ann = _ids(acme)["A1"]
    contacts_service.set_contact(acme, "acme", ann, {"email": "ann.lee@example.edu"})
    rows = _import(acme, tmp_path, BASE)
    assert rows[2][:2] == ("unchanged", (Code.CONTACT_OUT_OF_SYNC,))
    assert contacts_service.get_contact(acme, "acme", ann)["email"] == "ann.lee@example.edu"


def test_possible_duplicate(acme: Store, tmp_path: Path) -> None:
    rows = _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email,birth_date\n"
        "B1,Ann,Lee,(212) 555-0111,ANN@example.edu,\n"  # same email as A1
        "B2,Cy,Diaz,(212) 555-0112,,2001-02-03\n"
        "B3,cy,DIAZ,(212) 555-0113,,02/03/2001\n"  # same name and birth date as B2
        "B4,Di,Fox,(212) 555-0114,,\n",
    )
    assert rows[2][:2] == ("created", (Code.POSSIBLE_DUPLICATE,))
    assert rows[3][:2] == ("created", ())
    assert rows[4][:2] == ("created", (Code.POSSIBLE_DUPLICATE,))
    assert rows[5][:2] == ("created", ())


def test_possible_duplicate_by_former_phone(acme: Store, tmp_path: Path) -> None:
    bob = _ids(acme)["A2"]
    contacts_service.set_contact(
        acme,
        "acme",
        bob,
        {"phone": "(212) 555-0177"},
        contacts_service.EditSource(Source.CONTACT, "student texted a new number"),
    )
    rows = _import(acme, tmp_path, "crm_id,first_name,phone\nB9,Rob,(212) 555-0102\n")
    assert rows[2][:2] == ("created", (Code.POSSIBLE_DUPLICATE,))


@pytest.mark.parametrize("how", ["at start", "through the import", "past the replay bound"])
def test_possible_duplicate_sees_what_earlier_batches_changed(
    acme: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A batch's flags are decided against the account as the batches before left it: the flag
    index, read on a connection of its own as the account was when the import began, gets
    their changes replayed; read through the import's connection (no second connection, or
    too much to replay), it has them already."""
    if how == "through the import":
        monkeypatch.setattr(engine.ReadAtStart, "possible", staticmethod(lambda conn: False))
    if how == "past the replay bound":
        monkeypatch.setattr(engine, "MAX_REPLAY", 1)
    rows = _import(
        acme,
        tmp_path,
        "crm_id,first_name,last_name,phone,email\n"
        "A1,Ann,Lee,(212) 555-0101,new@example.edu\n"  # Ann's email changes
        "A2,Bob,Park,(212) 555-0188,bob@example.edu\n"  # Bob's number goes into his history
        "B1,Eve,Ray,(212) 555-0121,new@example.edu\n"  # Ann's email now
        "B2,Flo,Roy,(212) 555-0122,ann@example.edu\n"  # nobody's email any more
        "B3,Gus,Sim,(212) 555-0102,\n",  # Bob's number before
        batch_rows=1,
    )
    assert [rows[r][:2] for r in (2, 3)] == [("updated", ()), ("updated", ())]
    assert rows[4][:2] == ("created", (Code.POSSIBLE_DUPLICATE,))
    assert rows[5][:2] == ("created", ())
    assert rows[6][:2] == ("created", (Code.POSSIBLE_DUPLICATE,))
