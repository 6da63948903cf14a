"""The ``possible-duplicate`` flag, for every contact a batch creates, in bulk.

A new contact is flagged when, at the moment its row is applied, another contact has the same
email, the same name and birth date, or had the same phone before. "At the moment its row is
applied" is what makes this subtle in bulk: rows earlier in the batch may have created contacts,
changed emails or names, moved phones into the history.

So the batch's changes become *events* — this key gained (+1) or lost (-1) a contact at this
row; this phone entered the history at this row — and the count of contacts with a key at row
r is its count at the start of the batch plus the events of the rows before r. Counts at the
start come from the account's flag index: 64-bit hashes of every contact's email and
name-and-birth-date key and of every former phone, held in memory for the import (loaded the
first time a batch creates a contact; a fresh import into an empty account loads nothing).
Hash hits are checked against the contacts' exact values, so a collision cannot raise a flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.importing.keys import email_key_series, person_key_series, phone_number_series
from rollbook.model import BIRTH_DATE_KEY, AccountSettings
from rollbook.store import bulk
from rollbook.store.schema import contacts, phone_history

EMAIL, PERSON, FORMER = "email", "person", "former"


def _hash(s: pl.Series) -> pl.Series:
    """64-bit hashes; a missing value stays missing (it matches nothing)."""
    return pl.select(
        pl.when(s.is_not_null()).then(s.hash(seed=0x5EED)).otherwise(pl.lit(None, pl.UInt64))
    ).to_series()


def keys_of(frame: pl.DataFrame) -> pl.DataFrame:
    """id, email, person (exact key strings) of contacts given as id + field values."""
    born = (
        frame[BIRTH_DATE_KEY]
        if BIRTH_DATE_KEY in frame.columns
        else pl.Series([None] * frame.height, dtype=pl.String)
    )
    return pl.DataFrame(
        {
            "id": frame["id"],
            EMAIL: email_key_series(frame["email"]),
            PERSON: person_key_series(frame["first_name"], frame["last_name"], born),
        }
    )


class FlagIndex:
    """The account's email and name-and-birth-date keys and former phones, hashed."""

    def __init__(self) -> None:
        self.loaded = False
        self.keys = pl.DataFrame(schema={"id": pl.Int64, EMAIL: pl.UInt64, PERSON: pl.UInt64})
        self.former = pl.DataFrame(schema={"phone": pl.Int64, "id": pl.Int64})

    def load(self, conn: Connection, settings: AccountSettings) -> None:
        if self.loaded:
            return
        born = (
            contacts.c.custom[BIRTH_DATE_KEY].as_string() if settings.has_birth_date else sa.null()
        )
        q = sa.select(
            contacts.c.id,
            contacts.c.email,
            contacts.c.first_name,
            contacts.c.last_name,
            born.label(BIRTH_DATE_KEY),
        ).where(contacts.c.account_id == settings.account_id)
        frame = pl.DataFrame(
            conn.execute(q).all(),
            schema={
                "id": pl.Int64,
                "email": pl.String,
                "first_name": pl.String,
                "last_name": pl.String,
                BIRTH_DATE_KEY: pl.String,
            },
            orient="row",
        )
        self.keys = _hashed(keys_of(frame))
        q2 = sa.select(phone_history.c.phone, phone_history.c.contact_id).where(
            phone_history.c.account_id == settings.account_id
        )
        former = pl.DataFrame(
            conn.execute(q2).all(), schema={"phone": pl.String, "id": pl.Int64}, orient="row"
        )
        self.former = former.with_columns(phone_number_series(former["phone"]).alias("phone"))
        self.loaded = True

    def update(self, changed: pl.DataFrame, former: pl.DataFrame) -> None:
        """After a batch: ``changed`` (id, ``key:email``, ``key:person`` of every contact it
        created or changed), ``former`` (phone, id of every number that went into a history)."""
        if not self.loaded:
            return  # loaded later from the database, which has the batch by then
        if changed.height:
            self.keys = pl.concat(
                [
                    self.keys.filter(~pl.col("id").is_in(changed["id"].implode())),
                    pl.DataFrame(
                        {
                            "id": changed["id"],
                            EMAIL: _hash(changed["key:email"]),
                            PERSON: _hash(changed["key:person"]),
                        }
                    ),
                ]
            )
        if former.height:
            self.former = pl.concat(
                [
                    self.former,
                    former.select(
                        phone_number_series(former["phone"]).alias("phone"),
                        pl.col("id").cast(pl.Int64),
                    ),
                ]
            )


def _hashed(keys: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"id": keys["id"], EMAIL: _hash(keys[EMAIL]), PERSON: _hash(keys[PERSON])})


@dataclass
class BatchChanges:
    """What a batch did to the keys, as events in row order.

    ``events``: row, kind (email/person), key (exact), delta (+1 a contact has it from this row
    on, -1 it no longer has). ``former``: row, phone (exact) — entered a history at this row.
    """

    events: pl.DataFrame
    former: pl.DataFrame


def flag_created(
    conn: Connection,
    settings: AccountSettings,
    index: FlagIndex,
    created: pl.DataFrame,
    changes: BatchChanges,
) -> pl.Series:
    """For each created row (``created``: id, row, phone, key:email, key:person), is it a
    possible duplicate?"""
    if created.is_empty():
        return pl.Series("flag", [], dtype=pl.Boolean)
    index.load(conn, settings)
    mine = created.select(
        "id", "row", "phone", pl.col("key:email").alias(EMAIL), pl.col("key:person").alias(PERSON)
    )
    flagged = pl.Series("flag", [False] * created.height)
    for kind in (EMAIL, PERSON):
        count = _count_at_row(conn, settings, index, mine, kind, changes)
        flagged = flagged | (count > 0)
    flagged = flagged | _former_at_row(index, mine, changes)
    return flagged.alias("flag")


def _count_at_row(
    conn: Connection,
    settings: AccountSettings,
    index: FlagIndex,
    mine: pl.DataFrame,
    kind: str,
    changes: BatchChanges,
) -> pl.Series:
    """How many contacts have the row's ``kind`` key just before the row is applied."""
    probe = mine.select("row", pl.col(kind).alias("key"), _hash(mine[kind]).alias("hash"))
    start = _count_at_start(conn, settings, index, probe, kind)
    events = changes.events.filter(pl.col("kind") == kind).select(
        pl.col("row").alias("at"), "key", "delta"
    )
    before = (
        probe.select("row", "key")
        .join(events, on="key", how="inner")
        .filter(pl.col("at") < pl.col("row"))
        .group_by("row")
        .agg(pl.col("delta").sum().alias("moved"))
    )
    counted = (
        probe.select("row", "key")
        .join(start, on="key", how="left")
        .join(before, on="row", how="left")
        .select(
            pl.when(pl.col("key").is_null())
            .then(0)
            .otherwise(pl.col("start").fill_null(0) + pl.col("moved").fill_null(0))
            .alias("count")
        )
    )
    return counted["count"]


def _count_at_start(
    conn: Connection,
    settings: AccountSettings,
    index: FlagIndex,
    probe: pl.DataFrame,
    kind: str,
) -> pl.DataFrame:
    """key -> how many contacts had it at the start of the batch. The index narrows it down;
    the contacts' exact values (the database holds the batch's start: flags are decided before
    the batch is applied) decide."""
    hits = index.keys.join(
        probe.select("hash").drop_nulls().unique(), left_on=kind, right_on="hash", how="inner"
    )["id"].to_list()
    if not hits:
        return pl.DataFrame(schema={"key": pl.String, "start": pl.Int64})
    exact = bulk.contacts_where_in(conn, settings.account_id, "id", hits)
    values = exact.select("id", "email", "first_name", "last_name")
    if settings.has_birth_date:
        born = exact.select(
            pl.col("custom").str.json_decode(pl.Struct({BIRTH_DATE_KEY: pl.String}))
        ).unnest("custom")
        values = values.with_columns(born[BIRTH_DATE_KEY])
    keys = keys_of(values)
    return (
        keys.select(pl.col(kind).alias("key"))
        .drop_nulls()
        .group_by("key")
        .agg(pl.len().cast(pl.Int64).alias("start"))
    )


def _former_at_row(index: FlagIndex, mine: pl.DataFrame, changes: BatchChanges) -> pl.Series:
    """Had another contact the row's phone before, just before the row is applied?"""
    phones = mine.select("row", phone_number_series(mine["phone"]).alias("phone"))
    known = phones["phone"].is_in(index.former["phone"].implode()).fill_null(False)
    moved = changes.former.select(
        pl.col("row").alias("at"), phone_number_series(changes.former["phone"]).alias("phone")
    )
    later = (
        phones.join(moved, on="phone", how="inner")
        .filter(pl.col("at") < pl.col("row"))
        .select("row")
        .unique()
    )
    return known | phones["row"].is_in(later["row"].implode())
