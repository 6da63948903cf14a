"""The caller's account: its settings, fields and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from rollbook.api.routes import API_PREFIX
from rollbook.api.schemas import (
    AccountOut,
    AccountPatch,
    FieldIn,
    FieldOut,
    FieldPatch,
    NewToken,
    SmallId,
    TokenIn,
    TokenOut,
)
from rollbook.api.security import ADMIN, READ
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services.auth import Principal
from rollbook.store import Store

router = APIRouter(prefix=API_PREFIX, tags=["account"])
Reader = Annotated[Principal, Depends(READ)]
Admin = Annotated[Principal, Depends(ADMIN)]


@router.get("/account", response_model=AccountOut)
def get_account(request: Request, caller: Reader) -> Any:
    """The account the token belongs to."""
    return accounts_service.account_json(request.app.state.store, caller.slug)


@router.patch("/account", response_model=AccountOut)
def patch_account(request: Request, body: AccountPatch, caller: Admin) -> Any:
    """Change the default phone region or the fields every new contact must have."""
    store = request.app.state.store
    accounts_service.set_account(store, caller.slug, region=body.region, required=body.required)
    return accounts_service.account_json(store, caller.slug)


@router.get("/fields", response_model=list[FieldOut])
def list_fields(request: Request, caller: Reader) -> Any:
    """The account's fields, built-in and custom."""
    settings = accounts_service.account_settings(request.app.state.store, caller.slug)
    return accounts_service.fields_json(settings)


@router.post("/fields", response_model=FieldOut, status_code=201)
def add_field(request: Request, body: FieldIn, caller: Admin) -> Any:
    """Add a custom field (a date field named birth_date is the birth date duplicates are
    found by)."""
    store = request.app.state.store
    f = accounts_service.add_field(
        store, caller.slug, body.key, type=body.type, label=body.label, options=body.options
    )
    return _field_out(store, caller.slug, f.key)


@router.patch("/fields/{key}", response_model=FieldOut)
def rename_field(request: Request, key: str, body: FieldPatch, caller: Admin) -> Any:
    """Give a custom field another key or label, with every contact's value of it (past
    imports and events keep the old key). An account with a field named like a column of the
    imports' own (added before such names were refused) imports again once it is renamed."""
    store = request.app.state.store
    f = accounts_service.rename_field(store, caller.slug, key, body.key or key, label=body.label)
    return _field_out(store, caller.slug, f.key)


def _field_out(store: Store, slug: str, key: str) -> dict[str, Any]:
    """The field ``key`` as ``GET /fields`` lists it."""
    settings = accounts_service.account_settings(store, slug)
    return next(x for x in accounts_service.fields_json(settings) if x["key"] == key)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(request: Request, caller: Admin) -> Any:
    """The account's API tokens (never their secrets)."""
    return auth.list_tokens(request.app.state.store, caller.slug)


@router.post("/tokens", response_model=NewToken, status_code=201)
def create_token(request: Request, body: TokenIn, caller: Admin) -> Any:
    """A new API token. The token is in this response only: it is stored hashed."""
    token, info = auth.create_token(
        request.app.state.store, caller.slug, body.name, body.role, created_by=caller.actor
    )
    return {**info, "token": token}


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(request: Request, token_id: SmallId, caller: Admin) -> Any:
    """Revoke a token: calls with it are refused from now on."""
    return auth.revoke_token(request.app.state.store, caller.slug, token_id)
