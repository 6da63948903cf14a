"""Finding a batch's candidates in the database: the contacts its rows can identify or clash with.

One query per kind of key and batch — ids (through merged-id redirects), CRM IDs (through
aliases), phones — each returning whole contacts with their exact current values and bases.
The rows' own targets come first; phones are looked up only where no contact found already
holds them (a re-import's phones are its contacts' own), so an unchanged re-import reads each
contact once.

The result, ``Candidates``, is a frame with one row per contact: ``id``, every field by its key
as a canonical string, and for every field ``base:<key>`` and ``has_base:<key>``. A re-import
reads a batch's candidates before the batch before is written, and brings them up to date with
that batch's plan (``brought_up_to_date``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

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
    frame = raw.select_seq(columns)
    if custom:
        decoded = raw.select_seq(
            pl.col("custom").str.json_decode(pl.Struct({k: pl.String for k in custom}))
        ).unnest("custom")
        frame = pl.concat([frame, decoded], how="horizontal")
    keys = value_keys(settings)
    extra: list[pl.Series | pl.Expr] = []
    # One pass over the bases, not a query a field: most batches have none at all (nothing kept
    # from a stale import), and a query costs Polars ~1 ms even on an empty frame.
    by_field = bases.partition_by("field", as_dict=True) if bases.height else {}
    for k in keys:
        mine = by_field.get((k,))
        if mine is None:  # the common case: nothing kept from a stale import
            extra.append(pl.lit(None, pl.String).alias(base_column(k)))
            extra.append(pl.lit(False).alias(has_base_column(k)))
            continue
        has = raw["id"].is_in(mine["contact_id"].implode())
        base = raw.select_seq("id").join(
            mine.select_seq(pl.col("contact_id").alias("id"), "base"),
            on="id",
            how="left",
            maintain_order="left",
        )["base"]
        extra.append(base.alias(base_column(k)))
        extra.append(has.alias(has_base_column(k)))
    frame = frame.with_columns_seq(extra)
    return frame.select_seq(empty_frame(settings).columns)


def brought_up_to_date(c: Candidates, left: pl.DataFrame, rows: pl.DataFrame) -> Candidates:
    """Candidates read before the batch before was written, as a read after its writes would
    find them.

    ``left``: every contact that batch created or changed (values or bases), as it left them
    (``plan.contacts_left``); ``rows``: the rows the candidates were read for (``idv``, ``crm``,
    ``ph``). The contacts read that are among ``left`` are replaced by what it holds, where one
    of the rows' keys still names them, and the contacts it created or gave a key to join where
    one does. Every other contact is as read: the batch before did not touch it. A phone or CRM
    ID a contact of ``left`` let go of can only have gone to another contact of ``left`` (the
    keys are unique), and merged ids and CRM IDs are not an import's to write, so the aliases
    and redirects read stand. Read first and brought up to date, a batch's candidates are read
    while the batch before is planned, and its writes are made while this one is."""
    if left.is_empty():
        return c
    ids = pl.concat(
        [
            rows["idv"].drop_nulls().cast(pl.Int64),
            pl.Series(list(c.aliases.values()), dtype=pl.Int64),
            pl.Series(list(c.redirects.values()), dtype=pl.Int64),
        ]
    )
    named = (
        pl.col("id").is_in(ids.implode())
        | pl.col("crm_id").is_in(rows["crm"].drop_nulls().implode())
        | pl.col("phone").is_in(rows["ph"].drop_nulls().implode())
    )
    frame = pl.concat(
        [
            c.frame.filter(~pl.col("id").is_in(left["id"].implode())),
            left.filter(named).select_seq(c.frame.columns).cast(c.frame.schema),
        ]
    )
    return Candidates(frame, c.aliases, c.redirects)


BASES_SCHEMA = {"contact_id": pl.Int64, "field": pl.String, "base": pl.String}


@dataclass
class Found:
    """Contacts as read (``bulk.READ_SCHEMA``) and their bases (``bulk.bases_of``), with the
    aliases and redirects followed: the candidates, not decoded yet (``candidates``). A read
    ahead of the planning runs on the database thread, which then only reads: decoding is the
    planning thread's."""

    raw: pl.DataFrame
    bases: pl.DataFrame
    aliases: dict[str, int] = field(default_factory=dict)
    redirects: dict[int, int] = field(default_factory=dict)

    @classmethod
    def none(cls) -> Found:
        return cls(pl.DataFrame(schema=bulk.READ_SCHEMA), pl.DataFrame(schema=BASES_SCHEMA))

    def candidates(self, settings: AccountSettings) -> Candidates:
        return Candidates(decode(self.raw, self.bases, settings), self.aliases, self.redirects)

    def merged(self, other: Found) -> Found:
        """What was read for two sets of rows, as one (a contact once)."""
        return Found(
            pl.concat([self.raw, other.raw]).unique("id", keep="first", maintain_order=True),
            pl.concat([self.bases, other.bases]).unique(maintain_order=True),
            {**self.aliases, **other.aliases},
            {**self.redirects, **other.redirects},
        )


class Lookup:
    """The batch's queries, and the contacts found so far."""

    def __init__(self, db: Db, settings: AccountSettings, memory: Memory | None = None) -> None:
        self.db = db
        self.settings = settings
        self.memory = memory or Memory(empty_at_start=False)
        self.found = Found.none()

    def _add(self, raw: pl.DataFrame) -> None:
        """Contacts as fetched (``bulk.READ_SCHEMA``), unless found already."""
        found = self.found
        raw = raw.filter(~pl.col("id").is_in(found.raw["id"].implode()))
        if not raw.is_empty():
            bases = self.db.call(bulk.bases_of, self.settings.account_id, raw["id"].to_list())
            found.raw = pl.concat([found.raw, raw.cast(bulk.READ_SCHEMA)])  # type: ignore[arg-type]
            found.bases = pl.concat([found.bases, bases])

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
        redirects = self.found.redirects
        redirects.update({int(a): int(b) for a, b in pairs})
        wanted = sorted({redirects.get(i, i) for i in ids} - self.fetched_ids())
        self._add(self.db.call(bulk.contacts_where_in, self.settings.account_id, "id", wanted))

    def by_crm_ids(self, crm_ids: pl.Series) -> None:
        """Contacts by CRM ID, and by the CRM IDs merged into them (aliases)."""
        crm_ids = self.memory.crm_ids(crm_ids.drop_nulls().unique()).sort()
        if crm_ids.is_empty():
            return
        self._add(
            self.db.call(
                bulk.contacts_where_in, self.settings.account_id, "crm_id", crm_ids.to_list()
            )
        )
        rest = crm_ids.filter(~crm_ids.is_in(self.found.raw["crm_id"].drop_nulls().implode()))
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
        self.found.aliases.update({str(a): int(b) for a, b in pairs})
        wanted = sorted({int(b) for _, b in pairs} - self.fetched_ids())
        self._add(self.db.call(bulk.contacts_where_in, self.settings.account_id, "id", wanted))

    def by_phones(self, phones: pl.Series) -> None:
        """The owners of these phones, where they are not among the candidates already."""
        phones = self.memory.phone_numbers(phones.drop_nulls().unique())
        held = self.found.raw["phone"].drop_nulls()
        wanted = phones.filter(~phones.is_in(held.implode())).sort()
        if wanted.len():
            self._add(
                self.db.call(
                    bulk.contacts_where_in, self.settings.account_id, "phone", wanted.to_list()
                )
            )

    def fetched_ids(self) -> set[int]:
        return set(self.found.raw["id"].to_list())

    def result(self) -> Candidates:
        return self.found.candidates(self.settings)
