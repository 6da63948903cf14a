"""Dashboard sign-ins: a session per login, held by a random cookie token.

The database keeps the token's SHA-256 (like API tokens), the user, the account they are
working in, and the session's CSRF token — a secret every form of the session sends back.
A session ends at logout or ``LENGTH`` after login (a working day). Finding a session only
reads: on SQLite a long import holds the write lock, and the pages that follow it must not wait.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from rollbook.clock import now
from rollbook.errors import NotFound
from rollbook.services.auth import Principal, Role
from rollbook.store import Store
from rollbook.store.schema import accounts, memberships, users, web_sessions

LENGTH = timedelta(hours=12)


@dataclass(frozen=True)
class WebSession:
    id: int
    user_id: int
    email: str
    csrf: str
    account_id: int | None
    slug: str | None
    account_name: str | None
    role: Role | None

    @property
    def principal(self) -> Principal | None:
        """Who the user is in the account they are working in (None without one)."""
        if self.account_id is None or self.slug is None or self.role is None:
            return None
        return Principal(self.account_id, self.slug, self.role, self.email)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(store: Store, user_id: int) -> str:
    """A new session for ``user_id`` in their first account; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    at = now()
    with store.write() as conn:
        first = conn.execute(
            sa.select(memberships.c.account_id)
            .join(accounts, accounts.c.id == memberships.c.account_id)
            .where(memberships.c.user_id == user_id)
            .order_by(accounts.c.slug)
            .limit(1)
        ).scalar()
        conn.execute(
            web_sessions.insert().values(
                token_hash=_hash(token),
                user_id=user_id,
                account_id=first,
                csrf=secrets.token_urlsafe(32),
                created_at=at,
                expires_at=at + LENGTH,
            )
        )
        conn.execute(web_sessions.delete().where(web_sessions.c.expires_at < at))
    return token


def find(store: Store, token: str) -> WebSession | None:
    """The live session this cookie token holds, or None."""
    with store.read() as conn:
        row = conn.execute(
            sa.select(
                web_sessions.c.id,
                web_sessions.c.user_id,
                web_sessions.c.csrf,
                users.c.email,
                users.c.disabled,
                accounts.c.id.label("account_id"),
                accounts.c.slug,
                accounts.c.name.label("account_name"),
                memberships.c.role,
            )
            .join(users, users.c.id == web_sessions.c.user_id)
            .outerjoin(
                memberships,
                (memberships.c.user_id == web_sessions.c.user_id)
                & (memberships.c.account_id == web_sessions.c.account_id),
            )
            .outerjoin(accounts, accounts.c.id == memberships.c.account_id)
            .where(web_sessions.c.token_hash == _hash(token), web_sessions.c.expires_at > now())
        ).first()
        if row is None or row.disabled:
            return None
        account: Any = row
        if row.role is None:  # no longer a member there: another of their accounts
            account = (
                conn.execute(
                    sa.select(
                        accounts.c.id.label("account_id"),
                        accounts.c.slug,
                        accounts.c.name.label("account_name"),
                        memberships.c.role,
                    )
                    .join(memberships, memberships.c.account_id == accounts.c.id)
                    .where(memberships.c.user_id == row.user_id)
                    .order_by(accounts.c.name, accounts.c.slug)
                    .limit(1)
                ).first()
                or row
            )
    return WebSession(
        id=row.id,
        user_id=row.user_id,
        email=row.email,
        csrf=row.csrf,
        account_id=account.account_id,
        slug=account.slug,
        account_name=account.account_name,
        role=Role(account.role) if account.role else None,
    )


def switch_account(store: Store, session: WebSession, slug: str) -> None:
    """Work in another of the user's accounts."""
    with store.write() as conn:
        account_id = conn.execute(
            sa.select(accounts.c.id)
            .join(memberships, memberships.c.account_id == accounts.c.id)
            .where(memberships.c.user_id == session.user_id, accounts.c.slug == slug)
        ).scalar()
        if account_id is None:
            raise NotFound(f"there is no account {slug!r}", account=slug)
        conn.execute(
            web_sessions.update()
            .where(web_sessions.c.id == session.id)
            .values(account_id=account_id)
        )


def end(store: Store, token: str) -> None:
    with store.write() as conn:
        conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == _hash(token)))
