"""Finding a batch's candidates in the database: the contacts its rows can identify or clash with.

One query per kind of key and batch — ids (through merged-id redirects), CRM IDs (through
aliases), phones — each returning whole contacts with their exact current values and bases.
The rows' own targets come first; phones are looked up only where the target does not already
explain them (a re-import's phones are its contacts' own), so an unchanged re-import reads each
contact once.

The result, ``Candidates``, is a frame with one row per contact: ``id``, every field by its key
as a canonical string, and for every field ``base:<key>`` and ``has_base:<key>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import polars as pl
from sqlalchemy.engine import Connection

from rollbook.importing.keys import phone_number_series
from rollbook.importing.worker import Db
from rollbook.model import AccountSettings, ContactState, FieldType
from rollbook.store import bulk


def base_column(key: str) -> str:
    return f"base:{key}"


def has_base_column(key: str) -> str:
    return f"has_base:{key}"


def value_keys(settings: AccountSettings) -> list[str]:
    """Every field a contact stores (all but the platform id)."""
    return [f.key for f in settings.fields if f.type is not FieldType.ID]


@dataclass
class Candidates:
    frame: pl.DataFrame
    aliases: dict[str, int] = field(default_factory=dict)  # crm id -> contact (merged ones)
    redirects: dict[int, int] = field(default_factory=dict)  # merged id -> survivor

    @property
    def ids(self) -> set[int]:
        return set(self.frame["id"].to_list())

    def states(self, ids: Iterable[int], settings: AccountSettings) -> list[ContactState]:
        """The contacts ``ids`` as the reference rules hold them."""
        keys = value_keys(settings)
        wanted = self.frame.filter(pl.col("id").is_in(list(ids)))
        states = []
        for record in wanted.iter_rows(named=True):
            bases = {k: record[base_column(k)] for k in keys if record[has_base_column(k)]}
            states.append(ContactState(record["id"], {k: record[k] for k in keys}, bases))
        return states


def empty_frame(settings: AccountSettings) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"id": pl.Int64()}
    for k in value_keys(settings):
        schema[k] = pl.String()
    for k in value_keys(settings):
        schema[base_column(k)] = pl.String()
        schema[has_base_column(k)] = pl.Boolean()
    return pl.DataFrame(schema=schema)


class Memory:
    """What an import has written so far, for an account that had no contacts when it began.

    Then every contact the database could return was made by this import, so a CRM ID or a phone
    the import has not written cannot be there: only the ones it has written are looked up. A
    fresh import of a student population asks the database almost nothing. (An account that had
    contacts is always asked; this remembers nothing for it.)

    What the import wrote came from its file's rows, so a CRM ID can only be found by a row if
    another row of the file has it too: ``repeated_crm_ids`` (the file's, from its first pass)
    are the only ones remembered and asked about."""

    def __init__(self, empty_at_start: bool, repeated_crm_ids: Iterable[str] = ()) -> None:
        self.active = empty_at_start
        self.repeated_crm = pl.Series("crm", list(repeated_crm_ids), dtype=pl.String)
        self.crm = pl.Series("crm", [], dtype=pl.UInt64)
        self.phones = pl.Series("phone", [], dtype=pl.Int64)

    @staticmethod
    def _hash(s: pl.Series) -> pl.Series:
        return s.cast(pl.String).hash(seed=0x5EED)

    def remember(self, written: pl.DataFrame) -> None:
        """``written``: crm_id, phone of contacts the import created or changed."""
        if self.active and written.height:
            crm = written["crm_id"].drop_nulls()
            if self.repeated_crm.len():
                crm = crm.filter(crm.is_in(self.repeated_crm.implode()))
                self.crm = pl.concat([self.crm, self._hash(crm)])
            self.phones = pl.concat(
                [self.phones, phone_number_series(written["phone"].drop_nulls())]
            )

    def crm_ids(self, values: pl.Series) -> pl.Series:
        """Of ``values``, the CRM IDs the database may hold."""
        if not self.active or values.is_empty():
            return values
        values = values.filter(values.is_in(self.repeated_crm.implode()))
        if values.is_empty():
            return values
        return values.filter(self._hash(values).is_in(self.crm.implode()))

    def phone_numbers(self, values: pl.Series) -> pl.Series:
        """Of ``values``, the phones the database may hold."""
        if not self.active or values.is_empty():
            return values
        numbers = phone_number_series(values)
        # The batch's numbers are the smaller set: the import's (up to the file) are checked
        # against them, rather than hashed again for every batch.
        written = self.phones.filter(self.phones.is_in(numbers.implode()))
        return values.filter(numbers.is_in(written.implode()))


def decode(raw: pl.DataFrame, bases: pl.DataFrame, settings: AccountSettings) -> pl.DataFrame:
    """Rows as the store holds them → canonical strings, bases alongside."""
    custom = [f.key for f in settings.fields if not f.builtin]
    columns: list[pl.Expr] = [pl.col("id")]
    for key in ("crm_id", "first_name", "last_name", "email", "phone"):
        columns.append(pl.col(key))
    for key in ("opted_out", "archived"):
        columns.append(
            pl.when(pl.col(key)).then(pl.lit("true")).otherwise(pl.lit("false")).alias(key)
        )
    frame = raw.select(columns)
    if custom:
        decoded = raw.select(
            pl.col("custom").str.json_decode(pl.Struct({k: pl.String for k in custom}))
        ).unnest("custom")
        frame = pl.concat([frame, decoded], how="horizontal")
    keys = value_keys(settings)
    extra: list[pl.Series | pl.Expr] = []
    for k in keys:
        mine = bases.filter(pl.col("field") == k)
        if mine.is_empty():  # the common case: nothing kept from a stale import
            extra.append(pl.lit(None, pl.String).alias(base_column(k)))
            extra.append(pl.lit(False).alias(has_base_column(k)))
            continue
        has = raw["id"].is_in(mine["contact_id"].implode())
        base = raw.select("id").join(
            mine.select(pl.col("contact_id").alias("id"), "base"),
            on="id",
            how="left",
            maintain_order="left",
        )["base"]
        extra.append(base.alias(base_column(k)))
        extra.append(has.alias(has_base_column(k)))
    frame = frame.with_columns(extra)
    return frame.select(empty_frame(settings).columns)


def _fetch_by_crm_ids(
    conn: Connection, settings: AccountSettings, crm_ids: list[str]
) -> pl.DataFrame:
    raw = bulk.contacts_where_in(conn, settings.account_id, "crm_id", crm_ids)
    return decode(raw, bulk.bases_of(conn, settings.account_id, raw["id"].to_list()), settings)


class Prefetch:
    """The next batch's contacts by CRM ID, read while this batch is planned.

    The read is queued on the import's connection after this batch's lookups and before its
    writes, so it sees the account as the batch *before* this one left it. When the next batch
    is planned, the contacts this batch created or changed are known (``after``): they are set
    aside and their CRM IDs read again, after this batch's writes. Every other contact holding
    one of the CRM IDs was untouched since the read. And a CRM ID this batch gave a contact came
    from one of its rows, so a row of the next batch carrying it repeats it and is skipped
    (``duplicate-unique-id``) without a lookup. So the result is exactly what a read at that
    moment would give — and a re-import's largest read overlaps the planning before it."""

    def __init__(self, db: Db, settings: AccountSettings, crm_ids: pl.Series) -> None:
        self._read = (db, settings, crm_ids.unique().sort())
        self._future: Future[pl.DataFrame] | None = None
        self._touched = pl.Series("id", [], dtype=pl.Int64)

    def start(self) -> None:
        """Queue the read (once this batch has read what it needs, before its writes)."""
        db, settings, crm_ids = self._read
        self._future = db.submit(_fetch_by_crm_ids, settings, crm_ids.to_list())

    def after(self, touched: pl.Series) -> None:
        """The contacts the batch planned meanwhile creates or changes (values or bases)."""
        self._touched = touched.cast(pl.Int64)

    def result(self, crm_ids: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
        """For ``crm_ids``: the contacts read ahead that are still as read (as candidates),
        and the CRM IDs to read again."""
        assert self._future is not None, "the read was never started"
        found = self._future.result()
        found = found.filter(pl.col("crm_id").is_in(crm_ids.implode()))
        stale = found["id"].is_in(self._touched.implode())
        # Rows planned after all (import prints, see prints.demote) were not read ahead.
        unread = crm_ids.filter(~crm_ids.is_in(self._read[2].implode()))
        again = pl.concat([found.filter(stale)["crm_id"], unread.cast(pl.String)])
        return found.filter(~stale), again.unique().sort()


class Lookup:
    """The batch's queries, and the candidates gathered so far."""

    def __init__(self, db: Db, settings: AccountSettings, memory: Memory | None = None) -> None:
        self.db = db
        self.settings = settings
        self.memory = memory or Memory(empty_at_start=False)
        self.found = empty_frame(settings)
        self.aliases: dict[str, int] = {}
        self.redirects: dict[int, int] = {}

    def _add(self, raw: pl.DataFrame) -> None:
        """Contacts as fetched (``bulk.READ_SCHEMA``), unless found already."""
        raw = raw.filter(~pl.col("id").is_in(self.found["id"].implode()))
        if not raw.is_empty():
            bases = self.db.call(bulk.bases_of, self.settings.account_id, raw["id"].to_list())
            self._add_decoded(decode(raw, bases, self.settings))

    def _add_decoded(self, found: pl.DataFrame) -> None:
        """Contacts as candidates (``decode``), unless found already."""
        found = found.filter(~pl.col("id").is_in(self.found["id"].implode()))
        if not found.is_empty():
            self.found = pl.concat([self.found, found], how="vertical")

    def by_ids(self, ids: Sequence[int]) -> None:
        """Contacts by platform id, after following merged ids to their survivor."""
        ids = sorted(set(ids))
        if not ids:
            return
        pairs = self.db.call(
            bulk.pairs_where_in,
            "contact_redirects",
            "old_id",
            "contact_id",
            self.settings.account_id,
            ids,
        )
        self.redirects.update({int(a): int(b) for a, b in pairs})
        wanted = sorted({self.redirects.get(i, i) for i in ids} - self.fetched_ids())
        self._add(self.db.call(bulk.contacts_where_in, self.settings.account_id, "id", wanted))

    def by_crm_ids(self, crm_ids: pl.Series, prefetched: Prefetch | None = None) -> None:
        """Contacts by CRM ID, and by the CRM IDs merged into them (aliases) — from what was
        ``prefetched`` for them, where the batch before has not made it stale."""
        crm_ids = self.memory.crm_ids(crm_ids.drop_nulls().unique()).sort()
        if crm_ids.is_empty():
            return
        if prefetched is None:
            self._add(
                self.db.call(
                    bulk.contacts_where_in, self.settings.account_id, "crm_id", crm_ids.to_list()
                )
            )
        else:
            fresh, stale = prefetched.result(crm_ids)
            self._add_decoded(fresh)
            if stale.len():
                self._add(
                    self.db.call(
                        bulk.contacts_where_in, self.settings.account_id, "crm_id", stale.to_list()
                    )
                )
        rest = crm_ids.filter(~crm_ids.is_in(self.found["crm_id"].drop_nulls().implode()))
        if rest.is_empty():
            return
        pairs = self.db.call(
            bulk.pairs_where_in,
            "crm_id_aliases",
            "crm_id",
            "contact_id",
            self.settings.account_id,
            rest.to_list(),
        )
        self.aliases.update({str(a): int(b) for a, b in pairs})
        wanted = sorted({int(b) for _, b in pairs} - self.fetched_ids())
        self._add(self.db.call(bulk.contacts_where_in, self.settings.account_id, "id", wanted))

    def by_phones(self, phones: pl.Series) -> None:
        """The owners of these phones, where they are not among the candidates already."""
        phones = self.memory.phone_numbers(phones.drop_nulls().unique())
        wanted = phones.filter(~phones.is_in(self.found["phone"].drop_nulls().implode())).sort()
        if wanted.len():
            self._add(
                self.db.call(
                    bulk.contacts_where_in, self.settings.account_id, "phone", wanted.to_list()
                )
            )

    def fetched_ids(self) -> set[int]:
        return set(self.found["id"].to_list())

    def result(self) -> Candidates:
        return Candidates(self.found, self.aliases, self.redirects)
