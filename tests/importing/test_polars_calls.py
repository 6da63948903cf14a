"""The import engine and the store's bulk writes evaluate a frame's expressions one after
another (``select_seq``, ``with_columns_seq``), not side by side in Polars' thread pool.

An import keeps both cores busy with its own threads, and makes thousands of such calls, most
on small frames. A ``select`` or ``with_columns`` of two expressions cost 137–175 µs of CPU on a
10-row frame, against 47–55 µs for the sequential form. Through the command, a fresh million
took ~2% less time with the sequential forms and the next term ~6% less (medians of five
alternating rounds; docs/benchmarks.md, "2026-12-07, late evening"). This test keeps a new
call from slipping back to the pooled form unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import rollbook

SRC = Path(rollbook.__file__).parent
FILES = [*sorted((SRC / "importing").glob("*.py")), SRC / "store" / "bulk.py"]
POOLED = {"select", "with_columns"}
#: Calls that are not on Polars frames, by file, as written: the file reader's Arrow batch.
NOT_POLARS = {"importing/read.py": {"cells.select(self.columns)"}}


def _pooled_calls(path: Path, root: Path = SRC) -> list[str]:
    found = []
    text = path.read_text(encoding="utf-8")
    allowed = NOT_POLARS.get(path.relative_to(root).as_posix(), set())
    for node in ast.walk(ast.parse(text)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in POOLED:
            continue
        module = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        if module == "sa":
            continue  # SQLAlchemy's select
        if module == "pl" and len(node.args) + len(node.keywords) <= 1:
            continue  # a frame of one expression: nothing to run side by side
        if ast.get_source_segment(text, node) in allowed:
            continue
        found.append(f"{path.relative_to(root)}:{node.lineno} .{node.func.attr}(")
    return found


def test_the_engine_and_the_bulk_writes_use_the_sequential_frame_calls() -> None:
    pooled = [call for path in FILES for call in _pooled_calls(path)]
    assert not pooled, "use select_seq / with_columns_seq:\n" + "\n".join(pooled)


def test_the_check_finds_a_pooled_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "frame.with_columns(a=1)\nframe.select_seq('a')\nsa.select(t)\npl.select(e)\n"
        "frame.filter(x).select('a', 'b')\npl.select(e, f)\n"
    )
    assert _pooled_calls(sample, tmp_path) == [
        "sample.py:1 .with_columns(",
        "sample.py:5 .select(",
        "sample.py:6 .select(",
    ]
