"""Custom field keys beside the import engine's own columns: the engine's names are refused
(``model.ENGINE_COLUMNS``), and fields named like its other words keep their values through
creations, updates and clashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbook.errors import InvalidInput
from rollbook.model import ENGINE_COLUMNS
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store

#: Allowed keys that are words the engine uses too (in prefixed columns, messages, codes).
NEAR = ("status", "message", "other", "contact_id", "start")
HEAD = "Student ID,First Name,Last Name,Mobile Phone,Email," + ",".join(NEAR)


def _import(store: Store, tmp_path: Path, rows: list[str]) -> None:
    path = tmp_path / "f.csv"
    path.write_text("\n".join([HEAD, *rows]) + "\n", encoding="utf-8")
    mapping = {"Student ID": "crm_id", "Mobile Phone": "phone", **{k: k for k in NEAR}}
    imports_service.import_file(
        store, "acme", path, imports_service.ImportOptions(explicit=mapping)
    )


def _custom(store: Store) -> dict[str, dict[str, str]]:
    return {c["crm_id"]: c["custom"] for c in contacts_service.list_contacts(store, "acme")}


#: Keys that failed an import, or had the engine's value written into them (``ph``: the row's
#: phone; ``crm``: its CRM ID), before they were refused.
BROKE_AN_IMPORT = {
    *("i", "row", "idv", "crm", "ph", "target", "id_target", "crm_holder", "phone_owner"),
    *("via_alias", "created_row", "phone_row", "keys_moved", "custom", "import_print"),
}


def test_engine_column_names_are_refused_as_field_keys(store: Store) -> None:
    assert BROKE_AN_IMPORT <= ENGINE_COLUMNS
    accounts_service.create_account(store, "acme")
    for key in sorted(ENGINE_COLUMNS):
        with pytest.raises(InvalidInput, match="imports use that name") as refused:
            accounts_service.add_field(store, "acme", key)
        assert refused.value.details == {"field": "key"}
    assert not [f for f in accounts_service.account_settings(store, "acme").fields if not f.builtin]


def test_fields_named_like_the_engines_words_keep_their_values(
    store: Store, tmp_path: Path
) -> None:
    accounts_service.create_account(store, "acme")
    for key in NEAR:
        accounts_service.add_field(store, "acme", key)
    _import(
        store,
        tmp_path,
        [
            "S1,Ann,Lee,(212) 555-0101,ann@example.edu,a1,b1,c1,d1,e1",
            "S2,Bo,Kim,(212) 555-0102,bo@example.edu,a2,b2,c2,d2,e2",
        ],
    )
    # S1 changes its values and moves to a new phone; S3 is new but takes S2's phone (a clash:
    # skipped); S4 is new.
    _import(
        store,
        tmp_path,
        [
            "S1,Ann,Lee,(212) 555-0103,ann@example.edu,x1,y1,z1,u1,v1",
            "S3,Cy,Ro,(212) 555-0102,cy@example.edu,a3,b3,c3,d3,e3",
            "S4,Di,Fu,(212) 555-0104,di@example.edu,a4,b4,c4,d4,e4",
        ],
    )
    assert _custom(store) == {
        "S1": dict(zip(NEAR, ["x1", "y1", "z1", "u1", "v1"], strict=True)),
        "S2": dict(zip(NEAR, ["a2", "b2", "c2", "d2", "e2"], strict=True)),
        "S4": dict(zip(NEAR, ["a4", "b4", "c4", "d4", "e4"], strict=True)),
    }


def test_the_docs_list_the_refused_keys() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    listed = docs.split("nor one of\nthe names imports give columns of their own:")[1].split(".")[0]
    assert {name.strip(" `\n") for name in listed.split(",")} == ENGINE_COLUMNS
