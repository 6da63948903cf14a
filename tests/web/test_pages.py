"""The dashboard's guards, route by route (on SQLite and PostgreSQL): every form refuses a post
without its CSRF token; every page and form given another account's object answers 404 and
shows none of it; signing in and out, the next-page rule, cookies, roles and the login limit."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.api.conftest import CLIENT_LOGGERS

from rollbook.api import ApiSettings, create_app
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.store import Store, schema
from rollbook.web.app import PAGES

PASSWORD = "a long enough password"
FILE = (
    b"Student ID,First Name,Last Name,Mobile Phone,Email\r\n"
    b"N1,Maria,Lopez,(212) 555-0142,maria.lopez@north.example.edu\r\n"
    b"N2,Wei,Chen,415.555.0199,wei.chen@north.example.edu\r\n"
    b"N3,Aisha,Okafor,not a phone,aisha.okafor@north.example.edu\r\n"
)
#: What a page of the south account must never show.
NORTH_SECRETS = ("Maria", "Lopez", "north.example.edu", "555-0142", "5550142", "N1", "north.csv")
ROUTES = [r for m in PAGES for r in m.router.routes if isinstance(r, APIRoute)]
POSTS = sorted(r.path for r in ROUTES if "POST" in r.methods)
WITH_IDS = sorted(r.path for r in ROUTES if "GET" in r.methods and "{" in r.path)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Web:
    client: TestClient
    store: Store
    ids: dict[str, int] = field(default_factory=dict)  # north's objects, by path parameter

    def sign_in(self, email: str, next: str = "/contacts") -> str:
        """Sign in as ``email`` (signing out whoever was); returns the session's CSRF token."""
        self.client.cookies.clear()
        page = self.client.get("/login", params={"next": next})
        token = _CSRF.search(page.text)
        assert token, page.text
        response = self.client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token[1], "next": next},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return self.csrf()

    def csrf(self) -> str:
        found = _CSRF.search(self.client.get("/contacts").text)
        assert found
        return found[1]

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(url, data=data or {}, follow_redirects=False, **kw)


def _seed(store: Store) -> None:
    for slug in ("north", "south"):
        accounts_service.create_account(store, slug, region="US", name=slug.title())
    for email, slug, role in (
        ("admin@north.example", "north", "admin"),
        ("staff@north.example", "north", "staff"),
        ("reader@north.example", "north", "read-only"),
        ("admin@south.example", "south", "admin"),
    ):
        auth.create_user(store, email, PASSWORD)
        auth.grant(store, email, slug, role)


@pytest.fixture
def web(store: Store) -> Iterator[Web]:
    _seed(store)
    app = create_app(ApiSettings(rate_limit_per_minute=100_000), store=store)
    with TestClient(app, base_url="http://testserver") as client:
        w = Web(client, store)
        w.ids = _north_objects(w)
        yield w


def _north_objects(w: Web) -> dict[str, int]:
    """North's admin uploads and imports a file and makes a token, through the pages."""
    csrf = w.sign_in("admin@north.example")
    up = w.post(
        "/imports/new",
        {"csrf_token": csrf},
        files={"file": ("north.csv", FILE, "text/csv")},
    )
    upload_id = int(up.headers["location"].rsplit("/", 1)[1])
    page = w.client.get(f"/uploads/{upload_id}").text
    form = {
        "csrf_token": csrf,
        "action": "import",
        **{f"map:{i}": v for i, v in enumerate(["crm_id", "first_name", "last_name", "phone"])},
        "map:4": "email",
    }
    assert "Student ID" in page
    run = w.post(f"/uploads/{upload_id}", form)
    job_id = int(run.headers["location"].rsplit("/", 1)[1])
    w.client.app.state.runner.wait()  # type: ignore[attr-defined]
    done = w.client.get(f"/jobs/{job_id}", follow_redirects=False)
    import_id = int(done.headers["location"].rsplit("/", 1)[1])
    made = w.post(
        "/settings/tokens", {"csrf_token": csrf, "name": "north-sis-feed", "role": "staff"}
    )
    assert made.status_code in (200, 303), made.text
    with w.store.engine.connect() as conn:
        contact_id = conn.execute(
            sa.select(schema.contacts.c.id).where(schema.contacts.c.crm_id == "N1")
        ).scalar_one()
        token_id = conn.execute(sa.select(sa.func.max(schema.api_tokens.c.id))).scalar_one()
    return {
        "contact_id": contact_id,
        "upload_id": upload_id,
        "job_id": job_id,
        "import_id": import_id,
        "token_id": token_id,
    }


def _url(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m[1]]), path)


#: A form each route would act on, were its token there.
FORMS: dict[str, dict[str, str]] = {
    "/login": {"email": "admin@north.example", "password": PASSWORD},
    "/switch-account": {"account": "north"},
    "/contacts/new": {"f:first_name": "Mallory", "f:phone": "2125550100"},
    "/contacts/{contact_id}": {"f:first_name": "Mallory", "f:email": "UNSET"},
    "/uploads/{upload_id}": {"action": "import"},
    "/settings/account": {"region": "GB"},
    "/settings/fields": {"key": "mallory", "type": "text"},
    "/settings/fields/rename": {"key": "program", "new_key": "mallory"},
    "/settings/users": {"email": "mallory@evil.example", "password": PASSWORD, "role": "admin"},
    "/settings/tokens": {"name": "mallory", "role": "admin"},
}


def _state(store: Store) -> dict[str, Any]:
    """Everything a form could change, to compare before and after."""
    with store.engine.connect() as conn:
        out: dict[str, Any] = {}
        for table in schema.metadata.sorted_tables:
            if table.name in ("web_sessions",):
                continue
            rows = conn.execute(sa.select(table)).mappings().all()
            out[table.name] = sorted(
                (repr(sorted(dict(r).items())) for r in rows),
            )
        out["live_sessions"] = conn.execute(
            sa.select(sa.func.count()).select_from(schema.web_sessions)
        ).scalar_one()
    return out


def test_the_dashboard_has_the_forms_this_test_walks() -> None:
    assert len(POSTS) >= 15 and "/contacts/{contact_id}" in POSTS
    assert {"/contacts/{contact_id}", "/imports/{import_id}", "/jobs/{job_id}"} <= set(WITH_IDS)


def test_every_form_refuses_a_post_without_its_csrf_token(web: Web) -> None:
    accounts_service.add_field(web.store, "north", "program")  # for the rename form to act on
    csrf = web.sign_in("admin@north.example")
    before = _state(web.store)
    for path in POSTS:
        url = _url(path, web.ids)
        files = {"file": ("x.csv", FILE, "text/csv")} if path == "/imports/new" else None
        for token in (None, "forged" + csrf[6:], ""):
            data = dict(FORMS.get(path, {}))
            if token is not None:
                data["csrf_token"] = token
            response = web.post(url, data, files=files)
            assert response.status_code == 403, (path, token, response.status_code)
            assert "nothing was changed" in response.text or "expired" in response.text, path
    assert _state(web.store) == before
    # The same session still works: the refusals did not sign anyone out.
    assert web.client.get("/contacts", follow_redirects=False).status_code == 200


def test_the_csrf_token_may_come_as_a_header(web: Web) -> None:
    csrf = web.sign_in("admin@north.example")
    response = web.post(
        f"/contacts/{web.ids['contact_id']}",
        {"f:first_name": "Mariana"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 303
    assert "Mariana" in web.client.get(f"/contacts/{web.ids['contact_id']}").text


def test_another_accounts_objects_answer_404_on_every_page_and_form(web: Web) -> None:
    csrf = web.sign_in("admin@south.example")
    before = _state(web.store)
    for path in WITH_IDS:
        response = web.client.get(_url(path, web.ids), follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
        if "status" not in path and not path.endswith(".csv"):  # a page, with the header
            assert "Sign out" in response.text and "South" in response.text, path
        for secret in NORTH_SECRETS:
            assert secret not in response.text, (path, secret)
    for path in POSTS:
        if "{" not in path:
            continue
        data = {**FORMS.get(path, {}), "csrf_token": csrf}
        response = web.post(_url(path, web.ids), data)
        assert response.status_code == 404, (path, response.status_code)
        for secret in NORTH_SECRETS:
            assert secret not in response.text, (path, secret)
    assert _state(web.store) == before


def test_another_accounts_lists_searches_and_exports_show_none_of_it(web: Web) -> None:
    web.sign_in("admin@south.example")
    for url in (
        "/contacts",
        "/contacts?show=all",
        "/contacts?search=Maria",
        "/contacts?search=(212)%20555-0142",
        "/contacts?search=N1",
        "/contacts/export",
        "/imports",
        "/settings",
    ):
        response = web.client.get(url)
        assert response.status_code == 200, url
        assert not re.findall(r'href="/contacts/\d+"', response.text), url
        query = unquote(url.partition("search=")[2])
        shown = response.text  # but for the query itself, echoed in the search box and links
        for echo in (query, quote_plus(query), quote(query)) if query else ():
            shown = shown.replace(echo, "")
        for secret in (*NORTH_SECRETS, "north-sis-feed", "staff@north.example"):
            assert secret not in shown, (url, secret)
    # North's import label is not south's: no such label here.
    assert web.client.get("/contacts?label=import-1").status_code == 404
    # And south cannot switch itself into north.
    response = web.post("/switch-account", {"account": "north", "csrf_token": web.csrf()})
    assert response.status_code == 404
    assert "Maria" not in web.client.get("/contacts").text


def test_signing_in_and_out(web: Web) -> None:
    web.client.cookies.clear()
    page = web.client.get("/login")
    token = _CSRF.search(page.text)
    assert token and page.headers["cache-control"] == "no-store"
    for email, password in (
        ("admin@north.example", "wrong password!"),
        ("nobody@north.example", PASSWORD),
    ):
        response = web.post(
            "/login", {"email": email, "password": password, "csrf_token": token[1]}
        )
        assert response.status_code == 401
        assert "do not match an account" in response.text
        assert "rollbook_session" not in response.cookies
    # Asked for a page first: sent to sign in, then back to it.
    asked = web.client.get("/imports?x=1", follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=/imports%3Fx%3D1"
    response = web.post(
        "/login",
        {
            "email": "admin@north.example",
            "password": PASSWORD,
            "csrf_token": token[1],
            "next": "/imports?x=1",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/imports?x=1"
    cookie = response.headers["set-cookie"]
    assert "rollbook_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    old_session = web.client.cookies["rollbook_session"]
    # Signing out ends the session on the server, not only in the browser.
    out = web.post("/logout", {"csrf_token": web.csrf()})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    web.client.cookies.set("rollbook_session", old_session)
    assert web.client.get("/contacts", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "x"],
)
def test_sign_in_never_sends_to_another_site(web: Web, target: str) -> None:
    web.client.cookies.clear()
    token = _CSRF.search(web.client.get("/login").text)
    assert token
    response = web.post(
        "/login",
        {
            "email": "admin@north.example",
            "password": PASSWORD,
            "csrf_token": token[1],
            "next": target,
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/contacts"


def test_sign_in_attempts_are_limited(web: Web) -> None:
    web.client.cookies.clear()
    token = _CSRF.search(web.client.get("/login").text)
    assert token

    def attempt(password: str) -> int:
        data = {"email": "admin@north.example", "password": password, "csrf_token": token[1]}
        return int(web.post("/login", data).status_code)

    statuses = [attempt("guess") for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429
    assert statuses == sorted(statuses)  # once limited, limited (10 a minute, per address)
    assert attempt(PASSWORD) == 429  # even with the right password: no sign-in
    assert "rollbook_session" not in web.client.cookies


def test_roles_decide_what_a_user_may_do(web: Web) -> None:
    accounts_service.add_field(web.store, "north", "program")  # for the rename form to act on
    contact = f"/contacts/{web.ids['contact_id']}"
    csrf = web.sign_in("reader@north.example")
    assert web.client.get(contact).status_code == 200
    assert 'name="f:first_name"' in web.client.get(contact).text  # shown, read-only
    before = _state(web.store)
    refused = web.post(contact, {"f:first_name": "Mallory", "csrf_token": csrf})
    assert refused.status_code == 403 and "staff role" in refused.text
    assert web.client.get("/imports/new").status_code == 403
    assert web.post("/settings/tokens", {"name": "x", "csrf_token": csrf}).status_code == 403
    csrf = web.sign_in("staff@north.example")
    assert web.post(contact, {"f:first_name": "Mariana", "csrf_token": csrf}).status_code == 303
    for url, data in (
        ("/settings/fields", FORMS["/settings/fields"]),
        ("/settings/fields/rename", FORMS["/settings/fields/rename"]),
        ("/settings/users", FORMS["/settings/users"]),
        ("/settings/account", FORMS["/settings/account"]),
    ):
        response = web.post(url, {**data, "csrf_token": csrf})
        assert response.status_code == 403 and "admin role" in response.text, url
    after = _state(web.store)
    assert after["accounts"] == before["accounts"] and after["users"] == before["users"]
    assert after["field_defs"] == before["field_defs"]


def test_an_admin_renames_a_field_on_the_settings_page(web: Web) -> None:
    csrf = web.sign_in("admin@north.example")
    assert "Rename a field" not in web.client.get("/settings").text  # no custom field yet
    added = web.post("/settings/fields", {"key": "program", "type": "text", "csrf_token": csrf})
    assert added.status_code == 303
    page = web.client.get("/settings").text
    assert "Rename a field" in page and '<option value="program">program</option>' in page
    refused = web.post(
        "/settings/fields/rename", {"key": "program", "new_key": "ph", "csrf_token": csrf}
    )
    assert refused.status_code == 422 and "imports use that name" in refused.text
    renamed = web.post(
        "/settings/fields/rename",
        {"key": "program", "new_key": "major", "label": "Major", "csrf_token": csrf},
    )
    assert renamed.status_code == 303 and renamed.headers["location"] == "/settings#fields"
    page = web.client.get("/settings").text
    assert "Field program is now major." in page
    relabelled = web.post(
        "/settings/fields/rename",
        {"key": "major", "new_key": "major", "label": "Main subject", "csrf_token": csrf},
    )
    assert relabelled.status_code == 303
    assert "Field major is now Main subject." in web.client.get("/settings").text
    page = web.client.get("/settings").text  # the message shown once
    assert '<option value="major">major</option>' in page
    assert '<td class="mono">major</td>' in page and '<td class="mono">program</td>' not in page


def test_pages_carry_the_security_headers(web: Web) -> None:
    web.sign_in("admin@north.example")
    for url in ("/contacts", f"/contacts/{web.ids['contact_id']}", "/settings", "/login"):
        headers = web.client.get(url).headers
        assert headers["content-security-policy"].startswith("default-src 'self'"), url
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"


def test_odd_digits_in_a_search_or_a_form_are_not_errors(web: Web) -> None:
    web.sign_in("admin@north.example")
    for search in ("²", "1" * 30, "٣"):  # digits Python calls digits, but no id is made of
        assert web.client.get("/contacts", params={"search": search}).status_code == 200
    response = web.post(
        f"/uploads/{web.ids['upload_id']}",
        {"csrf_token": web.csrf(), "action": "import", "preview_job": "²"},
    )
    assert response.status_code in (303, 409), response.status_code


def test_import_now_takes_a_preview_of_the_same_file_only(web: Web) -> None:
    csrf = web.sign_in("admin@north.example")
    other = web.post(
        "/imports/new",
        {"csrf_token": csrf},
        files={"file": ("other.csv", b"StudentID,Mobile Phone\r\nX1,2125550100\r\n", "text/csv")},
    )
    other_id = int(other.headers["location"].rsplit("/", 1)[1])
    before = _state(web.store)
    # The first file's job, offered as the preview of the second: its choices do not carry over.
    response = web.post(
        f"/uploads/{other_id}",
        {"csrf_token": csrf, "action": "import", "preview_job": str(web.ids["job_id"])},
    )
    assert response.status_code == 404
    assert _state(web.store) == before


def test_a_form_sent_with_an_oddly_written_content_type_is_still_checked(web: Web) -> None:
    csrf = web.sign_in("admin@north.example")
    response = web.client.post(
        "/settings/tokens",
        content=f"csrf_token={csrf}&name=nightly%00x&role=staff",
        headers={"Content-Type": "Application/X-WWW-Form-Urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 422 and "NUL" in response.text


def test_a_form_shown_for_one_account_does_not_act_on_another(web: Web) -> None:
    """Settings open in one tab for north; another tab switches to south; the first tab's form
    is refused, and neither account gets the field."""
    auth.grant(web.store, "admin@north.example", "south", "admin")
    north_form = web.sign_in("admin@north.example")
    switched = web.post("/switch-account", {"account": "south", "csrf_token": north_form})
    assert switched.status_code == 303
    assert "South" in web.client.get("/contacts").text
    before = _state(web.store)
    stale = web.post(
        "/settings/fields", {"key": "meant_for_north", "type": "text", "csrf_token": north_form}
    )
    assert stale.status_code == 403 and "another account" in stale.text
    assert _state(web.store) == before
    # Reloaded, the page's own form works.
    fresh = web.post(
        "/settings/fields", {"key": "meant_for_south", "type": "text", "csrf_token": web.csrf()}
    )
    assert fresh.status_code == 303
    assert "meant_for_south" in web.client.get("/settings").text


def test_a_user_removed_from_their_account_lands_in_another_of_theirs(web: Web) -> None:
    auth.grant(web.store, "admin@north.example", "south", "staff")
    web.sign_in("admin@north.example")
    with web.store.engine.begin() as conn:
        conn.execute(
            schema.memberships.delete().where(
                schema.memberships.c.account_id
                == sa.select(schema.accounts.c.id)
                .where(schema.accounts.c.slug == "north")
                .scalar_subquery()
            )
        )
    page = web.client.get("/contacts")
    assert page.status_code == 200 and "South" in page.text and "Maria" not in page.text


def test_cookies_are_secure_when_the_operator_says_so(store: Store) -> None:
    _seed(store)
    for setting, secure in ((False, False), (True, True)):
        app = create_app(ApiSettings(secure_cookies=setting), store=store)
        with TestClient(app, base_url="http://testserver") as client:
            page = client.get("/login")
            assert ("secure" in page.headers["set-cookie"].lower()) is secure
            token = _CSRF.search(page.text)
            assert token
            client.cookies.set("rollbook_login_csrf", token[1], path="/login")
            response = client.post(
                "/login",
                data={"email": "admin@north.example", "password": PASSWORD, "csrf_token": token[1]},
                follow_redirects=False,
            )
            session = [c for c in response.headers.get_list("set-cookie") if "session" in c]
            assert session and ("secure" in session[0].lower()) is secure


def test_the_list_and_its_export_apply_the_same_filters(web: Web) -> None:
    csrf = web.sign_in("admin@north.example")
    # (Aisha's row was skipped: her phone was refused, and a phone is required.) Wei is archived.
    with web.store.engine.connect() as conn:
        wei = conn.execute(
            sa.select(schema.contacts.c.id).where(schema.contacts.c.crm_id == "N2")
        ).scalar_one()
    assert web.post(f"/contacts/{wei}/archive", {"csrf_token": csrf}).status_code == 303

    def names(url: str) -> set[str]:
        text = web.client.get(url).text
        return {n for n in ("Maria", "Wei", "Aisha") if n in text}

    for where in ("/contacts", "/contacts/export"):
        assert names(where) == {"Maria"}, where
        assert names(f"{where}?show=archived") == {"Wei"}, where
        assert names(f"{where}?show=all") == {"Maria", "Wei"}, where
        assert names(f"{where}?show=all&search=chen") == {"Wei"}, where
        assert names(f"{where}?show=all&missing_phone=true") == set(), where
        assert names(f"{where}?show=all&opted_out=yes") == set(), where
        assert names(f"{where}?show=all&opted_out=no") == {"Maria", "Wei"}, where


def test_the_dashboards_logs_carry_no_personal_data(web: Web) -> None:
    """Signing in (right and wrong), searching by phone and email, editing a phone, uploading
    and importing through the pages: the log has the routes, never the values."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.split(".")[0] not in CLIENT_LOGGERS:  # the test client's own lines
                lines.append(self.format(record))

    keep, root = Keep(level=logging.DEBUG), logging.getLogger()
    root.addHandler(keep)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        web.client.cookies.clear()
        token = _CSRF.search(web.client.get("/login").text)
        assert token
        web.post(
            "/login",
            {"email": "admin@north.example", "password": "wrong one!", "csrf_token": token[1]},
        )
        csrf = web.sign_in("admin@north.example")
        web.client.get("/contacts", params={"search": "(212) 555-0142"})
        web.client.get("/contacts", params={"search": "maria.lopez@north.example.edu"})
        contact = f"/contacts/{web.ids['contact_id']}"
        web.post(contact, {"f:phone": "(646) 555-0175", "reason": "texted", "csrf_token": csrf})
        web.post("/imports/new", {"csrf_token": csrf}, files={"file": ("n.csv", FILE, "text/csv")})
    finally:
        root.removeHandler(keep)
        root.setLevel(level)
    text = "\n".join(lines)
    assert "/contacts/{contact_id}" in text, "nothing was logged: the capture is not working"
    for secret in ("555", "5550142", "5550175", "@north.example", "Maria", "Lopez", PASSWORD):
        assert secret not in text, secret


@pytest.mark.parametrize(
    ("kind", "done", "total", "said"),
    [
        ("import", None, None, "Reading rows…"),
        ("import", 1000, 3000, "1,000 of 3,000 rows (33%)"),
        ("import", 3000, 3000, "All 3,000 rows checked; saving…"),
        ("preview", 3000, 3000, "All 3,000 rows checked; finishing the preview…"),
        ("import", 0, 0, "The file has no rows; saving…"),
    ],
)
def test_a_running_jobs_bar_says_how_far_it_is_and_what_is_left_once_it_is_full(
    web: Web, kind: str, done: int | None, total: int | None, said: str
) -> None:
    """The page and its polled status say the same: once every row is checked, the last writes
    and the commit still take a moment, and the label says so rather than sitting at 100%."""
    job_id = web.ids["job_id"]
    with web.store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.jobs)
            .where(schema.jobs.c.id == job_id)
            .values(kind=kind, status="running", progress_done=done, progress_total=total)
        )
    web.sign_in("reader@north.example")
    label = re.search(r"data-progress-text>([^<]*)<", web.client.get(f"/jobs/{job_id}").text)
    assert label is not None and label[1] == said
    status = web.client.get(f"/jobs/{job_id}/status").json()
    assert status == {"status": "running", "done": done, "total": total, "text": said}
