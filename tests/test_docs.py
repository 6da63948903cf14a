"""The docs say what the code does: every code documented with its one-line summary, every CLI
command documented and with help, the README's first lines the two newcomer commands."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from rollbook.cli import main
from rollbook.model import CODE_SUMMARIES, Code

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, path))
        else:
            found.append((path, cmd))
    return found


def _paragraph_after(text: str, heading: str) -> str:
    match = re.search(re.escape(heading) + r"\n(.+?)\n\n", text, re.S)
    assert match, f"no section {heading!r}"
    return " ".join(match.group(1).split())


@pytest.mark.parametrize("code", list(Code))
def test_every_code_is_documented_with_its_summary(code: Code) -> None:
    text = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    assert _paragraph_after(text, f"### `{code.value}`") == CODE_SUMMARIES[code]


@pytest.mark.parametrize("path,cmd", _commands(main), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_the_cli_docs(path: str, cmd: click.Command) -> None:
    assert cmd.help, f"rollbook {path} has no help"
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"### `rollbook {path}" in text, f"docs/cli.md does not document rollbook {path}"
    for param in cmd.params:
        if isinstance(param, click.Option) and param.help is None:
            raise AssertionError(f"rollbook {path} {param.opts[0]} has no help")


def test_readme_starts_with_the_two_newcomer_commands() -> None:
    lines = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[1].startswith("make demo")
    assert lines[2].startswith("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_make_target_the_makefile_names_has_a_rule() -> None:
    """`.PHONY` once named a `bench` with no rule: `make bench` said only "No rule"."""
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert phony
    rules = set(re.findall(r"^([\w.$()/-]+):", text, re.M))
    assert set(phony.group(1).split()) <= rules
    assert "make bench" in (ROOT / "docs" / "benchmarks.md").read_text()
