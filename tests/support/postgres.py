"""A throwaway PostgreSQL cluster for the tests and benchmarks, started from the installed server
binaries (Debian's ``postgresql`` package; ``.ci/run`` installs it where it is missing).

``ROLLBOOK_TEST_POSTGRES_URL`` points the tests at an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bin(name: str) -> str | None:
    """The PostgreSQL server binary ``name``: on PATH, else Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    """A local TCP port no one listens on now (the cluster's, or a test server's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    datadir: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        subprocess.run(
            [*self.run_as, pg_ctl or "pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb a new cluster in a temporary folder and start it on a free local port. Stopped or
    failing part-way, it leaves no server and no folder behind."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL server binaries not found (initdb, pg_ctl). Install Debian's 'postgresql' "
            "package, or set ROLLBOOK_TEST_POSTGRES_URL."
        )
    base = Path(tempfile.mkdtemp(prefix="rollbook-pg-"))
    cluster = Cluster(base / "data", free_port(), _run_as())
    try:
        _start(cluster, initdb, pg_ctl)
    except BaseException:  # a failure, or the process stopped (Ctrl-C, SIGTERM) meanwhile
        cluster.stop()
        raise
    return cluster


def _start(cluster: Cluster, initdb: str, pg_ctl: str) -> None:
    base, run_as = cluster.datadir.parent, cluster.run_as
    if run_as:
        shutil.chown(base, user=run_as[2])
        os.chmod(base, 0o700)
    subprocess.run(
        [
            *run_as,
            initdb,
            "-D",
            str(cluster.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(cluster.datadir),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    _wait_ready(cluster.port)


def stop_left(datadir: Path) -> None:
    """Stop a cluster ``start_cluster`` started whose ``Cluster`` is gone (its process was
    killed), and remove its folder."""
    Cluster(datadir, 0, _run_as()).stop()


def _run_as() -> list[str]:
    """What the server's binaries are run through: as ``postgres`` (or ``nobody``) when we are
    root, for the server refuses to run as root."""
    if os.geteuid() != 0:
        return []
    user = "postgres" if shutil.which("runuser") and _user_exists("postgres") else "nobody"
    return ["runuser", "-u", user, "--"]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
