"""Accounts and their settings: region, custom fields, required fields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import phonenumbers

from rollbook.errors import Conflict, InvalidInput, NotFound
from rollbook.model import (
    BIRTH_DATE_KEY,
    BUILTIN_KEYS,
    CUSTOM_TYPES,
    ENGINE_COLUMNS,
    IGNORE,
    AccountSettings,
    FieldDef,
    FieldType,
)
from rollbook.store import Store
from rollbook.store import accounts as q

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_region(region: str) -> str:
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(
            f"{region!r} is not a phone region; use a two-letter country code such as US, CA or GB",
            field="region",
        )
    return region


def create_account(store: Store, slug: str, *, region: str = "US", name: str | None = None) -> int:
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"{slug!r} cannot be an account slug: use lower-case letters, digits and dashes",
            field="slug",
        )
    region = check_region(region)
    with store.write() as conn:
        if q.slug_taken(conn, slug):
            raise Conflict(f"there is already an account {slug!r}", field="slug")
        return q.insert_account(conn, slug, name or slug, region)


def list_accounts(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [
            {
                "slug": r.slug,
                "name": r.name,
                "region": r.region,
                "required": list(r.required_fields),
            }
            for r in q.list_accounts(conn)
        ]


def account_json(store: Store, slug: str) -> dict[str, Any]:
    with store.read() as conn:
        row = q.account_row(conn, slug)
        return {
            "slug": row.slug,
            "name": row.name,
            "region": row.region,
            "required": list(row.required_fields),
        }


def fields_json(settings: AccountSettings) -> list[dict[str, Any]]:
    return [
        {
            "key": f.key,
            "label": f.label,
            "type": f.type.value,
            "builtin": f.builtin,
            "options": list(f.options),
            "required": f.key in settings.required,
        }
        for f in settings.fields
    ]


def account_settings(store: Store, slug: str) -> AccountSettings:
    with store.read() as conn:
        return q.settings_for(conn, slug)


def _check_key(key: str, field: str = "key") -> None:
    """Refuse a key a custom field cannot have (``field``: the input that gave it)."""
    if not _KEY.match(key) or key in BUILTIN_KEYS or key == IGNORE:
        raise InvalidInput(
            f"{key!r} cannot be a field key: use lower-case letters, digits and underscores, "
            "starting with a letter, and not a built-in field's name",
            field=field,
        )
    if key in ENGINE_COLUMNS:
        raise InvalidInput(
            f"{key!r} cannot be a field key: rollbook's imports use that name for a column of "
            f"their own; choose another (for example {key}_value), the label can still be "
            "anything",
            field=field,
        )


#: The longest label a field can have (``field_defs.label``).
MAX_LABEL = 200


def _label(label: str | None) -> str | None:
    """A label as given, or ``None`` for none; refused if it is too long."""
    if label is None or not label.strip():
        return None
    if len(label) > MAX_LABEL:
        raise InvalidInput(f"a label has at most {MAX_LABEL} characters", field="label")
    return label


def add_field(
    store: Store,
    slug: str,
    key: str,
    *,
    type: str = "text",
    label: str | None = None,
    options: Sequence[str] = (),
) -> FieldDef:
    _check_key(key)
    try:
        kind = FieldType(type)
    except ValueError:
        kind = None
    if kind not in CUSTOM_TYPES:
        raise InvalidInput(
            f"{type!r} is not a field type; use one of {', '.join(t.value for t in CUSTOM_TYPES)}",
            field="type",
        )
    assert kind is not None
    clean_options = tuple(o.strip() for o in options if o.strip())
    if kind is FieldType.CHOICE and not clean_options:
        raise InvalidInput(
            "a choice field needs its options (--option A --option B …)", field="options"
        )
    if kind is not FieldType.CHOICE and clean_options:
        raise InvalidInput("only choice fields have options", field="options")
    if key == BIRTH_DATE_KEY and kind is not FieldType.DATE:
        raise InvalidInput(
            f"{BIRTH_DATE_KEY} is the birth date duplicates are found by: it must be a date field",
            field="type",
        )
    if len({o.casefold() for o in clean_options}) != len(clean_options):
        raise InvalidInput(
            "the options of a choice field must differ (ignoring case)", field="options"
        )
    f = FieldDef(key, kind, _label(label) or key.replace("_", " ").capitalize(), clean_options)
    with store.write() as conn:
        settings = q.locked_settings(conn, slug)
        if key in settings.keys:
            raise Conflict(f"the account already has a field {key!r}", field="key")
        q.insert_field(conn, settings.account_id, f)
    return f


def rename_field(
    store: Store, slug: str, key: str, new_key: str, *, label: str | None = None
) -> FieldDef:
    """Give a custom field another key (and, if given, label), with every contact's value of
    it; with ``new_key`` its own key, only the label. Past imports, jobs and events keep the
    key they were made with.

    The way out for a field added before its key was refused (``ENGINE_COLUMNS``): an account
    with one cannot import (``imports.refuse_engine_keys``) until it is renamed."""
    if new_key != key:
        _check_key(new_key, "new_key")
    label = _label(label)
    with store.write() as conn:
        settings = q.locked_settings(conn, slug)
        f = next((f for f in settings.fields if f.key == key), None)
        if f is None:
            raise NotFound(f"the account has no field {key!r}", field="key")
        if f.builtin:
            raise InvalidInput(
                f"{key!r} is a built-in field: only custom fields can be renamed", field="key"
            )
        if new_key != key and new_key in settings.keys:
            raise Conflict(f"the account already has a field {new_key!r}", field="new_key")
        if new_key == BIRTH_DATE_KEY and f.type is not FieldType.DATE:
            raise InvalidInput(
                f"{BIRTH_DATE_KEY} is the birth date duplicates are found by: only a date field "
                "can have that key",
                field="new_key",
            )
        q.rename_field(conn, settings.account_id, key, new_key, label)
    return FieldDef(new_key, f.type, label or f.label, f.options)


def set_account(
    store: Store,
    slug: str,
    *,
    region: str | None = None,
    required: Sequence[str] | None = None,
) -> AccountSettings:
    with store.write() as conn:
        settings = q.locked_settings(conn, slug)
        values: dict[str, Any] = {}
        if region is not None:
            values["region"] = check_region(region)
        if required is not None:
            unknown = [k for k in required if k not in settings.keys or k == "id"]
            if unknown:
                raise InvalidInput(
                    f"not fields of this account: {', '.join(unknown)}", field="required"
                )
            values["required_fields"] = list(dict.fromkeys(required))
        if values:
            q.set_account_options(conn, settings.account_id, **values)
        return q.settings_for(conn, slug)
