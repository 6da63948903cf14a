"""The import's connection, driven by a thread of its own.

An import's writes and its reads must happen in order, on one connection, in one transaction:
batch 2's lookups must see batch 1's writes. But batch 2 can be *planned* while batch 1 is being
written, as long as it only reads when it must — and then after batch 1's writes. So every
statement goes through this worker, in the order it was handed over: ``submit`` queues work and
returns at once (writes), ``call`` queues work and waits for its result (reads, which thereby
see everything submitted before them). SQLite lets go of the interpreter while it works, so
writing one batch and planning the next share the machine's cores. (A re-import queues a
batch's reads before the writes of the batch before, and brings what they found up to date
with that batch's plan: ``engine._Reads``.)

Nothing but the worker touches the connection while it runs; an error in submitted work is
raised in the importing thread at its next ``call`` or at ``drain``. Work may be submitted from
more than one thread (the flags thread submits the row report): each thread's work runs in the
order it submitted it.

A large read that must see the account as it was when the import began, and none of the
import's writes, need not wait its turn: ``ReadAtStart`` runs it beside the worker, on a
connection of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

T = TypeVar("T")
_STOP = object()


class DbWorker:
    """``ahead``: how many submitted jobs may wait before ``submit`` waits too — the importing
    thread plans at most that far ahead of the writes, so memory holds a few batches at most."""

    def __init__(self, conn: Connection, ahead: int = 2) -> None:
        self.conn = conn
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rollbook-db", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            future, fn, args = job
            if self._failed is not None:  # after a failure, nothing more is done
                future.set_exception(self._failed)
                continue
            try:
                future.set_result(fn(self.conn, *args))
            except BaseException as error:
                self._failed = error
                future.set_exception(error)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(conn, *args)``; do not wait."""
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Queue ``fn(conn, *args)`` after everything queued before, and wait for its result."""
        result: T = self.submit(fn, *args).result()
        return result

    def drain(self) -> None:
        """Wait for everything queued; raise the first error any of it raised."""
        self.call(lambda conn: None)

    def close(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join()


class ReadAtStart(Generic[T]):
    """``fn(other, *args)`` run on a thread of its own, on a second connection to ``conn``'s
    database, in a read transaction: it sees what was committed before ``conn``'s write
    transaction and none of its writes — the account as it was when the import began, since the
    import holds the account's writers off until it commits (SQLite's write lock, PostgreSQL's
    ``lock_account``). ``possible(conn)`` is false where a second connection would be another
    database (SQLite in memory): the caller reads through the worker instead."""

    def __init__(self, conn: Connection, fn: Callable[..., T], *args: Any) -> None:
        self._future: Future[T] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(conn, fn, args), name="rollbook-read", daemon=True
        )
        self._thread.start()

    @staticmethod
    def possible(conn: Connection) -> bool:
        url = conn.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    def _run(self, conn: Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            with conn.engine.connect() as other:
                other.info["rollbook_write"] = False
                with other.begin():
                    result = fn(other, *args)
        except BaseException as error:  # raised where the result is asked for
            self._future.set_exception(error)
            return
        self._future.set_result(result)

    def result(self) -> T:
        return self._future.result()

    def join(self) -> None:
        """Wait until the read and its connection are done, whatever happened."""
        self._thread.join()


class Direct:
    """The same interface, on the calling thread (for callers that want no thread)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(self.conn, *args))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self.conn, *args)

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


Db = DbWorker | Direct
