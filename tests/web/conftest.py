"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
``rollbook serve`` on localhost. Screenshots of each page go to test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tests.support.processes import Server

from rollbook.store import Store

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"


def chromium() -> str:
    """Debian's Chromium (Playwright's own browser download is not used)."""
    path = os.environ.get("ROLLBOOK_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "the dashboard tests need Chromium: apt-get install chromium "
            "(or set ROLLBOOK_CHROMIUM to a Chromium binary)"
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium(),
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def server(store: Store, tmp_path: Path) -> Iterator[Server]:
    s = Server(store.engine.url.render_as_string(hide_password=False), tmp_path / "server.log")
    s.start()
    yield s
    s.stop()


class Shots:
    """Numbered screenshots of one test, full page, under test-output/screenshots/<name>/."""

    def __init__(self, name: str) -> None:
        self.folder = SHOTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.n = 0

    def __call__(self, page: Page, what: str, full: bool = True) -> Path:
        """The page, whole; or, with ``full=False``, what the screen shows (long tables)."""
        self.n += 1
        path = self.folder / f"{self.n:02d}-{what}.png"
        page.screenshot(path=str(path), full_page=full)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    name = request.node.name.replace("[", "-").replace("]", "")
    return Shots(name)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 800}, accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()
