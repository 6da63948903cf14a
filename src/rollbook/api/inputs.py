"""A guard every request passes: no NUL character in any text it sends.

PostgreSQL cannot store U+0000 in text, and no name, search or reason needs it; SQLite would
store it and make a value that cannot be exported. So it is refused where it enters — in the
query, the path, a form (the dashboard's) or a JSON body (``Model`` in ``schemas``) — with the
usual ``invalid-input`` error naming the parameter, before any rule or query sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

NUL = "\x00"
REASON = "must not contain the NUL character (U+0000)"

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def has_nul(value: Any) -> bool:
    """Whether ``value`` — text, or lists and mappings of it — holds a NUL anywhere."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(has_nul(v) for v in value)
    return False


def _problems(where: str, pairs: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": (where, key.replace(NUL, "?")), "msg": REASON, "type": "value_error"}
        for key, value in pairs
        if has_nul(key) or has_nul(value)
    ]


async def refuse_nul(request: Request) -> AsyncIterator[None]:
    """An app-wide dependency: 422 when the query, path or form text holds a NUL.

    The form it reads is the one every later reader gets (Starlette keeps it on the request);
    it is closed — its uploaded files' temporary files too — once the response is sent."""
    problems = _problems("query", request.query_params.multi_items())
    problems += _problems("path", request.path_params.items())
    form = None
    if request.headers.get("content-type", "").strip().lower().startswith(_FORMS):
        form = await request.form()
        problems += _problems("form", ((k, v) for k, v in form.multi_items() if isinstance(v, str)))
    try:
        if problems:
            raise RequestValidationError(problems)
        yield
    finally:
        if form is not None:
            await form.close()
