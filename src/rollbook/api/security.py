"""Who is calling (bearer tokens), what their role allows, and how often they may call.

Every route declares the role it needs; the token's account is the only account a call can see
— every service is asked for *that* account's objects, so another account's object is simply
not there (404).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rollbook.api.errors import ApiError
from rollbook.services import auth
from rollbook.services.auth import Principal, Role

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer rbk_…`")


def principal_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "unauthenticated",
            "An API token is required: Authorization: Bearer rbk_…",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = auth.authenticate_token(request.app.state.store, credentials.credentials)
    if found is None:
        raise ApiError(
            401,
            "unauthenticated",
            "This token is unknown or revoked.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def requires(role: Role) -> Callable[..., Any]:
    """A dependency: the caller, if their role allows ``role``'s work."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        caller = principal_of(request, credentials)
        request.app.state.limiter.check(caller.actor)
        if not caller.role.may(role):
            raise ApiError(
                403,
                "forbidden",
                f"This needs the {role.value} role; the token's role is {caller.role.value}.",
            )
        return caller

    return dependency


READ = requires(Role.READ_ONLY)
STAFF = requires(Role.STAFF)
ADMIN = requires(Role.ADMIN)


class RateLimiter:
    """A token bucket per caller (per process): ``per_minute`` calls, refilled continuously.
    Over the limit, a call gets 429 with ``Retry-After``."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(
                    429,
                    "rate-limited",
                    f"Too many requests; try again in {wait} s.",
                    headers={"Retry-After": str(wait)},
                )
            self._buckets[key] = (tokens - 1, now)
