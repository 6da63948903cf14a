"""One error shape for every error the API returns, whatever raised it:

    {"error": {"code": "not-found", "message": "there is no contact 7 in this account",
               "details": {...}}}

``code`` is stable (the codes of ``rollbook.errors``, ``unauthenticated``, ``forbidden``,
``rate-limited``, ``too-large``, ``internal-error``); ``message`` is for people. Unexpected
errors say nothing about their insides. A test calls every operation and checks the shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from rollbook import errors

log = logging.getLogger("rollbook.api")

STATUS = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.DriftGuardRefused: 409,
    errors.InvalidInput: 422,
    errors.FileRefused: 422,
    errors.MappingRefused: 422,
    errors.StoreError: 503,
}
HTTP_CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiError(Exception):
    """An HTTP-level refusal raised by the shell itself (auth, limits)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


#: Renders an error as a page, for the dashboard's paths: (request, status, code, message).
PageRenderer = Callable[[Request, int, str, str], Response]


def install(app: FastAPI, page: PageRenderer | None = None) -> None:
    """Every error as the one JSON shape — or, with ``page``, as a page for the paths that are
    not the API's (the dashboard's)."""

    def respond(
        request: Request,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if page is not None and not request.url.path.startswith("/api/"):
            return page(request, status, code, message)
        return error_response(status, code, message, details, headers)

    @app.exception_handler(errors.RollbookError)
    async def rollbook_error(request: Request, exc: errors.RollbookError) -> Response:
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
        return respond(request, status, exc.code, exc.message, _plain(exc.details))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return respond(request, exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "reason": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        return respond(
            request, 422, "invalid-input", message or "invalid request", {"errors": problems}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return respond(
            request, exc.status_code, code, message, headers=dict(exc.headers or {}) or None
        )

    @app.exception_handler(sa_exc.OperationalError)
    async def store_unavailable(request: Request, exc: sa_exc.OperationalError) -> Response:
        # The database went away, or stayed busy past its timeout (SQLite during a long
        # import): worth trying again. Its text can quote the statement's values: not logged.
        log.warning("database unavailable (%s) on %s", type(exc.orig).__name__, _route(request))
        return respond(
            request,
            503,
            "store-error",
            "The database cannot be reached or is busy; try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected %s on %s", type(exc).__name__, _route(request))
        return respond(request, 500, "internal-error", "Something went wrong on our side.")


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "?")


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """Details as JSON can carry them."""
    return {
        k: v if isinstance(v, str | int | float | bool | list | dict | type(None)) else str(v)
        for k, v in details.items()
    }
