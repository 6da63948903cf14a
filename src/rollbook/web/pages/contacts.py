"""Contacts: the list (search, filters, pages, columns, export) and the contact panel (every
field, edits with UNSET, phone changes with source and reason, phone history, timeline,
archive and restore)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from rollbook.api.downloads import csv_download
from rollbook.api.schemas import Id
from rollbook.errors import RollbookError
from rollbook.model import UNSET_WORD, FieldDef, FieldType, Source
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.services.contacts import ContactFilter, EditSource
from rollbook.web.deps import Reader, Staff, StaffForm, Viewer, readable_phone, redirect, render

router = APIRouter(include_in_schema=False)
PAGE = 50
#: Columns shown until the user chooses others.
DEFAULT_COLUMNS = ("name", "phone", "email", "crm_id", "updated_at")
#: Columns that are not fields.
EXTRA_COLUMNS = {
    "name": "Name",
    "created_at": "Created",
    "updated_at": "Updated",
    "phone_since": "Phone since",
}


@dataclass(frozen=True)
class ListQuery:
    """The list's search and filters, as its form sends them (the list and its export)."""

    search: str | None
    label: str | None
    show: str
    opted_out: str
    missing_phone: bool

    def filter(self) -> ContactFilter:
        return ContactFilter(
            search=self.search or None,
            label=self.label or None,
            archived={"active": False, "archived": True}.get(self.show),
            opted_out={"yes": True, "no": False}.get(self.opted_out),
            missing_phone=True if self.missing_phone else None,
        )

    def params(self) -> dict[str, str]:
        """The query again, as the form's fields (empty ones included)."""
        return {
            "search": self.search or "",
            "label": self.label or "",
            "show": self.show,
            "opted_out": self.opted_out,
            **({"missing_phone": "true"} if self.missing_phone else {}),
        }


def _list_query(
    search: Annotated[str | None, Query(max_length=200)] = None,
    label: Annotated[str | None, Query(max_length=200)] = None,
    show: Annotated[str, Query(pattern="^(active|archived|all)$")] = "active",
    opted_out: Annotated[str, Query(pattern="^(|yes|no)$")] = "",
    missing_phone: bool = False,
) -> ListQuery:
    return ListQuery(search, label, show, opted_out, missing_phone)


Listed = Annotated[ListQuery, Depends(_list_query)]


def _columns(fields: list[FieldDef]) -> dict[str, str]:
    choices = dict(EXTRA_COLUMNS)
    for f in fields:
        if f.type is not FieldType.ID and f.key not in ("first_name", "last_name"):
            choices[f.key] = f.label
    return choices


def cell(contact: dict[str, Any], key: str) -> Any:
    """What a column shows for a contact."""
    if key == "name":
        return " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
    if key in contact:
        return contact[key]
    return contact["custom"].get(key)


@router.get("/contacts")
def contacts_page(
    request: Request,
    viewer: Reader,
    listed: Listed,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    col: Annotated[list[str] | None, Query()] = None,
) -> Response:
    store = request.app.state.store
    settings = accounts_service.account_settings(store, viewer.slug)
    choices = _columns(list(settings.fields))
    columns = [c for c in (col or DEFAULT_COLUMNS) if c in choices] or list(DEFAULT_COLUMNS)
    flt = listed.filter()
    total = contacts_service.count_contacts(store, viewer.slug, flt)
    rows = contacts_service.list_contacts(
        store, viewer.slug, flt, limit=PAGE, offset=(page - 1) * PAGE
    )
    query = listed.params()
    base = [(k, v) for k, v in query.items() if v]
    with_columns = base + [("col", c) for c in columns] if col else base

    def page_url(n: int) -> str:
        return "/contacts?" + urlencode([*with_columns, ("page", str(n))])

    pages = max(1, -(-total // PAGE))
    return render(
        request,
        "contacts.html",
        viewer,
        contacts=rows,
        total=total,
        page=page,
        pages=pages,
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if page < pages else None,
        query=query,
        columns=columns,
        choices=choices,
        cell=cell,
        export_url="/contacts/export?" + urlencode(base),
        labels=_labels(request, viewer),
    )


def _labels(request: Request, viewer: Viewer) -> list[str]:
    return [i["label"] for i in imports_service.list_imports(request.app.state.store, viewer.slug)]


@router.get("/contacts/export")
def export(request: Request, viewer: Reader, listed: Listed) -> Response:
    flt = listed.filter()
    return csv_download(
        f"{viewer.slug}-contacts.csv",
        lambda out: contacts_service.export_contacts(
            request.app.state.store, viewer.slug, out, flt
        ),
    )


# --- one contact ----------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """A value as a form shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _form_fields(viewer: Viewer, request: Request) -> list[FieldDef]:
    settings = accounts_service.account_settings(request.app.state.store, viewer.slug)
    return [f for f in settings.fields if f.type is not FieldType.ID and f.key != "archived"]


def _current(contact: dict[str, Any], f: FieldDef) -> str:
    """A field's value as its box shows it (the phone as people read it: +1 212-555-0142)."""
    if f.key == "phone":
        return readable_phone(contact["phone"])
    return as_text(contact[f.key] if f.builtin else contact["custom"].get(f.key))


@router.get("/contacts/new")
def new_contact_page(request: Request, viewer: Staff) -> Response:
    return render(
        request, "contact_new.html", viewer, fields=_form_fields(viewer, request), values={}
    )


@router.post("/contacts/new")
async def new_contact(request: Request, viewer: StaffForm) -> Response:
    form = await request.form()
    fields = _form_fields(viewer, request)
    values = {f.key: str(form.get(f"f:{f.key}", "")).strip() for f in fields}
    try:
        made = contacts_service.create_contact(
            request.app.state.store,
            viewer.slug,
            {k: v for k, v in values.items() if v},
            EditSource(Source.STAFF, None, viewer.principal.actor),
        )
    except RollbookError as error:
        return render(
            request,
            "contact_new.html",
            viewer,
            status=422,
            fields=fields,
            values=values,
            error=error.message,
            error_field=error.details.get("field"),
        )
    return redirect(f"/contacts/{made['id']}", "Contact created.")


def _panel(
    request: Request,
    viewer: Viewer,
    contact_id: int,
    status: int = 200,
    **extra: Any,
) -> Response:
    store = request.app.state.store
    contact = contacts_service.get_contact(store, viewer.slug, contact_id)
    fields = _form_fields(viewer, request)
    values = extra.pop("values", None) or {f.key: _current(contact, f) for f in fields}
    return render(
        request,
        "contact.html",
        viewer,
        status=status,
        contact=contact,
        fields=fields,
        labels={f.key: f.label for f in fields},
        values=values,
        **extra,
    )


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, viewer: Reader, contact_id: Id) -> Response:
    return _panel(request, viewer, contact_id)


@router.post("/contacts/{contact_id}")
async def edit_contact(request: Request, viewer: StaffForm, contact_id: Id) -> Response:
    """Only the boxes that differ from the contact's values are changes; an emptied box is
    refused with the rule (UNSET clears), never taken as 'clear' or 'no change' silently."""
    store = request.app.state.store
    form = await request.form()
    contact = contacts_service.get_contact(store, viewer.slug, contact_id)
    fields = _form_fields(viewer, request)
    submitted = {f.key: str(form.get(f"f:{f.key}", _current(contact, f))) for f in fields}
    changes: dict[str, str] = {}
    for f in fields:
        value = submitted[f.key].strip()
        if value == _current(contact, f):
            continue
        if value == "":
            return _panel(
                request,
                viewer,
                contact_id,
                status=422,
                values=submitted,
                error=f"To clear {f.label}, type {UNSET_WORD} in its box.",
                error_field=f.key,
            )
        changes[f.key] = value
    if not changes:
        return redirect(f"/contacts/{contact_id}", "Nothing changed.")
    source = Source.CONTACT if form.get("source") == "contact" else Source.STAFF
    reason = str(form.get("reason", "")).strip()[:500] or None
    try:
        contacts_service.set_contact(
            store,
            viewer.slug,
            contact_id,
            changes,
            EditSource(source, reason, viewer.principal.actor),
        )
    except RollbookError as error:
        return _panel(
            request,
            viewer,
            contact_id,
            status=422,
            values=submitted,
            error=error.message,
            error_field=error.details.get("field"),
            reason=reason,
        )
    names = ", ".join(f.label for f in fields if f.key in changes)
    return redirect(f"/contacts/{contact_id}", f"Saved: {names}.")


@router.post("/contacts/{contact_id}/archive")
def archive(request: Request, viewer: StaffForm, contact_id: Id) -> Response:
    return _set_archived(request, viewer, contact_id, archived=True)


@router.post("/contacts/{contact_id}/restore")
def restore(request: Request, viewer: StaffForm, contact_id: Id) -> Response:
    return _set_archived(request, viewer, contact_id, archived=False)


def _set_archived(request: Request, viewer: Viewer, contact_id: int, *, archived: bool) -> Response:
    contacts_service.set_contact(
        request.app.state.store,
        viewer.slug,
        contact_id,
        {"archived": "true" if archived else "false"},
        EditSource(Source.STAFF, None, viewer.principal.actor),
    )
    return redirect(
        f"/contacts/{contact_id}", "Contact archived." if archived else "Contact restored."
    )
