"""The import's progress bar, as a user sees it on a terminal (a real pseudo-terminal: the bar is
drawn only when standard error is one)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollbook.store import Store
from tests.support.cli import Rollbook, write_csv

FILE = (
    "Student ID,First Name,Last Name,Mobile Phone\n"
    "N1,Ana,Diaz,(206) 555-0101\n"
    "N2,Bo,Li,206.555.0102\n"
)


def _on_a_terminal(store: Store, *args: str) -> str:
    """What ``rollbook ARGS`` writes to a terminal, from start to exit."""
    url = store.engine.url.render_as_string(hide_password=False)
    ours, theirs = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollbook", "--db", url, *args],
        stdin=theirs,
        stdout=theirs,
        stderr=theirs,
        close_fds=True,
    )
    os.close(theirs)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ours], [], [], left)[0]:
                # A command that does not end fails the test rather than hanging the run.
                proc.kill()
                proc.wait()
                raise AssertionError(f"no end after 120 s: {out.decode(errors='replace')}")
            try:
                chunk = os.read(ours, 4096)
            except OSError:  # the terminal's other end closed: the command ended
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(ours)
    shown = out.decode(errors="replace")
    assert proc.wait(timeout=60) == 0, shown
    return shown


@pytest.mark.parametrize(
    ("dry_run", "last_step"), [(False, "Saving"), (True, "Finishing the dry run")]
)
def test_the_bar_says_what_it_waits_for_once_every_row_is_checked(
    rb: Rollbook, store: Store, tmp_path: Path, dry_run: bool, last_step: str
) -> None:
    rb("accounts", "create", "north", "--region", "US")
    path = write_csv(tmp_path / "fall.csv", FILE)
    args = ["import", str(path), "-a", "north"]
    args += ["--map", "Student ID=crm_id", "--map", "First Name=first_name"]
    args += ["--map", "Last Name=last_name", "--map", "Mobile Phone=phone"]
    shown = _on_a_terminal(store, *args, *(["--dry-run"] if dry_run else []))
    # The bar starts as "Importing"; with every row checked it says what is left, at 2 of 2.
    assert shown.index("Importing") < shown.index(last_step), shown
    assert "2/2" in shown[shown.index(last_step) :], shown
    assert "rows: 2 created" in shown, shown
