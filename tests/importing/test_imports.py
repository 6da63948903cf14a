"""Imports as a whole (SPEC §3.1, §3.3 end, §3.4): mapping memory, previews, re-runs, one
transaction, serialised imports, real files in real encodings, exports that round-trip."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from unittest import mock

import openpyxl
import polars as pl
import pytest
import sqlalchemy as sa
from tests.support.scenario import snapshot

from rollbook.errors import DriftGuardRefused, FileRefused, MappingRefused
from rollbook.importing import ahead, engine, read
from rollbook.importing.lookup import Memory
from rollbook.importing.read import ReadLimits
from rollbook.importing.reports import write_row_report
from rollbook.model import Source
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store, schema

FALL = """Student ID,First Name,Last Name,Mobile Phone,Email,Term
S1,Maria,Lopez,(212) 555-0101,maria@example.edu,Fall
S2,Wei,Chen,212.555.0102,wei@example.edu,Fall
S3,Zoë,Müller,+1 212 555 0103,zoe@example.edu,Spring
S4,Aisha,Okafor,2125550104,aisha@example.edu,Fall
"""
MAP = {"Student ID": "crm_id", "Mobile Phone": "phone"}


@pytest.fixture
def acme(store: Store) -> Store:
    accounts_service.create_account(store, "acme", region="US")
    accounts_service.add_field(store, "acme", "term", type="choice", options=["Fall", "Spring"])
    return store


def _file(tmp_path: Path, text: str, name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _run(store: Store, path: Path, dry_run: bool = False, **options: object):  # type: ignore[no-untyped-def]
    return imports_service.import_file(
        store,
        "acme",
        path,
        imports_service.ImportOptions(**options),
        dry_run=dry_run,
        keep_report=True,
    )


def _remembered(store: Store, path: Path) -> dict[str, str | None]:
    """The columns the account's remembered mapping maps, for this file."""
    found = imports_service.inspect_file(store, "acme", path)
    return {c.header: c.field for c in found.mapping.columns if c.how == "remembered"}


def _report_text(result: imports_service.ImportResult) -> str:
    out = io.StringIO()
    write_row_report(result.report, out)
    return out.getvalue()


def test_rerunning_the_same_file_changes_nothing(acme: Store, tmp_path: Path) -> None:
    path = _file(tmp_path, FALL)
    first = _run(acme, path, explicit=MAP)
    assert first.counts.as_json()["counts"]["created"] == 4
    before = snapshot(acme, "acme")
    second = _run(acme, path)  # mapped from memory this time
    assert second.counts.as_json()["counts"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 4,
        "skipped": 0,
    }
    assert snapshot(acme, "acme") == before


def test_preview_matches_the_real_run_and_keeps_nothing(acme: Store, tmp_path: Path) -> None:
    path = _file(tmp_path, FALL + "S5,Bad,Phone,555-12,,Fall\nS1,Twice,Over,,,\n")
    preview = _run(acme, path, dry_run=True, explicit=MAP)
    assert preview.import_id is None
    assert snapshot(acme, "acme") == {}
    assert imports_service.list_imports(acme, "acme") == []
    assert _remembered(acme, path) == {}
    real = _run(acme, path, explicit=MAP)
    assert preview.counts == real.counts
    # The same report, but for the ids new contacts got: a preview cannot know them.
    created = [
        (i, line) for i, line in enumerate(_report_text(real).splitlines()) if ",created," in line
    ]
    masked = _report_text(real).splitlines()
    for i, line in created:
        masked[i] = line.rsplit(",", 1)[0] + ","
    assert _report_text(preview).splitlines() == masked


def test_an_import_is_one_transaction(acme: Store, tmp_path: Path) -> None:
    """A crash half-way (here: after the first batch was written) leaves nothing behind."""
    path = _file(tmp_path, FALL)

    def crash(done: int, total: int) -> None:
        if done >= 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        imports_service.import_file(
            acme,
            "acme",
            path,
            imports_service.ImportOptions(explicit=MAP, batch_rows=2),
            progress=crash,
        )
    assert snapshot(acme, "acme") == {}
    assert imports_service.list_imports(acme, "acme") == []
    assert _remembered(acme, path) == {}


def test_two_imports_into_one_account_never_interleave(acme: Store, tmp_path: Path) -> None:
    """Both files create the same students. Interleaved, both would create them (or trip the
    unique indexes half-way); serialised, the second finds the first's contacts."""
    rows = "".join(f"S{i},N{i},L{i},(212) 555-{i:04d},,Fall\n" for i in range(100, 400))
    header = FALL.splitlines()[0] + "\n"
    paths = [_file(tmp_path, header + rows, f"{n}.csv") for n in ("a", "b")]
    results: list[imports_service.ImportResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(path: Path) -> None:
        try:
            start.wait()
            results.append(_run(acme, path, explicit=MAP, batch_rows=50))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = sorted(r.counts.as_json()["counts"]["created"] for r in results)
    assert counts == [0, 300]
    assert len(snapshot(acme, "acme")) == 300


def test_remembered_mapping_and_unmapped_columns(acme: Store, tmp_path: Path) -> None:
    _run(acme, _file(tmp_path, FALL), explicit={**MAP, "Term": "ignore"})
    renamed = FALL.replace("Email", "E-mail address").replace("Term", "Term")
    result = _run(acme, _file(tmp_path, renamed, "g.csv"))
    how = {c.header: (c.field, c.how) for c in result.mapping.columns}
    assert how["Student ID"] == ("crm_id", "remembered")
    assert how["Mobile Phone"] == ("phone", "remembered")
    assert how["First Name"] == ("first_name", "remembered")
    assert how["Term"] == ("ignore", "remembered")
    unmapped = {c.header: c for c in result.mapping.unmapped}
    assert list(unmapped) == ["E-mail address"]
    assert unmapped["E-mail address"].suggestions[0].field == "email"


def test_only_mapped_columns_are_carried_but_every_cell_counts_for_a_blank_row(
    acme: Store, tmp_path: Path
) -> None:
    """The engine's batches hold the mapped columns' cells only (a student system's export
    has many it ignores); a row with something in an ignored column alone is still a row, and
    is reported, not counted blank."""
    text = (
        "Student ID,Notes,Mobile Phone,Advisor\n"
        "S1,,(212) 555-0101,\n"
        ",call back,,\n"  # row 3: only an ignored cell
        ",  ,,\t\n"  # row 4: white space only, blank
        "S2,x,212.555.0102,Dr. Nick\n"
    )
    seen: list[list[str]] = []
    normalise = ahead.normalise_batch

    def spy(batch: read.Batch, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        seen.append(batch.cells.columns)
        return normalise(batch, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(ahead, "normalise_batch", spy):
        result = _run(
            acme, _file(tmp_path, text), explicit={**MAP, "Notes": "ignore", "Advisor": "ignore"}
        )
    assert seen and all(columns == ["0", "2"] for columns in seen)
    assert (result.rows, result.blank_rows) == (3, 1)
    report = pl.concat(result.report).select("row", "status", "codes").sort("row").rows()
    assert report == [
        (2, "created", None),
        (3, "skipped", "blank-required-data-in-record"),
        (5, "created", None),
    ]


def test_usual_export_headers_are_suggested_not_mapped(acme: Store, tmp_path: Path) -> None:
    text = "Student ID,Cell,Surname,E-mail\nS1,(212) 555-0142,Lopez,m@x.edu\n"
    result = _run(acme, _file(tmp_path, text), dry_run=True)
    unmapped = {c.header: c for c in result.mapping.unmapped}
    assert list(unmapped) == ["Student ID", "Cell", "Surname"]  # E-mail is Email, loosely
    best = {h: (c.suggestions[0].field, c.suggestions[0].why) for h, c in unmapped.items()}
    assert best["Student ID"] == ("crm_id", "a usual name for CRM ID")
    assert best["Cell"][0] == "phone"
    assert best["Surname"] == ("last_name", "a usual name for Last name")


def test_remembered_mapping_that_would_map_a_field_twice(acme: Store, tmp_path: Path) -> None:
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    _run(
        acme,
        _file(tmp_path, FALL.replace("Student ID", "StudentID"), "b.csv"),
        explicit={"StudentID": "crm_id"},
    )
    both = FALL.replace("Student ID,", "Student ID,StudentID,").replace("S1,", "S1,S1,")
    both = "\n".join(
        line if line.startswith(("Student", "S1,")) else line.replace(",", ",x,", 1)
        for line in both.splitlines()
    )
    with pytest.raises(MappingRefused, match="'Student ID' and 'StudentID'"):
        _run(acme, _file(tmp_path, both, "c.csv"))
    result = _run(acme, _file(tmp_path, both, "c.csv"), explicit={"StudentID": "ignore"})
    assert result.mapping.fields["crm_id"] == 0


def test_drift_guard_refuses_before_anything_is_written(acme: Store, tmp_path: Path) -> None:
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    before = snapshot(acme, "acme")
    renamed = _file(tmp_path, FALL.replace("Student ID", "SID"), "r.csv")
    with pytest.raises(DriftGuardRefused) as refused:
        _run(acme, renamed)
    assert refused.value.details["likely_column"] == "SID"
    assert snapshot(acme, "acme") == before
    assert len(imports_service.list_imports(acme, "acme")) == 1
    inspection = imports_service.inspect_file(acme, "acme", renamed)
    assert inspection.drift_warning is not None and "'SID'" in inspection.drift_warning
    # With the explicit override, the file is imported as asked: without CRM IDs, each row
    # finds its contact by phone, as the names agree.
    result = _run(acme, renamed, allow_unmapped_crm_id=True)
    assert result.counts.as_json()["counts"]["unchanged"] == 4


def _threads() -> set[threading.Thread]:
    """The threads running, but for the records Python keeps of threads it did not start (a
    thread of Polars' that ran a Python function): those are never removed."""
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def test_a_file_refused_in_the_first_pass_leaves_no_reader_running(
    acme: Store, tmp_path: Path
) -> None:
    """The first batches are read while the first pass runs; when the first pass refuses the
    file (here: more rows than allowed), that reading stops too, and nothing is written."""
    before = snapshot(acme, "acme")
    threads = _threads()
    rows = "".join(f"S{i},Ann,Lee,(212) 555-{i:04d}\n" for i in range(1, 1600))
    path = _file(tmp_path, "Student ID,First Name,Last Name,Mobile Phone\n" + rows)
    # Small blocks: the reading thread has batches to hand over, and waits, when the first
    # pass reaches row 1,501 (the mapping's sample, the first rows, is read before either).
    with (
        mock.patch.object(read, "_BLOCK_BYTES", 4096),
        pytest.raises(FileRefused, match="more than 1,500 rows"),
    ):
        _run(acme, path, explicit=MAP, limits=ReadLimits(max_rows=1500), batch_rows=50)
    assert _threads() <= threads
    assert snapshot(acme, "acme") == before


def test_a_reimport_refused_in_the_first_pass_leaves_no_reader_running(
    acme: Store, tmp_path: Path
) -> None:
    """A re-import into an account with prints reads its batches on a thread of their own
    (``ahead._read_beside``); when the first pass refuses the file, that thread stops too."""
    head = "Student ID,First Name,Last Name,Mobile Phone\n"
    rows = "".join(f"S{i},Ann,Lee,(212) 555-{i:04d}\n" for i in range(1, 1600))
    _run(acme, _file(tmp_path, head + rows[: len(rows) // 2], name="first.csv"), explicit=MAP)
    before = snapshot(acme, "acme")
    threads = _threads()
    with (
        mock.patch.object(read, "_BLOCK_BYTES", 4096),
        pytest.raises(FileRefused, match="more than 1,500 rows"),
    ):
        _run(
            acme,
            _file(tmp_path, head + rows),
            explicit=MAP,
            limits=ReadLimits(max_rows=1500),
            batch_rows=50,
        )
    assert _threads() <= threads
    assert snapshot(acme, "acme") == before


def test_batches_read_beside_come_in_order_and_an_error_where_it_happened() -> None:
    """``ahead._read_beside``: the batches as the reading gives them, an error raised where
    the batch it stopped would have come, and the reading thread gone once the consumer stops
    (early, too)."""
    threads = _threads()

    def reading(stop_after: int) -> Iterator[int]:
        for n in range(5):
            if n == stop_after:
                raise FileRefused(f"Row {n} is broken")
            yield n

    beside = ahead._read_beside(reading(3), threading.Event())
    assert [next(beside) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(FileRefused, match="Row 3 is broken"):
        next(beside)
    assert list(ahead._read_beside(reading(9), threading.Event())) == [0, 1, 2, 3, 4]
    early = ahead._read_beside(reading(9), threading.Event())
    assert next(early) == 0
    early.close()
    stopped = threading.Event()
    stopped.set()
    # The import closing (``Ahead.close``): the reading hands nothing more over, and the
    # consumer is not left waiting for it (on a thread here, so that a wait fails the test).
    out: list[list[int]] = []
    consumer = threading.Thread(
        target=lambda: out.append(list(ahead._read_beside(iter(range(3)), stopped))),
        daemon=True,
    )
    consumer.start()
    consumer.join(timeout=10)
    assert not consumer.is_alive(), "the consumer was left waiting for a stopped reading"
    assert out == [[]]
    assert _threads() <= threads


def test_a_failure_while_flagging_fails_the_import_and_writes_nothing(
    acme: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags are decided on a thread of their own: what fails there fails the import, in
    the importing thread, and the transaction writes nothing."""
    before = snapshot(acme, "acme")
    threads = _threads()

    def broken(*args: object) -> None:
        raise RuntimeError("flagging broke")

    monkeypatch.setattr(engine, "flag_created", broken)
    rows = "".join(f"S{i},Ann,Lee,(212) 555-{i:04d}\n" for i in range(1, 30))
    path = _file(tmp_path, "Student ID,First Name,Last Name,Mobile Phone\n" + rows)
    with pytest.raises(RuntimeError, match="flagging broke"):
        _run(acme, path, explicit=MAP, batch_rows=5)
    assert _threads() <= threads
    assert snapshot(acme, "acme") == before


@pytest.mark.parametrize(
    "encoding,delimiter",
    [("utf-8", ","), ("utf-8-sig", ";"), ("utf-16", "\t"), ("cp1252", ";"), ("cp1252", "|")],
)
def test_real_files_in_real_encodings(
    acme: Store, tmp_path: Path, encoding: str, delimiter: str
) -> None:
    text = FALL.replace(",", delimiter).replace("\n", "\r\n")
    result = _run(acme, _file(tmp_path, text, encoding=encoding), explicit=MAP)
    assert result.counts.as_json()["counts"]["created"] == 4
    zoe = next(c for c in contacts_service.list_contacts(acme, "acme") if c["crm_id"] == "S3")
    assert (zoe["first_name"], zoe["last_name"]) == ("Zoë", "Müller")
    assert result.format.delimiter == delimiter


def test_excel_workbook(acme: Store, tmp_path: Path) -> None:
    accounts_service.add_field(acme, "acme", "birth_date", type="date")
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Students"
    ws.append(["Student ID", "First Name", "Mobile Phone", "Birth Date", "Term"])
    ws.append(["S1", "Maria", 2125550101, date(2001, 2, 3), "fall"])
    ws.append(["S2", "Wei", "(212) 555-0102", "02/03/2002", "Spring"])
    path = tmp_path / "students.xlsx"
    wb.save(path)
    result = _run(acme, path, explicit=MAP)
    assert result.format.kind == "xlsx"
    assert result.counts.as_json()["counts"]["created"] == 2
    maria = next(c for c in contacts_service.list_contacts(acme, "acme") if c["crm_id"] == "S1")
    assert maria["phone"] == "+12125550101"
    assert maria["custom"] == {"term": "Fall", "birth_date": "2001-02-03"}


def test_phone_region_of_the_account(store: Store, tmp_path: Path) -> None:
    accounts_service.create_account(store, "london", region="GB")
    path = _file(tmp_path, "crm_id,phone\nL1,07911 123456\nL2,+1 212 555 0101\n")
    imports_service.import_file(store, "london", path)
    phones = sorted(c["phone"] for c in contacts_service.list_contacts(store, "london"))
    assert phones == ["+12125550101", "+447911123456"]


def test_export_imports_back_unchanged(acme: Store, tmp_path: Path) -> None:
    accounts_service.add_field(acme, "acme", "gpa", type="number")
    tricky = FALL + "S5,=cmd|' /C calc'!A0,@SUM(1),-2125550105,,Fall\n"
    _run(acme, _file(tmp_path, tricky.replace("Term\n", "Term\n", 1)), explicit=MAP)
    contacts = {c["crm_id"]: c for c in contacts_service.list_contacts(acme, "acme")}
    assert contacts["S5"]["first_name"] == "=cmd|' /C calc'!A0"  # stored as typed …
    out = io.StringIO()
    contacts_service.export_contacts(acme, "acme", out)
    cells = [row for row in csv.reader(io.StringIO(out.getvalue()))]
    assert cells[0][:7] == [
        "rollbook_id",
        "crm_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "opted_out",
    ]
    for row in cells[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell  # … but exported defused
    before = snapshot(acme, "acme")
    export = _file(tmp_path, out.getvalue(), "export.csv")
    result = _run(acme, export)
    assert result.counts.as_json()["counts"]["unchanged"] == 5
    assert snapshot(acme, "acme") == before


def test_label_of_an_import(acme: Store, tmp_path: Path) -> None:
    first = _run(acme, _file(tmp_path, FALL), explicit=MAP)
    second = _run(acme, _file(tmp_path, FALL.splitlines()[0] + "\nS2,Wei,Chen,,,Spring\n", "b.csv"))
    flt = contacts_service.ContactFilter
    in_first = contacts_service.list_contacts(acme, "acme", flt(label=first.label))
    in_second = contacts_service.list_contacts(acme, "acme", flt(label=second.label))
    assert sorted(c["crm_id"] for c in in_first) == ["S1", "S2", "S3", "S4"]
    assert [c["crm_id"] for c in in_second] == ["S2"]


def test_every_batch_writes_its_events_and_phone_history(acme: Store, tmp_path: Path) -> None:
    """A batch's history and events are written after the next batch's lookups (engine._Rest):
    each batch's, the last one's too, in row order."""
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    term = FALL.splitlines()[0] + (
        "\nS1,Maria,Lopez,(212) 555-0101,maria@example.edu,Spring"
        "\nS2,Wei,Chen,212.555.0199,wei@example.edu,Fall"
        "\nS3,Zoë,Müller,+1 212 555 0103,zoe@example.edu,Fall"
        "\nS4,Aisha,Okafor,2125550198,aisha@example.edu,Fall\n"
    )
    second = _run(acme, _file(tmp_path, term, "term.csv"), batch_rows=2)
    assert second.counts.as_json()["counts"]["updated"] == 4
    with acme.read() as conn:
        changed = conn.execute(
            sa.select(schema.events.c.row, schema.events.c.changes)
            .where(schema.events.c.import_id == second.import_id)
            .order_by(schema.events.c.id)
        ).all()
        former = conn.execute(
            sa.select(schema.phone_history.c.phone, schema.phone_history.c.row).order_by(
                schema.phone_history.c.id
            )
        ).all()
    assert [(row, sorted(changes)) for row, changes in changed] == [
        (2, ["term"]),
        (3, ["phone"]),
        (4, ["term"]),
        (5, ["phone"]),
    ]
    assert [tuple(r) for r in former] == [("+12125550102", 3), ("+12125550104", 5)]


def test_a_number_a_later_row_clears_is_a_changed_number(acme: Store, tmp_path: Path) -> None:
    """A row sends the contact's number and a later row of the file clears it: the contact ends
    with no number, so the earlier row's number is reported changed — the import's last word on
    a contact counts, even when it is "no number"."""
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    (wei,) = contacts_service.list_contacts(
        acme, "acme", contacts_service.ContactFilter(search="Wei")
    )
    later = f"Student ID,Platform ID,Mobile Phone\nS2,,212.555.0102\n,{wei['id']},UNSET\n"
    result = _run(acme, _file(tmp_path, later, "later.csv"), explicit={**MAP, "Platform ID": "id"})
    assert [(c["row"], c["file_phone"], c["current_phone"]) for c in result.changed] == [
        (2, "+12125550102", None)
    ]


def test_a_stored_value_with_a_control_character_is_still_read_ahead_exactly(
    acme: Store, tmp_path: Path
) -> None:
    """The next batch's contacts are read ahead, packed on SQLite; a stored value holding the
    packing's separator cannot be split, so they are read the ordinary way, and the row still
    finds its contact by CRM ID."""
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    with acme.write() as conn:
        conn.execute(
            sa.text("UPDATE contacts SET first_name = :name WHERE crm_id = 'S3'"),
            {"name": "Zo\x1eë"},
        )
    names_only = "Student ID,First Name\nS1,Maria\nS2,Wei\nS3,Zoë\nS4,Aisha\n"  # no phones
    again = _file(tmp_path, names_only, "again.csv")
    result = _run(acme, again, explicit={"Student ID": "crm_id"}, batch_rows=2)
    report = pl.concat(result.report).select("row", "status").sort("row").rows()
    assert report == [(2, "unchanged"), (3, "unchanged"), (4, "updated"), (5, "unchanged")]
    names = {c.values["crm_id"]: c.values["first_name"] for c in snapshot(acme, "acme").values()}
    assert (len(names), names["S3"]) == (4, "Zoë")


def test_an_export_imported_back_keeps_sticky_edits(acme: Store, tmp_path: Path) -> None:
    """Importing rollbook's own export is not the student system catching up: the number a
    student corrected stays protected from the next stale file."""
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    maria = next(c for c in contacts_service.list_contacts(acme, "acme") if c["crm_id"] == "S1")
    contacts_service.set_contact(
        acme,
        "acme",
        maria["id"],
        {"phone": "(917) 555-0199"},
        contacts_service.EditSource(Source.CONTACT, "student texted a new number"),
    )
    out = io.StringIO()
    contacts_service.export_contacts(acme, "acme", out)
    result = _run(acme, _file(tmp_path, out.getvalue(), "export.csv"))
    assert result.counts.as_json()["counts"]["unchanged"] == 4
    stale = _run(acme, _file(tmp_path, FALL, "stale.csv"))
    assert stale.counts.as_json()["codes"] == {"contact-out-of-sync": 1}
    assert contacts_service.get_contact(acme, "acme", maria["id"])["phone"] == "+19175550199"


def test_a_column_called_id_is_not_the_platform_id(acme: Store, tmp_path: Path) -> None:
    """Student systems call their own id "ID": it must never pick contacts by rollbook's id."""
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    theirs = "ID,First Name,Mobile Phone\n1,Zed,(212) 555-0199\n"
    found = imports_service.inspect_file(acme, "acme", _file(tmp_path, theirs, "ids.csv"))
    assert {c.header: c.field for c in found.mapping.columns}["ID"] is None


def test_an_id_with_a_new_crm_id(acme: Store, tmp_path: Path) -> None:
    """A CRM ID nobody has names a new contact: with the id of a contact that has another CRM
    ID that is a conflict; a contact without one gets it attached."""
    contacts_service.create_contact(acme, "acme", {"first_name": "Ann", "phone": "2125550191"})
    _run(acme, _file(tmp_path, FALL), explicit=MAP)
    ids = {c["crm_id"]: c["id"] for c in contacts_service.list_contacts(acme, "acme")}
    text = f"rollbook_id,crm_id\n{ids['S1']},S777\n{ids[None]},S888\n"
    result = _run(acme, _file(tmp_path, text, "attach.csv"))
    report = {
        row: (status, codes)
        for chunk in result.report
        for row, status, codes in chunk.select("row", "status", "codes").iter_rows()
    }
    assert report == {2: ("skipped", "crm-id-conflict"), 3: ("updated", None)}
    after = {c["id"]: c["crm_id"] for c in contacts_service.list_contacts(acme, "acme")}
    assert after[ids["S1"]] == "S1"
    assert after[ids[None]] == "S888"


def test_a_fresh_import_asks_only_about_crm_ids_its_file_repeats() -> None:
    """An import into an empty account: a CRM ID can be in the account only if the import wrote
    it, from a row, so only a CRM ID another row repeats is worth a lookup — and only once
    written. (A re-import's memory is inactive: everything is asked.)"""
    memory = Memory(empty_at_start=True, repeated_crm_ids=["S2", "S3"])
    written = pl.DataFrame({"crm_id": ["S1", "S2", None], "phone": ["+12125550101", None, None]})
    memory.remember(written)
    assert memory.crm_ids(pl.Series(["S1", "S2", "S3", "S4"])).to_list() == ["S2"]
    phones = pl.Series(["+12125550101", "+12125550102"])
    assert memory.phone_numbers(phones).to_list() == ["+12125550101"]
    everything = Memory(empty_at_start=False, repeated_crm_ids=["S2"])
    everything.remember(written)
    assert everything.crm_ids(pl.Series(["S1", "S4"])).to_list() == ["S1", "S4"]
