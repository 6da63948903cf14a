"""The ``possible-duplicate`` flag, for every contact a batch creates, in bulk.

A new contact is flagged when, at the moment its row is applied, another contact has the same
email, the same name and birth date, or had the same phone before. "At the moment its row is
applied" is what makes this subtle in bulk: rows earlier in the batch may have created contacts,
changed emails or names, moved phones into the history.

So the batch's changes become *events* — this key gained (+1) or lost (-1) a contact at this
row; this phone entered the history at this row — and the count of contacts with a key at row
r is its count at the start of the batch plus the events of the rows before r.

Counts at the start come from the account's flag index, held in memory for the import: every
contact's email key and name-and-birth-date key as 128-bit hashes (two independent 64-bit
hashes), and every former phone as its number. It is loaded the first time a batch creates a
contact (a fresh import into an empty account loads nothing) and kept up to date from the
batches' plans, so planning never waits for the database to answer. It is read as the account
was when the import began, and the batches' changes until then are replayed on it once it loads
(``engine._Flags``). The keys' hashes an import ends with are kept for the next one (``save``,
store/flag_index.py), which loads them instead of reading and hashing every contact's keys, for
as long as they still describe the account.

Two different keys share both hashes with a probability far below 10^-25 for a million
contacts — below any disk's error rate — and a shared hash could only add a flag, never change
what is written.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from importlib.metadata import version

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.importing.keys import email_key_series, person_key_series, phone_number_series
from rollbook.model import BIRTH_DATE_KEY, AccountSettings
from rollbook.store import bulk, flag_index
from rollbook.store.schema import phone_history

EMAIL, PERSON = "email", "person"
#: Contacts whose keys are hashed at a time when the index loads.
LOAD_ROWS = 100_000
_SEEDS = (0x5EED, 0xC0FFEE)
#: Raise when the keys or their hashing change between releases: the kept indexes stop being
#: used. (Each release does it anyway: the package's version is part of the stamp.)
INDEX_VERSION = 1


def stamp(settings: AccountSettings) -> str:
    """What an index's hashes depend on: rollbook's keys (its version), Polars' hash (stable
    for one version), Python's case folding (its Unicode version), the seeds, and whether
    the account has a birth date."""
    key = repr(
        (
            INDEX_VERSION,
            version("rollbook"),
            pl.__version__,
            unicodedata.unidata_version,
            _SEEDS,
            settings.has_birth_date,
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _hash(s: pl.Series, seed: int) -> pl.Series:
    """64-bit hashes; a missing value stays missing (it matches nothing)."""
    return pl.select(
        pl.when(s.is_not_null()).then(s.hash(seed=seed)).otherwise(pl.lit(None, pl.UInt64))
    ).to_series()


def _hashed(ids: pl.Series, email: pl.Series, person: pl.Series) -> pl.DataFrame:
    """id and the 128-bit hashes of its email and person keys (``email:0``, ``email:1`` …)."""
    return pl.DataFrame(
        {
            "id": ids,
            **{f"{EMAIL}:{n}": _hash(email, seed) for n, seed in enumerate(_SEEDS)},
            **{f"{PERSON}:{n}": _hash(person, seed) for n, seed in enumerate(_SEEDS)},
        }
    )


def _keys_of(contacts: pl.DataFrame) -> pl.DataFrame:
    """``_hashed`` keys of contacts as ``bulk.contact_keys`` reads them."""
    return _hashed(
        contacts["id"],
        email_key_series(contacts["email"]),
        person_key_series(contacts["first_name"], contacts["last_name"], contacts["born"]),
    )


@dataclass
class IndexRead:
    """What the index is built from: the keys the last import kept (``hashed``), or else every
    contact's keys as stored (``stored``, ``bulk.contact_keys``); and the former phones (phone,
    id)."""

    hashed: pl.DataFrame | None
    stored: pl.DataFrame | None
    former: pl.DataFrame


class FlagIndex:
    """The account's email and name-and-birth-date keys, hashed, and its former phones."""

    def __init__(self) -> None:
        self.loaded = False
        self.keys = _hashed(
            pl.Series([], dtype=pl.Int64),
            pl.Series([], dtype=pl.String),
            pl.Series([], dtype=pl.String),
        )
        self.former = pl.DataFrame(schema={"phone": pl.Int64, "id": pl.Int64})
        #: The batches' changes (``update``) while the index is not loaded yet.
        self._pending: list[tuple[pl.DataFrame, pl.DataFrame, pl.Series]] = []

    @staticmethod
    def read(conn: Connection, settings: AccountSettings) -> IndexRead:
        """The keys the last import kept, if they still hold, else the account's keys as
        stored; and its former phones: what the index is built from (``load``)."""
        hashed = flag_index.read_snapshot(conn, settings.account_id, stamp(settings))
        stored = None
        if hashed is None:
            born = BIRTH_DATE_KEY if settings.has_birth_date else None
            stored = bulk.contact_keys(conn, settings.account_id, born)
        q2 = sa.select(phone_history.c.phone, phone_history.c.contact_id).where(
            phone_history.c.account_id == settings.account_id
        )
        former = pl.DataFrame(
            conn.execute(q2).all(), schema={"phone": pl.String, "id": pl.Int64}, orient="row"
        )
        return IndexRead(hashed, stored, former)

    def load(self, read: IndexRead, *, replay: bool) -> None:
        """Build the index from what ``read`` returned; ``replay``: the read is of the account
        as it was before the batches updated so far, whose changes are applied to it now (else
        the read has them already). ``read`` is used up: its frames are let go, for the
        futures that hand it over keep it until the import ends (a whole account's keys: a
        next-term million peaked 40-50 MB higher with them)."""
        if read.hashed is not None:
            self.keys = read.hashed.select_seq(self.keys.columns).cast(self.keys.schema)
        else:
            assert read.stored is not None
            frame = read.stored
            # A part at a time: the keys' intermediate texts for a whole account would cost
            # hundreds of megabytes at once.
            parts = [_keys_of(part) for part in frame.iter_slices(LOAD_ROWS)]
            self.keys = pl.concat(parts, rechunk=True) if parts else self.keys
        self.former = read.former.with_columns_seq(
            phone_number_series(read.former["phone"]).alias("phone")
        )
        read.hashed = read.stored = None
        read.former = read.former.clear()
        self.loaded = True
        pending, self._pending = self._pending, []
        for changed, moved, replaced in pending if replay else ():
            self.update(changed, moved, replaced)

    def save(self, conn: Connection, settings: AccountSettings) -> None:
        """Keep the keys for the next import (after the last batch's update)."""
        assert self.loaded, "only a loaded index is kept"
        flag_index.write_snapshot(conn, settings.account_id, stamp(settings), self.keys)

    def update(self, changed: pl.DataFrame, former: pl.DataFrame, replaced: pl.Series) -> None:
        """After a batch: ``changed`` (id, ``key:email``, ``key:person`` of every contact it
        created or changed), ``former`` (phone, id of every number that went into a history),
        ``replaced`` (the ids among ``changed`` of contacts the batch did not create: their
        keys before the batch go)."""
        if not self.loaded:
            if changed.height or former.height:
                self._pending.append((changed, former, replaced))
            return
        if changed.height:
            kept = self.keys
            if replaced.len():  # a new contact's id is new: only changed contacts are looked for
                kept = kept.filter(~pl.col("id").is_in(replaced.implode()))
            self.keys = pl.concat(
                [kept, _hashed(changed["id"], changed["key:email"], changed["key:person"])]
            )
        if former.height:
            self.former = pl.concat(
                [
                    self.former,
                    former.select_seq(
                        phone_number_series(former["phone"]).alias("phone"),
                        pl.col("id").cast(pl.Int64),
                    ),
                ]
            )


@dataclass
class BatchChanges:
    """What a batch did to the keys of contacts it did not create, as events in row order (a new
    contact brings its keys from its row on: the plan's ``created_keys``).

    ``events``: row, kind (email/person), key (exact), delta (+1 a contact has it from this row
    on, -1 it no longer has). ``former``: row, phone (exact) — entered a history at this row.
    """

    events: pl.DataFrame
    former: pl.DataFrame


def flag_created(index: FlagIndex, created: pl.DataFrame, changes: BatchChanges) -> pl.Series:
    """For each created row (``created``: id, row, phone, key:email, key:person), is it a
    possible duplicate? (``index``: loaded, as the account was when the batch began.)"""
    if created.is_empty():
        return pl.Series("flag", [], dtype=pl.Boolean)
    assert index.loaded, "the flag index is loaded before a batch that creates is flagged"
    flagged = pl.Series("flag", [False] * created.height)
    for kind in (EMAIL, PERSON):
        flagged = flagged | (_count_at_row(index, created, kind, changes) > 0)
    return (flagged | _former_at_row(index, created, changes)).alias("flag")


def _count_at_row(
    index: FlagIndex, created: pl.DataFrame, kind: str, changes: BatchChanges
) -> pl.Series:
    """How many contacts have the row's ``kind`` key just before the row is applied: the
    account's when the batch began, the batch's new contacts of the rows before, and what the
    rows before did to the keys of other contacts. Keys are compared by their 128-bit hashes,
    as in the index."""
    key = created[f"key:{kind}"]
    probe = pl.DataFrame(
        {"row": created["row"], **{f"h{n}": _hash(key, seed) for n, seed in enumerate(_SEEDS)}}
    )
    hashes = ["h0", "h1"]
    # The index (the whole account) is narrowed by one hash, against the batch's.
    start = (
        index.keys.select_seq(pl.col(f"{kind}:0").alias("h0"), pl.col(f"{kind}:1").alias("h1"))
        .filter(pl.col("h0").is_in(probe["h0"].drop_nulls().implode()))
        .group_by(hashes)
        .agg(pl.len().cast(pl.Int64).alias("start"))
    )
    # New contacts of the batch with the same key, in rows before: only where a key is new twice.
    twins = probe.filter(pl.col("h0").is_not_null() & pl.col("h0").is_duplicated())
    earlier = twins.select_seq(
        "row", (pl.col("row").rank("ordinal").over(hashes).cast(pl.Int64) - 1).alias("earlier")
    )
    counted = probe.join(start, on=hashes, how="left", maintain_order="left").join(
        earlier, on="row", how="left", maintain_order="left"
    )
    events = changes.events.filter(pl.col("kind") == kind)
    if events.height:
        moved = (
            probe.join(
                events.select_seq(
                    pl.col("row").alias("at"),
                    "delta",
                    *(_hash(events["key"], seed).alias(f"h{n}") for n, seed in enumerate(_SEEDS)),
                ),
                on=hashes,
            )
            .filter(pl.col("at") < pl.col("row"))
            .group_by("row")
            .agg(pl.col("delta").sum().alias("moved"))
        )
        counted = counted.join(moved, on="row", how="left", maintain_order="left")
    else:
        counted = counted.with_columns_seq(pl.lit(None, pl.Int64).alias("moved"))
    return counted.select_seq(
        pl.when(pl.col("h0").is_null())
        .then(0)
        .otherwise(
            pl.col("start").fill_null(0)
            + pl.col("earlier").fill_null(0)
            + pl.col("moved").fill_null(0)
        )
        .alias("count")
    )["count"]


def _former_at_row(index: FlagIndex, created: pl.DataFrame, changes: BatchChanges) -> pl.Series:
    """Had another contact the row's phone before, just before the row is applied?"""
    phones = created.select_seq("row", phone_number_series(created["phone"]).alias("phone"))
    known = phones["phone"].is_in(index.former["phone"].implode()).fill_null(False)
    moved = changes.former.select_seq(
        pl.col("row").alias("at"), phone_number_series(changes.former["phone"]).alias("phone")
    )
    later = (
        phones.join(moved, on="phone", how="inner")
        .filter(pl.col("at") < pl.col("row"))
        .select_seq("row")
        .unique()
    )
    return known | phones["row"].is_in(later["row"].implode())
