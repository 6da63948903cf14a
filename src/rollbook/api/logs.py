"""Request logs without personal data: the route's *template* (``/api/v1/contacts/by-phone/
{phone}``), never the path with its values, never a query string, body or header."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

log = logging.getLogger("rollbook.access")


async def access_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", "(no route)")
    log.info(
        "%s %s %d %.0fms",
        request.method,
        template,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response
