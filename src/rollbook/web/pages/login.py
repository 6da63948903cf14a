"""Signing in and out, and choosing the account to work in."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from rollbook.services import auth, sessions
from rollbook.web.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    PageRefused,
    ReaderForm,
    SignedInForm,
    redirect,
    render,
    secure_cookies,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path of this site, never another site's address — browsers read ``//host``,
    ``/\\host`` and ``/<tab>/host`` as one."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
        and " " not in value
    ):
        return value
    return "/contacts"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/contacts", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/contacts",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise PageRefused(403, "This sign-in form has expired. Reload the page and try again.")
    client = request.client.host if request.client else "?"
    request.app.state.login_limiter.check(f"login:{client}")
    store = request.app.state.store
    user_id = auth.login(store, email, password)
    if user_id is None:
        return render(
            request,
            "login.html",
            status=401,
            login_csrf=expected,
            next=_safe_next(next),
            email=email,
            error="That email and password do not match an account.",
        )
    response = redirect(_safe_next(next))
    set_session_cookie(request, response, sessions.start(store, user_id))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: SignedInForm) -> Response:
    sessions.end(request.app.state.store, request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login", "You are signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/switch-account")
async def switch_account(request: Request, viewer: ReaderForm) -> Response:
    form = await request.form()
    slug = str(form.get("account", ""))
    sessions.switch_account(request.app.state.store, viewer.session, slug)
    return redirect("/contacts")
