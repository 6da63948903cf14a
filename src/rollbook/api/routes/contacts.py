"""Contacts: list and search, read (by id, CRM ID or phone), create, edit, archive, history,
export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from rollbook.api.downloads import csv_download
from rollbook.api.routes import API_PREFIX
from rollbook.api.schemas import (
    MAX_ID,
    ContactDetail,
    ContactHistory,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    Id,
)
from rollbook.api.security import READ, STAFF
from rollbook.model import Source
from rollbook.services import contacts as contacts_service
from rollbook.services.auth import Principal
from rollbook.services.contacts import ContactFilter, EditSource

router = APIRouter(prefix=API_PREFIX, tags=["contacts"])
Reader = Annotated[Principal, Depends(READ)]
Staff = Annotated[Principal, Depends(STAFF)]


def _filter(
    search: str | None,
    label: str | None,
    archived: bool | None,
    opted_out: bool | None,
    missing_phone: bool | None,
) -> ContactFilter:
    return ContactFilter(
        label=label,
        search=search,
        archived=archived,
        opted_out=opted_out,
        missing_phone=missing_phone,
    )


@router.get("/contacts", response_model=ContactPage)
def list_contacts(
    request: Request,
    caller: Reader,
    search: Annotated[
        str | None,
        Query(max_length=200, description="Name, email, CRM ID, id or a phone in any format."),
    ] = None,
    label: Annotated[
        str | None,
        Query(max_length=200, description="Only contacts with this label, e.g. import-7."),
    ] = None,
    archived: bool | None = None,
    opted_out: bool | None = None,
    missing_phone: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="The next_after of the page before.")
    ] = None,
) -> Any:
    """Contacts in id order, a page at a time."""
    store = request.app.state.store
    flt = _filter(search, label, archived, opted_out, missing_phone)
    items = contacts_service.list_contacts(store, caller.slug, flt, limit=limit + 1, after=after)
    more = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "total": contacts_service.count_contacts(store, caller.slug, flt),
        "next_after": items[-1]["id"] if more and items else None,
    }


@router.post("/contacts", response_model=ContactOut, status_code=201)
def create_contact(request: Request, body: ContactIn, caller: Staff) -> Any:
    """Create a contact. Required fields and uniqueness as for imports."""
    return contacts_service.create_contact(
        request.app.state.store,
        caller.slug,
        body.fields,
        EditSource(Source.STAFF, None, caller.actor),
    )


@router.get("/contacts/by-crm-id/{crm_id}", response_model=ContactOut)
def contact_by_crm_id(
    request: Request, crm_id: Annotated[str, Path(max_length=1000)], caller: Reader
) -> Any:
    """The contact with this CRM ID (or one merged into it)."""
    return contacts_service.find_contact(request.app.state.store, caller.slug, crm_id=crm_id)


@router.get("/contacts/by-phone/{phone}", response_model=ContactOut)
def contact_by_phone(
    request: Request, phone: Annotated[str, Path(max_length=100)], caller: Reader
) -> Any:
    """The contact with this phone, written any way (read in the account's region)."""
    return contacts_service.find_contact(request.app.state.store, caller.slug, phone=phone)


@router.get("/contacts/{contact_id}", response_model=ContactDetail)
def get_contact(request: Request, contact_id: Id, caller: Reader) -> Any:
    """One contact, with its phone history and timeline (a merged-away id gives the survivor)."""
    return contacts_service.get_contact(request.app.state.store, caller.slug, contact_id)


@router.patch("/contacts/{contact_id}", response_model=ContactOut)
def edit_contact(request: Request, contact_id: Id, body: ContactPatch, caller: Staff) -> Any:
    """Change fields; the value UNSET clears a field. A phone change records its source and
    reason in the phone history."""
    how = EditSource(Source(body.source), body.reason, caller.actor)
    return contacts_service.set_contact(
        request.app.state.store, caller.slug, contact_id, body.fields, how
    )


@router.post("/contacts/{contact_id}/archive", response_model=ContactOut)
def archive_contact(request: Request, contact_id: Id, caller: Staff) -> Any:
    """Archive a contact (it keeps its phone and history)."""
    return _set_archived(request, contact_id, caller, archived=True)


@router.post("/contacts/{contact_id}/restore", response_model=ContactOut)
def restore_contact(request: Request, contact_id: Id, caller: Staff) -> Any:
    """Restore an archived contact."""
    return _set_archived(request, contact_id, caller, archived=False)


def _set_archived(request: Request, contact_id: int, caller: Principal, *, archived: bool) -> Any:
    return contacts_service.set_contact(
        request.app.state.store,
        caller.slug,
        contact_id,
        {"archived": "true" if archived else "false"},
        EditSource(Source.STAFF, None, caller.actor),
    )


@router.get("/contacts/{contact_id}/history", response_model=ContactHistory)
def contact_history(request: Request, contact_id: Id, caller: Reader) -> Any:
    """A contact's phone history, timeline and the values kept from stale imports."""
    return contacts_service.contact_history(request.app.state.store, caller.slug, contact_id)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The contacts as CSV."}},
)
def export(
    request: Request,
    caller: Reader,
    label: Annotated[str | None, Query(max_length=200)] = None,
    archived: bool | None = None,
) -> Any:
    """The account's contacts as CSV — formula-safe, and importable back unchanged."""
    flt = ContactFilter(label=label, archived=archived)
    return csv_download(
        "contacts.csv",
        lambda out: contacts_service.export_contacts(
            request.app.state.store, caller.slug, out, flt
        ),
    )
