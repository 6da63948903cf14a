"""The README's first command: ``rollbook demo --serve`` seeds a living demo account and runs
the dashboard, and the printed demo user signs in to find it — contacts, past imports with
their codes, protected numbers, and a renamed file that the drift guard catches."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from tests.support.processes import Process, free_port, until
from tests.web.conftest import Shots

from rollbook.services import auth
from rollbook.services.demo import DEMO_EMAIL, RENAMED_FILE
from rollbook.store import Store


def test_the_demo_serves_a_living_account(
    store: Store, tmp_path: Path, page: Page, shots: Shots
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    url = store.engine.url.render_as_string(hide_password=False)
    demo = Process(url, log, "demo", "--serve", "--port", str(port), "--folder", str(tmp_path))
    demo.start()
    try:
        until(lambda: httpx.get(f"{base}/healthz").status_code == 200)
        printed = log.read_text()
        found = re.search(rf"sign in as {re.escape(DEMO_EMAIL)} with the password (\S+)", printed)
        assert found, printed
        password = found[1]
        assert auth.login(store, DEMO_EMAIL, password) is not None
        assert password not in (tmp_path / "first-import-rows.csv").read_text()

        page.goto(base + "/")
        page.get_by_label("Email").fill(DEMO_EMAIL)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        rows = page.locator("table.list tbody tr")
        expect(rows).to_have_count(50)  # the first page of the demo's students
        expect(page.get_by_text("Demo College")).to_be_visible()
        shots(page, "contacts", full=False)

        page.goto(base + "/imports")
        expect(page.locator("table.list tbody tr")).to_have_count(2)
        shots(page, "imports")
        page.get_by_role("link", name="spring-2027.csv").click()
        codes = page.get_by_role("region", name="Codes")
        expect(codes).to_contain_text("contact-out-of-sync")
        shots(page, "spring-import", full=False)
        page.get_by_role("link", name="contact-out-of-sync").first.click()
        problem = page.locator("table.problems tbody tr").first
        problem.get_by_role("link").click()
        expect(page.get_by_role("heading", name="Protected from stale files")).to_be_visible()
        shots(page, "protected-contact")

        page.goto(base + "/imports/new")
        page.set_input_files("#file", str(tmp_path / RENAMED_FILE))
        page.get_by_role("button", name="Upload").click()
        warning = page.get_by_role("alert").filter(has_text="No column is mapped to CRM ID")
        expect(warning).to_contain_text("StudentID")
        shots(page, "drift-warning", full=False)
    finally:
        demo.stop()
