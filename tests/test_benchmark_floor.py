"""The benchmark's row (a), the SQLite floor: the `sqlite3` command line imports the whole file,
wherever the checkout is."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from benchmarks.datagen import population, write
from benchmarks.import_1m import floor_cmd

ROWS = 300


def test_the_floor_imports_every_row_from_a_path_with_spaces_quotes_and_backslashes(
    tmp_path: Path,
) -> None:
    sqlite3_bin = shutil.which("sqlite3")
    assert sqlite3_bin, "the sqlite3 command line is missing (make test installs it)"
    folder = tmp_path / 'Registrar\'s "exports" \\ fall'
    folder.mkdir()
    csv_path = write(folder / "students.csv", population(ROWS))
    db = tmp_path / "raw.db"
    subprocess.run(floor_cmd(sqlite3_bin, db, csv_path), check=True, capture_output=True)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROWS,)
