"""The stories of the help-center article rollbook was first described in (shared/seeds/),
as tests. Each drives the ``rollbook`` command the way a registrar's office would."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.support.cli import Rollbook, write_csv

STUDENTS = """Student ID,First Name,Last Name,Mobile Phone,Email
S001,Maria,Lopez,(212) 555-0101,maria@example.edu
S002,Wei,Chen,212.555.0102,wei@example.edu
"""


def _setup(rb: Rollbook, tmp_path: Path) -> None:
    rb("accounts", "create", "north", "--region", "US")
    rb(
        "import",
        write_csv(tmp_path / "fall.csv", STUDENTS),
        "-a",
        "north",
        "--map",
        "Student ID=crm_id",
        "--map",
        "Mobile Phone=phone",
    )


def _contacts(rb: Rollbook) -> dict[str, dict]:
    return {c["crm_id"]: c for c in rb("contacts", "list", "-a", "north", "--json").json()}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_parent_number_corrected_on_platform_survives_stale_reimport(
    rb: Rollbook, tmp_path: Path
) -> None:
    """A parent's number was on file; the parent sent the student's own number, staff corrected
    it on the platform. The next upload from the stale student system must not put the old
    number back — but its other changes still apply, and the changed-numbers report tells the
    student system the truth."""
    _setup(rb, tmp_path)
    maria = _contacts(rb)["S001"]
    rb(
        "contacts",
        "set",
        "-a",
        "north",
        maria["id"],
        "phone=(917) 555-0199",
        "--source",
        "contact",
        "--reason",
        "parent sent the student's number",
    )

    stale = STUDENTS.replace("maria@example.edu", "maria.lopez@example.edu")
    report, changed = tmp_path / "rows.csv", tmp_path / "changed.csv"
    run = rb(
        "import",
        write_csv(tmp_path / "spring.csv", stale),
        "-a",
        "north",
        "--json",
        "--report",
        report,
        "--changed",
        changed,
    )
    summary = run.json()
    assert summary["codes"] == {"contact-out-of-sync": 1}
    assert summary["counts"]["updated"] == 1  # Maria's email
    assert summary["counts"]["unchanged"] == 1  # Wei

    maria = _contacts(rb)["S001"]
    assert maria["phone"] == "+19175550199"  # kept
    assert maria["email"] == "maria.lopez@example.edu"  # updated

    row = next(r for r in _rows(report) if r["row"] == "2")
    assert row["status"] == "updated"
    assert row["codes"] == "contact-out-of-sync"
    assert "Kept the platform's phone" in row["message"]

    (entry,) = _rows(changed)
    assert entry["row"] == "2"
    assert entry["crm_id"] == "S001"
    assert entry["file_phone"] == "'+12125550101"  # formula-safe: a leading + is defused
    assert entry["current_phone"] == "'+19175550199"
    assert entry["change_source"] == "contact"
    assert entry["change_reason"] == "parent sent the student's number"

    history = rb("contacts", "show", "-a", "north", maria["id"], "--json").json()["phone_history"]
    assert [h["phone"] for h in history] == ["+12125550101"]


def test_renamed_id_column_is_refused_naming_the_old_column(rb: Rollbook, tmp_path: Path) -> None:
    """The student system renamed 'Student ID' to 'StudentID'. Imported as is, every row would
    create a second profile. rollbook refuses the file, names the column, and creates nothing."""
    _setup(rb, tmp_path)
    renamed = STUDENTS.replace("Student ID", "StudentID").replace("wei@", "wei.chen@")
    run = rb("import", write_csv(tmp_path / "spring.csv", renamed), "-a", "north", ok=False)
    assert run.exit_code == 1
    assert "'StudentID'" in run.stderr
    assert "'Student ID'" in run.stderr
    assert "--allow-unmapped-crm-id" in run.stderr
    assert len(_contacts(rb)) == 2
    assert len(rb("imports", "list", "-a", "north", "--json").json()) == 1

    # Mapped as the refusal suggests, the file updates the same profiles.
    summary = rb(
        "import", tmp_path / "spring.csv", "-a", "north", "--map", "StudentID=crm_id", "--json"
    ).json()
    assert summary["counts"] == {"created": 0, "updated": 1, "unchanged": 1, "skipped": 0}
    contacts = _contacts(rb)
    assert sorted(contacts) == ["S001", "S002"]
    assert contacts["S002"]["email"] == "wei.chen@example.edu"


def test_unset_in_a_file_clears_the_field(rb: Rollbook, tmp_path: Path) -> None:
    """The seed's bulk clean-up: a sheet with UNSET in the column to clear."""
    _setup(rb, tmp_path)
    cleanup = "Student ID,Email,Mobile Phone\nS001,UNSET,\nS002,,UNSET\n"
    summary = rb(
        "import", write_csv(tmp_path / "cleanup.csv", cleanup), "-a", "north", "--json"
    ).json()
    assert summary["counts"]["updated"] == 2
    contacts = _contacts(rb)
    assert contacts["S001"]["email"] is None
    assert contacts["S001"]["phone"] == "+12125550101"  # an empty cell changes nothing
    assert contacts["S002"]["phone"] is None
    assert contacts["S002"]["email"] == "wei@example.edu"


def test_unset_in_an_edit_clears_the_field(rb: Rollbook, tmp_path: Path) -> None:
    """The seed's one-by-one clean-up: type UNSET in the field and save."""
    _setup(rb, tmp_path)
    wei = _contacts(rb)["S002"]
    rb("contacts", "set", "-a", "north", wei["id"], "email=UNSET")
    assert _contacts(rb)["S002"]["email"] is None


def test_row_whose_phone_belongs_to_another_contact_is_skipped_whole(
    rb: Rollbook, tmp_path: Path
) -> None:
    """duplicate-contact: another contact already has this phone; the entire record is skipped,
    so nothing of it is applied — not even its other fields."""
    _setup(rb, tmp_path)
    clash = (
        "Student ID,First Name,Last Name,Mobile Phone,Email\n"
        "S002,Wei,Chen,(212) 555-0101,wei.chen@example.edu\n"  # Maria's number
        "S004,Ana,Ruiz,(212) 555-0101,ana@example.edu\n"  # a new student with Maria's number
    )
    report = tmp_path / "rows.csv"
    summary = rb(
        "import",
        write_csv(tmp_path / "clash.csv", clash),
        "-a",
        "north",
        "--json",
        "--report",
        report,
    ).json()
    assert summary["counts"]["skipped"] == 2
    assert summary["codes"] == {"duplicate-contact": 2}
    contacts = _contacts(rb)
    assert contacts["S002"]["email"] == "wei@example.edu"  # not applied
    assert contacts["S002"]["phone"] == "+12125550102"
    assert "S004" not in contacts
    messages = [r["message"] for r in _rows(report)]
    assert all(f"contact {contacts['S001']['id']}" in m for m in messages)
