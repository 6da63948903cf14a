"""The rules of ``rules.decide_row`` as Polars expressions, for rows that depend on nothing but
the batch's start: identification, required fields, the three-way merge, the unique phone.

``identify`` works on a narrow frame — the row's position ``i``, ``idv``, ``crm``, ``ph`` and
names — and returns, per row, its contact (``target``) and what identification found out.
``decide_in_columns`` takes the rows decided in bulk, with their contacts' current values as
``cur:<field>``, and adds ``status``, ``skip_code``, ``out_of_sync``, ``contact_id``,
``other`` and per field ``w:`` (written), ``k:`` (kept: the file still has the base), ``d:``
(base dropped) and ``n:`` (the new value).
"""

from __future__ import annotations

import functools

import polars as pl
import sqlalchemy as sa

from rollbook.fields import name_key_series
from rollbook.importing.lookup import (
    Candidates,
    base_column,
    empty_frame,
    has_base_column,
    value_keys,
)
from rollbook.importing.normalise import CLEAR_MARK
from rollbook.importing.prepare import given
from rollbook.importing.worker import Db
from rollbook.model import AccountSettings, Code, Status
from rollbook.store.schema import contacts

STR = pl.String
#: What ``identify`` tells about each row.
IDENTIFY_SCHEMA = {
    "i": pl.UInt32,
    "target": pl.Int64,
    "id_target": pl.Int64,
    "crm_holder": pl.Int64,
    "phone_owner": pl.Int64,
    "unknown": pl.Boolean,
    "conflict": pl.Boolean,
    "names_differ": pl.Boolean,
    "via_alias": pl.Boolean,
    "cur:phone": STR,
    "cur:crm_id": STR,
}


def identify(frame: pl.DataFrame, c: Candidates) -> pl.DataFrame:
    """Each row's contact, one row per row of ``frame`` in its order (``IDENTIFY_SCHEMA``).

    A row none of whose keys names a candidate identifies nobody; only the others are matched
    against the candidates (in a fresh import, nearly every row is such a row)."""
    rows = frame.select_seq("i", "idv", "crm", "ph", "first_name", "last_name")
    ids = pl.concat([pl.Series(list(c.redirects), dtype=pl.Int64), c.frame["id"].cast(pl.Int64)])
    crm_ids = pl.concat([pl.Series(list(c.aliases), dtype=STR), c.frame["crm_id"].drop_nulls()])
    hit = (
        pl.col("idv").is_in(ids.implode())
        | pl.col("crm").is_in(crm_ids.implode())
        | pl.col("ph").is_in(c.frame["phone"].drop_nulls().implode())
    ).fill_null(False)
    mask = rows.select_seq(hit).to_series()
    nobody = rows.select_seq(
        "i",
        *(pl.lit(None, IDENTIFY_SCHEMA[k]).alias(k) for k in _FOUND),
        pl.col("idv").is_not_null().alias("unknown"),
        *(pl.lit(False).alias(k) for k in ("conflict", "names_differ", "via_alias")),
    ).select_seq(list(IDENTIFY_SCHEMA))
    if not mask.any():
        return nobody
    found = _identify(rows.filter(mask), c)
    at = mask.arg_true()
    return nobody.with_columns_seq(nobody[k].scatter(at, found[k]) for k in IDENTIFY_SCHEMA)


#: What ``identify`` finds, null for a row that names no candidate.
_FOUND = ("target", "id_target", "crm_holder", "phone_owner", "cur:phone", "cur:crm_id")


def _identify(rows: pl.DataFrame, c: Candidates) -> pl.DataFrame:
    """``identify`` of the rows that name a candidate."""
    redirects = pl.DataFrame(
        {"idv": list(c.redirects), "resolved": list(c.redirects.values())},
        schema={"idv": pl.Int64, "resolved": pl.Int64},
    )
    holders = pl.concat(
        [
            c.frame.select_seq(
                pl.col("crm_id").alias("crm"), pl.col("id").alias("crm_holder")
            ).drop_nulls(),
            pl.DataFrame(
                {"crm": list(c.aliases), "crm_holder": list(c.aliases.values())},
                schema={"crm": STR, "crm_holder": pl.Int64},
            ),
        ]
    )
    owners = c.frame.select_seq(
        pl.col("phone").alias("ph"),
        pl.col("id").alias("phone_owner"),
        pl.col("first_name").alias("owner_first"),
        pl.col("last_name").alias("owner_last"),
    ).drop_nulls("ph")
    rows = (
        rows.join(redirects, on="idv", how="left")
        .with_columns_seq(pl.coalesce("resolved", "idv").alias("resolved"))
        .join(
            c.frame.select_seq(pl.col("id").alias("id_target")),
            left_on="resolved",
            right_on="id_target",
            how="left",
            coalesce=False,
        )
        .join(holders, on="crm", how="left")
        .join(owners, on="ph", how="left")
        .sort("i")
    )
    has_id, has_crm = pl.col("idv").is_not_null(), pl.col("crm").is_not_null()
    # Names are compared only where a phone alone finds the contact (few rows, if any).
    by_phone = rows.filter(~has_id & ~has_crm & pl.col("phone_owner").is_not_null())
    agreeing = by_phone.filter(
        _agrees("first_name", "owner_first") & _agrees("last_name", "owner_last")
    )["i"]
    agree = pl.col("i").is_in(agreeing.implode())
    rows = rows.with_columns_seq(
        (has_id & pl.col("id_target").is_null()).alias("unknown"),
        (~has_id & ~has_crm & pl.col("phone_owner").is_not_null() & ~agree).alias("names_differ"),
        pl.when(has_id)
        .then(pl.col("id_target"))
        .when(has_crm)
        .then(pl.col("crm_holder"))
        .when(pl.col("phone_owner").is_not_null() & agree)
        .then(pl.col("phone_owner"))
        .alias("target"),
    )
    current = c.frame.select_seq(
        pl.col("id").alias("target"),
        pl.col("phone").alias("cur:phone"),
        pl.col("crm_id").alias("cur:crm_id"),
    )
    rows = rows.join(current, on="target", how="left").sort("i")
    holder, theirs = pl.col("crm_holder"), pl.col("cur:crm_id")
    return rows.with_columns_seq(
        # The id's contact, but the CRM ID is another contact's — or nobody's (a new contact)
        # while the id's contact has a CRM ID of its own.
        (
            has_id
            & pl.col("id_target").is_not_null()
            & has_crm
            & (
                (holder.is_not_null() & (holder != pl.col("id_target")))
                | (holder.is_null() & theirs.is_not_null())
            )
        )
        .fill_null(False)
        .alias("conflict"),
        # The row's CRM ID is one merged into its contact: it names the contact, it is not a
        # new value for the contact's CRM ID.
        (
            pl.col("target").is_not_null()
            & has_crm
            & (holder == pl.col("target"))
            & ~theirs.eq_missing(pl.col("crm"))
        )
        .fill_null(False)
        .alias("via_alias"),
    ).select_seq(list(IDENTIFY_SCHEMA))


def _agrees(mine: str, theirs: str) -> pl.Expr:
    """Names agree: case and spacing ignored; a blank side agrees; a name the row clears
    (UNSET) disagrees with any name the contact has."""
    a = given(mine).map_batches(name_key_series, return_dtype=STR)
    b = pl.col(theirs).map_batches(name_key_series, return_dtype=STR)
    return pl.col(mine).is_null() | b.is_null() | (a == b).fill_null(False)


def refers_to_new_ids(db: Db, frame: pl.DataFrame) -> bool:
    """Does a row name an id no contact has yet, but one this batch may give out? Then the whole
    batch is decided one by one, handing out real ids as it goes (it never happens with files
    that come from a student system)."""
    unknown = frame.filter(pl.col("live") & pl.col("unknown"))["idv"]
    if unknown.is_empty():
        return False
    top = db.call(lambda conn: conn.execute(sa.select(sa.func.max(contacts.c.id))).scalar()) or 0
    return bool((unknown > top).any())


def entangled(frame: pl.DataFrame) -> pl.Series:
    """For each row: does it share a contact, a phone or a CRM ID with another live row of the
    batch? (Then one may depend on the other.)"""
    live = frame.filter("live")
    shared: list[pl.Series] = [pl.Series("i", [], dtype=frame.schema["i"])]
    for columns in (
        ("target", "id_target", "crm_holder", "phone_owner"),  # contacts
        ("ph", "cur:phone"),  # phones
        ("crm", "cur:crm_id"),  # CRM IDs
    ):
        present = [col for col in columns if live[col].null_count() < live.height]
        if len(present) == 1:  # one key a row (a fresh import's rows find nobody)
            key = live[present[0]]
            shared.append(live["i"].filter(key.is_not_null() & key.is_duplicated()))
        elif present:
            stacked = pl.concat(
                [
                    live.select_seq("i", pl.col(col).alias("key")).drop_nulls("key")
                    for col in present
                ]
            ).unique()
            shared.append(stacked.filter(pl.col("key").is_duplicated())["i"])
    rows = pl.concat(shared).unique()
    return frame["i"].is_in(rows.implode())


def decide_identity_skips(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows identification already skips: an unknown id, an id and CRM ID at odds, a phone that
    is someone else's."""
    return rows.select_seq(
        "i",
        "row",
        pl.lit(Status.SKIPPED.value).alias("status"),
        pl.when(pl.col("unknown"))
        .then(pl.lit(Code.UNKNOWN_ID.value))
        .when(pl.col("conflict"))
        .then(pl.lit(Code.CRM_ID_CONFLICT.value))
        .otherwise(pl.lit(Code.DUPLICATE_CONTACT.value))
        .alias("skip_code"),
        pl.when(pl.col("conflict")).then(pl.col("target")).alias("contact_id"),
        pl.when(pl.col("conflict"))
        .then(pl.col("crm_holder"))
        .otherwise(pl.col("phone_owner"))
        .alias("other"),
        "names_differ",
    )


def decide_new(rows: pl.DataFrame, settings: AccountSettings, fields: list[str]) -> pl.DataFrame:
    """Rows that found no contact: a new one, unless a required field is missing (the rows
    carry the required fields' columns) or the phone is another contact's."""
    missing = [
        ~(pl.col(k).is_not_null() & (pl.col(k) != CLEAR_MARK)) if k in fields else pl.lit(True)
        for k in settings.required
    ]
    blank = pl.any_horizontal(missing) if missing else pl.lit(False)
    clash = pl.col("ph").is_not_null() & pl.col("phone_owner").is_not_null()
    skip_code = (
        pl.when(blank)
        .then(pl.lit(Code.BLANK_REQUIRED.value))
        .when(clash)
        .then(pl.lit(Code.DUPLICATE_CONTACT.value))
    )
    return rows.select_seq(
        "i",
        "row",
        "ph",
        pl.when(skip_code.is_not_null())
        .then(pl.lit(Status.SKIPPED.value))
        .otherwise(pl.lit(Status.CREATED.value))
        .alias("status"),
        skip_code.alias("skip_code"),
        pl.lit(None, pl.Int64).alias("contact_id"),
        pl.when(clash & ~blank).then(pl.col("phone_owner")).alias("other"),
        pl.lit(False).alias("names_differ"),
    )


def decide_existing(
    rows: pl.DataFrame, c: Candidates, settings: AccountSettings, fields: list[str]
) -> pl.DataFrame:
    """Rows that found their contact: the three-way merge field by field, then the unique phone.
    The rows carry the mapped fields' columns and what ``identify`` found."""
    if rows.is_empty():  # a fresh import's batches: the same empty frame every time
        return _no_existing(tuple(rows.schema.items()), settings, tuple(fields))
    return _decide_existing(rows, c, settings, fields)


@functools.lru_cache(maxsize=4)
def _no_existing(
    schema: tuple[tuple[str, pl.DataType], ...], settings: AccountSettings, fields: tuple[str, ...]
) -> pl.DataFrame:
    """``decide_existing`` of no rows. Polars plans each of its expressions (a few per field)
    whatever the rows: ~7 ms a batch for nothing."""
    empty = pl.DataFrame(schema=dict(schema))
    return _decide_existing(empty, Candidates(empty_frame(settings)), settings, list(fields))


def _decide_existing(
    rows: pl.DataFrame, c: Candidates, settings: AccountSettings, fields: list[str]
) -> pl.DataFrame:
    writable = [k for k in fields if k != "id"]
    current = c.frame.select_seq(
        pl.col("id").alias("target"),
        *(
            pl.col(k).alias(f"cur:{k}")
            for k in value_keys(settings)
            if k not in ("phone", "crm_id")
        ),
        *(pl.col(base_column(k)).alias(f"cur:{base_column(k)}") for k in writable),
        *(pl.col(has_base_column(k)).alias(f"cur:{has_base_column(k)}") for k in writable),
    )
    rows = rows.join(current, on="target", how="left")
    by_platform_id = pl.col("idv").is_not_null()
    exprs: list[pl.Expr] = []
    for key in writable:
        v, cur = pl.col(key), pl.col(f"cur:{key}")
        has_base = pl.col(f"cur:{has_base_column(key)}").fill_null(False)
        base = pl.col(f"cur:{base_column(key)}")
        skip_field = pl.lit(False) if key != "crm_id" else pl.col("via_alias")
        stated = v.is_not_null() & ~skip_field
        clear = stated & (v == CLEAR_MARK)
        value = stated & (v != CLEAR_MARK)
        cleared = pl.lit(settings.field(key).cleared_value, STR)
        same = v.eq_missing(cur)
        kept = value & ~same & has_base & base.is_not_null() & (v == base)
        write = (clear & ~cur.eq_missing(cleared)) | (value & ~same & ~kept)
        exprs += [
            write.alias(f"w:{key}"),
            kept.alias(f"k:{key}"),
            # A row found by the platform id is the platform's own data, not the student
            # system catching up: equal values keep their bases there.
            (has_base & (clear | (value & same & ~by_platform_id) | write)).alias(f"d:{key}"),
            pl.when(clear).then(cleared).otherwise(v).alias(f"n:{key}"),
        ]
    rows = rows.with_columns_seq(exprs)
    wrote = pl.any_horizontal([pl.col(f"w:{k}") for k in writable] or [pl.lit(False)])
    kept_any = pl.any_horizontal([pl.col(f"k:{k}") for k in writable] or [pl.lit(False)])
    clash = (
        pl.col("w:phone")
        & pl.col("n:phone").is_not_null()
        & pl.col("phone_owner").is_not_null()
        & (pl.col("phone_owner") != pl.col("target"))
        if "phone" in writable
        else pl.lit(False)
    )
    return rows.with_columns_seq(
        pl.when(clash)
        .then(pl.lit(Status.SKIPPED.value))
        .when(wrote)
        .then(pl.lit(Status.UPDATED.value))
        .otherwise(pl.lit(Status.UNCHANGED.value))
        .alias("status"),
        pl.when(clash).then(pl.lit(Code.DUPLICATE_CONTACT.value)).alias("skip_code"),
        (kept_any & ~clash).alias("out_of_sync"),
        pl.col("target").alias("contact_id"),
        pl.when(clash).then(pl.col("phone_owner")).alias("other"),
        pl.lit(False).alias("names_differ"),
    )
