"""Two files imported fresh, alternating, side by side in one run: the shared part of
benchmarks/unmapped_columns.py and benchmarks/workbook.py."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.datagen import population, write
from benchmarks.import_1m import DATA, fresh_sqlite, import_cmd, measure, setup_account


def base_file(rows: int) -> Path:
    """The benchmark's file of ``rows`` rows (the one benchmarks/import_1m.py imports fresh)."""
    path = DATA / f"contacts-{rows}.csv"
    if not path.exists():
        write(path, population(rows))
    return path


def compare(title: str, base: tuple[str, Path], other: tuple[str, Path], runs: int) -> None:
    """Import ``base`` and ``other`` (name, file) fresh into empty SQLite accounts, alternating
    which goes first, ``runs`` rounds, each in a process of its own; print each round, then
    each file's median and peak, and ``other``'s time over ``base``'s round by round."""
    files = [base, other]
    times: dict[str, list[float]] = {name: [] for name, _ in files}
    peaks: dict[str, list[float]] = {name: [] for name, _ in files}
    width = max(len(name) for name, _ in files)
    with tempfile.TemporaryDirectory(prefix="rollbook-bench-") as tmp:
        for run in range(runs):
            for name, path in files if run % 2 == 0 else files[::-1]:
                _, db = fresh_sqlite(Path(tmp), name)
                setup_account(db)
                wall, rss = measure(import_cmd(db, path))
                times[name].append(wall)
                peaks[name].append(rss)
                print(f"run {run + 1}: {name:{width}} {wall:6.2f} s {rss:5.0f} MB", flush=True)
    print()
    print(title)
    for name, path in files:
        size = path.stat().st_size / 1e6
        print(
            f"  {name:{width}} ({size:4.0f} MB): median {statistics.median(times[name]):.2f} s, "
            f"peak {max(peaks[name]):.0f} MB"
        )
    each = [o / b for o, b in zip(times[other[0]], times[base[0]], strict=True)]
    ratios = ", ".join(f"{r:.2f}" for r in each)
    print(f"  {other[0]} / {base[0]}: {statistics.median(each):.2f}× ({ratios})")
