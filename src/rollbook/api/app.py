"""The ASGI application: ``create_app(settings)`` builds it — nothing is built at import time.

Routes live under ``/api/v1``; the OpenAPI document is at ``/openapi.json`` and its pages at
``/docs``. Every route is a thin shell: it checks the caller's token and role, calls one
service function for the caller's account, and returns what it returns.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from fastapi import Depends, FastAPI

from rollbook import web
from rollbook.api import errors
from rollbook.api.inputs import refuse_nul
from rollbook.api.logs import access_log
from rollbook.api.routes import account, contacts, imports
from rollbook.api.security import RateLimiter
from rollbook.errors import StoreError
from rollbook.importing.read import ReadLimits
from rollbook.queue import QueueRunner
from rollbook.runner import JobRunner, ThreadRunner
from rollbook.store import Store

#: Sign-in attempts per minute from one address (passwords are guessable; tokens are not).
LOGIN_ATTEMPTS_PER_MINUTE = 10


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise StoreError(f"{name} is a whole number of 0 or more, not {value!r}")
    return int(value)


def _jobs(value: str) -> Literal["thread", "queue"]:
    if value not in ("thread", "queue"):
        raise StoreError(f"ROLLBOOK_JOBS is thread or queue, not {value!r}")
    return "queue" if value == "queue" else "thread"


@dataclass(frozen=True)
class ApiSettings:
    """How the service runs. ``from_env`` reads ``ROLLBOOK_*`` variables (docs/api.md)."""

    database_url: str | None = None
    max_upload_bytes: int = 200 * 1024 * 1024
    max_rows: int = 2_000_000
    rate_limit_per_minute: int = 600
    jobs: Literal["thread", "queue"] = "thread"
    stale_job_seconds: int = 60
    #: Mark the dashboard's cookies Secure whatever the request's scheme (behind a TLS proxy
    #: that does not say it is one); without it they are Secure on HTTPS requests.
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "database_url": os.environ.get("ROLLBOOK_DATABASE_URL"),
            "max_upload_bytes": _env_int("ROLLBOOK_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            "max_rows": _env_int("ROLLBOOK_MAX_ROWS", cls.max_rows),
            "rate_limit_per_minute": _env_int("ROLLBOOK_RATE_LIMIT", cls.rate_limit_per_minute),
            "jobs": _jobs(os.environ.get("ROLLBOOK_JOBS", "thread")),
            "stale_job_seconds": _env_int("ROLLBOOK_STALE_JOB_SECONDS", cls.stale_job_seconds),
            "secure_cookies": os.environ.get("ROLLBOOK_SECURE_COOKIES", "").lower()
            in ("1", "true", "yes", "on"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def read_limits(self) -> ReadLimits:
        return ReadLimits(max_bytes=self.max_upload_bytes, max_rows=self.max_rows)


def create_app(settings: ApiSettings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    store = store or Store(settings.database_url)
    stale_after = timedelta(seconds=settings.stale_job_seconds)
    runner: JobRunner = (
        ThreadRunner(store, settings.read_limits(), stale_after)
        if settings.jobs == "thread"
        else QueueRunner(store, settings.read_limits(), stale_after)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(
        title="rollbook",
        version="1",
        summary="A contact store for teams that text students.",
        description="Imports that match reliably and explain every row, platform edits that "
        "survive stale uploads, reports that send the truth back to the student system. "
        "Authenticate with an API token: `Authorization: Bearer rbk_…`. Every error has the "
        'shape `{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.runner = runner
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.login_limiter = RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE)
    errors.install(app, page=web.error_page)
    app.middleware("http")(access_log)
    for module in (account, contacts, imports):
        app.include_router(
            module.router,
            responses={
                401: {"model": errors.ErrorBody, "description": "No token, or a bad one."},
                403: {"model": errors.ErrorBody, "description": "The token's role is too low."},
                404: {"model": errors.ErrorBody, "description": "Not in this account."},
                409: {"model": errors.ErrorBody, "description": "Clashes with the data."},
                413: {"model": errors.ErrorBody, "description": "The file is too large."},
                422: {"model": errors.ErrorBody, "description": "A value or file is refused."},
                429: {"model": errors.ErrorBody, "description": "Too many requests."},
            },
        )

    web.install(app)

    @app.get("/healthz", tags=["service"])
    def health() -> dict[str, str]:
        """Is the service up?"""
        return {"status": "ok"}

    return app
