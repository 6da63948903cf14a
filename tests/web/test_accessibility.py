"""Accessible markup and keyboard use, checked in Chromium on every page a staffer works in:
each control has a name a screen reader says (a label, not a placeholder), each page one
heading of level 1 and a language, and the sign-in and the import wizard work from the
keyboard alone."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from tests.support.cli import write_csv
from tests.support.processes import Server

from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import imports as imports_service
from rollbook.store import Store

PASSWORD = "a long enough password"
FILE = (
    "Student ID,First Name,Last Name,Mobile Phone,Email\n"
    "S1,Maria,Lopez,(212) 555-0142,maria@example.edu\n"
    "S2,Wei,Chen,not a phone,wei@example.edu\n"
)

#: Visible controls without an accessible name, and other basics, as the page reports them.
AUDIT = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (!visible(el) || el.type === "hidden") continue;
    const labelled =
      (el.labels && el.labels.length && [...el.labels].some((l) => l.textContent.trim())) ||
      el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") ||
      ((el.tagName === "BUTTON" || el.tagName === "A") && el.textContent.trim());
    const what = el.name || el.id || el.outerHTML.slice(0, 80);
    if (!labelled) problems.push(`${el.tagName.toLowerCase()} ${what} has no name`);
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 headings`);
  if (!document.documentElement.lang) problems.push("no lang");
  if (!document.title.trim()) problems.push("no title");
  for (const img of document.querySelectorAll("img")) {
    if (!img.alt) problems.push("img without alt");
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) problems.push(`duplicate ids ${twice}`);
  return problems;
}"""


def _audit(page: Page) -> None:
    problems = page.evaluate(AUDIT)
    assert problems == [], f"{page.url}: {problems}"


def test_pages_name_every_control_and_work_from_the_keyboard(
    server: Server, store: Store, page: Page, tmp_path: Path
) -> None:
    accounts_service.create_account(store, "north", region="US", name="North College")
    accounts_service.add_field(store, "north", "program")  # so settings offers a rename too
    auth.create_user(store, "staff@north.example", PASSWORD)
    auth.grant(store, "staff@north.example", "north", "admin")
    path = write_csv(tmp_path / "fall.csv", FILE)
    done = imports_service.import_file(
        store,
        "north",
        path,
        imports_service.ImportOptions(explicit={"Student ID": "crm_id", "Mobile Phone": "phone"}),
    )
    base = server.base

    # Sign in with the keyboard alone: the email box has the focus; Tab, type, Enter.
    page.goto(base + "/login")
    _audit(page)
    # (The audit finds what it looks for: a box without a label, added for a moment.)
    page.evaluate("() => document.body.append(document.createElement('input'))")
    assert any("has no name" in p for p in page.evaluate(AUDIT))
    page.reload()
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type("staff@north.example")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/contacts$"))

    # The first Tab reaches "Skip to content", which moves past the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    for url in (
        "/contacts",
        "/contacts?search=lopez",
        "/contacts/1",
        "/contacts/new",
        "/imports",
        f"/imports/{done.import_id}",
        "/imports/new",
        "/settings",
    ):
        page.goto(base + url)
        _audit(page)

    # The import wizard from the keyboard: choose the file, upload, map a column, preview.
    page.goto(base + "/imports/new")
    page.get_by_label("Drop a CSV or Excel file here").focus()
    page.set_input_files("#file", str(path))
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Upload")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("fall.csv")
    _audit(page)
    page.get_by_label("Mobile Phone", exact=True).select_option("phone")
    page.get_by_role("button", name="Preview").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="If you import this file")).to_be_visible()
    _audit(page)
