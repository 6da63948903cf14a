"""rollbook — a contact store for teams that text students."""

import os as _os

# The allocators of the libraries an import runs on, set before either is loaded (each reads
# its setting once, when it starts). An import frees and reallocates its batches all the time.
# Polars' jemalloc hands freed pages back lazily (``MADV_FREE``) after 0.5 s, and such pages
# count in the process's resident memory until the system runs short; with ``muzzy_decay_ms:0``
# they are given back outright. Arrow's default pool (mimalloc) kept more than its jemalloc
# pool does. Together ~10% of a million-row import's peak (docs/deployment.md). An operator's
# own settings win. (Polars puts its own defaults before ours; jemalloc takes the last.)
_os.environ.setdefault("_RJEM_MALLOC_CONF", "muzzy_decay_ms:0")
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
