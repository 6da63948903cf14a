"""The import engine and the store's bulk writes evaluate a frame's expressions on the calling
thread (``select_seq``, ``with_columns_seq``), not in Polars' thread pool.

An import keeps both cores busy with its own threads. A frame's ``select`` or ``with_columns``
of two or more expressions hands them to Polars' pool and waits: ~100 µs of CPU a call on a
10-row frame, against ~50 µs on the calling thread, and the import makes thousands of such
calls, most on small frames. A fresh million took ~6% less time and ~0.7 s less CPU with the
sequential forms (docs/benchmarks.md, "2026-12-07, late evening"). This test keeps a new call
from slipping back to the pooled form unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import rollbook

SRC = Path(rollbook.__file__).parent
FILES = [*sorted((SRC / "importing").glob("*.py")), SRC / "store" / "bulk.py"]
POOLED = {"select", "with_columns"}
#: ``sa.select`` is SQLAlchemy's; ``pl.select`` builds a frame from one expression.
NOT_FRAMES = {"sa", "pl"}
#: Calls on objects that are not Polars frames, by file: the file reader's Arrow record batch.
NOT_POLARS = {"importing/read.py": {"cells.select"}}


def _pooled_calls(path: Path, root: Path = SRC) -> list[str]:
    found = []
    text = path.read_text(encoding="utf-8")
    allowed = NOT_POLARS.get(path.relative_to(root).as_posix(), set())
    for node in ast.walk(ast.parse(text)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in POOLED:
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and receiver.id in NOT_FRAMES:
            continue
        if ast.get_source_segment(text, node.func) in allowed:
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
        "frame.filter(x).select('a', 'b')\n"
    )
    assert _pooled_calls(sample, tmp_path) == ["sample.py:1 .with_columns(", "sample.py:5 .select("]
