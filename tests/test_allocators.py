"""The allocators an import runs on are set when rollbook is imported, before Polars and Arrow
load (each reads its setting once), and an operator's own settings win."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, os, sys
import rollbook
import pyarrow as pa
import polars  # noqa: F401 (loads its allocator with the setting)
print(json.dumps({
    "polars": os.environ.get("_RJEM_MALLOC_CONF"),
    "arrow": pa.default_memory_pool().backend_name,
}))
"""


def _probe(**env: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("_RJEM_MALLOC_CONF", "ARROW_DEFAULT_MEMORY_POOL")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_importing_rollbook_sets_the_allocators_before_polars_and_arrow_load() -> None:
    got = _probe()
    # Polars puts its own defaults first; jemalloc takes the last value of each option.
    assert got["polars"].split(",")[-1] == "muzzy_decay_ms:0"
    assert got["arrow"] == "jemalloc"


def test_an_operators_allocator_settings_win() -> None:
    got = _probe(_RJEM_MALLOC_CONF="dirty_decay_ms:2000", ARROW_DEFAULT_MEMORY_POOL="system")
    assert got["polars"].split(",")[-1] == "dirty_decay_ms:2000"
    assert "muzzy_decay_ms:0" not in got["polars"]
    assert got["arrow"] == "system"
