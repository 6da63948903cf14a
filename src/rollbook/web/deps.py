"""Who is looking at a page: the signed-in session, its account and role; the CSRF check of
every form; and rendering.

A page asks for ``Reader``, ``Staff`` or ``Admin`` (a GET), or ``StaffForm`` / ``AdminForm`` (a
POST, which also checks the form's CSRF token against the session's). Without a session the
browser is sent to the login page; with too low a role, or a form without its token, the answer
is a 403 page and nothing changes.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

import phonenumbers
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from rollbook.services import auth, sessions
from rollbook.services.auth import Principal, Role
from rollbook.services.sessions import WebSession

SESSION_COOKIE = "rollbook_session"
LOGIN_CSRF_COOKIE = "rollbook_login_csrf"
FLASH_COOKIE = "rollbook_flash"
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # pages show personal data, and a new token once
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
CSRF_FIELD = "csrf_token"

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def readable_phone(value: str | None) -> str:
    """+12125550101 as people read it: +1 212-555-0101."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _when(value: str | None) -> str:
    """An ISO time as people read it: 28 Nov 2026, 17:44 UTC."""
    if not value:
        return ""
    at = datetime.fromisoformat(value).astimezone(UTC)
    return at.strftime("%-d %b %Y, %H:%M UTC")


templates.env.filters["phone"] = readable_phone
templates.env.filters["when"] = _when
#: How a change came, in words.
templates.env.globals["sources"] = {
    "staff": "changed by staff",
    "contact": "sent by the student",
    "import": "an import",
}


class LoginRequired(Exception):
    """No live session: to the login page, then back."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class PageRefused(Exception):
    """A page's own refusal (a role too low, a form without its CSRF token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, in the account they are working in."""

    session: WebSession
    principal: Principal

    @property
    def slug(self) -> str:
        return self.principal.slug

    def may(self, role: str) -> bool:
        return self.principal.role.may(Role(role))


def _session(request: Request) -> WebSession:
    token = request.cookies.get(SESSION_COOKIE)
    found = sessions.find(request.app.state.store, token) if token else None
    if found is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(back if request.method == "GET" else "/")
    return found


def signed_in_viewer(request: Request) -> Viewer | None:
    """The signed-in user, if any — for pages that show the header whoever asks (errors)."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        found = sessions.find(request.app.state.store, token) if token else None
    except Exception:  # an error page must render even when the database does not answer
        return None
    if found is None or found.principal is None:
        return None
    return Viewer(found, found.principal)


def form_token(session: WebSession) -> str:
    """The CSRF token the session's forms carry: the session's secret bound to the account the
    form was shown in, so that a form left open in one tab cannot act on the account another
    tab has switched to."""
    return hmac.new(session.csrf.encode(), (session.slug or "").encode(), "sha256").hexdigest()


async def _check_csrf(request: Request, session: WebSession) -> None:
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token") or ""
    if not isinstance(sent, str) or not hmac.compare_digest(sent, form_token(session)):
        raise PageRefused(
            403,
            "This form has expired, was shown for another account than the one you now work "
            "in, or did not come from rollbook, so nothing was changed. Go back, reload the "
            "page and try again.",
        )


def _requires(role: Role, form: bool) -> Callable[[Request], Awaitable[Viewer]]:
    async def dependency(request: Request) -> Viewer:
        session = _session(request)
        if form:
            await _check_csrf(request, session)
        principal = session.principal
        if principal is None:
            raise PageRefused(
                403, "Your user has no account yet: ask an administrator to give you a role."
            )
        if not principal.role.may(role):
            raise PageRefused(
                403, f"This needs the {role.value} role; yours is {principal.role.value}."
            )
        return Viewer(session, principal)

    return dependency


async def _signed_in_form(request: Request) -> WebSession:
    session = _session(request)
    await _check_csrf(request, session)
    return session


#: A form any signed-in user may send (signing out), account or not.
SignedInForm = Annotated[WebSession, Depends(_signed_in_form)]
Reader = Annotated[Viewer, Depends(_requires(Role.READ_ONLY, form=False))]
Staff = Annotated[Viewer, Depends(_requires(Role.STAFF, form=False))]
Admin = Annotated[Viewer, Depends(_requires(Role.ADMIN, form=False))]
ReaderForm = Annotated[Viewer, Depends(_requires(Role.READ_ONLY, form=True))]
StaffForm = Annotated[Viewer, Depends(_requires(Role.STAFF, form=True))]
AdminForm = Annotated[Viewer, Depends(_requires(Role.ADMIN, form=True))]


def render(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page, with what every page shows: who is signed in, where, the flash message."""
    flash = unquote(request.cookies.get(FLASH_COOKIE) or "")
    response = templates.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "csrf": form_token(viewer.session) if viewer else None,
            "accounts": _accounts(request, viewer),
            "flash": flash,
            **context,
        },
        status_code=status,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    response.headers.update(PAGE_HEADERS)
    return response


def _accounts(request: Request, viewer: Viewer | None) -> list[dict[str, Any]]:
    if viewer is None:
        return []
    return auth.user_accounts(request.app.state.store, viewer.session.user_id)


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """After a form: to the page that shows the result (303, so a reload does not resend),
    with a one-time message."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash), max_age=60, path="/", httponly=True, samesite="lax"
        )
    return response


def secure_cookies(request: Request) -> bool:
    """Whether cookies that carry a secret are marked Secure: over HTTPS, or always when the
    operator says so (ROLLBOOK_SECURE_COOKIES, for a TLS proxy that does not say it is one)."""
    return bool(request.app.state.settings.secure_cookies) or request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(sessions.LENGTH.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
