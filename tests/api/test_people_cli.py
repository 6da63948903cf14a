"""Users and API tokens from the command line: tokens shown once and stored hashed, revocable;
passwords hashed with Argon2id; roles per account."""

from __future__ import annotations

import sqlalchemy as sa
from tests.support.cli import Rollbook

from rollbook.services import auth, sessions
from rollbook.store import Store
from rollbook.store.schema import api_tokens, users


def test_tokens_are_shown_once_and_revocable(rb: Rollbook, store: Store) -> None:
    rb("accounts", "create", "north")
    made = rb("tokens", "create", "-a", "north", "--name", "nightly upload", "--role", "staff")
    token = made.stdout.strip()
    assert token.startswith("rbk_")
    assert "not shown again" in made.stderr
    caller = auth.authenticate_token(store, token)
    assert caller is not None
    assert (caller.slug, caller.role) == ("north", auth.Role.STAFF)

    listed = rb("tokens", "list", "-a", "north", "--json").json()
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [
        ("nightly upload", "staff", None)
    ]
    # rbk_<8 hex>_<secret>: the secret may hold "_" itself (URL-safe base64)
    secret = token.split("_", 2)[2]
    assert len(secret) >= 20
    assert secret not in rb("tokens", "list", "-a", "north").stdout
    with store.read() as conn:
        (stored,) = conn.execute(sa.select(api_tokens.c.secret_hash)).scalars()
    assert secret not in stored

    other = "y" if token.endswith("x") else "x"  # one character off, whatever the last one is
    assert auth.authenticate_token(store, token[:-1] + other) is None

    rb("tokens", "revoke", "-a", "north", str(listed[0]["id"]))
    assert auth.authenticate_token(store, token) is None
    refused = rb("tokens", "revoke", "-a", "north", "999", ok=False)
    assert refused.exit_code != 0 and "no token 999" in refused.stderr
    refused = rb("tokens", "create", "-a", "nowhere", "--name", "x", ok=False)
    assert refused.exit_code != 0 and "nowhere" in refused.stderr


def test_users_and_roles(rb: Rollbook, store: Store) -> None:
    rb("accounts", "create", "north")
    rb("accounts", "create", "south")
    rb(
        "users",
        "create",
        "Pat@North.edu",
        "-a",
        "north",
        "--role",
        "admin",
        "--password",
        "correct horse",
    )
    rb("users", "grant", "pat@north.edu", "-a", "south", "--role", "read-only")
    assert rb("users", "list", "-a", "south").stdout.split() == ["pat@north.edu", "read-only"]
    with store.read() as conn:
        (hashed,) = conn.execute(sa.select(users.c.password_hash)).scalars()
    assert hashed.startswith("$argon2id$")

    user_id = auth.login(store, "pat@north.edu", "correct horse")
    assert user_id is not None
    assert auth.login(store, "pat@north.edu", "wrong horse!") is None
    assert auth.login(store, "nobody@north.edu", "correct horse") is None
    assert [(a["slug"], a["role"]) for a in auth.user_accounts(store, user_id)] == [
        ("north", "admin"),
        ("south", "read-only"),
    ]

    short = rb("users", "create", "sam@north.edu", "--password", "short", ok=False)
    assert short.exit_code != 0 and "at least 10 characters" in short.stderr
    again = rb("users", "create", "pat@north.edu", "--password", "long enough pw", ok=False)
    assert again.exit_code != 0 and "already a user" in again.stderr
    nobody = rb("users", "grant", "sam@north.edu", "-a", "north", ok=False)
    assert nobody.exit_code != 0 and "no user" in nobody.stderr


def test_a_password_reset_or_a_disabled_user_ends_their_sessions(
    rb: Rollbook, store: Store
) -> None:
    rb("accounts", "create", "north")
    rb("users", "create", "pat@north.edu", "-a", "north", "--password", "correct horse")
    pat = auth.login(store, "pat@north.edu", "correct horse")
    assert pat is not None
    other = rb("users", "create", "sam@north.edu", "-a", "north", "--password", "battery staple")
    assert other.exit_code == 0
    sam = auth.login(store, "sam@north.edu", "battery staple")
    assert sam is not None
    pats, sams = sessions.start(store, pat), sessions.start(store, sam)

    rb("users", "password", "Pat@North.edu", "--password", "a new horse")
    assert auth.login(store, "pat@north.edu", "correct horse") is None
    assert auth.login(store, "pat@north.edu", "a new horse") == pat
    assert sessions.find(store, pats) is None
    assert sessions.find(store, sams) is not None  # only Pat's sessions end

    pats = sessions.start(store, pat)
    rb("users", "disable", "pat@north.edu")
    assert auth.login(store, "pat@north.edu", "a new horse") is None
    assert sessions.find(store, pats) is None
    assert rb("users", "list", "-a", "north").stdout.split()[:2] == ["pat@north.edu", "staff"]
    rb("users", "enable", "pat@north.edu")
    assert auth.login(store, "pat@north.edu", "a new horse") == pat

    short = rb("users", "password", "pat@north.edu", "--password", "short", ok=False)
    assert short.exit_code != 0 and "at least 10 characters" in short.stderr
    for args in (
        ("password", "nobody@north.edu", "--password", "long enough pw"),
        ("disable", "nobody@north.edu"),
    ):
        nobody = rb("users", *args, ok=False)
        assert nobody.exit_code != 0 and "no user" in nobody.stderr
