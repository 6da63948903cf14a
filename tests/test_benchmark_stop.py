"""The benchmark, stopped by a signal while it runs, stops the PostgreSQL server it started:
an operator's `kill`, or a CI's time limit, leaves no server running in the temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.postgres import stop_left

ROOT = Path(__file__).resolve().parents[1]

#: The benchmark's main with its files in a folder of the test's (not the checkout's).
RUN = """
import sys
from pathlib import Path
import benchmarks.import_1m as b
b.DATA = Path(sys.argv[1])
sys.argv = ["import_1m.py", "--rows", "200", "--runs", "1000", "--no-peer", "--no-double"]
b.main()
"""


def _clusters() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("rollbook-pg-*"))


def _serving(cluster: Path) -> bool:
    """Is a process running with the cluster's data folder on its command line?"""
    mark = f"{cluster}/data".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if mark in cmdline.read_bytes():
                return True
        except OSError:  # the process ended meanwhile
            continue
    return False


def test_a_benchmark_stopped_by_sigterm_stops_its_postgresql_server(tmp_path: Path) -> None:
    before = _clusters()
    log = tmp_path / "benchmark.log"
    with log.open("wb") as out:
        bench = subprocess.Popen(
            [sys.executable, "-c", RUN, str(tmp_path)],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            # Its own throwaway server, not an operator's.
            env={k: v for k, v in os.environ.items() if k != "ROLLBOOK_BENCH_POSTGRES_URL"},
        )
    started: set[Path] = set()
    try:
        deadline = time.monotonic() + 120
        # Running once the server's pid file is there, and the first run has begun.
        while time.monotonic() < deadline and bench.poll() is None:
            started = {c for c in _clusters() - before if (c / "data" / "postmaster.pid").exists()}
            if started and (tmp_path / "work" / "rollbook.db").exists():
                break
            time.sleep(0.2)
        assert bench.poll() is None, log.read_text()
        assert len(started) == 1, f"the benchmark's server did not start: {started}"
        bench.send_signal(signal.SIGTERM)
        code = bench.wait(timeout=60)
        (cluster,) = started
        assert not _serving(cluster), "the benchmark left its PostgreSQL server running"
        assert not cluster.exists(), "the benchmark left its PostgreSQL server's folder"
        assert code == 128 + signal.SIGTERM, log.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for cluster in started:
            if cluster.exists():
                stop_left(cluster / "data")
