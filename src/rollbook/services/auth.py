"""People and keys: users with passwords, their roles in accounts, API tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults, the OWASP recommendation). API
tokens carry 256 random bits; they are shown once and stored as the SHA-256 of their secret —
a slow password hash adds nothing for a secret that cannot be guessed — and found by their public
prefix, so that a leaked token is recognisable (``rbk_``) and revocable by its prefix.

Roles, per account: ``admin`` (everything, settings and tokens included), ``staff`` (contacts,
imports), ``read-only`` (reading).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rollbook.clock import iso, now
from rollbook.errors import Conflict, InvalidInput, NotFound
from rollbook.store import Store
from rollbook.store import accounts as q_accounts
from rollbook.store.schema import accounts, api_tokens, memberships, users, web_sessions

TOKEN_PREFIX = "rbk_"  # noqa: S105 — the public part every token starts with
_TOKEN = re.compile(r"^(rbk_[0-9a-f]{8})_([A-Za-z0-9_\-]{20,})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    READ_ONLY = "read-only"

    def may(self, needed: Role) -> bool:
        order = [Role.READ_ONLY, Role.STAFF, Role.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who is asking: in which account, with which role, as whom (never a secret)."""

    account_id: int
    slug: str
    role: Role
    actor: str  # "token:<prefix>" or a user's email


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a role; use admin, staff or read-only", field="role"
        ) from None


# --- users ----------------------------------------------------------------------------------


def create_user(store: Store, email: str, password: str) -> int:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput("not an email address", field="email")
    if len(password) < 10:
        raise InvalidInput("a password needs at least 10 characters", field="password")
    with store.write() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
            raise Conflict("there is already a user with this email", field="email")
        result = conn.execute(
            users.insert().values(
                email=email, password_hash=_hasher.hash(password), created_at=now()
            )
        )
        (user_id,) = result.inserted_primary_key or (None,)
        assert isinstance(user_id, int)
        return user_id


def set_password(store: Store, email: str, password: str) -> None:
    """Give the user ``email`` a new password, and end their open sessions: a password is
    reset because it was forgotten or leaked, and whoever signed in with the old one is out."""
    if len(password) < 10:
        raise InvalidInput("a password needs at least 10 characters", field="password")
    _update_user(store, email, password_hash=_hasher.hash(password))


def set_disabled(store: Store, email: str, disabled: bool) -> None:
    """Disable the user ``email`` — they cannot sign in, and their open sessions end; their
    roles are kept — or enable them again."""
    _update_user(store, email, disabled=disabled)


def _update_user(store: Store, email: str, **values: Any) -> None:
    """Change the user and end their sessions; ``NotFound`` if there is no such user."""
    with store.write() as conn:
        user_id = conn.execute(
            users.update()
            .where(users.c.email == email.strip().lower())
            .values(**values)
            .returning(users.c.id)
        ).scalar()
        if user_id is None:
            raise NotFound("there is no user with this email", field="email")
        conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))


def grant(store: Store, email: str, slug: str, role: str) -> None:
    """Give the user ``email`` a role in the account ``slug`` (replacing any other)."""
    chosen = _role(role)
    with store.write() as conn:
        account = q_accounts.account_row(conn, slug)
        user = conn.execute(
            sa.select(users.c.id).where(users.c.email == email.strip().lower())
        ).scalar()
        if user is None:
            raise NotFound("there is no user with this email", field="email")
        conn.execute(
            memberships.delete().where(
                memberships.c.user_id == user, memberships.c.account_id == account.id
            )
        )
        conn.execute(
            memberships.insert().values(user_id=user, account_id=account.id, role=chosen.value)
        )


def login(store: Store, email: str, password: str) -> int | None:
    """The user's id if the password is right (and the user not disabled), else None."""
    with store.read() as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.password_hash, users.c.disabled).where(
                users.c.email == email.strip().lower()
            )
        ).first()
    if row is None:
        _hasher.hash(password)  # the same work as a wrong password: no timing oracle
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return None if row.disabled else int(row.id)


def user_accounts(store: Store, user_id: int) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(
            sa.select(accounts.c.slug, accounts.c.name, memberships.c.role)
            .join(memberships, memberships.c.account_id == accounts.c.id)
            .where(memberships.c.user_id == user_id)
            .order_by(accounts.c.slug)
        )
        return [{"slug": r.slug, "name": r.name, "role": r.role} for r in rows]


def user_principal(store: Store, user_id: int, slug: str) -> Principal:
    with store.read() as conn:
        row = conn.execute(
            sa.select(accounts.c.id, accounts.c.slug, memberships.c.role, users.c.email)
            .join(memberships, memberships.c.account_id == accounts.c.id)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.user_id == user_id, accounts.c.slug == slug)
        ).first()
    if row is None:
        raise NotFound(f"there is no account {slug!r}", account=slug)
    return Principal(row.id, row.slug, Role(row.role), row.email)


def list_users(store: Store, slug: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        account = q_accounts.account_row(conn, slug)
        rows = conn.execute(
            sa.select(users.c.email, memberships.c.role, users.c.created_at)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.account_id == account.id)
            .order_by(users.c.email)
        )
        return [{"email": r.email, "role": r.role, "created_at": iso(r.created_at)} for r in rows]


# --- API tokens -----------------------------------------------------------------------------


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    store: Store, slug: str, name: str, role: str = "staff", created_by: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A new token for the account ``slug``: returns the token (shown this once) and its
    description."""
    chosen = _role(role)
    name = name.strip() or "token"
    prefix = TOKEN_PREFIX + secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with store.write() as conn:
        account = q_accounts.account_row(conn, slug)
        result = conn.execute(
            api_tokens.insert().values(
                account_id=account.id,
                name=name[:200],
                prefix=prefix,
                secret_hash=_secret_hash(secret),
                role=chosen.value,
                created_at=now(),
                created_by=created_by,
            )
        )
        (token_id,) = result.inserted_primary_key or (None,)
    return f"{prefix}_{secret}", {
        "id": token_id,
        "name": name,
        "prefix": prefix,
        "role": chosen.value,
    }


def authenticate_token(store: Store, token: str) -> Principal | None:
    """The principal a presented token stands for; None for an unknown, wrong or revoked one."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    prefix, secret = match.groups()
    with store.read() as conn:
        row = conn.execute(
            sa.select(
                api_tokens.c.id,
                api_tokens.c.secret_hash,
                api_tokens.c.role,
                api_tokens.c.revoked_at,
                accounts.c.id.label("account_id"),
                accounts.c.slug,
            )
            .join(accounts, accounts.c.id == api_tokens.c.account_id)
            .where(api_tokens.c.prefix == prefix)
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
        return None
    return Principal(row.account_id, row.slug, Role(row.role), f"token:{prefix}")


def list_tokens(store: Store, slug: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        account = q_accounts.account_row(conn, slug)
        rows = conn.execute(
            api_tokens.select()
            .where(api_tokens.c.account_id == account.id)
            .order_by(api_tokens.c.id)
        )
        return [_token_json(r) for r in rows]


def revoke_token(store: Store, slug: str, token_id: int) -> dict[str, Any]:
    with store.write() as conn:
        account = q_accounts.account_row(conn, slug)
        row = conn.execute(
            api_tokens.select().where(
                api_tokens.c.account_id == account.id, api_tokens.c.id == token_id
            )
        ).first()
        if row is None:
            raise NotFound(f"there is no token {token_id} in this account", token_id=token_id)
        if row.revoked_at is None:
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now())
            )
        row = conn.execute(api_tokens.select().where(api_tokens.c.id == token_id)).one()
        return _token_json(row)


def _token_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "prefix": r.prefix,
        "role": r.role,
        "created_at": iso(r.created_at),
        "created_by": r.created_by,
        "revoked_at": iso(r.revoked_at),
    }
