"""The million-row benchmark's report: medians, each run's own ratio, and the issue's checks."""

from __future__ import annotations

import argparse

import pytest
from benchmarks.import_1m import KEYS, Measure, report, run_ratios


def _args(rows: int = 1000) -> argparse.Namespace:
    return argparse.Namespace(rows=rows, write_docs=False)


def test_each_run_is_compared_within_itself() -> None:
    floor = Measure(wall=[2.0, 1.0, 4.0])
    fresh = Measure(wall=[5.0, 3.5, 10.0])
    assert run_ratios(fresh, floor) == [2.5, 3.5, 2.5]


def test_report_prints_medians_each_runs_ratios_and_the_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = {k: Measure() for k in KEYS}
    m["raw"] = Measure(wall=[2.0, 2.0, 3.0], rss_mb=[10, 10, 10])
    m["fresh"] = Measure(wall=[5.0, 7.0, 6.0], rss_mb=[500, 520, 510])
    m["peer"] = Measure(wall=[60.0, 56.0, 90.0], rss_mb=[30, 30, 30])
    m["double"] = Measure(wall=[12.0], rss_mb=[700])
    report(_args(), m, "")
    out = capsys.readouterr().out
    # medians: floor 2.0, fresh 6.0 -> 3.00x; each run: 2.5, 3.5, 2.0
    assert "| (b) rollbook fresh import, SQLite | 1,000 | 6.00 | 167 | 520 | 3.00× | 3 |" in out
    assert "- PASS: fresh import ≤ 3× sqlite3 .import: 3.00× (each run: 2.50×, 3.50×, 2.00×)" in out
    # the peer over rollbook: medians 60 / 6 = 10x; each run 12, 8, 15
    assert "- PASS: ≥ 8× faster than sqlite-utils upsert: 10.0× (each run: 12.00×" in out
    assert "- PASS: peak RSS of the 1,000-row import ≤ 600 MB: 520 MB" in out
    assert "- FAIL: 2,000 rows take ≤ 1.3× the 1,000-row peak RSS: 1.35×" in out
    # what was not measured is not judged
    assert "re-import" not in out and "PostgreSQL" not in out and "share" not in out


def test_report_gives_the_stores_own_share_without_judging_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = {k: Measure() for k in KEYS}
    m["raw"] = Measure(wall=[2.0, 2.0, 3.0], rss_mb=[10, 10, 10])
    m["store"] = Measure(wall=[4.0, 5.0, 4.5], rss_mb=[20, 20, 20])
    m["pg_raw"] = Measure(wall=[1.0, 1.0, 1.0], rss_mb=[10, 10, 10])
    m["pg_store"] = Measure(wall=[12.0, 10.0, 11.0], rss_mb=[10, 10, 10])
    report(_args(), m, "")
    out = capsys.readouterr().out
    assert "| (g) SQLite alone: (b)'s contacts into an empty store | 1,000 | 4.50 |" in out
    assert "| 2.25× | 3 |" in out
    assert (
        "- the store's share (no target): SQLite alone, the contacts into rollbook's schema: "
        "2.25× sqlite3 .import (each run: 2.00×, 2.50×, 1.50×)" in out
    )
    assert "PostgreSQL alone, the contacts into rollbook's schema: 11.00× COPY" in out
    assert "PASS" not in out and "FAIL" not in out
