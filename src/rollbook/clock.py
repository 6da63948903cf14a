"""Time in rollbook: always UTC; written as ISO 8601 with a ``Z``.

SQLite hands timestamps back without their zone; they were stored in UTC, so they are read as
UTC. PostgreSQL hands them back aware. Either way they print the same."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
