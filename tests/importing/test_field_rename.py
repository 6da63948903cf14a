"""Renaming a custom field, and the account a field from before ``ENGINE_COLUMNS`` were refused
left behind: its imports are refused, with nothing written, until the field is renamed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.support.cli import Rollbook

from rollbook.errors import Conflict, InvalidInput, NotFound
from rollbook.model import FieldDef, FieldType
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store
from rollbook.store import accounts as q_accounts
from rollbook.store.schema import contacts, field_bases, imports, jobs

HEAD = "Student ID,First Name,Mobile Phone,Term"
ROWS = ["S1,Ann,(212) 555-0101,Fall", "S2,Bo,(212) 555-0102,Spring"]


def _write(tmp_path: Path, rows: list[str], head: str = HEAD) -> Path:
    path = tmp_path / "f.csv"
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


def _import(
    store: Store, path: Path, mapping: dict[str, str] | None = None
) -> imports_service.ImportResult:
    options = imports_service.ImportOptions(explicit=mapping or {})
    return imports_service.import_file(store, "acme", path, options)


def _custom(store: Store) -> dict[str, dict[str, str]]:
    return {c["crm_id"]: c["custom"] for c in contacts_service.list_contacts(store, "acme")}


def _old_field(store: Store, key: str) -> None:
    """A field added as it could be before its key was refused (``add_field`` refuses it now)."""
    with store.write() as conn:
        account = q_accounts.settings_for(conn, "acme").account_id
        q_accounts.insert_field(conn, account, FieldDef(key, FieldType.TEXT, key.capitalize()))


def _count(store: Store, table: sa.Table) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_an_account_with_an_engine_named_field_cannot_import_until_it_is_renamed(
    store: Store, tmp_path: Path
) -> None:
    accounts_service.create_account(store, "acme")
    _old_field(store, "ph")
    path = _write(tmp_path, ROWS)
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", "Term": "ph"}
    with pytest.raises(Conflict, match="field 'ph' has a name rollbook's imports use") as refused:
        _import(store, path, mapping)
    assert "rollbook fields rename -a acme ph NEW_KEY" in refused.value.message
    assert refused.value.details == {"account_field": "ph"}
    # Refused whatever the file maps: the engine's columns would meet the field's anyway.
    with pytest.raises(Conflict):
        _import(store, path, {"Student ID": "crm_id", "Mobile Phone": "phone", "Term": "ignore"})
    with pytest.raises(Conflict):  # a dry run too
        imports_service.import_file(
            store, "acme", path, imports_service.ImportOptions(explicit=mapping), dry_run=True
        )
    assert _count(store, contacts) == 0 and _count(store, imports) == 0

    renamed = accounts_service.rename_field(store, "acme", "ph", "term")
    assert (renamed.key, renamed.label) == ("term", "Ph")
    _import(store, path, {**mapping, "Term": "term"})
    # Each contact holds its own term, not its phone (what a field ``ph`` got before).
    assert _custom(store) == {"S1": {"term": "Fall"}, "S2": {"term": "Spring"}}


def test_a_renamed_field_keeps_its_values_bases_mapping_and_requirement(
    store: Store, tmp_path: Path
) -> None:
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    accounts_service.add_field(store, "acme", "campus")
    accounts_service.set_account(store, "acme", required=["phone", "term"])
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", "Term": "term"}
    _import(store, _write(tmp_path, ROWS), mapping)
    ann = next(c for c in contacts_service.list_contacts(store, "acme") if c["crm_id"] == "S1")
    # The platform changes Ann's term: the import's value is kept as the field's base.
    contacts_service.set_contact(store, "acme", ann["id"], {"term": "Winter", "campus": "North"})
    assert contacts_service.get_contact(store, "acme", ann["id"])["bases"] == {"term": "Fall"}

    accounts_service.rename_field(store, "acme", "term", "start_term", label="Start term")

    settings = accounts_service.account_settings(store, "acme")
    assert settings.field("start_term").label == "Start term"
    assert "term" not in settings.keys and "start_term" in settings.required
    assert _custom(store) == {
        "S1": {"campus": "North", "start_term": "Winter"},
        "S2": {"campus": None, "start_term": "Spring"},
    }
    assert contacts_service.get_contact(store, "acme", ann["id"])["bases"] == {"start_term": "Fall"}
    # The same file again, with no mapping given: the remembered one maps Term to the new key.
    # Ann's row is stale (the base): her platform value stays; Bo's row changes nothing.
    again = _import(store, _write(tmp_path, ROWS))
    assert dict(again.mapping.as_pairs())["Term"] == "start_term"
    assert again.counts.statuses["unchanged"] == 2
    assert _custom(store)["S1"] == {"campus": "North", "start_term": "Winter"}
    # The requirement followed the key: a row without a term is refused for it.
    blank = _import(store, _write(tmp_path, ["S3,Cy,(212) 555-0103,"]))
    assert blank.counts.statuses["skipped"] == 1
    assert blank.counts.codes["blank-required-data-in-record"] == 1


def test_renames_that_are_refused(store: Store) -> None:
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    accounts_service.add_field(store, "acme", "campus")
    accounts_service.add_field(store, "acme", "born", type="date")
    with pytest.raises(NotFound):
        accounts_service.rename_field(store, "acme", "nope", "other")
    with pytest.raises(InvalidInput, match="built-in"):
        accounts_service.rename_field(store, "acme", "email", "mail")
    with pytest.raises(Conflict, match="already has a field 'campus'"):
        accounts_service.rename_field(store, "acme", "term", "campus")
    with pytest.raises(InvalidInput, match="imports use that name") as reserved:
        accounts_service.rename_field(store, "acme", "term", "target")
    assert reserved.value.details == {"field": "new_key"}
    with pytest.raises(InvalidInput, match="cannot be a field key"):
        accounts_service.rename_field(store, "acme", "term", "Term")
    with pytest.raises(InvalidInput, match="only a date field"):
        accounts_service.rename_field(store, "acme", "term", "birth_date")
    accounts_service.rename_field(store, "acme", "born", "birth_date")
    assert accounts_service.account_settings(store, "acme").has_birth_date
    keys = [f.key for f in accounts_service.account_settings(store, "acme").fields]
    assert keys[-3:] == ["term", "campus", "birth_date"]  # in their place


def test_rename_from_the_command_line(store: Store, tmp_path: Path) -> None:
    rb = Rollbook(store, tmp_path)
    rb("accounts", "create", "acme")
    rb("fields", "add", "-a", "acme", "term")
    run = rb("fields", "rename", "-a", "acme", "term", "start_term")
    assert run.stdout == "Renamed field term to start_term in acme.\n"
    listed = rb("fields", "list", "-a", "acme", "--json").json()
    assert [f["key"] for f in listed if not f["builtin"]] == ["start_term"]
    refused = rb("fields", "rename", "-a", "acme", "start_term", "ph", ok=False)
    assert refused.exit_code != 0 and "imports use that name" in refused.stderr
    run = rb("fields", "rename", "-a", "acme", "start_term", "--label", "First term")
    assert run.stdout == "Field start_term of acme is now labelled 'First term'.\n"
    assert rb("fields", "list", "-a", "acme", "--json").json()[-1]["label"] == "First term"
    neither = rb("fields", "rename", "-a", "acme", "start_term", ok=False)
    assert neither.exit_code == 2 and "give NEW_KEY, or --label" in neither.stderr


def test_the_field_bases_are_the_accounts_own(store: Store, tmp_path: Path) -> None:
    """A rename touches only its account's contacts and bases."""
    for slug in ("acme", "other"):
        accounts_service.create_account(store, slug)
        accounts_service.add_field(store, slug, "term")
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", "Term": "term"}
    for slug in ("acme", "other"):
        options = imports_service.ImportOptions(explicit=mapping)
        imports_service.import_file(store, slug, _write(tmp_path, ROWS), options)
        first = contacts_service.list_contacts(store, slug)[0]
        contacts_service.set_contact(store, slug, first["id"], {"term": "Winter"})
    accounts_service.rename_field(store, "acme", "term", "start_term")
    other = contacts_service.list_contacts(store, "other")
    assert [c["custom"] for c in other] == [{"term": "Winter"}, {"term": "Spring"}]
    with store.read() as conn:
        fields = conn.execute(
            sa.select(field_bases.c.field).join(contacts).where(contacts.c.crm_id == "S1")
        )
        assert sorted(f for (f,) in fields) == ["start_term", "term"]


def _blocked(store: Store) -> None:
    """Until another transaction waits for a lock (PostgreSQL), or a moment (SQLite, where a
    second writer waits to begin)."""
    if store.engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + 30
    with store.engine.connect() as conn:
        while not conn.execute(waiting).scalar_one():
            assert time.monotonic() < deadline, "the import never waited for the rename"
            time.sleep(0.02)


def test_an_import_that_waited_for_a_rename_works_with_the_renamed_field(
    store: Store, tmp_path: Path
) -> None:
    """An import asked for while a rename is under way waits for it, then reads the account as
    the rename left it: on PostgreSQL, fields read before the wait would be the old ones, and
    the import would rebuild each contact's custom values under the old key."""
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    _import(store, _write(tmp_path, ROWS), {"Student ID": "crm_id", "Mobile Phone": "phone"})
    ann = next(c for c in contacts_service.list_contacts(store, "acme") if c["crm_id"] == "S1")
    contacts_service.set_contact(store, "acme", ann["id"], {"term": "Winter"})
    # The next file (its mapping remembered): Ann has a new phone, and her term as it was sent.
    path = _write(tmp_path, ["S1,Ann,(212) 555-0199,Fall", "S2,Bo,(212) 555-0102,Spring"])
    done: list[imports_service.ImportResult] = []
    with store.write() as conn:  # the rename, under way
        settings = q_accounts.locked_settings(conn, "acme")
        q_accounts.rename_field(conn, settings.account_id, "term", "start_term", None)
        waiting = threading.Thread(target=lambda: done.append(_import(store, path)))
        waiting.start()
        _blocked(store)
    waiting.join(60)
    assert done and done[0].counts.statuses["updated"] == 1
    assert _custom(store) == {"S1": {"start_term": "Winter"}, "S2": {"start_term": "Spring"}}
    phones = {c["crm_id"]: c["phone"] for c in contacts_service.list_contacts(store, "acme")}
    assert phones["S1"] == "+12125550199"


#: A value of each kind of field, as a file gives it, and as the contact then holds it.
KINDS = {
    "motto": ("text", (), 'Éé \\ "q" ☃', 'Éé \\ "q" ☃'),
    "gpa": ("number", (), "3.50", 3.5),
    "enrolled": ("date", (), "2024-09-01", "2024-09-01"),
    "housing": ("boolean", (), "yes", True),
    "program": ("choice", ("Nursing", "Biology"), "nursing", "Nursing"),
}


def test_a_rename_keeps_the_values_of_every_kind_of_field(store: Store, tmp_path: Path) -> None:
    accounts_service.create_account(store, "acme")
    for key, (kind, options, _, _) in KINDS.items():
        accounts_service.add_field(store, "acme", key, type=kind, options=options)
    head = "Student ID,Mobile Phone," + ",".join(KINDS)
    cells = ",".join(
        f'"{given.replace(chr(34), chr(34) * 2)}"' for _, _, given, _ in KINDS.values()
    )
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", **{k: k for k in KINDS}}
    _import(store, _write(tmp_path, [f"S1,(212) 555-0101,{cells}"], head), mapping)
    assert _custom(store)["S1"] == {k: held for k, (_, _, _, held) in KINDS.items()}
    for key in KINDS:
        accounts_service.rename_field(store, "acme", key, f"{key}_2")
    assert _custom(store)["S1"] == {f"{k}_2": held for k, (_, _, _, held) in KINDS.items()}
    # The same row again, mapped to the new keys: nothing to change.
    again = _import(
        store,
        _write(tmp_path, [f"S1,(212) 555-0101,{cells}"], head),
        {**mapping, **{k: f"{k}_2" for k in KINDS}},
    )
    assert again.counts.statuses["unchanged"] == 1


def test_a_rename_reaches_the_mappings_of_queued_jobs_and_previews(store: Store) -> None:
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    account = accounts_service.account_settings(store, "acme").account_id
    options = {"mapping": {"Term": "term", "Student ID": "crm_id"}, "allow_unmapped_crm_id": False}
    made = [("preview", "done"), ("import", "queued"), ("import", "done")]
    with store.write() as conn:
        for kind, status in made:
            conn.execute(
                jobs.insert().values(
                    account_id=account,
                    kind=kind,
                    options=options,
                    status=status,
                    created_at=datetime.now(UTC),
                )
            )
    accounts_service.rename_field(store, "acme", "term", "start_term")
    with store.read() as conn:
        kept = [
            r.options["mapping"]["Term"] for r in conn.execute(jobs.select().order_by(jobs.c.id))
        ]
    # The finished import's job is history: it keeps the key it ran with.
    assert kept == ["start_term", "start_term", "term"]


def test_labels_and_the_upload_page_refusal(store: Store, tmp_path: Path) -> None:
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    with pytest.raises(InvalidInput, match="at most 200 characters"):
        accounts_service.rename_field(store, "acme", "term", "start_term", label="x" * 201)
    with pytest.raises(InvalidInput, match="at most 200 characters"):
        accounts_service.add_field(store, "acme", "campus", label="x" * 201)
    same = accounts_service.rename_field(store, "acme", "term", "term", label="Start term")
    assert (same.key, same.label) == ("term", "Start term")
    # An account with an engine-named field hears of it when a file is looked at, too.
    _old_field(store, "target")
    with pytest.raises(Conflict, match="field 'target'"):
        imports_service.inspect_file(store, "acme", _write(tmp_path, ROWS))


def test_a_new_label_keeps_the_import_prints_and_a_new_key_does_not(
    store: Store, tmp_path: Path
) -> None:
    accounts_service.create_account(store, "acme")
    accounts_service.add_field(store, "acme", "term")
    path = _write(tmp_path, ROWS)
    _import(store, path, {"Student ID": "crm_id", "Mobile Phone": "phone", "Term": "term"})
    assert _import(store, path).passed == 2  # each row matched its contact's print
    accounts_service.rename_field(store, "acme", "term", "term", label="Start term")
    assert _import(store, path).passed == 2
    accounts_service.rename_field(store, "acme", "term", "start_term")
    again = _import(store, path)
    assert again.passed == 0 and again.counts.statuses["unchanged"] == 2
