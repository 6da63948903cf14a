"""Reading ahead: the file's batches read, normalised and prepared on a thread of their own, a
batch or two ahead of the batch being planned and written (``engine.run_import``). Reading and
normalising are Polars and Arrow work, and SQLite lets go of the interpreter while it writes, so
the two overlap on two cores.

In an account whose contacts carry import prints (``prints.py``), each batch's rows whose print
matches are set aside before they are normalised, and where most rows are, a few batches' other
rows are handed on together; ``settle`` puts back among the rows to plan the set-aside rows that
an earlier batch or another row reaches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl

from rollbook.importing.mapping import FileMapping
from rollbook.importing.normalise import NormalisedBatch, normalise_batch
from rollbook.importing.plan import Repeats
from rollbook.importing.prepare import PreparedBatch, prepare
from rollbook.importing.prints import KnownPrints, Passed, demote, row_prints, seed, split
from rollbook.importing.read import Batch, SourceFile
from rollbook.importing.worker import Db
from rollbook.model import AccountSettings


class Gate:
    """What splitting the batches read ahead waits for: the account's prints (read on the
    import's connection while the first pass runs), and the CRM IDs the file repeats (known
    after the first pass)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._read: Future[KnownPrints] | None = None
        self.known = KnownPrints(pl.DataFrame())
        self.repeated = pl.Series([], dtype=pl.String)

    def read(self, db: Db, account_id: int) -> None:
        """Queue the read of the account's prints."""
        self._read = db.submit(KnownPrints.read, account_id)

    def open(self, repeats: Repeats) -> None:
        """Once the first pass is done: wait for the prints, and let the reading go on."""
        assert self._read is not None, "the prints were never read"
        self.known = self._read.result()
        self.repeated = pl.Series(list(repeats.crm_rows), dtype=pl.String)
        self._open.set()

    def is_open(self) -> bool:
        return self._open.is_set()

    def wait(self, stop: threading.Event) -> bool:
        while not self._open.wait(0.1):
            if stop.is_set():
                return False
        return True


@dataclass
class ReadBatch:
    """A batch read ahead: the rows to plan, prepared; the rows whose print matched; and every
    row's print (row, print)."""

    prepared: PreparedBatch
    passed: Passed | None
    prints: pl.DataFrame


@dataclass
class _Split:
    """A batch read, its rows to plan not normalised yet (they are, with the rest of their
    group: ``_joined``)."""

    planned: Batch
    passed: Passed | None
    prints: pl.DataFrame


#: Batches read while the first pass runs and the prints are read (each ~10 MB of cells).
READ_WHILE_SHUT = 4

#: Batches read ahead that are planned together at most (when most of their rows are passed).
#: Each holds its cells until it is planned (its passed rows may have to be planned after all):
#: with 4, an unchanged million peaked ~40 MB higher, in the same time.
MAX_JOINED = 3


def _joined(reads: list[_Split], mapping: FileMapping, settings: AccountSettings) -> ReadBatch:
    """Consecutive batches read ahead as one, their rows to plan normalised and prepared
    together (for a few rows each, that is mostly the cost of the calls)."""
    planned = _concat_batches([r.planned for r in reads])
    prepared = prepare(normalise_batch(planned, mapping, settings), settings)
    passed = [r.passed for r in reads if r.passed is not None]
    joined = None
    if passed:
        joined = Passed(
            pl.concat([p.rows for p in passed]), _concat_batches([p.batch for p in passed])
        )
    return ReadBatch(prepared, joined, pl.concat([r.prints for r in reads]))


def _concat_batches(batches: list[Batch]) -> Batch:
    """Batches of the file, in row order, as one."""
    if len(batches) == 1:
        return batches[0]
    return Batch(
        pl.concat([b.rows for b in batches]),
        pl.concat([b.cells for b in batches], how="vertical_relaxed"),
        [bad for b in batches for bad in b.bad_rows],
        sum(b.blank_rows for b in batches),
        trimmed=all(b.trimmed for b in batches),
    )


def _concat(parts: list[PreparedBatch]) -> PreparedBatch:
    """Prepared parts of the file as one, in row order (``i`` is the position)."""
    first = parts[0]
    frame = (
        pl.concat([p.frame.drop("i") for p in parts], how="vertical_relaxed")
        .sort("row")
        .with_row_index("i")
    )
    nb = NormalisedBatch(
        pl.concat([p.batch.frame for p in parts], how="vertical_relaxed").sort("row"),
        first.batch.fields,
        [bad for p in parts for bad in p.batch.bad_rows],
        sum(p.batch.blank_rows for p in parts),
    )
    return PreparedBatch(frame.select_seq(first.frame.columns), nb)


def _to_plan(read: _Split) -> int:
    return read.planned.cells.height + len(read.planned.bad_rows)


class Ahead:
    """Reads, normalises and prepares the file's batches on a thread of its own.

    With a ``gate`` (the account has import prints), the rows whose print matches their
    contact's are set aside before they are normalised (prints.py)."""

    _DONE = object()

    def __init__(
        self,
        source: SourceFile,
        mapping: FileMapping,
        settings: AccountSettings,
        rows: int,
        gate: Gate | None,
    ) -> None:
        self.source, self.mapping, self.settings = source, mapping, settings
        self.rows, self.gate = rows, gate
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        return _hand_over(self._queue, item, self._stop)

    def _work(self) -> None:
        mapping, settings, gate = self.mapping, self.settings, self.gate
        pending: list[_Split] = []
        try:
            for batch, prints in self._printed():
                planned, passed = batch, None
                if gate is not None:
                    planned, passed = split(
                        batch, prints, mapping, settings, gate.known, gate.repeated
                    )
                frame = pl.DataFrame([batch.rows.alias("row"), prints])
                pending.append(_Split(planned, passed, frame))
                # Where most rows are passed, a few batches' rows are planned together: a plan
                # has a cost of its own, whatever its size.
                if len(pending) == MAX_JOINED or sum(_to_plan(r) for r in pending) * 2 > self.rows:
                    if not self._put(_joined(pending, mapping, settings)):
                        return
                    pending = []
            if pending and not self._put(_joined(pending, mapping, settings)):
                return
            self._put(self._DONE)
        except BaseException as error:  # handed to the reading side, which raises it
            self._put(error)

    def _printed(self) -> Iterator[tuple[Batch, pl.Series]]:
        """The batches with their rows' prints, once the gate is open; while it is shut, the
        first few are read meanwhile."""
        gate = self.gate
        key = seed(self.settings, self.mapping)
        early: list[tuple[Batch, pl.Series]] = []
        batches = _mapped_batches(self.source, self.mapping, self.rows)
        if gate is not None:
            batches = _read_beside(batches, self._stop)
        for batch in batches:
            early.append((batch, row_prints(batch, self.mapping, key)))
            if gate is None or gate.is_open() or len(early) == READ_WHILE_SHUT:
                if gate is not None and not gate.wait(self._stop):
                    return
                yield from early
                early = []
        if early and (gate is None or gate.wait(self._stop)):
            yield from early

    def __iter__(self) -> Iterator[ReadBatch]:
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _mapped_batches(source: SourceFile, mapping: FileMapping, rows: int) -> Iterator[Batch]:
    """The file's batches with the cells of its mapped columns only: nothing after reading
    looks at the others. They still count for whether a row is blank (``batches``). The import
    reads the file no more after this (``last``).

    A file has columns no field takes — a student system's export often has dozens — and
    each was trimmed, turned into Polars' and carried through the batches: the benchmark's
    file with 24 such columns added took twice as long to read (docs/benchmarks.md)."""
    columns = sorted(set(mapping.fields.values()))
    if not columns or len(columns) == len(source.headers):
        return source.batches(rows, last=True)
    return source.batches(rows, columns, blank_by_all_cells=True, last=True)


T = TypeVar("T")


def _hand_over(to: queue.Queue[Any], item: Any, *stops: threading.Event) -> bool:
    """Put ``item`` in the bounded queue ``to`` once there is room; ``False`` if any of
    ``stops`` is set first (the other side no longer takes anything)."""
    while not any(stop.is_set() for stop in stops):
        try:
            to.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


#: Batches the reading thread holds ready, besides the one it reads (each ~10 MB of cells).
READ_AHEAD = 1


def _read_beside(batches: Iterator[T], stop: threading.Event) -> Iterator[T]:
    """``batches``, read on a thread of their own while the ones before are printed and split.

    A re-import into an account with prints was bound by one thread reading the file and
    splitting it, one after the other (Arrow parses without the interpreter, and the assembling
    around it is half the reading): reading beside, an unchanged million took 3.08–3.63 s
    against 3.41–3.93 s in-process, medians 3.12 and 3.47 (docs/benchmarks.md). A fresh import
    keeps both cores busy without it, and held ~30 MB more with it. An error reading is raised
    here, where the batch it stopped would have come."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    done = object()
    leaving = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                if not _hand_over(ready, batch, stop, leaving):
                    return
            _hand_over(ready, done, stop, leaving)
        except BaseException as error:  # raised on the consuming side
            _hand_over(ready, error, stop, leaving)

    reader = threading.Thread(target=read, name="rollbook-file", daemon=True)
    reader.start()
    try:
        while True:
            try:
                item = ready.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():  # the reading gave up handing over: the import is closing
                    return
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        leaving.set()
        reader.join()


def settle(
    read: ReadBatch, touched: pl.Series, mapping: FileMapping, settings: AccountSettings
) -> tuple[PreparedBatch, pl.DataFrame | None]:
    """The batch read ahead, with the passed rows an earlier batch or a row of this one reaches
    (``prints.demote``) put back among the rows to plan, in row order; and the rows passed for
    good (``Passed.rows``). Once is enough: a row put back names only its own contact's phone,
    which no other passed row's contact has.

    The batch's cells are let go of here (``read.passed`` is emptied): the engine holds a read
    until the next one's is planned, and the cells are the most of it."""
    prepared, passed = read.prepared, read.passed
    read.passed = None
    if passed is None or passed.rows.is_empty():
        return prepared, None if passed is None else passed.rows
    out = demote(passed, prepared.frame, touched)
    if out.is_empty():
        return prepared, passed.rows
    whole = passed.batch
    back = whole.rows.is_in(out.implode())
    demoted = Batch(whole.rows.filter(back), whole.cells.filter(back), [], 0, whole.trimmed)
    prepared = _concat([prepared, prepare(normalise_batch(demoted, mapping, settings), settings)])
    return prepared, passed.rows.filter(~pl.col("row").is_in(out.implode()))
