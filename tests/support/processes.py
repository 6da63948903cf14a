"""rollbook as real processes for tests: ``rollbook serve`` on a free local port, ``rollbook
worker``; waiting for them by polling (an external process is the one to wait for)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.postgres import free_port


def until(what: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``what`` until it returns something truthy (an external process is the one to
    wait for here)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = what()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


class Process:
    """``python -m rollbook --db URL <args>`` as a real process."""

    def __init__(self, url: str, log: Path, *args: str) -> None:
        self.url, self.log, self.args = url, log, args
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    def start(self) -> None:
        env = {
            **os.environ,
            "ROLLBOOK_STALE_JOB_SECONDS": "0",
            "ROLLBOOK_LOG_LEVEL": "WARNING",
            **self.env,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rollbook", "--db", self.url, *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Server(Process):
    def __init__(self, url: str, log: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(url, log, "serve", "--port", str(self.port), *args)

    def start(self) -> None:
        super().start()
        until(lambda: httpx.get(f"{self.base}/healthz").status_code == 200)


def on_a_terminal(url: str, *args: str) -> str:
    """What ``rollbook --db URL ARGS`` writes to a terminal, from start to exit: a real
    pseudo-terminal, since the progress bar is drawn only on one. It must end within 120 s, and
    succeed."""
    ours, theirs = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollbook", "--db", url, *args],
        stdin=theirs,
        stdout=theirs,
        stderr=theirs,
        close_fds=True,
    )
    os.close(theirs)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ours], [], [], left)[0]:
                # A command that does not end fails the test rather than hanging the run.
                proc.kill()
                proc.wait()
                raise AssertionError(f"no end after 120 s: {out.decode(errors='replace')}")
            try:
                chunk = os.read(ours, 4096)
            except OSError:  # the terminal's other end closed: the command ended
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(ours)
    shown = out.decode(errors="replace")
    assert proc.wait(timeout=60) == 0, shown
    return shown
