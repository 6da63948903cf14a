"""Settings: the account's default region and required fields, custom fields, users and their
roles, API tokens. Everyone may look; only admins change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rollbook.api.schemas import SmallId
from rollbook.errors import RollbookError
from rollbook.model import FieldType
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.web.deps import AdminForm, Reader, Viewer, redirect, render

router = APIRouter(include_in_schema=False)
ROLES = ("admin", "staff", "read-only")
TYPES = ("text", "number", "date", "boolean", "choice")


def _page(request: Request, viewer: Viewer, status: int = 200, **extra: Any) -> Response:
    store = request.app.state.store
    settings = accounts_service.account_settings(store, viewer.slug)
    admin = viewer.may("admin")
    return render(
        request,
        "settings.html",
        viewer,
        status=status,
        account=accounts_service.account_json(store, viewer.slug),
        fields=[f for f in settings.fields if f.type is not FieldType.ID],
        required=set(settings.required),
        users=auth.list_users(store, viewer.slug),
        tokens=auth.list_tokens(store, viewer.slug) if admin else [],
        roles=ROLES,
        types=TYPES,
        admin=admin,
        **extra,
    )


@router.get("/settings")
def settings_page(request: Request, viewer: Reader) -> Response:
    return _page(request, viewer)


def _refused(request: Request, viewer: Viewer, error: RollbookError, section: str) -> Response:
    return _page(request, viewer, status=422, error=error.message, error_section=section)


@router.post("/settings/account")
async def save_account(request: Request, viewer: AdminForm) -> Response:
    form = await request.form()
    try:
        accounts_service.set_account(
            request.app.state.store,
            viewer.slug,
            region=str(form.get("region", "")).strip(),
            required=[str(v) for v in form.getlist("required")],
        )
    except RollbookError as error:
        return _refused(request, viewer, error, "account")
    return redirect("/settings", "Account settings saved.")


@router.post("/settings/fields")
async def add_field(request: Request, viewer: AdminForm) -> Response:
    form = await request.form()
    options = [o for o in str(form.get("options", "")).split(",") if o.strip()]
    try:
        f = accounts_service.add_field(
            request.app.state.store,
            viewer.slug,
            str(form.get("key", "")).strip(),
            type=str(form.get("type", "text")),
            label=str(form.get("label", "")).strip() or None,
            options=options,
        )
    except RollbookError as error:
        return _refused(request, viewer, error, "fields")
    return redirect("/settings#fields", f"Field {f.label} added.")


@router.post("/settings/fields/rename")
async def rename_field(request: Request, viewer: AdminForm) -> Response:
    """Another key (and label) for a custom field, with every contact's value of it."""
    form = await request.form()
    key = str(form.get("key", ""))
    try:
        f = accounts_service.rename_field(
            request.app.state.store,
            viewer.slug,
            key,
            str(form.get("new_key", "")).strip(),
            label=str(form.get("label", "")).strip() or None,
        )
    except RollbookError as error:
        return _refused(request, viewer, error, "rename")
    done = f"Field {key} is now {f.key}." if f.key != key else f"Field {key} is now {f.label}."
    return redirect("/settings#fields", done)


@router.post("/settings/users")
async def add_user(request: Request, viewer: AdminForm) -> Response:
    """Give someone a role here: a new user with a first password, or a user who exists."""
    form = await request.form()
    store = request.app.state.store
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    role = str(form.get("role", "staff"))
    try:
        if password:
            auth.create_user(store, email, password)
        auth.grant(store, email, viewer.slug, role)
    except RollbookError as error:
        return _refused(request, viewer, error, "users")
    return redirect("/settings#users", f"{email.lower()} is {role} here.")


@router.post("/settings/tokens")
async def create_token(request: Request, viewer: AdminForm) -> Response:
    form = await request.form()
    try:
        token, info = auth.create_token(
            request.app.state.store,
            viewer.slug,
            str(form.get("name", "")).strip(),
            str(form.get("role", "staff")),
            created_by=viewer.principal.actor,
        )
    except RollbookError as error:
        return _refused(request, viewer, error, "tokens")
    # Shown on this answer only: nothing can show it again.
    return _page(request, viewer, new_token=token, new_token_info=info)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, viewer: AdminForm, token_id: SmallId) -> Response:
    auth.revoke_token(request.app.state.store, viewer.slug, token_id)
    return redirect("/settings#tokens", f"Token {token_id} revoked.")
