"""Puts the dashboard on the service's app: its pages, its static files, and errors as pages."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from rollbook.web.deps import LoginRequired, PageRefused, render, signed_in_viewer
from rollbook.web.pages import contacts, imports, login, settings

#: The dashboard's pages, by area (tests walk their routes).
PAGES = (login, contacts, imports, settings)

TITLES = {
    400: "That request was not understood",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "That clashes with what is there",
    413: "That file is too large",
    422: "That was not accepted",
    429: "Too many requests",
    500: "Something went wrong",
    503: "The database is not available",
}


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    return render(
        request,
        "error.html",
        signed_in_viewer(request),
        status=status,
        title=TITLES.get(status, "Something went wrong"),
        message=message,
        code=code,
    )


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in PAGES:
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.back)}", status_code=303)

    @app.exception_handler(PageRefused)
    async def refused(request: Request, exc: PageRefused) -> Response:
        return error_page(request, exc.status, "forbidden", exc.message)
