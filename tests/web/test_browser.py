"""A registrar's term, in Debian's Chromium against a real ``rollbook serve``: sign in, import
the fall file, correct a number the student sent, clear an email with UNSET, then upload the
spring export — whose ID column was renamed and which still has the old number — see the drift
warning, map it, watch it run, read the results, download both reports. A form posted without
its CSRF token changes nothing, and another account's user sees none of it.

Every page is saved as a screenshot under test-output/screenshots/<test>/."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import sqlalchemy as sa
from benchmarks.datagen import population
from playwright.sync_api import Page, expect
from tests.support.processes import Server
from tests.web.conftest import Shots

from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.store import Store, schema

PASSWORD = "correct horse battery staple"
FALL = [
    ["Student ID", "First Name", "Last Name", "Mobile Phone", "Email"],
    ["S1001", "Maria", "Lopez", "(212) 555-0142", "maria.lopez@students.example.edu"],
    ["S1002", "Wei", "Chen", "415.555.0199", "wei.chen@students.example.edu"],
    ["S1003", "Aisha", "Okafor", "+1 617 555 0123", "aisha.okafor@students.example.edu"],
    ["S1004", "James", "Smith", "3125550166", "james.smith@students.example.edu"],
    ["S1005", "Sofia", "Garcia", "(213) 555-0177", "sofia.garcia@students.example.edu"],
    ["S1006", "Liam", "Nguyen", "305-555-0188", "liam.nguyen@students.example.edu"],
    ["S1007", "Fatima", "Khan", "4045550111", "fatima.khan@students.example.edu"],
    ["S1008", "Noah", "Johnson", "503.555.0122", "noah.johnson@students.example.edu"],
    ["S1009", "Priya", "Patel", "(206) 555-0133", "priya.patel@students.example.edu"],
    ["S1010", "Mateo", "Rossi", "not known", "mateo.rossi@students.example.edu"],
]
#: Rows the spring file adds, so that its import runs long enough to watch.
SPRING_EXTRA = 150_000
MARIA_NEW = "(646) 555-0175"


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _spring() -> bytes:
    """The spring export: the ID column renamed to StudentID, Maria's old number still in it,
    a program column, and the rest of the population."""
    rows = [["StudentID", "First Name", "Last Name", "Mobile Phone", "Email", "Program"]]
    rows += [[*r, "Nursing"] for r in FALL[1:]]
    rows += [[r[0], r[1], r[2], r[3], r[4], r[8]] for r in population(SPRING_EXTRA, seed=7)]
    return _csv(rows)


def _sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/contacts")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/contacts$"))


def _upload(page: Page, base: str, name: str, data: bytes) -> None:
    page.goto(base + "/imports/new")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def _mapped(page: Page, column: str, field: str) -> None:
    page.get_by_label(column, exact=True).select_option(field)


def _maria(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.contacts).where(schema.contacts.c.crm_id == "S1001")
        ).one()
    return dict(row._mapping)


def _download(page: Page, link: str) -> str:
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    path = info.value.path()
    return Path(path).read_text(encoding="utf-8-sig")


def test_a_registrars_term(server: Server, store: Store, page: Page, shots: Shots) -> None:
    accounts_service.create_account(store, "westfield", region="US", name="Westfield College")
    auth.create_user(store, "registrar@westfield.example", PASSWORD)
    auth.grant(store, "registrar@westfield.example", "westfield", "admin")
    base = server.base

    # Sign in: the login page, then back to the page asked for.
    page.goto(base + "/contacts")
    shots(page, "login")
    _sign_in(page, base, "registrar@westfield.example")
    shots(page, "contacts-empty")

    # The fall file: Student ID is suggested, not assumed; the staffer maps it.
    _upload(page, base, "fall.csv", _csv(FALL))
    expect(page.get_by_text("encoding utf-8")).to_be_visible()
    expect(page.get_by_text("delimiter comma")).to_be_visible()
    _mapped(page, "Student ID", "crm_id")
    _mapped(page, "Mobile Phone", "phone")
    shots(page, "fall-columns")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="If you import this file")).to_be_visible()
    shots(page, "fall-preview")
    page.get_by_role("button", name="Import now").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("fall.csv")
    expect(page.locator(".counts")).to_contain_text("9")  # 9 created, Mateo's phone refused
    shots(page, "fall-results")
    assert _maria(store)["phone"] == "+12125550142"

    # Maria texted her new number: the staffer changes it, naming the source and the reason,
    # and clears her old email with UNSET.
    page.goto(base + "/contacts?search=lopez")
    page.get_by_role("link", name="Maria Lopez").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Maria Lopez")
    page.get_by_label("Phone", exact=True).fill(MARIA_NEW)
    page.get_by_label("The student sent it").check()
    page.get_by_label("Reason").fill("Texted us her new number")
    page.get_by_label("Email", exact=True).fill("UNSET")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").or_(page.locator(".flash"))).to_contain_text("Saved")
    expect(page.get_by_label("Email", exact=True)).to_have_value("")
    expect(page.locator("#history-h + table")).to_contain_text("+1 212-555-0142")
    expect(page.get_by_text("Texted us her new number").first).to_be_visible()
    shots(page, "contact-panel")
    maria = _maria(store)
    assert maria["phone"] == "+16465550175" and maria["email"] is None
    assert maria["phone_source"] == "contact"

    # An empty box is not a change: the panel says to type UNSET, and keeps the value.
    page.get_by_label("First name").fill("")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("UNSET")
    assert _maria(store)["first_name"] == "Maria"

    # A form posted without its CSRF token is refused, and changes nothing.
    response = page.request.post(
        f"{base}/contacts/{maria['id']}", form={"f:first_name": "Mallory"}, max_redirects=0
    )
    assert response.status == 403
    assert "nothing was changed" in response.text()
    assert _maria(store)["first_name"] == "Maria"

    # The admin adds the field the spring file brings: the program, a choice.
    page.goto(base + "/settings")
    page.get_by_label("Key").fill("program")
    page.get_by_label("Label", exact=True).fill("Program")
    page.get_by_label("Type").select_option("choice")
    page.get_by_label("Options (choice fields)").fill(
        "Nursing, Biology, History, Computer Science, Business"
    )
    page.get_by_role("button", name="Add field").click()
    expect(page.locator("#fields table")).to_contain_text("Computer Science")
    shots(page, "settings-field-added")

    # The spring export: the ID column was renamed. The drift guard names it.
    _upload(page, base, "spring.csv", _spring())
    warning = page.get_by_role("alert").filter(has_text="No column is mapped to CRM ID")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Student ID")  # where earlier files had the IDs
    expect(warning).to_contain_text("StudentID")  # the likely column now
    shots(page, "spring-drift-warning", full=False)
    page.get_by_role("button", name="Use “StudentID” as CRM ID").click()
    expect(page.get_by_label("StudentID", exact=True)).to_have_value("crm_id")
    expect(page.get_by_role("alert").filter(has_text="No column is mapped")).to_have_count(0)
    shots(page, "spring-columns")

    # The real run, with its live progress bar, then the results.
    page.get_by_role("button", name="Import now").click()
    expect(page.locator("progress[data-progress]")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("in progress")
    rows_in_file = f"{len(FALL) - 1 + SPRING_EXTRA:,}"
    # Part-way ("… of N rows (…%)") or, once every row is checked, saving ("All N rows …").
    counted = re.compile(rf"(of {rows_in_file} rows \(|All {rows_in_file} rows checked; saving)")
    expect(page.locator("[data-progress-text]")).to_have_text(counted)
    shots(page, "spring-progress")
    expect(page.get_by_role("heading", level=1)).to_contain_text("spring.csv", timeout=180_000)
    codes = page.get_by_role("region", name="Codes")
    expect(codes).to_contain_text("contact-out-of-sync")
    expect(codes).to_contain_text("invalid-phone")
    shots(page, "spring-results", full=False)

    # The problem rows, filtered to the stale number.
    page.get_by_label("Code", exact=True).select_option("contact-out-of-sync")
    page.get_by_role("button", name="Filter").click()
    problems = page.locator("table.problems tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text("2")  # the file's row 2: Maria
    shots(page, "spring-problem-rows")
    maria = _maria(store)
    assert maria["phone"] == "+16465550175", "the stale file reverted the corrected number"

    # Both reports, as downloaded.
    rows = list(csv.DictReader(io.StringIO(_download(page, "Row report (CSV)"))))
    assert len(rows) == len(FALL) - 1 + SPRING_EXTRA
    by_row = {r["row"]: r for r in rows}
    assert "contact-out-of-sync" in by_row["2"]["codes"]
    assert by_row["2"]["status"] == "updated"  # the program was written, the phone kept
    assert "invalid-phone" in by_row["11"]["codes"]  # Mateo's phone
    changed = list(csv.DictReader(io.StringIO(_download(page, "Changed numbers (CSV)"))))
    mine = [r for r in changed if r["crm_id"] == "S1001"]
    assert len(mine) == 1 and mine[0]["row"] == "2"
    assert mine[0]["current_phone"] == "'+16465550175"  # formula-safe: a leading apostrophe
    assert re.sub(r"\D", "", mine[0]["file_phone"]).endswith("2125550142")
    assert mine[0]["change_source"] == "contact"

    page.goto(base + "/imports")
    expect(page.get_by_role("link", name="spring.csv")).to_be_visible()
    shots(page, "import-history")
    page.goto(base + f"/contacts/{maria['id']}")
    expect(page.get_by_role("heading", name="Protected from stale files")).to_be_visible()
    expect(page.get_by_label("Program", exact=True)).to_have_value("Nursing")
    expect(page.get_by_label("Phone", exact=True)).to_have_value("+1 646-555-0175")
    shots(page, "contact-after-spring")
    page.goto(base + "/settings")
    shots(page, "settings")


def test_another_accounts_user_sees_none_of_it(
    server: Server, store: Store, page: Page, shots: Shots
) -> None:
    for slug, email in (("north", "north@example.edu"), ("south", "south@example.edu")):
        accounts_service.create_account(store, slug, region="US")
        auth.create_user(store, email, PASSWORD)
        auth.grant(store, email, slug, "admin")
    base = server.base

    # North imports its students.
    _sign_in(page, base, "north@example.edu")
    _upload(page, base, "north.csv", _csv(FALL))
    _mapped(page, "Student ID", "crm_id")
    _mapped(page, "Mobile Phone", "phone")
    page.get_by_role("button", name="Import now").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("north.csv")
    north_import = page.url.rsplit("/", 1)[1]
    maria = _maria(store)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))

    # South's admin finds nothing of North's, wherever they look.
    _sign_in(page, base, "south@example.edu")
    expect(page.locator("table.list tbody tr")).to_have_count(0)
    shots(page, "south-contacts")
    for url in (
        "/contacts?search=Maria",
        "/contacts?search=2125550142",
        "/contacts?search=S1001",
        "/contacts?show=all",
        "/imports",
        "/settings",
    ):
        page.goto(base + url)
        body = page.locator("main").inner_text()
        for secret in ("Maria", "Lopez", "S1001", "555-0142", "north.csv"):
            assert secret not in body, f"{url} shows {secret!r}"
    for url in (
        f"/contacts/{maria['id']}",
        f"/imports/{north_import}",
        f"/imports/{north_import}/rows.csv",
        f"/imports/{north_import}/changed-numbers.csv",
    ):
        response = page.request.get(base + url)
        assert response.status == 404, url
        assert "Maria" not in response.text() and "S1001" not in response.text()
    page.goto(base + f"/contacts/{maria['id']}")
    shots(page, "south-not-found")
