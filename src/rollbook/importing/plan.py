"""Planning a batch: every row decided against the state left by the rows before it — in bulk.

The rules (``rules.py``) are defined row by row. A batch is decided in columns instead:

1. **Checks over the whole batch**: repeated ids and CRM IDs, cells that did not normalise.
2. **Candidates** from the database (``lookup.py``): each row's contact by id, CRM ID or phone,
   and the owners of the phones rows would write.
3. **Entanglement**: a row whose contact, phone or CRM ID is also another row's may depend on
   that row; those rows go to the reference rules, one by one, in file order
   (``sequential.py``). Every other row depends on nothing but the batch's start, so it is
   decided in columns: identification, required fields, the three-way rule, the unique phone —
   the same table of cases as ``rules.decide_row``, as Polars expressions.
4. **Ids** for the new contacts, in row order; then the **possible-duplicate** flags
   (``flags.py``), which may depend on earlier rows of either kind.

The plan is data: outcomes, the contacts to insert and update, events, history, dropped bases.
A property test holds the whole engine to the reference on generated files and accounts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from rollbook.importing.decide import (
    decide_in_columns,
    entangled,
    given,
    identify,
    refers_to_new_ids,
)
from rollbook.importing.flags import BatchChanges, FlagIndex, flag_created
from rollbook.importing.keys import email_key_series, person_key_series
from rollbook.importing.lookup import Candidates, Lookup, value_keys
from rollbook.importing.messages import MessageContext, row_message
from rollbook.importing.normalise import CLEAR_MARK, NormalisedBatch, input_rows, invalid_column
from rollbook.importing.rules import Decision, InputRow
from rollbook.importing.sequential import BatchState, SequentialResult, decide_in_order
from rollbook.model import (
    BIRTH_DATE_KEY,
    CODE_ORDER,
    AccountSettings,
    Code,
    ContactState,
    Status,
)

STR = pl.String


@dataclass
class Repeats:
    """CRM IDs and ids that more than one row of the file has, with their rows."""

    crm_rows: dict[str, list[int]]
    id_rows: dict[str, list[int]]


@dataclass
class BatchPlan:
    #: One row per input row: row, status, codes (";"-joined or null), contact_id, message.
    outcomes: pl.DataFrame
    #: New contacts: id, created_row, every field (canonical strings).
    created: pl.DataFrame
    #: Existing contacts the batch changed: id, every field as it ends, phone_row (the row
    #: that wrote the phone last, null if the phone was not written).
    updated: pl.DataFrame
    #: Contacts whose phone or CRM ID moves within the batch: released before the update.
    moving: dict[str, list[int]]
    #: (contact_id, row, changes as JSON) for every updated row.
    events: list[tuple[int, int, str]]
    #: (contact_id, former phone, row that replaced it) in row order.
    former_phones: list[tuple[int, str, int]]
    #: (contact_id, field) whose base is dropped.
    dropped_bases: list[tuple[int, str]]
    #: (row, contact_id, the file's phone, the contact's phone at the batch's start) for the
    #: rows that found their contact (for the changed-numbers report).
    file_phones: pl.DataFrame
    #: Contacts to carry the import's label.
    labelled: pl.Series
    #: For the flag index: id + fields of every contact the batch created or changed.
    changed_keys: pl.DataFrame = field(default_factory=pl.DataFrame)


def _codes(*pairs: tuple[pl.Expr, Code]) -> pl.Expr:
    """A list of codes, in the order codes are always listed."""
    ordered = sorted(pairs, key=lambda p: CODE_ORDER.index(p[1]))
    return pl.concat_list(
        [
            pl.when(cond).then(pl.lit(code.value)).otherwise(pl.lit(None, STR))
            for cond, code in ordered
        ]
    ).list.drop_nulls()


def plan_batch(
    conn: Connection,
    settings: AccountSettings,
    nb: NormalisedBatch,
    repeats: Repeats,
    take_id: Callable[[], int],
    flag_index: FlagIndex,
    messages: MessageContext,
) -> BatchPlan:
    fields = list(nb.fields)
    frame = nb.frame.with_row_index("i")
    for key in ("id", "crm_id", "phone", "first_name", "last_name"):
        if key not in frame.columns:
            frame = frame.with_columns(pl.lit(None, STR).alias(key))
            frame = frame.with_columns(pl.lit(False).alias(invalid_column(key)))

    # 1. Whole-batch checks.
    invalid = {
        c: pl.lit(False) for c in (Code.INVALID_PHONE, Code.INVALID_EMAIL, Code.INVALID_VALUE)
    }
    for key in fields:
        code = settings.field(key).invalid_code
        invalid[code] = invalid[code] | pl.col(invalid_column(key))
    frame = frame.with_columns(
        _codes(
            (pl.col("crm_id").is_in(list(repeats.crm_rows)), Code.DUPLICATE_UNIQUE_ID_CRM_ID),
            (pl.col("id").is_in(list(repeats.id_rows)), Code.DUPLICATE_UNIQUE_ID_ID),
            *((cond, code) for code, cond in invalid.items()),
        ).alias("pre_codes"),
        given("id").cast(pl.Int64, strict=False).alias("idv"),
        given("crm_id").alias("crm"),
        given("phone").alias("ph"),
    ).with_columns((pl.col("pre_codes").list.len() == 0).alias("live"))

    # 2. Candidates.
    live = frame.filter("live")
    lookup = Lookup(conn, settings)
    lookup.by_ids(live["idv"].drop_nulls().to_list())
    lookup.by_crm_ids(live["crm"].drop_nulls().to_list())
    frame = identify(frame, lookup.result())
    need = frame.filter(
        pl.col("live") & pl.col("ph").is_not_null() & ~pl.col("ph").eq_missing(pl.col("cur:phone"))
    )
    lookup.by_phones(need["ph"].to_list())
    candidates = lookup.result()
    frame = identify(frame, candidates)

    # 3. Entangled rows go one by one; the rest in columns.
    all_sequential = refers_to_new_ids(conn, frame)
    frame = frame.with_columns(
        (pl.col("live") & (pl.lit(all_sequential) | entangled(frame))).alias("one_by_one")
    )
    bulk = decide_in_columns(frame.filter(pl.col("live") & ~pl.col("one_by_one")), settings, fields)
    seq_rows = input_rows(_as_batch(nb, frame.filter("one_by_one")), settings)
    reachable = _reachable(frame.filter("one_by_one"), candidates)
    provisional = iter(range(-1, -(10**9), -1))
    state = BatchState(
        candidates.states(reachable, settings),
        aliases=candidates.aliases,
        redirects=candidates.redirects,
        allocate=take_id if all_sequential else lambda: next(provisional),
    )
    seq = decide_in_order(state, seq_rows, settings)

    # 4. Ids for new contacts, in row order; then flags; then the plan's data.
    return _assemble(
        conn, settings, frame, bulk, seq, take_id, all_sequential, flag_index, messages, nb
    )


def _as_batch(nb: NormalisedBatch, rows: pl.DataFrame) -> NormalisedBatch:
    return NormalisedBatch(rows.select(nb.frame.columns), nb.fields, [], 0)


def _reachable(rows: pl.DataFrame, c: Candidates) -> set[int]:
    """The contacts rows decided one by one can reach: through ids, CRM IDs, phones."""
    found: set[int] = set()
    for col in ("target", "id_target", "crm_holder", "phone_owner"):
        found.update(rows[col].drop_nulls().to_list())
    found.update(c.redirects.values())
    found.update(c.aliases.values())
    return found & c.ids


def _assemble(
    conn: Connection,
    settings: AccountSettings,
    frame: pl.DataFrame,
    bulk: pl.DataFrame,
    seq: SequentialResult,
    take_id: Callable[[], int],
    all_sequential: bool,
    flag_index: FlagIndex,
    messages: MessageContext,
    nb: NormalisedBatch,
) -> BatchPlan:
    keys = value_keys(settings)
    fields = list(nb.fields)
    writable = [k for k in fields if k != "id"]
    state = seq.state

    # New contacts, from both kinds of rows, get their ids in row order.
    bulk_new = bulk.filter(pl.col("status") == Status.CREATED.value)
    seq_new = [d for d in seq.decisions if d.status is Status.CREATED]
    order = sorted(
        [(row, "bulk", i) for i, row in enumerate(bulk_new["row"].to_list())]
        + [(d.row, "seq", i) for i, d in enumerate(seq_new)]
    )
    bulk_ids: list[int] = [0] * bulk_new.height
    renumber: dict[int, int] = {}
    for _, kind, i in order:
        if kind == "bulk":
            bulk_ids[i] = take_id()
        elif not all_sequential:
            provisional = seq_new[i].contact_id
            assert provisional is not None
            renumber[provisional] = take_id()
    if renumber:
        _renumber(seq, renumber)
    created_in_seq = {d.contact_id for d in seq_new}
    bulk_new = bulk_new.with_columns(pl.Series("new_id", bulk_ids, dtype=pl.Int64))
    bulk = bulk.join(bulk_new.select("i", "new_id"), on="i", how="left").with_columns(
        pl.coalesce("new_id", "contact_id").alias("contact_id")
    )

    created = pl.concat(
        [
            bulk_new.select(
                pl.col("new_id").alias("id"),
                pl.col("row").alias("created_row"),
                *(_new_value(settings, k, fields).alias(k) for k in keys),
            ),
            _states_frame(
                keys,
                [(state.contacts[d.contact_id], d.row) for d in seq_new if d.contact_id],
                "created_row",
            ),
        ]
    )

    # Existing contacts the batch changed, as they end.
    bulk_upd = bulk.filter(pl.col("status") == Status.UPDATED.value)
    seq_phone_rows: dict[int, int] = {}
    seq_changed: set[int] = set()
    for d in seq.decisions:
        if d.status is Status.UPDATED and d.contact_id not in created_in_seq:
            assert d.contact_id is not None
            seq_changed.add(d.contact_id)
            if "phone" in d.values:
                seq_phone_rows[d.contact_id] = d.row
    updated = pl.concat(
        [
            bulk_upd.select(
                pl.col("target").alias("id"),
                pl.when(pl.col("w:phone")).then(pl.col("row")).alias("phone_row")
                if "phone" in writable
                else pl.lit(None, pl.Int64).alias("phone_row"),
                *(_final_value(k, writable).alias(k) for k in keys),
            ),
            _states_frame(
                keys,
                [(state.contacts[cid], seq_phone_rows.get(cid)) for cid in sorted(seq_changed)],
                "phone_row",
            ),
        ]
    )
    moving = {
        column: sorted(
            cid
            for cid in seq_changed
            if state.contacts[cid].values.get(column) != seq.before[cid].get(column)
        )
        for column in ("phone", "crm_id")
    }

    events, former, dropped = _changes(bulk, seq, writable, created_in_seq)
    flags = flag_created(
        conn,
        settings,
        flag_index,
        created.with_columns(pl.col("created_row").alias("row")),
        _key_events(bulk, seq, settings, writable),
    )
    flagged = set(created.filter(flags)["id"].to_list())

    outcomes = _outcomes(frame, bulk, seq, flagged, nb, settings, messages, writable)
    return BatchPlan(
        outcomes=outcomes,
        created=created,
        updated=updated,
        moving=moving,
        events=events,
        former_phones=former,
        dropped_bases=dropped,
        file_phones=_file_phones(bulk, seq),
        labelled=outcomes.filter(pl.col("status") != Status.SKIPPED.value)["contact_id"],
        changed_keys=pl.concat([created.drop("created_row"), updated.drop("phone_row")]),
    )


def _renumber(seq: SequentialResult, renumber: dict[int, int]) -> None:
    """Give the contacts the sequential rows created their real ids."""
    for d in seq.decisions:
        if d.contact_id is not None:
            d.contact_id = renumber.get(d.contact_id, d.contact_id)
    contacts_ = seq.state.contacts
    for old, new in renumber.items():
        contact = contacts_.pop(old)
        contact.id = new
        contacts_[new] = contact


def _new_value(settings: AccountSettings, key: str, fields: list[str]) -> pl.Expr:
    default = pl.lit(settings.field(key).cleared_value, STR)
    if key not in fields:
        return default
    col = pl.col(key)
    return pl.when(col.is_not_null() & (col != CLEAR_MARK)).then(col).otherwise(default)


def _final_value(key: str, writable: list[str]) -> pl.Expr:
    if key not in writable:
        return pl.col(f"cur:{key}")
    return pl.when(pl.col(f"w:{key}")).then(pl.col(f"n:{key}")).otherwise(pl.col(f"cur:{key}"))


def _states_frame(
    keys: list[str], states: list[tuple[ContactState, int | None]], row_column: str
) -> pl.DataFrame:
    schema: dict[str, Any] = {"id": pl.Int64, row_column: pl.Int64, **{k: STR for k in keys}}
    return pl.DataFrame(
        [(c.id, row, *(c.values.get(k) for k in keys)) for c, row in states],
        schema=schema,
        orient="row",
    )


def _changes(
    bulk: pl.DataFrame, seq: SequentialResult, writable: list[str], created_in_seq: set[Any]
) -> tuple[list[tuple[int, int, str]], list[tuple[int, str, int]], list[tuple[int, str]]]:
    """Events, former phones and dropped bases, from both kinds of rows, in row order."""
    events: list[tuple[int, int, str]] = []
    former: list[tuple[int, str, int]] = []
    dropped: list[tuple[int, str]] = []
    applied = bulk.filter(pl.col("status").is_in([Status.UPDATED.value, Status.UNCHANGED.value]))
    for key in writable:
        for cid in applied.filter(pl.col(f"d:{key}"))["target"].to_list():
            dropped.append((cid, key))
    upd = applied.filter(pl.col("status") == Status.UPDATED.value)
    for record in upd.select(
        "row",
        "target",
        *(f"w:{k}" for k in writable),
        *(f"n:{k}" for k in writable),
        *(f"cur:{k}" for k in writable),
    ).iter_rows(named=True):
        changes = {k: [record[f"cur:{k}"], record[f"n:{k}"]] for k in writable if record[f"w:{k}"]}
        events.append((record["target"], record["row"], json.dumps(changes)))
        if "phone" in changes and changes["phone"][0] is not None:
            former.append((record["target"], changes["phone"][0], record["row"]))
    for d in seq.decisions:
        if d.status not in (Status.UPDATED, Status.UNCHANGED) or d.contact_id is None:
            continue
        if d.contact_id not in created_in_seq:
            dropped.extend((d.contact_id, key) for key in d.drop_bases)
        if d.status is Status.UPDATED:
            changes = {k: [d.old.get(k), v] for k, v in d.values.items()}
            events.append((d.contact_id, d.row, json.dumps(changes)))
            old_phone = d.old.get("phone")
            if "phone" in d.values and old_phone is not None:
                former.append((d.contact_id, old_phone, d.row))
    events.sort(key=lambda e: e[1])
    former.sort(key=lambda f: f[2])
    return events, former, dropped


def _key_events(
    bulk: pl.DataFrame, seq: SequentialResult, settings: AccountSettings, writable: list[str]
) -> BatchChanges:
    """What the batch did to emails, name-and-birth-date keys and histories, row by row."""
    rows: list[tuple[int, str, str, int]] = []
    born = BIRTH_DATE_KEY if settings.has_birth_date else None
    touched = bulk.filter(pl.col("status").is_in([Status.CREATED.value, Status.UPDATED.value]))
    if touched.height:

        def side(prefix: str, key: str) -> pl.Series:
            if key == "born" and born is None:
                return pl.Series([None] * touched.height, dtype=STR)
            name = born if key == "born" else key
            assert name is not None
            if prefix == "after":
                if name in writable:
                    expr = (
                        pl.when(pl.col("status") == Status.CREATED.value)
                        .then(_new_value(settings, name, writable))
                        .otherwise(_final_value(name, writable))
                    )
                else:
                    expr = (
                        pl.when(pl.col("status") == Status.CREATED.value)
                        .then(pl.lit(settings.field(name).cleared_value, STR))
                        .otherwise(pl.col(f"cur:{name}"))
                    )
            else:
                expr = pl.col(f"cur:{name}")
            return touched.select(expr.alias("v"))["v"]

        for prefix, delta in (("before", -1), ("after", 1)):
            email = email_key_series(side(prefix, "email"))
            person = person_key_series(
                side(prefix, "first_name"), side(prefix, "last_name"), side(prefix, "born")
            )
            part = pl.DataFrame(
                {"row": touched["row"], "email": email, "person": person, "was": touched["status"]}
            )
            if prefix == "before":  # a created contact had no keys before
                part = part.filter(pl.col("was") != Status.CREATED.value)
            for kind in ("email", "person"):
                rows.extend(
                    (row, kind, key, delta)
                    for row, key in part.select("row", kind).drop_nulls().iter_rows()
                )
    former = []
    if "phone" in writable:
        former = (
            touched.filter(
                (pl.col("status") == Status.UPDATED.value)
                & pl.col("w:phone")
                & pl.col("cur:phone").is_not_null()
            )
            .select("row", pl.col("cur:phone").alias("phone"))
            .rows()
        )
    for e in seq.events:
        for kind, (before, after) in (("email", e.email), ("person", e.person)):
            if before != after:
                if before is not None:
                    rows.append((e.row, kind, before, -1))
                if after is not None:
                    rows.append((e.row, kind, after, 1))
        if e.former_phone is not None:
            former.append((e.row, e.former_phone))
    events = pl.DataFrame(
        rows, schema={"row": pl.Int64, "kind": STR, "key": STR, "delta": pl.Int64}, orient="row"
    )
    # A key that does not change is not an event: an update that keeps its email cancels out.
    events = (
        events.group_by("row", "kind", "key")
        .agg(pl.col("delta").sum())
        .filter(pl.col("delta") != 0)
    )
    return BatchChanges(
        events, pl.DataFrame(former, schema={"row": pl.Int64, "phone": STR}, orient="row")
    )


def _file_phones(bulk: pl.DataFrame, seq: SequentialResult) -> pl.DataFrame:
    """(row, contact, the file's phone, the contact's phone when the batch began) for the rows
    that found their contact, applied or not."""
    found = bulk.filter(
        pl.col("ph").is_not_null()
        & pl.col("contact_id").is_not_null()
        & (
            (pl.col("status") != Status.SKIPPED.value)
            | (pl.col("skip_code") == Code.DUPLICATE_CONTACT.value)
        )
    ).select(
        "row",
        "contact_id",
        pl.col("ph").alias("phone"),
        pl.when(pl.col("status") == Status.CREATED.value)
        .then(pl.lit(None, STR))
        .otherwise(pl.col("cur:phone"))
        .alias("start"),
    )
    extra = [
        (d.row, d.contact_id, phone, seq.before.get(d.contact_id, {}).get("phone"))
        for d, phone in zip(seq.decisions, seq.phones, strict=True)
        if phone is not None and d.contact_id is not None and identified(d)
    ]
    schema = {"row": pl.Int64, "contact_id": pl.Int64, "phone": STR, "start": STR}
    return pl.concat(
        [found.cast(schema), pl.DataFrame(extra, schema=schema, orient="row")]  # type: ignore[arg-type]
    )


def identified(decision: Decision) -> bool:
    """Did the row find (or make) its contact — whether or not it was applied?"""
    if decision.status is not Status.SKIPPED:
        return True
    return decision.codes == (Code.DUPLICATE_CONTACT,) and decision.contact_id is not None


OUTCOME_SCHEMA = {
    "row": pl.Int64,
    "status": STR,
    "codes": STR,
    "contact_id": pl.Int64,
    "message": STR,
}


def _outcomes(
    frame: pl.DataFrame,
    bulk: pl.DataFrame,
    seq: SequentialResult,
    flagged: set[int],
    nb: NormalisedBatch,
    settings: AccountSettings,
    messages: MessageContext,
    writable: list[str],
) -> pl.DataFrame:
    """One outcome per input row, with its message."""
    records: list[tuple[Any, ...]] = []

    def add(d: Decision, row: InputRow) -> None:
        records.append(
            (
                d.row,
                d.status.value,
                ";".join(c.value for c in d.codes) or None,
                d.contact_id,
                row_message(d, row, messages),
            )
        )

    # Rows stopped by the whole-file checks, and rows that could not be read.
    pre = frame.filter(~pl.col("live"))
    for row, (r, codes) in zip(
        input_rows(_as_batch(nb, pre), settings),
        pre.select("row", "pre_codes").iter_rows(),
        strict=True,
    ):
        add(Decision(r, Status.SKIPPED, tuple(Code(c) for c in codes)), row)
    for bad in nb.bad_rows:
        add(
            Decision(bad.row, Status.SKIPPED, (Code.INVALID_VALUE,)),
            InputRow(bad.row, {}, unreadable=bad.reason),
        )

    # Rows decided one by one.
    for d, row in zip(seq.decisions, seq.rows, strict=True):
        if d.status is Status.CREATED and d.contact_id in flagged:
            d.codes = (Code.POSSIBLE_DUPLICATE,)
        add(d, row)

    # Rows decided in columns: skipped ones one by one (they are few) ...
    skipped = bulk.filter(pl.col("status") == Status.SKIPPED.value)
    if skipped.height:
        rows = input_rows(_as_batch(nb, skipped), settings)
        for row, record in zip(
            rows,
            skipped.select("row", "skip_code", "contact_id", "other", "names_differ").iter_rows(),
            strict=True,
        ):
            r, code, cid, other, names_differ = record
            missing = [k for k in settings.required if not isinstance(row.changes.get(k), str)]
            add(
                Decision(
                    r,
                    Status.SKIPPED,
                    (Code(code),),
                    cid,
                    detail={"other": other, "names_differ": names_differ, "missing": missing},
                ),
                row,
            )
    # ... and the rest by the few messages they share.
    done = bulk.filter(pl.col("status") != Status.SKIPPED.value).with_columns(
        pl.concat_list(
            [pl.when(pl.col(f"w:{k}")).then(pl.lit(k)) for k in writable] or [pl.lit(None, STR)]
        )
        .list.drop_nulls()
        .alias("written"),
        pl.concat_list(
            [pl.when(pl.col(f"k:{k}")).then(pl.lit(k)) for k in writable] or [pl.lit(None, STR)]
        )
        .list.drop_nulls()
        .alias("kept"),
        pl.col("contact_id").is_in(list(flagged)).alias("flagged"),
    )
    kinds = done.select("status", "written", "kept", "flagged").unique()
    texts = []
    for status, written, kept, flag in kinds.iter_rows():
        d = Decision(
            0,
            Status(status),
            _flag_codes(Status(status), kept, flag),
            values=dict.fromkeys(written),
            kept=tuple(kept),
        )
        texts.append(
            (
                status,
                written,
                kept,
                flag,
                ";".join(c.value for c in d.codes) or None,
                row_message(d, InputRow(0, {}), messages),
            )
        )
    table = pl.DataFrame(
        texts,
        schema={
            "status": STR,
            "written": pl.List(STR),
            "kept": pl.List(STR),
            "flagged": pl.Boolean,
            "codes": STR,
            "message": STR,
        },
        orient="row",
    )
    rest = done.join(table, on=["status", "written", "kept", "flagged"], how="left").select(
        list(OUTCOME_SCHEMA)
    )
    return pl.concat(
        [pl.DataFrame(records, schema=OUTCOME_SCHEMA, orient="row"), rest.cast(OUTCOME_SCHEMA)]  # type: ignore[arg-type]
    ).sort("row")


def _flag_codes(status: Status, kept: list[str], flag: bool) -> tuple[Code, ...]:
    if status is Status.CREATED:
        return (Code.POSSIBLE_DUPLICATE,) if flag else ()
    return (Code.CONTACT_OUT_OF_SYNC,) if kept else ()
