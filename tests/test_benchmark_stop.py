"""The benchmark, stopped by a signal while it runs, stops what it started: an operator's `kill`,
or a CI's time limit, leaves no PostgreSQL server and no measured command running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.postgres import stop_left
from tests.support.processes import until

ROOT = Path(__file__).resolve().parents[1]

#: The benchmark's main, its files in a folder of the test's (not the checkout's), and its
#: rollbook command the one given.
RUN = """
import sys
from pathlib import Path
import benchmarks.import_1m as b
b.DATA = Path(sys.argv[1])
b.ROLLBOOK = sys.argv[2]
sys.argv = ["import_1m.py", "--rows", "200", "--runs", "1", "--no-peer", "--no-double"]
b.main()
"""

#: rollbook, but an import takes two minutes: the benchmark is stopped while it measures one.
SLOW_IMPORTS = """#!/bin/sh
case " $* " in
  *" import "*) exec "{python}" -c "import time; time.sleep(120)" "$@" ;;
  *) exec "{rollbook}" "$@" ;;
esac
"""


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid → (parent's pid, command line) of every process."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        found[int(proc.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), cmdline)
    return found


def _mentioning(folder: Path) -> list[int]:
    """The processes whose command lines name something in ``folder``."""
    mark = str(folder).encode()
    return [pid for pid, (_, cmd) in _processes().items() if mark in cmd]


def _none_left(folder: Path, seconds: float = 10) -> bool:
    """Do the processes naming ``folder`` end within ``seconds`` (a killed one takes a moment)?"""
    try:
        until(lambda: not _mentioning(folder), timeout=seconds)
    except TimeoutError:
        return False
    return True


def _importing(folder: Path) -> bool:
    """Is the benchmark measuring an import of ``folder``'s files (a child of its probe)?"""
    processes = _processes()
    mark = str(folder).encode()
    return any(
        mark in cmd and b"time.sleep" in cmd and b"getrusage" in processes.get(parent, (0, b""))[1]
        for parent, cmd in processes.values()
    )


@pytest.mark.slow
@pytest.mark.usefixtures("postgres")  # skipped where PostgreSQL is left out of the run
def test_a_benchmark_stopped_by_sigterm_stops_its_server_and_the_command_it_measures() -> None:
    # A temporary folder of its own (the server's user must reach it): the benchmark's server
    # is the only one in it.
    own = Path(tempfile.mkdtemp(prefix="rollbook-stop-"))
    own.chmod(0o755)
    data = own / "data"
    log = own / "benchmark.log"
    rollbook = own / "rollbook"
    real = Path(sys.executable).parent / "rollbook"
    rollbook.write_text(SLOW_IMPORTS.format(python=sys.executable, rollbook=real))
    rollbook.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "ROLLBOOK_BENCH_POSTGRES_URL"}
    with log.open("wb") as out:
        bench = subprocess.Popen(
            [sys.executable, "-c", RUN, str(data), str(rollbook)],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env={**env, "TMPDIR": str(own)},
        )
    try:
        until(lambda: bench.poll() is not None or _importing(data), timeout=120)
        assert bench.poll() is None, log.read_text()
        (cluster,) = own.glob("rollbook-pg-*")
        assert (cluster / "data" / "postmaster.pid").exists()
        bench.send_signal(signal.SIGTERM)
        code = bench.wait(timeout=60)
        assert _none_left(cluster), "the benchmark left its PostgreSQL server running"
        assert not cluster.exists(), "the benchmark left its PostgreSQL server's folder"
        assert _none_left(data, seconds=5), "the benchmark left the import it measured running"
        assert code == 128 + signal.SIGTERM, log.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for cluster in own.glob("rollbook-pg-*"):
            stop_left(cluster / "data")
        for pid in _mentioning(own):  # what a failing benchmark left running
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(own, ignore_errors=True)
