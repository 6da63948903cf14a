"""Running the ``rollbook`` command in-process against a test database, as a user would type it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from rollbook.cli import main
from rollbook.store import Store


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Rollbook:
    """``rb("import", "f.csv", "-a", "acme")`` runs ``rollbook --db URL import f.csv -a acme``."""

    def __init__(self, store: Store, cwd: Path) -> None:
        self.url = store.engine.url.render_as_string(hide_password=False)
        self.cwd = cwd

    def __call__(self, *args: str, ok: bool = True) -> Run:
        runner = CliRunner()
        result = runner.invoke(main, ["--db", self.url, *map(str, args)], catch_exceptions=False)
        run = Run(result.exit_code, result.stdout, result.stderr)
        if ok and run.exit_code != 0:
            raise AssertionError(
                f"rollbook {' '.join(args)} failed ({run.exit_code}): {run.stderr}"
            )
        return run


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path
