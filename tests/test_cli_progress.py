"""The import's progress bar, as a user sees it on a terminal (a real pseudo-terminal: the bar is
drawn only when standard error is one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Rollbook, write_csv
from tests.support.processes import on_a_terminal

FILE = (
    "Student ID,First Name,Last Name,Mobile Phone\n"
    "N1,Ana,Diaz,(206) 555-0101\n"
    "N2,Bo,Li,206.555.0102\n"
)


@pytest.mark.parametrize(
    ("dry_run", "last_step"), [(False, "Saving"), (True, "Finishing the dry run")]
)
def test_the_bar_says_what_it_waits_for_once_every_row_is_checked(
    rb: Rollbook, tmp_path: Path, dry_run: bool, last_step: str
) -> None:
    rb("accounts", "create", "north", "--region", "US")
    path = write_csv(tmp_path / "fall.csv", FILE)
    args = ["import", str(path), "-a", "north"]
    args += ["--map", "Student ID=crm_id", "--map", "First Name=first_name"]
    args += ["--map", "Last Name=last_name", "--map", "Mobile Phone=phone"]
    shown = on_a_terminal(rb.url, *args, *(["--dry-run"] if dry_run else []))
    # The bar starts as "Importing"; with every row checked it says what is left, at 2 of 2.
    assert shown.index("Importing") < shown.index(last_step), shown
    assert "2/2" in shown[shown.index(last_step) :], shown
    assert "rows: 2 created" in shown, shown
