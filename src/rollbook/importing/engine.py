"""One import, start to finish, inside the caller's transaction:
``read → map → normalise → plan → apply → report``, a batch at a time.

A re-import passes the rows whose import print matches their contact's (``prints.py``): they
are reported ``unchanged`` without being normalised, looked up or planned (``ahead.py``).

Memory stays bounded by the batch size and a few integers per row: rows are read, planned,
written and reported batch by batch. What is kept across batches is the flag index (hashes of
the account's keys, see ``flags.py``), the account's prints, the counts, and per row that found
its contact its id and phones (for the changed-numbers report and the import's label).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from rollbook.importing.ahead import Ahead, Gate, settle
from rollbook.importing.apply import ImportContext, apply_plan, apply_rest
from rollbook.importing.flags import BatchChanges, FlagIndex, IndexRead, flag_created
from rollbook.importing.keys import phone_number_series
from rollbook.importing.lookup import Candidates, Found, Memory, brought_up_to_date
from rollbook.importing.mapping import FileMapping
from rollbook.importing.messages import MessageContext, row_message
from rollbook.importing.normalise import CLEAR_MARK, normalise_batch
from rollbook.importing.plan import (
    BatchPlan,
    Repeats,
    checked_rows,
    contacts_left,
    flag_outcomes,
    plan_batch,
    read_candidates,
)
from rollbook.importing.prepare import PreparedBatch
from rollbook.importing.prints import add_passed, found_or_changed, to_keep
from rollbook.importing.read import SourceFile
from rollbook.importing.rules import Decision, InputRow
from rollbook.importing.worker import DbWorker, ReadAtStart
from rollbook.model import AccountSettings, Code, ImportCounts, Status
from rollbook.store import accounts as store_accounts
from rollbook.store import bulk
from rollbook.store import imports as store_imports
from rollbook.store.contacts import ContactIds, chunks
from rollbook.store.provenance import with_provenance
from rollbook.store.schema import contacts, contacts_with_ids

log = logging.getLogger("rollbook.imports")

#: Rows per batch: large enough for set-based work, small enough to bound memory.
BATCH_ROWS = 50000
#: Planned batches that may wait for their flags (``_Flags``).
FLAGS_WAITING = 4
#: Jobs the database thread may have waiting in a re-import (``run_import``, ``_Reads``).
JOBS_AHEAD = 8
#: Contacts changed before the flag index is first needed, whose changes are kept to be
#: replayed on it (``_Flags``), at most.
MAX_REPLAY = 100_000

Progress = Callable[[int, int], None]


@dataclass
class EngineResult:
    counts: ImportCounts
    rows: int
    blank_rows: int
    label: str | None
    #: The changed-numbers report's rows (also stored with the import).
    changed: list[dict[str, Any]]
    #: The row report, chunk by chunk, when asked for (it is stored with the import anyway).
    report: list[pl.DataFrame] = field(default_factory=list)
    #: Rows reported ``unchanged`` because their import print matched (prints.py).
    passed: int = 0


def find_repeats(
    source: SourceFile, mapping: FileMapping, ctx: ImportContext
) -> tuple[Repeats, int]:
    """The first pass over the file: which CRM IDs and ids appear in more than one row (and how
    many rows there are, for the progress bar)."""
    keys = frozenset({"crm_id", "id"}) & set(mapping.fields)
    seen: dict[str, list[pl.DataFrame]] = defaultdict(list)
    total = 0
    columns = sorted(mapping.fields[k] for k in keys) or [0]  # only what this pass needs
    for batch in source.batches(BATCH_ROWS, columns=columns):
        total += batch.cells.height + len(batch.bad_rows) + batch.blank_rows
        if not keys:
            continue
        nb = normalise_batch(batch, mapping, ctx.settings, only=keys)
        for key in keys:
            seen[key].append(
                nb.frame.select_seq("row", pl.col(key).alias("value")).filter(
                    pl.col("value").is_not_null() & (pl.col("value") != CLEAR_MARK)
                )
            )
    repeated: dict[str, dict[str, list[int]]] = {}
    for key in ("crm_id", "id"):
        if not seen[key]:
            repeated[key] = {}
            continue
        twice = _repeated(pl.concat(seen[key]))
        repeated[key] = {
            v: rows
            for v, rows in twice.group_by("value").agg(pl.col("row").sort().head(6)).iter_rows()
        }
    return Repeats(repeated["crm_id"], repeated["id"]), total


def _repeated(values: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``values`` (row, value) whose value another row has too, in their order.

    Found among the rows whose value's hash repeats: a million strings compared as hashes took
    a third of the time (the few rows a collision adds are dropped by the exact comparison),
    and the whole import waits for this at the end of the first pass. The repeated hashes are
    found sorted, side by side, rather than counted in a hash table: for a million, 0.08–0.09 s
    against 0.13–0.20 s, with half the memory (docs/benchmarks.md)."""
    hashes = values["value"].hash(seed=0x5EED)
    order = hashes.arg_sort()
    ordered = hashes.gather(order)
    repeats = (ordered == ordered.shift(1)).fill_null(False) | (
        ordered == ordered.shift(-1)
    ).fill_null(False)
    hashed = values[order.filter(repeats).sort()]
    return hashed.filter(pl.col("value").is_duplicated())


#: The flag index's read: through the import's connection, or beside it.
_Read = Future[IndexRead] | ReadAtStart[IndexRead]


@dataclass
class _ToFlag:
    """What the flags need of a plan (the rest of it can go once it is written)."""

    outcomes: pl.DataFrame
    created_keys: pl.DataFrame
    key_changes: BatchChanges
    changed_keys: pl.DataFrame
    #: phone, id: the numbers that went into a history.
    former_phones: pl.DataFrame
    #: The contacts changed but not created (their keys before the batch are replaced).
    replaced: pl.Series

    @classmethod
    def of(cls, plan: BatchPlan) -> _ToFlag:
        return cls(
            plan.outcomes,
            plan.created_keys,
            plan.key_changes,
            plan.changed_keys.select_seq("id", "key:email", "key:person"),
            pl.DataFrame(
                [(phone, cid) for cid, phone, _ in plan.former_phones],
                schema={"phone": pl.String, "id": pl.Int64},
                orient="row",
            ),
            plan.updated["id"].cast(pl.Int64),
        )


class _Flags:
    """Decides each batch's possible-duplicate flags, in order, on a thread of its own, and
    hands the batch's row report — now flagged — to the database thread; takes the counts.

    A batch's flags depend on the account as it was when the batch began, kept in the flag
    index. The index is read the first time a batch creates a contact (``before_writes``), on a
    connection of its own (``worker.ReadAtStart``): it sees the account as it was when the
    import began, and the changes of the batches before are applied to it once it is loaded,
    then every later batch's in order. Neither the planning thread nor the import's connection
    waits for it — a whole account's keys took the import's connection ~2 s a million. (Where
    there is no second connection, the read is queued on the import's connection before the
    batch's writes instead, so it sees exactly the batches before; and so it is once more than
    ``MAX_REPLAY`` contacts changed before the first batch that creates one.)"""

    _DONE = object()

    def __init__(
        self, db: DbWorker, ctx: ImportContext, messages: MessageContext, keep_report: bool
    ) -> None:
        self.db = db
        self.ctx = ctx
        self.messages = messages
        self.keep_report = keep_report
        self.index = FlagIndex()
        self.counts = ImportCounts()
        self.report: list[pl.DataFrame] = []
        self._read: _Read | None = None
        #: The index read as the account was when the import began (else through the import's
        #: connection, before the writes of the first batch that creates a contact).
        self._beside: ReadAtStart[IndexRead] | None = None
        self._to_replay = 0
        self._failed: BaseException | None = None
        # The batches' outcomes are held until they are flagged: a few may wait, so that
        # planning goes on while the flag index loads (a whole account's keys: seconds).
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=FLAGS_WAITING)
        self._thread = threading.Thread(target=self._run, name="rollbook-flags", daemon=True)
        self._thread.start()

    def before_writes(self, plan: BatchPlan) -> None:
        """Call before the batch's writes are queued: the first batch that creates a contact
        has the index read first."""
        if self._read is not None:
            return
        settings = self.ctx.settings
        if plan.created_keys.height:
            if ReadAtStart.possible(self.db.conn):
                self._beside = ReadAtStart(self.db.conn, FlagIndex.read, settings)
                self._read = self._beside
            else:
                self._read = self.db.submit(FlagIndex.read, settings)
            return
        # The changes to replay are held in memory until the index loads: past a bound, the
        # index is read through the import's connection now, with them.
        self._to_replay += plan.changed_keys.height + len(plan.former_phones)
        if self._to_replay > MAX_REPLAY:
            self._read = self.db.submit(FlagIndex.read, settings)

    def add(self, plan: BatchPlan, seq: int) -> None:
        self._raise_if_failed()
        self._queue.put((_ToFlag.of(plan), seq, self._read))

    def drain(self) -> None:
        """Wait until every batch is flagged and its report queued; raise what failed."""
        self._queue.put(self._DONE)
        self._thread.join()
        self._raise_if_failed()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(self._DONE)
            self._thread.join()
        if self._beside is not None:  # it ends before the import does, whatever happened
            self._beside.join()

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._DONE:
            if self._failed is not None:
                continue  # after a failure, nothing more is done
            try:
                self._flag(*item)
            except BaseException as error:  # raised in the planning thread
                self._failed = error

    def _flag(
        self,
        plan: _ToFlag,
        seq: int,
        read: _Read | None,
    ) -> None:
        ctx = self.ctx
        if read is not None and not self.index.loaded:
            self.index.load(read.result(), replay=self._beside is not None)
        flags = flag_created(self.index, plan.created_keys, plan.key_changes)
        self.index.update(plan.changed_keys, plan.former_phones, plan.replaced)
        outcomes = flag_outcomes(
            plan.outcomes, plan.created_keys.filter(flags)["id"], self.messages
        )
        if ctx.preview:  # a preview cannot know the ids new contacts will get
            outcomes = outcomes.with_columns_seq(
                pl.when(pl.col("status") == Status.CREATED.value)
                .then(pl.lit(None, pl.Int64))
                .otherwise(pl.col("contact_id"))
                .alias("contact_id")
            )
        _count(self.counts, outcomes)
        if outcomes.height:
            chunk = store_imports.ReportChunk.of(outcomes)
            self.db.submit(store_imports.write_report_chunk, ctx.import_id, seq, chunk)
            if self.keep_report:
                self.report.append(outcomes)


def run_import(
    conn: Connection,
    ctx: ImportContext,
    source: SourceFile,
    mapping: FileMapping,
    *,
    progress: Progress | None = None,
    keep_report: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> EngineResult:
    settings = ctx.settings
    with ExitStack() as cleanup:  # closed in reverse: the flags, the worker, the reader, ids
        # A re-import into an account whose contacts carry import prints passes the rows that
        # match them (prints.py): the batches read ahead wait for the prints and the first pass.
        gate = Gate() if store_accounts.has_prints(conn, settings.account_id) else None
        empty = not store_accounts.has_contacts(conn, settings.account_id)
        new_ids = ContactIds(conn, block=min(batch_rows, 1000))
        cleanup.callback(new_ids.close)
        # The first batches are read and normalised while the first pass runs. A CSV file is
        # read by each on its own; a workbook's sheet is read through once, by the first pass,
        # and the reading ahead takes up what it found (read.py), so it starts after it.
        overlap = source.format.kind != "xlsx"
        ahead = Ahead(source, mapping, settings, batch_rows, gate) if overlap else None
        if ahead is not None:
            cleanup.callback(ahead.close)
        # From here all database work runs in order on the worker (see worker.py), so that
        # batch k+1 is planned while batch k is written; the prints are read during the first
        # pass. A re-import queues a batch's reads, the writes of the one before and the next
        # batch's read one after the other (``_Reads``): the worker lets them all wait. Else
        # planning stays at most a batch ahead of the writes.
        read_ahead = not empty
        db = DbWorker(conn, ahead=JOBS_AHEAD if read_ahead else 2)
        cleanup.callback(db.close)
        if gate is not None:
            gate.read(db, settings.account_id)
        repeats, total = find_repeats(source, mapping, ctx)
        if gate is not None:
            gate.open(repeats)
        if ahead is None:
            ahead = Ahead(source, mapping, settings, batch_rows, gate)
            cleanup.callback(ahead.close)
        messages = MessageContext(
            settings,
            {key: mapping.header_of(key) for key in mapping.fields},
            repeats.crm_rows,
            repeats.id_rows,
        )
        unchanged = row_message(Decision(0, Status.UNCHANGED), InputRow(0, {}), messages)
        memory = Memory(empty_at_start=empty, repeated_crm_ids=repeats.crm_rows)
        flags = _Flags(db, ctx, messages, keep_report)
        cleanup.callback(flags.close)
        done = blank = passed_rows = 0
        found = _Found()  # rows that found their contact, with the file's phone
        labelled: list[pl.Series] = []
        # Contacts an earlier batch found or changed: a row of a later batch is not passed for them.
        touched = pl.Series("id", [], dtype=pl.Int64)
        if progress:
            progress(0, total)
        # In an account that has contacts, each batch's candidates are read while the batch
        # before is planned, before its writes, and brought up to date with its plan
        # (lookup.brought_up_to_date): the writes are then made while this batch is planned.
        writes = _Writes(db, ctx, flags)
        reads = _Reads(db, settings, repeats) if read_ahead else None
        batches = iter(ahead)
        read = next(batches, None)
        seq = 0
        while read is not None:
            prepared, passed = settle(read, touched, mapping, settings)
            nb = prepared.batch
            upcoming = None
            if reads is not None:
                reads.settled(prepared)
                writes.queue()  # the batch before's, after this batch's reads
                upcoming = next(batches, None)
                if upcoming is not None:
                    reads.ahead(upcoming.prepared)
            writes.rest()
            candidates = reads.candidates() if reads is not None else None
            plan = plan_batch(
                db,
                settings,
                prepared,
                repeats,
                new_ids.take_many,
                messages,
                memory,
                candidates=candidates,
            )
            if gate is not None:
                touched = pl.concat([touched, found_or_changed(plan)])
            prints = to_keep(plan, read.prints)
            n_passed = passed.height if passed is not None else 0
            if passed is not None and n_passed:
                add_passed(plan, passed, unchanged)
                passed_rows += n_passed
            writes.hold(plan, prints, seq)
            if reads is not None and candidates is not None:
                reads.planned(plan, candidates)
            else:  # nothing read ahead to queue before them
                writes.queue()
                upcoming = next(batches, None)
            memory.remember(plan.changed_keys)
            found.add(plan)
            labelled.append(plan.labelled)
            blank += nb.blank_rows
            done += len(nb) + n_passed
            if progress:
                progress(done + blank, total)
            read, seq = upcoming, seq + 1
        writes.queue()
        writes.rest()
        flags.drain()
        db.drain()
    label = None
    ids = pl.concat(labelled) if labelled else pl.Series([], dtype=pl.Int64)
    if ids.len():
        label = f"import-{ctx.import_id}"
        label_id = store_imports.create_label(
            conn, settings.account_id, label, ctx.at, ctx.import_id
        )
        store_imports.add_to_label(conn, label_id, store_imports.id_ranges(ids))
    changed = _changed_numbers(conn, ctx, found)
    store_imports.insert_changed_numbers(conn, changed)
    del found, labelled
    if flags.index.loaded and not ctx.preview:
        # The index now holds the account as this import leaves it: the next import that
        # creates a contact loads it rather than every contact's keys.
        flags.index.save(conn, settings)
    log.info("import %d: %d rows, %d passed by their print", ctx.import_id, done, passed_rows)
    return EngineResult(flags.counts, done, blank, label, changed, flags.report, passed_rows)


class _Writes:
    """A planned batch's writes: held (``hold``) until they are queued (``queue``) — in a
    re-import, after the next batch's reads, which come before them (``_Reads``) — and its phone
    history and events (``apply.apply_rest``), which no read of the import needs, queued later
    still (``rest``)."""

    def __init__(self, db: DbWorker, ctx: ImportContext, flags: _Flags) -> None:
        self.db = db
        self.ctx = ctx
        self.flags = flags
        self._held: tuple[BatchPlan, pl.DataFrame, int] | None = None
        self._rest: tuple[BatchPlan, Future[list[tuple[Any, ...]]]] | None = None

    def hold(self, plan: BatchPlan, prints: pl.DataFrame, seq: int) -> None:
        """``plan``, whose contacts get ``prints`` (``prints.to_keep``)."""
        assert self._held is None, "the batch before's writes were never queued"
        self._held = (plan, prints, seq)

    def queue(self) -> None:
        """The held batch's writes (the rest of the one before must be queued already)."""
        if self._held is None:
            return
        plan, prints, seq = self._held
        self._held = None
        self.flags.before_writes(plan)
        assert self._rest is None, "the rest of the batch before was never queued"
        self._rest = (plan, self.db.submit(apply_plan, self.ctx, plan))
        self.db.submit(bulk.set_prints, prints)
        self.flags.add(plan, seq)

    def rest(self) -> None:
        """The phone history and events of the batch whose writes were queued last."""
        if self._rest is not None:
            plan, applied = self._rest
            # Run on the database thread after ``apply_plan``: its result is there.
            self.db.submit(lambda conn: apply_rest(conn, self.ctx, plan, applied.result()))
            self._rest = None


class _Reads:
    """A re-import's reads: each batch's candidates read before the batch before is written
    (``plan.read_candidates``) — most while that batch is planned — and brought up to date with
    its plan (``lookup.brought_up_to_date``)."""

    def __init__(self, db: DbWorker, settings: AccountSettings, repeats: Repeats) -> None:
        self.db, self.settings, self.repeats = db, settings, repeats
        #: The batch's rows read ahead (their row numbers), and what was read.
        self._early: tuple[pl.Series, Future[Found]] | None = None
        self._next: tuple[pl.Series, Future[Found]] | None = None
        self._late: Future[Found] | None = None
        self._rows = pl.DataFrame()
        #: The contacts the batch before created or changed, as it left them.
        self._left: pl.DataFrame | None = None

    def _submit(self, checked: pl.DataFrame) -> Future[Found]:
        return self.db.submit(read_candidates, self.settings, checked)

    def settled(self, prepared: PreparedBatch) -> None:
        """Queue the read of the batch's rows not read ahead (those ``settle`` put back)."""
        self._rows = checked_rows(prepared.frame, self.repeats)
        unread = self._rows
        if self._early is not None:
            unread = unread.filter(~pl.col("row").is_in(self._early[0].implode()))
        self._late = self._submit(unread) if unread["live"].any() else None

    def ahead(self, upcoming: PreparedBatch) -> None:
        """Queue the read of the next batch (after this one's, and the batch before's writes)."""
        checked = checked_rows(upcoming.frame, self.repeats)
        self._next = (checked["row"], self._submit(checked))

    def candidates(self) -> Candidates:
        """The batch's candidates, as the batch before left them (once the reads are done)."""
        found = Found.none()
        for part in (self._early[1] if self._early is not None else None, self._late):
            if part is not None:
                found = found.merged(part.result())
        candidates = found.candidates(self.settings)
        if self._left is not None:
            candidates = brought_up_to_date(candidates, self._left, self._rows.filter("live"))
        return candidates

    def planned(self, plan: BatchPlan, candidates: Candidates) -> None:
        """The batch is planned, from its ``candidates()``: on to the next."""
        self._left = contacts_left(plan, candidates, self.settings)
        self._early, self._next = self._next, None


def _count(counts: ImportCounts, outcomes: pl.DataFrame) -> None:
    for status, n in outcomes.group_by("status").len().iter_rows():
        counts.statuses[Status(status)] += n
    codes = outcomes.select_seq(pl.col("codes").str.split(";")).explode("codes").drop_nulls()
    for code, n in codes.group_by("codes").len().iter_rows():
        counts.codes[Code(code)] += n


class _Found:
    """The rows that found their contact, with the file's phone and the contact's as the row's
    batch left it (``BatchPlan.file_phones``); and the contacts a later batch may have changed
    since: each changed contact's phone after the batch that changed it."""

    def __init__(self) -> None:
        #: row, contact_id, file: the file's phone was the contact's (most rows).
        self.same: list[pl.DataFrame] = []
        #: row, contact_id, file, start: it was not.
        self.differ: list[pl.DataFrame] = []
        #: id, end.
        self.ends: list[pl.DataFrame] = []

    def add(self, plan: BatchPlan) -> None:
        fp = plan.file_phones
        same = fp["phone"].eq_missing(fp["start"])
        kept = fp.filter(same)
        self.same.append(
            kept.select_seq("row", "contact_id", phone_number_series(kept["phone"]).alias("file"))
        )
        other = fp.filter(~same)
        self.differ.append(
            other.select_seq(
                "row",
                "contact_id",
                phone_number_series(other["phone"]).alias("file"),
                phone_number_series(other["start"]).alias("start"),
            )
        )
        updated = plan.updated
        self.ends.append(
            updated.select_seq("id", phone_number_series(updated["phone"]).alias("end"))
        )

    def differing(self) -> pl.DataFrame:
        """row, contact_id, file of the rows whose phone differs from their contact's phone
        after the import: its last end if a batch changed it, else its ``start``."""
        schema = {"id": pl.Int64, "end": pl.Int64}
        ends = pl.concat([pl.DataFrame(schema=schema), *(e.cast(schema) for e in self.ends)])  # type: ignore[arg-type]
        # The contact's end marked, so that an end with no phone still counts as the import's.
        end = ends.filter(pl.col("id").is_last_distinct()).with_columns_seq(ended=pl.lit(True))
        columns = ["row", "contact_id", "file"]
        parts = [pl.DataFrame(schema={"row": pl.Int64, "contact_id": pl.Int64, "file": pl.Int64})]
        for part in self.same:  # the file's phone is the contact's, unless a batch changed it
            parts.append(
                part.join(end, left_on="contact_id", right_on="id")
                .filter(~pl.col("end").eq_missing(pl.col("file")))
                .select_seq(columns)
            )
        for part in self.differ:
            parts.append(
                part.join(end, left_on="contact_id", right_on="id", how="left")
                .with_columns_seq(
                    pl.when(pl.col("ended"))
                    .then(pl.col("end"))
                    .otherwise(pl.col("start"))
                    .alias("now")
                )
                .filter(~pl.col("now").eq_missing(pl.col("file")))
                .select_seq(columns)
            )
        return pl.concat([p.cast(parts[0].schema) for p in parts]).sort("row")


def _changed_numbers(conn: Connection, ctx: ImportContext, found: _Found) -> list[dict[str, Any]]:
    """Rows that found a contact whose phone, after the import, differs from the file's: the
    contact's last phone in this import if the import changed it, else the phone it had."""
    rows = found.differing()
    if rows.is_empty():
        return []
    ids = sorted(set(rows["contact_id"].to_list()))
    details: dict[int, Any] = {}
    cols = [
        contacts.c.id,
        contacts.c.crm_id,
        contacts.c.first_name,
        contacts.c.last_name,
        contacts.c.phone,
    ]
    for part in chunks(ids):
        q = with_provenance(*cols).where(contacts_with_ids(ctx.settings.account_id, part))
        details.update({r.id: r for r in conn.execute(q)})
    return [
        {
            "import_id": ctx.import_id,
            "row": row,
            "contact_id": cid,
            "crm_id": details[cid].crm_id,
            "first_name": details[cid].first_name,
            "last_name": details[cid].last_name,
            "file_phone": f"+{file}",
            "current_phone": details[cid].phone,
            "phone_since": details[cid].phone_since,
            "phone_source": details[cid].phone_source,
            "phone_reason": details[cid].phone_reason,
        }
        for row, cid, file in rows.select_seq("row", "contact_id", "file").iter_rows()
    ]
