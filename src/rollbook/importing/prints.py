"""Import prints: knowing, before a row is normalised, that it would change nothing.

Institutions send their whole population every night, and most rows are the rows they sent the
night before. A row's *print* is a 64-bit hash of its mapped cells, keyed by everything else its
outcome depends on — which fields the file maps, the account's fields and region, the rules'
version. When a row is decided in columns (it touches no other row of its batch) and ends
``created``, ``updated`` or ``unchanged`` with no code, its print is kept on the contact
(``contacts.import_print``). Triggers empty a print the moment anything else changes the contact
or its bases (migration 0004), so a print vouches for the contact exactly as stored.

Applying a row whose cells and rules are those that left the contact as it is changes nothing,
so a later row with the same print, for that contact, is ``unchanged`` — provided nothing in the
import reaches the contact first. A row is *passed* (reported ``unchanged`` without being
normalised, looked up or planned) only if:

* its CRM ID finds the contact whose print it matches, is not repeated in the file, and the
  row has no platform id;
* no other row of its batch names the contact's phone or id; no CRM ID merged into the contact
  (an alias) and no merged id (a redirect) leads to it;
* no earlier batch of the import changed or even found the contact.

A row that fails a check after it was read ahead is planned like any other (``demote``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from importlib.metadata import version

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.fields import clean_series
from rollbook.importing.mapping import FileMapping
from rollbook.importing.normalise import invalid_column, normalise_batch
from rollbook.importing.plan import BatchPlan
from rollbook.importing.read import Batch
from rollbook.model import UNSET_WORD, AccountSettings, Status
from rollbook.store import bulk
from rollbook.store.schema import contact_redirects, crm_id_aliases

#: Raise when a change to the rules or the normalisers changes what a row does, between
#: releases: every print made before then stops matching. (Each release does it anyway: the
#: package's version is part of the key.)
RULES_VERSION = 1

#: The outcomes that leave a print (with no code).
KEPT = (Status.CREATED, Status.UPDATED, Status.UNCHANGED)

#: The keys normalised for every row read ahead, to find the contact its print is checked by.
KEYS = frozenset({"crm_id", "id"})


def seed(settings: AccountSettings, mapping: FileMapping) -> int:
    """The hash's seed, from what a row's outcome depends on besides its cells: the account's
    settings, the mapping, the rules (rollbook's version, ``RULES_VERSION``), and the libraries
    whose results a row's values come from. Polars' hash is stable for one version (and
    across processes); phonenumbers' metadata changes what a number normalises to, and
    email-validator what an email does. The fields' labels are left out: they change how a
    field is shown, not what a row does, and relabelling one should not cost the next import
    a check of every row."""
    unlabelled = replace(settings, fields=tuple(replace(f, label="") for f in settings.fields))
    key = repr(
        (
            RULES_VERSION,
            version("rollbook"),
            pl.__version__,
            version("phonenumbers"),
            version("email-validator"),
            unlabelled,
            sorted(mapping.fields),  # which fields; not where their columns are
        )
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def row_prints(batch: Batch, mapping: FileMapping, key: int) -> pl.Series:
    """Each row's print: its mapped cells (null where empty) hashed together."""
    columns = [str(index) for _, index in sorted(mapping.fields.items())]
    hashed = batch.cells.select_seq(pl.struct(columns).hash(key).reinterpret(signed=True))
    return hashed.to_series().alias("print")


@dataclass
class KnownPrints:
    """The account's contacts that have a print and a CRM ID — id, crm_id, phone, print —
    sorted by print; the contacts a merged CRM ID or id leads to are left out."""

    prints: pl.DataFrame

    @classmethod
    def read(cls, conn: Connection, account_id: int) -> KnownPrints:
        linked = [
            r[0]
            for table in (crm_id_aliases, contact_redirects)
            for r in conn.execute(
                sa.select(table.c.contact_id).where(table.c.account_id == account_id).distinct()
            )
        ]
        found = bulk.contact_prints(conn, account_id)
        if linked:
            found = found.filter(~pl.col("id").is_in(linked))
        return cls(found.sort("print"))

    def find(self, crm: pl.Series, prints: pl.Series) -> pl.DataFrame:
        """For each (CRM ID, print): the contact (``contact_id``, ``phone``) with both, or
        nulls. Sorted by print, the known prints are searched rather than joined: a join
        would hash all of them for every batch. (``split`` asks only when there are some.)"""
        known = self.prints
        at = known["print"].search_sorted(prints, side="left").clip(0, known.height - 1)
        found = known.select_seq(pl.all().gather(at))
        hit = (found["print"] == prints) & (found["crm_id"] == crm)
        return found.select_seq(
            pl.when(hit).then(pl.col("id")).alias("contact_id"),
            pl.when(hit).then(pl.col("phone")).alias("phone"),
        )


@dataclass
class Passed:
    """The rows of a batch read ahead whose print matched, and the batch they came from."""

    #: row, contact_id, ph (the file's phone, canonical; null if not given), phone (the
    #: contact's)
    rows: pl.DataFrame
    #: The batch as read (the passed rows are normalised from it if they are demoted).
    batch: Batch

    @classmethod
    def none(cls, batch: Batch) -> Passed:
        schema = {"row": pl.Int64, "contact_id": pl.Int64, "ph": pl.String, "phone": pl.String}
        return cls(pl.DataFrame(schema=schema), batch)


def split(
    batch: Batch,
    prints: pl.Series,
    mapping: FileMapping,
    settings: AccountSettings,
    known: KnownPrints,
    repeated_crm_ids: pl.Series,
) -> tuple[Batch, Passed]:
    """The batch's rows that must be planned, and those whose print matched their contact's.

    Only the CRM ID (and id) are normalised here. A passed row's phone is its contact's when the
    cell gives one: the row that made the print left the contact with that phone, and nothing
    changed it since."""
    if known.prints.is_empty() or "crm_id" not in mapping.fields:
        return batch, Passed.none(batch)
    keys = KEYS & set(mapping.fields)
    frame = normalise_batch(batch, mapping, settings, only=keys).frame
    out = pl.any_horizontal(pl.col(invalid_column(k)) for k in keys)
    if "id" in keys:
        out = out | pl.col("id").is_not_null()
    if "phone" in mapping.fields:
        cell = clean_series(batch.cells[str(mapping.fields["phone"])])
        gives_phone = (cell.is_not_null() & (cell != UNSET_WORD)).alias("gives_phone")
    else:
        gives_phone = pl.repeat(False, batch.cells.height, eager=True).alias("gives_phone")
    rows = (
        frame.select_seq("row", pl.col("crm_id").alias("crm"), out.alias("out"))
        .with_columns_seq(prints.alias("print"), gives_phone)
        .with_row_index("i")
        .filter(
            ~pl.col("out")
            & pl.col("crm").is_not_null()
            & ~pl.col("crm").is_in(repeated_crm_ids.implode())
        )
    )
    rows = pl.concat([rows, known.find(rows["crm"], rows["print"])], how="horizontal").filter(
        pl.col("contact_id").is_not_null()
    )
    if rows.is_empty():
        return batch, Passed.none(batch)
    rest = pl.Series(range(batch.cells.height)).is_in(rows["i"].implode()).not_()
    planned = Batch(
        batch.rows.filter(rest),
        batch.cells.filter(rest),
        batch.bad_rows,
        batch.blank_rows,
        batch.trimmed,
    )
    passed = rows.sort("i").select_seq(
        "row",
        "contact_id",
        pl.when("gives_phone").then(pl.col("phone")).alias("ph"),
        "phone",
    )
    return planned, Passed(passed, batch)


def demote(passed: Passed, planned: pl.DataFrame, touched: pl.Series) -> pl.Series:
    """The passed rows that must be planned after all (their row numbers): the contact was
    found or changed by an earlier batch (``touched``), or a row to plan of the batch
    (``planned``: its ``idv`` and ``ph``) names the contact's phone or its id.

    A passed row's own phone is its contact's (``split``), and two passed rows are two
    contacts, with two phones: so no other check is needed."""
    out = (
        pl.col("contact_id").is_in(touched.implode())
        | pl.col("contact_id").is_in(planned["idv"].drop_nulls().implode())
        | pl.col("phone").is_in(planned["ph"].drop_nulls().implode())
    )
    return passed.rows.filter(out)["row"]


def passed_outcomes(rows: pl.DataFrame, message: str | None) -> pl.DataFrame:
    """The report of passed rows: ``unchanged``, no code."""
    return rows.select_seq(
        "row",
        pl.lit(Status.UNCHANGED.value).alias("status"),
        pl.lit(None, pl.String).alias("codes"),
        "contact_id",
        pl.lit(message, pl.String).alias("message"),
    )


def found_or_changed(plan: BatchPlan) -> pl.Series:
    """The existing contacts a plan's rows found, or that it changes."""
    return pl.concat(
        [
            plan.outcomes["contact_id"].drop_nulls(),
            plan.touched(),
            pl.Series("id", [cid for cid, _, _ in plan.former_phones], dtype=pl.Int64),
            pl.Series("id", [i for ids in plan.moving.values() for i in ids], dtype=pl.Int64),
        ]
    ).alias("id")


def to_keep(plan: BatchPlan, prints: pl.DataFrame) -> pl.DataFrame:
    """The prints of the plan's rows decided in columns with no code: new contacts get theirs
    in ``plan.created`` and changed contacts in ``plan.updated`` (``import_print``, null for the
    others: the update that changes them writes it); the others — found unchanged — are
    returned (id, print), for ``bulk.set_prints`` to write after the batch's writes where the
    contact's differs (the same print, not emptied by the batch, is left alone)."""
    clean = (
        plan.outcomes.filter(
            pl.col("codes").is_null()
            & pl.col("contact_id").is_not_null()
            & pl.col("status").is_in([s.value for s in KEPT])
            & ~pl.col("row").is_in(plan.one_by_one.implode())
        )
        .select_seq("row", "status", pl.col("contact_id").alias("id"))
        .join(prints, on="row")
    )
    plan.created = plan.created.join(
        clean.filter(pl.col("status") == Status.CREATED.value).select_seq(
            pl.col("row").alias("created_row"), pl.col("print").alias("import_print")
        ),
        on="created_row",
        how="left",
    )
    plan.updated = plan.updated.join(
        clean.filter(pl.col("status") == Status.UPDATED.value).select_seq(
            "id", pl.col("print").alias("import_print")
        ),
        on="id",
        how="left",
    )
    return clean.filter(pl.col("status") == Status.UNCHANGED.value).select_seq("id", "print")


def add_passed(plan: BatchPlan, passed: pl.DataFrame, message: str) -> None:
    """The passed rows join the plan's report, its label and its changed-numbers rows."""
    plan.outcomes = pl.concat([plan.outcomes, passed_outcomes(passed, message)]).sort("row")
    plan.labelled = pl.concat([plan.labelled, passed["contact_id"]])
    plan.file_phones = pl.concat(
        [
            plan.file_phones,
            passed.filter(pl.col("ph").is_not_null()).select_seq(
                "row", "contact_id", pl.col("ph").alias("phone"), pl.col("phone").alias("start")
            ),
        ]
    )
