"""Editing contacts on the platform (SPEC §4) and how edits meet later imports (§3.3 step 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbook.errors import Conflict, InvalidInput, NotFound
from rollbook.model import Source
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store

FILE = "crm_id,first_name,last_name,phone,email\nA1,Ann,Lee,(212) 555-0101,ann@example.edu\n"
CONTACT = contacts_service.EditSource(Source.CONTACT, "student texted a new number", "desk")


@pytest.fixture
def acme(store: Store) -> Store:
    accounts_service.create_account(store, "acme", region="US")
    accounts_service.add_field(store, "acme", "gpa", type="number")
    return store


def _import(store: Store, tmp_path: Path, text: str) -> dict[str, int]:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    result = imports_service.import_file(store, "acme", path)
    return result.counts.as_json()["counts"] | result.counts.as_json()["codes"]


def _ann(store: Store) -> dict:
    (ann,) = [c for c in contacts_service.list_contacts(store, "acme") if c["crm_id"] == "A1"]
    return contacts_service.get_contact(store, "acme", ann["id"])


def test_phone_change_records_source_reason_and_history(acme: Store, tmp_path: Path) -> None:
    _import(acme, tmp_path, FILE)
    ann = _ann(acme)
    contacts_service.set_contact(acme, "acme", ann["id"], {"phone": "917.555.0199"}, CONTACT)
    ann = _ann(acme)
    assert ann["phone"] == "+19175550199"
    assert (ann["phone_source"], ann["phone_reason"]) == ("contact", "student texted a new number")
    (former,) = ann["phone_history"]
    assert former["phone"] == "+12125550101"
    assert former["source"] == "import"
    assert former["import_id"] == 1 and former["row"] == 2
    change = ann["timeline"][-1]
    assert change["source"] == "contact" and change["actor"] == "desk"
    assert change["changes"] == {"phone": ["+12125550101", "+19175550199"]}
    assert ann["timeline"][0]["what"] == "created"
    assert ann["timeline"][0]["import_id"] == 1


def test_old_number_is_free_for_others_at_once(acme: Store) -> None:
    a = contacts_service.create_contact(acme, "acme", {"first_name": "Ann", "phone": "2125550101"})
    contacts_service.set_contact(acme, "acme", a["id"], {"phone": "2125550199"})
    b = contacts_service.create_contact(acme, "acme", {"first_name": "Bo", "phone": "2125550101"})
    assert b["phone"] == "+12125550101"


def test_a_clash_names_the_other_contact(acme: Store) -> None:
    contacts_service.create_contact(
        acme, "acme", {"first_name": "Ann", "last_name": "Lee", "phone": "2125550101"}
    )
    bo = contacts_service.create_contact(acme, "acme", {"first_name": "Bo", "phone": "2125550102"})
    with pytest.raises(Conflict, match=r"belongs to contact 1$") as clash:
        contacts_service.set_contact(acme, "acme", bo["id"], {"phone": "(212) 555-0101"})
    assert clash.value.details == {"field": "phone", "other": 1}
    assert contacts_service.get_contact(acme, "acme", bo["id"])["phone"] == "+12125550102"


def test_every_invalid_value_is_reported_at_once(acme: Store) -> None:
    c = contacts_service.create_contact(acme, "acme", {"phone": "2125550101"})
    with pytest.raises(InvalidInput) as invalid:
        contacts_service.set_contact(
            acme, "acme", c["id"], {"phone": "555-12", "email": "nope", "gpa": "x", "shoe": "9"}
        )
    fields = [e["field"] for e in invalid.value.details["errors"]]
    assert fields == ["phone", "email", "gpa", "shoe"]


def test_new_contacts_need_the_required_fields(acme: Store) -> None:
    with pytest.raises(InvalidInput, match="needs phone"):
        contacts_service.create_contact(acme, "acme", {"first_name": "Ann"})


def test_an_empty_value_is_not_a_clear(acme: Store) -> None:
    c = contacts_service.create_contact(acme, "acme", {"phone": "2125550101", "email": "a@b.org"})
    with pytest.raises(InvalidInput, match="UNSET"):
        contacts_service.set_contact(acme, "acme", c["id"], {"email": "  "})


def test_unknown_contact(acme: Store) -> None:
    with pytest.raises(NotFound):
        contacts_service.set_contact(acme, "acme", 404, {"email": "a@b.org"})


def test_staff_unset_of_an_imported_value_survives_a_stale_import(
    acme: Store, tmp_path: Path
) -> None:
    _import(acme, tmp_path, FILE)
    contacts_service.set_contact(acme, "acme", _ann(acme)["id"], {"email": "UNSET"})
    assert _ann(acme)["bases"] == {"email": "ann@example.edu"}
    assert _import(acme, tmp_path, FILE)["contact-out-of-sync"] == 1
    assert _ann(acme)["email"] is None


def test_setting_a_field_back_to_its_base_drops_the_base(acme: Store, tmp_path: Path) -> None:
    _import(acme, tmp_path, FILE)
    ann = _ann(acme)["id"]
    contacts_service.set_contact(acme, "acme", ann, {"email": "ann.lee@example.edu"})
    contacts_service.set_contact(acme, "acme", ann, {"email": "ann.l@example.edu"})
    assert _ann(acme)["bases"] == {"email": "ann@example.edu"}  # the import's value, still
    contacts_service.set_contact(acme, "acme", ann, {"email": "ann@example.edu"})
    assert _ann(acme)["bases"] == {}
    # In step again: a new value from the file is written.
    counts = _import(acme, tmp_path, FILE.replace("ann@", "a.lee@"))
    assert counts["updated"] == 1
    assert _ann(acme)["email"] == "a.lee@example.edu"


def test_a_value_no_import_wrote_has_nothing_to_protect(acme: Store, tmp_path: Path) -> None:
    """Created and changed on the platform: the first file with the field simply writes it."""
    ann = contacts_service.create_contact(
        acme, "acme", {"crm_id": "A1", "phone": "2125550101", "email": "ann@example.edu"}
    )
    contacts_service.set_contact(acme, "acme", ann["id"], {"email": "ann.lee@example.edu"})
    counts = _import(acme, tmp_path, FILE)
    assert counts["updated"] == 1 and "contact-out-of-sync" not in counts
    assert _ann(acme)["email"] == "ann@example.edu"


def test_source_system_catching_up_then_a_second_change(acme: Store, tmp_path: Path) -> None:
    """The student changes number twice. After the student system caught up with the first
    change, a file still sending that number must not revert the second."""
    _import(acme, tmp_path, FILE)
    ann = _ann(acme)["id"]
    contacts_service.set_contact(acme, "acme", ann, {"phone": "2125550177"}, CONTACT)
    caught_up = FILE.replace("(212) 555-0101", "(212) 555-0177")
    assert _import(acme, tmp_path, caught_up)["unchanged"] == 1
    assert _ann(acme)["bases"] == {}
    contacts_service.set_contact(acme, "acme", ann, {"phone": "2125550188"}, CONTACT)
    counts = _import(acme, tmp_path, caught_up)
    assert counts["contact-out-of-sync"] == 1
    assert _ann(acme)["phone"] == "+12125550188"


def test_archive_and_restore(acme: Store) -> None:
    c = contacts_service.create_contact(acme, "acme", {"phone": "2125550101"})
    contacts_service.set_contact(acme, "acme", c["id"], {"archived": "yes"})
    flt = contacts_service.ContactFilter
    assert [x["id"] for x in contacts_service.list_contacts(acme, "acme", flt(archived=True))] == [
        c["id"]
    ]
    contacts_service.set_contact(acme, "acme", c["id"], {"archived": "UNSET"})
    assert contacts_service.list_contacts(acme, "acme", flt(archived=True)) == []


def test_search_finds_a_phone_written_any_way(acme: Store) -> None:
    c = contacts_service.create_contact(
        acme, "acme", {"first_name": "Ann", "last_name": "Lee", "phone": "2125550101"}
    )
    flt = contacts_service.ContactFilter
    for text in ("(212) 555-0101", "+1 212 555 0101", "ann lee", "LEE", str(c["id"])):
        assert [
            x["id"] for x in contacts_service.list_contacts(acme, "acme", flt(search=text))
        ] == [c["id"]], text


def test_clearing_a_phone_keeps_when_who_and_why(acme: Store, tmp_path: Path) -> None:
    _import(acme, tmp_path, FILE)
    ann = _ann(acme)["id"]
    contacts_service.set_contact(
        acme,
        "acme",
        ann,
        {"phone": "UNSET"},
        contacts_service.EditSource(Source.CONTACT, "number disconnected", "desk"),
    )
    cleared = _ann(acme)
    assert cleared["phone"] is None
    assert (cleared["phone_source"], cleared["phone_reason"]) == ("contact", "number disconnected")
    assert cleared["phone_since"] is not None
    (former,) = cleared["phone_history"]
    assert former["phone"] == "+12125550101"


def test_a_birth_date_field_must_be_a_date(acme: Store) -> None:
    with pytest.raises(InvalidInput, match="must be a date"):
        accounts_service.add_field(acme, "acme", "birth_date", type="text")


def test_an_import_s_change_is_in_the_timeline_with_old_and_new_values(
    acme: Store, tmp_path: Path
) -> None:
    """The event of a row that updates a contact names the import and row, and holds exactly
    the fields the row wrote, each with its old and new value (quotes, backslashes and letters
    beyond ASCII come back as they were; a cleared value is the field's empty value)."""
    _import(acme, tmp_path, FILE.replace("A1,Ann,Lee", 'A1,Ann,O"Lee').replace(",ann@", ",ann@"))
    _import(
        acme,
        tmp_path,
        'crm_id,first_name,last_name,phone,email,gpa\nA1,Zoë,"Le\\e",(212) 555-0199,UNSET,3.5\n',
    )
    ann = _ann(acme)
    change = ann["timeline"][-1]
    assert (change["source"], change["import_id"], change["row"]) == ("import", 2, 2)
    assert change["changes"] == {
        "first_name": ["Ann", "Zoë"],
        "last_name": ['O"Lee', "Le\\e"],
        "phone": ["+12125550101", "+12125550199"],
        "email": ["ann@example.edu", None],
        "gpa": [None, "3.5"],
    }
