"""Planning a batch: every row decided against the state left by the rows before it — in bulk.

The rules (``rules.py``) are defined row by row. A batch is decided in columns instead:

1. **Checks over the whole batch**: repeated ids and CRM IDs, cells that did not normalise.
2. **Candidates** from the database (``lookup.py``): each row's contact by id, CRM ID or phone,
   and the owners of the phones rows would write.
3. **Entanglement**: a row whose contact, phone or CRM ID is also another row's may depend on
   that row; those rows go to the reference rules, one by one, in file order
   (``sequential.py``). Every other row depends on nothing but the batch's start, so it is
   decided in columns (``decide.py``): the same table of cases as ``rules.decide_row``.
4. **Ids** for the new contacts, in row order; and what the **possible-duplicate** flags
   (``flags.py``) depend on — each new contact's keys as its row created them and what earlier
   rows of either kind did to the keys. The flags themselves are decided on the import's flags
   thread (``engine._Flags``, ``flag_outcomes``), so that planning never waits for the flag
   index to load.

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
    decide_existing,
    decide_identity_skips,
    decide_new,
    entangled,
    identify,
    refers_to_new_ids,
)
from rollbook.importing.flags import BatchChanges
from rollbook.importing.keys import email_key_series, person_key_series
from rollbook.importing.lookup import (
    Candidates,
    Found,
    Lookup,
    Memory,
    base_column,
    empty_frame,
    has_base_column,
    value_keys,
)
from rollbook.importing.messages import MessageContext, row_message
from rollbook.importing.normalise import NormalisedBatch, input_rows, invalid_column
from rollbook.importing.prepare import (
    INVALID_CODES,
    PreparedBatch,
    codes_list,
    custom_json,
    invalid_code_column,
)
from rollbook.importing.rules import Decision, InputRow
from rollbook.importing.sequential import BatchState, SequentialResult, decide_in_order
from rollbook.importing.worker import Db, Direct
from rollbook.model import (
    BIRTH_DATE_KEY,
    CODE_ORDER,
    AccountSettings,
    Code,
    ContactState,
    Status,
)

STR = pl.String
CREATED, UPDATED, UNCHANGED, SKIPPED = (s.value for s in Status)
#: The contact columns unique per account: writing them costs the indexes' upkeep.
UNIQUE_COLUMNS = ("phone", "crm_id")


@dataclass
class Repeats:
    """CRM IDs and ids that more than one row of the file has, with their rows."""

    crm_rows: dict[str, list[int]]
    id_rows: dict[str, list[int]]


@dataclass
class BatchPlan:
    #: One row per input row: row, status, codes (";"-joined or null), contact_id, message.
    outcomes: pl.DataFrame
    #: New contacts: id, created_row, every field (canonical strings), ``custom`` (JSON).
    created: pl.DataFrame
    #: Existing contacts the batch changed: id, every field as it ends, phone_row (the row
    #: that wrote the phone last, null if the phone was not written), keys_moved (the phone or
    #: CRM ID changed), import_print (once ``prints.to_keep`` has run: the print to keep, or
    #: null).
    updated: pl.DataFrame
    #: Contacts whose phone or CRM ID moves within the batch: released before the update.
    moving: dict[str, list[int]]
    #: (contact_id, row, changes as JSON) for every updated row.
    events: list[tuple[int, int, str]]
    #: (contact_id, former phone, row that replaced it) in row order.
    former_phones: list[tuple[int, str, int]]
    #: (contact_id, field) whose base is dropped.
    dropped_bases: list[tuple[int, str]]
    #: row, contact_id, phone (the file's), start (the contact's phone at the batch's start, or
    #: at its end for a contact the batch created) for the rows that found their contact (for
    #: the changed-numbers report; see ``_file_phones``).
    file_phones: pl.DataFrame
    #: Contacts to carry the import's label.
    labelled: pl.Series
    #: id, email key, person key of every contact the batch created or changed (flag index).
    changed_keys: pl.DataFrame
    #: id, row, phone, email key, person key of each new contact as its row created it, and
    #: what the batch did to the keys: what its possible-duplicate flag is decided by (on the
    #: flags thread: ``engine._Flags``, ``flag_outcomes``).
    created_keys: pl.DataFrame
    key_changes: BatchChanges
    #: The rows decided one by one (they touch another row of the batch).
    one_by_one: pl.Series = field(default_factory=lambda: pl.Series("row", [], dtype=pl.Int64))

    def touched(self) -> pl.Series:
        """The contacts the plan creates or changes (values or bases)."""
        dropped = pl.Series("id", [cid for cid, _ in self.dropped_bases], dtype=pl.Int64)
        return pl.concat(
            [self.created["id"].cast(pl.Int64), self.updated["id"].cast(pl.Int64), dropped]
        )


def contacts_left(
    plan: BatchPlan, candidates: Candidates, settings: AccountSettings
) -> pl.DataFrame:
    """Every contact ``plan`` creates or changes (values or bases), as it leaves them, as
    candidates (``lookup.empty_frame``'s columns): the contacts created, with no bases; the
    contacts changed, with their values as they end and the bases they had (they were among
    the batch's ``candidates``) but those dropped. For the next batch's candidates, read before
    the plan's writes (``lookup.brought_up_to_date``)."""
    created, updated, dropped = plan.created, plan.updated, plan.dropped_bases
    keys = value_keys(settings)
    schema = empty_frame(settings).schema
    bases = [c for c in schema if c.startswith(("base:", "has_base:"))]
    known = candidates.frame
    changed = updated.select_seq(pl.col("id").cast(pl.Int64), *keys).join(
        known.select_seq("id", *bases), on="id", how="left"
    )
    only_bases = known.filter(
        pl.col("id").is_in([cid for cid, _ in dropped])
        & ~pl.col("id").is_in(changed["id"].implode())
    )
    new = created.select_seq(pl.col("id").cast(pl.Int64), *keys).with_columns_seq(
        *(pl.lit(None, pl.String).alias(base_column(k)) for k in keys),
        *(pl.lit(False).alias(has_base_column(k)) for k in keys),
    )
    # The yes/no flags as a read gives them back (stored as booleans, never null).
    left = pl.concat(
        [p.select_seq(list(schema)).cast(schema) for p in (changed, only_bases, new)]
    ).with_columns_seq(
        pl.when(pl.col(k) == "true").then(pl.lit("true")).otherwise(pl.lit("false")).alias(k)
        for k in ("opted_out", "archived")
    )
    by_field: dict[str, list[int]] = {}
    for cid, key in dropped:
        by_field.setdefault(key, []).append(cid)
    return left.with_columns_seq(
        *(
            pl.when(pl.col("id").is_in(ids))
            .then(None)
            .otherwise(pl.col(base_column(key)))
            .alias(base_column(key))
            for key, ids in by_field.items()
        ),
        *(
            (pl.col(has_base_column(key)) & ~pl.col("id").is_in(ids)).alias(has_base_column(key))
            for key, ids in by_field.items()
        ),
    )


#: The codes that stop a row before anything is looked up: its CRM ID or id is repeated in the
#: file, or a cell did not normalise.
STOP_CODES = (Code.DUPLICATE_UNIQUE_ID_CRM_ID, Code.DUPLICATE_UNIQUE_ID_ID, *INVALID_CODES)
DUPLICATE_CRM, DUPLICATE_ID = STOP_CODES[:2]


def checked_rows(frame: pl.DataFrame, repeats: Repeats) -> pl.DataFrame:
    """Step 1, whole-batch checks, on a narrow frame (``i``, ``row``, the keys, the names, a
    ``stop:`` column per code that stops a row, and ``live``: no code stops it): the rest of the
    row is fetched where needed. Which codes stop a row stay booleans here; they become lists for
    the few rows they stop."""
    stops = {
        Code.DUPLICATE_UNIQUE_ID_CRM_ID: pl.col("crm_id").is_in(list(repeats.crm_rows)),
        Code.DUPLICATE_UNIQUE_ID_ID: pl.col("id").is_in(list(repeats.id_rows)),
        **{code: pl.col(invalid_code_column(code)) for code in INVALID_CODES},
    }
    return frame.select_seq(
        "i",
        "row",
        "idv",
        "crm",
        "ph",
        "first_name",
        "last_name",
        *(stop.fill_null(False).alias(f"stop:{code.value}") for code, stop in stops.items()),
    ).with_columns_seq((~pl.any_horizontal(f"stop:{code.value}" for code in stops)).alias("live"))


def read_candidates(conn: Connection, settings: AccountSettings, rows: pl.DataFrame) -> Found:
    """Step 2's reads, on the import's connection (a job of its worker): the live ``rows``'
    (``checked_rows``) contacts by id and CRM ID, then the owners of their phones that those
    contacts do not hold."""
    lookup = Lookup(Direct(conn), settings)
    _look_up(lookup, rows.filter("live"))
    return lookup.found


def _look_up(lookup: Lookup, live: pl.DataFrame) -> None:
    lookup.by_ids(live["idv"].drop_nulls().to_list())
    lookup.by_crm_ids(live["crm"])
    lookup.by_phones(live["ph"])


def plan_batch(
    db: Db,
    settings: AccountSettings,
    prepared: PreparedBatch,
    repeats: Repeats,
    take_ids: Callable[[int], list[int]],
    messages: MessageContext,
    memory: Memory,
    candidates: Candidates | None = None,
) -> BatchPlan:
    """``candidates``: the batch's, read already (``read_candidates``, brought up to date);
    else they are read now, through ``db``."""
    nb = prepared.batch
    fields = list(nb.fields)
    frame = prepared.frame
    # ``_rows_of`` takes rows by ``i``, which must be each row's place in the frame.
    if not frame["i"].equals(pl.int_range(frame.height, eager=True)):
        raise AssertionError("a batch's rows are not numbered by their place in it")

    # 1. Whole-batch checks.
    rows = checked_rows(frame, repeats)

    # 2. Candidates, and who each row is.
    live = rows.filter("live")
    if candidates is None:
        lookup = Lookup(db, settings, memory)
        _look_up(lookup, live)
        candidates = lookup.result()
    rows = rows.join(identify(live, candidates), on="i", how="left")

    # 3. Entangled rows go one by one; the rest in columns.
    all_sequential = refers_to_new_ids(db, rows)
    rows = rows.with_columns_seq(
        (pl.col("live") & (pl.lit(all_sequential) | entangled(rows))).alias("one_by_one")
    )
    in_bulk = rows.filter(pl.col("live") & ~pl.col("one_by_one"))
    identity_skip = pl.col("unknown") | pl.col("conflict") | pl.col("names_differ")
    required = [k for k in settings.required if k in fields]
    decided = Decided(
        skipped=decide_identity_skips(in_bulk.filter(identity_skip)),
        new=decide_new(
            _with(in_bulk.filter(~identity_skip & pl.col("target").is_null()), frame, required),
            settings,
            fields,
        ),
        existing=decide_existing(
            _with(
                in_bulk.filter(~identity_skip & pl.col("target").is_not_null()),
                frame,
                [k for k in fields if k != "id"],
            ),
            candidates,
            settings,
            fields,
        ),
    )
    one_by_one = rows.filter("one_by_one")
    provisional = iter(range(-1, -(10**9), -1))
    state = BatchState(
        candidates.states(_reachable(one_by_one, candidates), settings),
        aliases=candidates.aliases,
        redirects=candidates.redirects,
        allocate=(lambda: take_ids(1)[0]) if all_sequential else lambda: next(provisional),
    )
    seq_rows = input_rows(_as_batch(nb, frame, one_by_one), settings)
    seq = decide_in_order(state, seq_rows, settings)

    # 4. Ids for new contacts, in row order; then flags; then the plan's data.
    plan = _assemble(
        db,
        settings,
        frame,
        rows,
        decided,
        seq,
        take_ids,
        all_sequential,
        messages,
        nb,
    )
    plan.one_by_one = one_by_one["row"]
    return plan


@dataclass
class Decided:
    """The rows decided in columns: skipped by identification, new, and existing contacts'."""

    skipped: pl.DataFrame
    new: pl.DataFrame
    existing: pl.DataFrame


def _with(rows: pl.DataFrame, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """``rows`` with these columns of the batch's rows (only the rows that need them)."""
    if not columns:
        return rows
    if rows.is_empty():
        return rows.with_columns_seq(pl.lit(None, frame.schema[c]).alias(c) for c in columns)
    return rows.join(frame.select_seq("i", *columns), on="i", how="left")


def _rows_of(frame: pl.DataFrame, subset: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """These ``columns`` of the batch's rows (``frame``) that are in ``subset`` (by ``i``), in
    the batch's order.

    ``i`` is each row's place in the batch's frame (numbered by ``prepare``, and again by
    ``ahead`` for a group of batches), so the rows are taken by place: a filter by membership
    hashed every row's ``i``, two queries a call. Only the columns asked for are copied (a
    prepared batch has ~50, a caller needs a third to a half of them), and none when
    ``subset`` is every row."""
    columns_ = frame.select_seq(columns)
    places = subset["i"].unique().sort()
    if places.len() == frame.height:  # every row (``i`` is 0 … height - 1, unique)
        return columns_
    return columns_[places]


def _as_batch(nb: NormalisedBatch, frame: pl.DataFrame, subset: pl.DataFrame) -> NormalisedBatch:
    """``subset``'s rows of the batch, as the batch was normalised (``input_rows`` reads it)."""
    return NormalisedBatch(_rows_of(frame, subset, nb.frame.columns), nb.fields, [], 0)


def _reachable(rows: pl.DataFrame, c: Candidates) -> set[int]:
    """The contacts rows decided one by one can reach: through ids, CRM IDs, phones."""
    found: set[int] = set()
    for col in ("target", "id_target", "crm_holder", "phone_owner"):
        found.update(rows[col].drop_nulls().to_list())
    found.update(c.redirects.values())
    found.update(c.aliases.values())
    return found & c.ids


def _assemble(
    db: Db,
    settings: AccountSettings,
    frame: pl.DataFrame,
    rows: pl.DataFrame,
    decided: Decided,
    seq: SequentialResult,
    take_ids: Callable[[int], list[int]],
    all_sequential: bool,
    messages: MessageContext,
    nb: NormalisedBatch,
) -> BatchPlan:
    keys = value_keys(settings)
    writable = [k for k in nb.fields if k != "id"]
    state = seq.state

    # New contacts, from both kinds of rows, get their ids in row order.
    new = decided.new.filter(pl.col("status") == CREATED).sort("row")
    seq_new = [d for d in seq.decisions if d.status is Status.CREATED]
    ids = take_ids(new.height + (0 if all_sequential else len(seq_new)))
    if seq_new and not all_sequential:
        order = (
            pl.concat(
                [
                    new.select_seq("row", pl.lit(None, pl.Int64).alias("provisional")),
                    pl.DataFrame(
                        {
                            "row": [d.row for d in seq_new],
                            "provisional": [d.contact_id for d in seq_new],
                        },
                        schema={"row": pl.Int64, "provisional": pl.Int64},
                    ),
                ]
            )
            .sort("row")
            .with_columns_seq(pl.Series("new_id", ids, dtype=pl.Int64))
        )
        new_ids = order.filter(pl.col("provisional").is_null())["new_id"]
        renumbered = order.filter(pl.col("provisional").is_not_null())
        _renumber(seq, dict(zip(renumbered["provisional"], renumbered["new_id"], strict=True)))
    else:
        new_ids = pl.Series("new_id", ids, dtype=pl.Int64)
    new = new.with_columns_seq(new_ids.alias("contact_id"))
    created_in_seq = {d.contact_id for d in seq_new}
    seq_created = _states_frame(
        settings,
        [(state.contacts[d.contact_id], d.row) for d in seq_new if d.contact_id is not None],
        "created_row",
    )
    # The rows are the batch's in its order (``i``), as ``new`` is (by row).
    taken = _rows_of(frame, new, ["row", *(f"new:{k}" for k in keys), "key:email", "key:person"])
    bulk_created = _with_custom(
        taken.select_seq(
            new["contact_id"].alias("id"),
            pl.col("row").alias("created_row"),
            *(pl.col(f"new:{k}").alias(k) for k in keys),
        ),
        settings,
    ).with_columns_seq(taken["key:email"], taken["key:person"])
    created = pl.concat([bulk_created, _with_keys(seq_created, settings)])

    # Existing contacts the batch changed, as they end.
    existing = decided.existing
    bulk_upd = existing.filter(pl.col("status") == UPDATED)
    seq_phone_rows: dict[int, int] = {}
    seq_changed: set[int] = set()
    for d in seq.decisions:
        if d.status is Status.UPDATED and d.contact_id not in created_in_seq:
            assert d.contact_id is not None
            seq_changed.add(d.contact_id)
            if "phone" in d.values:
                seq_phone_rows[d.contact_id] = d.row
    moving = {
        column: sorted(
            cid
            for cid in seq_changed
            if state.contacts[cid].values.get(column) != seq.before[cid].get(column)
        )
        for column in UNIQUE_COLUMNS
    }
    moved_in_seq = set(moving["phone"]) | set(moving["crm_id"])
    seq_updated = _states_frame(
        settings,
        [(state.contacts[cid], seq_phone_rows.get(cid)) for cid in sorted(seq_changed)],
        "phone_row",
    )
    written_keys = [pl.col(f"w:{k}") for k in UNIQUE_COLUMNS if k in writable]
    updated = pl.concat(
        [
            _with_custom(
                bulk_upd.select_seq(
                    pl.col("target").alias("id"),
                    pl.when(pl.col("w:phone")).then(pl.col("row")).alias("phone_row")
                    if "phone" in writable
                    else pl.lit(None, pl.Int64).alias("phone_row"),
                    *(_final_value(k, writable).alias(k) for k in keys),
                    pl.any_horizontal(written_keys).alias("keys_moved")
                    if written_keys
                    else pl.lit(False).alias("keys_moved"),
                ),
                settings,
            ),
            seq_updated.with_columns_seq(
                seq_updated["id"].is_in(list(moved_in_seq)).alias("keys_moved")
            ),
        ],
        how="diagonal",
    )

    events, former, dropped = _changes(existing, seq, writable, created_in_seq)
    # A new contact is flagged by its values when it was created (a later row of the batch may
    # have changed them since).
    at_creation = pl.concat(
        [
            bulk_created.select_seq("id", "created_row", "phone", "key:email", "key:person"),
            _with_keys(
                _states_frame(
                    settings,
                    [
                        (ContactState(d.contact_id, d.values), d.row)
                        for d in seq_new
                        if d.contact_id is not None
                    ],
                    "created_row",
                ),
                settings,
            ).select_seq("id", "created_row", "phone", "key:email", "key:person"),
        ]
    )
    outcomes = _outcomes(rows, decided, new, seq, nb, frame, settings, messages, writable)
    updated_keys = _with_keys(updated, settings)
    return BatchPlan(
        outcomes=outcomes,
        created=created.drop("key:email", "key:person"),
        updated=updated,
        moving=moving,
        events=events,
        former_phones=former,
        dropped_bases=dropped,
        file_phones=_file_phones(new, existing, seq, rows),
        labelled=outcomes.filter(pl.col("status") != SKIPPED)["contact_id"],
        changed_keys=pl.concat(
            [
                created.select_seq("id", "crm_id", "phone", "key:email", "key:person"),
                updated_keys.select_seq("id", "crm_id", "phone", "key:email", "key:person"),
            ]
        ),
        created_keys=at_creation.rename({"created_row": "row"}),
        key_changes=_key_events(existing, seq, settings, writable),
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


def _final_value(key: str, writable: list[str]) -> pl.Expr:
    if key not in writable:
        return pl.col(f"cur:{key}")
    return pl.when(pl.col(f"w:{key}")).then(pl.col(f"n:{key}")).otherwise(pl.col(f"cur:{key}"))


def _with_custom(frame: pl.DataFrame, settings: AccountSettings) -> pl.DataFrame:
    if frame.is_empty():
        return frame.with_columns_seq(pl.lit(None, STR).alias("custom"))
    custom = [f.key for f in settings.fields if not f.builtin]
    return frame.with_columns_seq(custom_json(frame, custom))


def _with_keys(frame: pl.DataFrame, settings: AccountSettings) -> pl.DataFrame:
    if frame.is_empty():
        return frame.with_columns_seq(
            pl.lit(None, STR).alias(f"key:{k}") for k in ("email", "person")
        )
    born = (
        frame[BIRTH_DATE_KEY]
        if settings.has_birth_date
        else pl.Series([None] * frame.height, dtype=STR)
    )
    return frame.with_columns_seq(
        email_key_series(frame["email"]).alias("key:email"),
        person_key_series(frame["first_name"], frame["last_name"], born).alias("key:person"),
    )


def _states_frame(
    settings: AccountSettings, states: list[tuple[ContactState, int | None]], row_column: str
) -> pl.DataFrame:
    keys = value_keys(settings)
    schema: dict[str, Any] = {"id": pl.Int64, row_column: pl.Int64, **{k: STR for k in keys}}
    frame = pl.DataFrame(
        [(c.id, row, *(c.values.get(k) for k in keys)) for c, row in states],
        schema=schema,
        orient="row",
    )
    return _with_custom(frame, settings)


def _changes(
    bulk: pl.DataFrame, seq: SequentialResult, writable: list[str], created_in_seq: set[Any]
) -> tuple[list[tuple[int, int, str]], list[tuple[int, str, int]], list[tuple[int, str]]]:
    """Events, former phones and dropped bases, from both kinds of rows, in row order."""
    events: list[tuple[int, int, str]] = []
    former: list[tuple[int, str, int]] = []
    dropped: list[tuple[int, str]] = []
    applied = bulk.filter(pl.col("status").is_in([UPDATED, UNCHANGED]))
    for key in writable if applied.height else ():
        for cid in applied.filter(pl.col(f"d:{key}"))["target"].to_list():
            dropped.append((cid, key))
    upd = applied.filter(pl.col("status") == UPDATED)
    if upd.height:
        # Each event's changes as JSON — {"field": [old, new], …} for the fields written — built
        # in columns (Polars encodes each value), not a json.dumps per row.
        pieces = [
            pl.when(pl.col(f"w:{k}")).then(
                pl.concat_str(
                    pl.lit(f'"{k}":['),
                    _json_value(f"cur:{k}"),
                    pl.lit(","),
                    _json_value(f"n:{k}"),
                    pl.lit("]"),
                )
            )
            for k in writable
        ]
        as_json = pl.lit("{") + pl.concat_str(pieces, separator=",", ignore_nulls=True) + "}"
        events.extend(upd.select_seq("target", "row", as_json.alias("changes")).rows())
        if "phone" in writable:
            former.extend(
                upd.filter(pl.col("w:phone") & pl.col("cur:phone").is_not_null())
                .select_seq("target", "cur:phone", "row")
                .rows()
            )
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


def _json_value(column: str) -> pl.Expr:
    """A text column's values as JSON (a string, or ``null``)."""
    encoded = pl.struct(pl.col(column).alias("v")).struct.json_encode()  # {"v":…}
    return encoded.str.strip_prefix('{"v":').str.strip_suffix("}")


def _key_events(
    existing: pl.DataFrame,
    seq: SequentialResult,
    settings: AccountSettings,
    writable: list[str],
) -> BatchChanges:
    """What the batch did to the emails, name-and-birth-date keys and histories of contacts it
    did not create, row by row (a new contact's keys are the plan's ``created_keys``)."""
    event_schema = {"row": pl.Int64, "kind": STR, "key": STR, "delta": pl.Int64}
    frames: list[pl.DataFrame] = []
    changed = existing.filter(pl.col("status") == UPDATED)
    former: list[tuple[int, str]] = []
    if changed.height:  # a changed contact may move from one key to another
        born = BIRTH_DATE_KEY if settings.has_birth_date else None

        def side(key: str | None, after: bool) -> pl.Series:
            if key is None:
                return pl.Series([None] * changed.height, dtype=STR)
            expr = (
                _final_value(key, writable) if after and key in writable else pl.col(f"cur:{key}")
            )
            return changed.select_seq(expr.alias("v"))["v"]

        keys = pl.DataFrame(
            {
                "row": changed["row"],
                **{f"email:{s}": email_key_series(side("email", s == "a")) for s in ("b", "a")},
                **{
                    f"person:{s}": person_key_series(
                        side("first_name", s == "a"),
                        side("last_name", s == "a"),
                        side(born, s == "a"),
                    )
                    for s in ("b", "a")
                },
            }
        )
        for kind in ("email", "person"):
            before, after = pl.col(f"{kind}:b"), pl.col(f"{kind}:a")
            moved = keys.filter(~before.eq_missing(after))
            for side_col, delta in ((before, -1), (after, 1)):
                frames.append(
                    moved.filter(side_col.is_not_null()).select_seq(
                        "row",
                        pl.lit(kind).alias("kind"),
                        side_col.alias("key"),
                        pl.lit(delta, pl.Int64).alias("delta"),
                    )
                )
        if "phone" in writable:
            former = (
                changed.filter(pl.col("w:phone") & pl.col("cur:phone").is_not_null())
                .select_seq("row", pl.col("cur:phone").alias("phone"))
                .rows()
            )
    rows: list[tuple[int, str, str, int]] = []
    creating = {d.row for d in seq.decisions if d.status is Status.CREATED}
    for e in seq.events:
        if e.row in creating:  # its keys are the new contact's (``created_keys``)
            continue
        for kind, (b, a) in (("email", e.email), ("person", e.person)):
            if b != a:
                if b is not None:
                    rows.append((e.row, kind, b, -1))
                if a is not None:
                    rows.append((e.row, kind, a, 1))
        if e.former_phone is not None:
            former.append((e.row, e.former_phone))
    frames.append(pl.DataFrame(rows, schema=event_schema, orient="row"))
    events = pl.concat([f.cast(event_schema) for f in frames])  # type: ignore[arg-type]
    return BatchChanges(
        events, pl.DataFrame(former, schema={"row": pl.Int64, "phone": STR}, orient="row")
    )


def _file_phones(
    new: pl.DataFrame, existing: pl.DataFrame, seq: SequentialResult, rows: pl.DataFrame
) -> pl.DataFrame:
    """(row, contact, the file's phone, ``start``) for the rows that found their contact,
    applied or not. ``start`` is the contact's phone when the batch began, or, for a contact
    the batch created, when the batch ends: unless a batch changes the contact later (it is
    then among that plan's ``updated``), it is the contact's phone after the import."""
    schema = {"row": pl.Int64, "contact_id": pl.Int64, "phone": STR, "start": STR}
    made = new.filter(pl.col("ph").is_not_null()).select_seq(
        "row", "contact_id", pl.col("ph").alias("phone"), pl.col("ph").alias("start")
    )
    found = existing.filter(pl.col("ph").is_not_null()).select_seq(
        "row", "contact_id", pl.col("ph").alias("phone"), pl.col("cur:phone").alias("start")
    )

    def start(cid: int) -> str | None:
        values = seq.before[cid] if cid in seq.before else seq.state.contacts[cid].values
        return values.get("phone")

    extra = [
        (d.row, d.contact_id, phone, start(d.contact_id))
        for d, phone in zip(seq.decisions, seq.phones, strict=True)
        if phone is not None and d.contact_id is not None and identified(d)
    ]
    return pl.concat(
        [made.cast(schema), found.cast(schema), pl.DataFrame(extra, schema=schema, orient="row")]  # type: ignore[arg-type]
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
    rows: pl.DataFrame,
    decided: Decided,
    new: pl.DataFrame,
    seq: SequentialResult,
    nb: NormalisedBatch,
    frame: pl.DataFrame,
    settings: AccountSettings,
    messages: MessageContext,
    writable: list[str],
) -> pl.DataFrame:
    """One outcome per input row, with its message (new contacts not yet flagged: see
    ``flag_outcomes``)."""
    records: list[tuple[Any, ...]] = []

    def add(d: Decision, row: InputRow) -> None:
        records.append(
            (
                d.row,
                d.status.value,
                _codes_text(d),
                d.contact_id,
                row_message(d, row, messages),
            )
        )

    def input_rows_of(subset: pl.DataFrame) -> list[InputRow]:
        return input_rows(_as_batch(nb, frame, subset), settings)

    # Rows stopped by the whole-file checks, and rows that could not be read. Those stopped
    # by their cells alone (most) share their messages: one per set of columns that did not
    # normalise.
    pre = rows.filter(~pl.col("live")).sort("i")
    repeated = pl.col(f"stop:{DUPLICATE_CRM.value}") | pl.col(f"stop:{DUPLICATE_ID.value}")
    by_cells = pre.filter(~repeated)
    pre = pre.filter(repeated)
    if pre.height:
        pre = pre.with_columns_seq(
            codes_list(*((pl.col(f"stop:{code.value}"), code) for code in STOP_CODES)).alias(
                "pre_codes"
            )
        )
        for row, codes in zip(input_rows_of(pre), pre["pre_codes"], strict=True):
            add(Decision(row.row, Status.SKIPPED, tuple(Code(c) for c in codes)), row)
    for bad in nb.bad_rows:
        add(
            Decision(bad.row, Status.SKIPPED, (Code.INVALID_VALUE,)),
            InputRow(bad.row, {}, unreadable=bad.reason),
        )

    # Rows decided one by one.
    for d, row in zip(seq.decisions, seq.rows, strict=True):
        add(d, row)

    # Rows decided in columns: skipped ones one by one (they are few) ...
    skipped = pl.concat(
        [
            part.filter(pl.col("status") == SKIPPED).select_seq(
                "i", "skip_code", "contact_id", "other", "names_differ"
            )
            for part in (decided.skipped, decided.new, decided.existing)
        ]
    ).sort("i")
    if skipped.height:
        for row, (code, cid, other, names_differ) in zip(
            input_rows_of(skipped),
            skipped.select_seq("skip_code", "contact_id", "other", "names_differ").iter_rows(),
            strict=True,
        ):
            missing = [k for k in settings.required if not isinstance(row.changes.get(k), str)]
            detail = {"other": other, "names_differ": names_differ, "missing": missing}
            add(Decision(row.row, Status.SKIPPED, (Code(code),), cid, detail=detail), row)
    parts = [pl.DataFrame(records, schema=OUTCOME_SCHEMA, orient="row")]
    if by_cells.height:
        parts.append(_invalid_outcomes(by_cells, frame, list(nb.fields), settings, messages))

    # ... new contacts ...
    if new.height:
        d = Decision(0, Status.CREATED)
        parts.append(
            new.select_seq(
                "row",
                pl.lit(CREATED).alias("status"),
                pl.lit(_codes_text(d), STR).alias("codes"),
                "contact_id",
                pl.lit(row_message(d, InputRow(0, {}), messages)).alias("message"),
            )
        )
    # ... and the rest by the few messages they share: which fields a row wrote and which it
    # kept are texts of 0s and 1s (lists would cost more than the rest of the plan).
    done = decided.existing.filter(pl.col("status").is_in([UPDATED, UNCHANGED]))
    if done.height:
        done = done.with_columns_seq(
            _field_bits("w", writable).alias("written"), _field_bits("k", writable).alias("kept")
        )
        shared = []
        for status, written, kept in (
            done.select_seq("status", "written", "kept").unique().iter_rows()
        ):
            kept_fields = tuple(_fields_of(kept, writable))
            d = Decision(
                0,
                Status(status),
                (Code.CONTACT_OUT_OF_SYNC,) if kept_fields else (),
                values=dict.fromkeys(_fields_of(written, writable)),
                kept=kept_fields,
            )
            shared.append(
                (
                    status,
                    written,
                    kept,
                    _codes_text(d),
                    row_message(d, InputRow(0, {}), messages),
                )
            )
        table = pl.DataFrame(
            shared,
            schema={
                "status": STR,
                "written": STR,
                "kept": STR,
                "codes": STR,
                "message": STR,
            },
            orient="row",
        )
        parts.append(
            done.join(table, on=["status", "written", "kept"], how="left").select_seq(
                list(OUTCOME_SCHEMA)
            )
        )
    return pl.concat([p.cast(OUTCOME_SCHEMA) for p in parts]).sort("row")  # type: ignore[arg-type]


def _invalid_outcomes(
    rows: pl.DataFrame,
    frame: pl.DataFrame,
    fields: list[str],
    settings: AccountSettings,
    messages: MessageContext,
) -> pl.DataFrame:
    """The outcomes of rows skipped only because cells did not normalise: their codes and
    message depend on nothing but which fields' cells those were (as the definition reads the
    row: ``normalise.input_rows``)."""
    bits = [pl.col(invalid_column(k)).fill_null(False).cast(pl.UInt8).cast(STR) for k in fields]
    rows = rows.join(
        frame.select_seq("i", *(invalid_column(k) for k in fields)), on="i"
    ).with_columns_seq(pl.concat_str(bits).alias("invalid"))
    shared = []
    for (pattern,) in rows.select_seq("invalid").unique().iter_rows():
        invalid = {
            k: settings.field(k).invalid_code
            for k, bit in zip(fields, pattern, strict=True)
            if bit == "1"
        }
        codes = tuple(c for c in CODE_ORDER if c in invalid.values())
        d = Decision(0, Status.SKIPPED, codes)
        shared.append((pattern, _codes_text(d), row_message(d, InputRow(0, {}, invalid), messages)))
    table = pl.DataFrame(
        shared, schema={"invalid": STR, "codes": STR, "message": STR}, orient="row"
    )
    return rows.join(table, on="invalid").select_seq(
        "row",
        pl.lit(SKIPPED).alias("status"),
        "codes",
        pl.lit(None, pl.Int64).alias("contact_id"),
        "message",
    )


def _codes_text(d: Decision) -> str | None:
    """A decision's codes as the row report holds them: ``;``-joined, null when none."""
    return ";".join(c.value for c in d.codes) or None


def _field_bits(prefix: str, fields: list[str]) -> pl.Expr:
    """Which fields' ``prefix:field`` column is true, as a text of 0s and 1s (character i:
    ``fields[i]``)."""
    flags = [pl.col(f"{prefix}:{k}").fill_null(False).cast(pl.UInt8).cast(STR) for k in fields]
    return pl.concat_str(flags) if flags else pl.lit("", STR)


def _fields_of(bits: str, fields: list[str]) -> list[str]:
    return [k for k, bit in zip(fields, bits, strict=True) if bit == "1"]


def flag_outcomes(
    outcomes: pl.DataFrame, flagged: pl.Series, messages: MessageContext
) -> pl.DataFrame:
    """The outcomes with the new contacts ``flagged`` (ids) as possible duplicates."""
    if flagged.is_empty():
        return outcomes
    d = Decision(0, Status.CREATED, (Code.POSSIBLE_DUPLICATE,))
    hit = (pl.col("status") == CREATED) & pl.col("contact_id").is_in(flagged.implode())
    return outcomes.with_columns_seq(
        pl.when(hit).then(pl.lit(_codes_text(d))).otherwise(pl.col("codes")).alias("codes"),
        pl.when(hit)
        .then(pl.lit(row_message(d, InputRow(0, {}), messages)))
        .otherwise(pl.col("message"))
        .alias("message"),
    )
