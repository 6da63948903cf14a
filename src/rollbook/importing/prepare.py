"""What can be worked out about a batch's rows before the database is asked anything.

Everything here depends on the row alone, so it runs in the reading thread, ahead of the batch
being planned and written (``engine._Ahead``): the values a row identifies by, the cells that did
not normalise, the contact the row would create if it creates one — its values in the store's
form — and the keys its possible-duplicate flag is decided by.

Columns added to a normalised batch: ``i`` (position), ``idv``, ``crm``, ``ph`` (the id, CRM ID
and phone when set), ``invalid:<code>`` (a cell of the row did not normalise, by the code it
is skipped with), ``new:<field>`` (a new contact's values),
``key:email`` and ``key:person``. The custom fields' JSON is made in the plan, for the rows
that do create a contact (``plan._assemble``): made here for every row, it was ~a quarter of
each batch waiting to be planned (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rollbook.importing.keys import email_key_series, person_key_series
from rollbook.importing.normalise import CLEAR_MARK, NormalisedBatch, invalid_column
from rollbook.model import BIRTH_DATE_KEY, CODE_ORDER, AccountSettings, Code, FieldType

STR = pl.String


def given(name: str, may_clear: bool = True) -> pl.Expr:
    """A set value: null where the cell was empty or said UNSET (``may_clear``: a cell of the
    column may have said it)."""
    col = pl.col(name)
    if not may_clear:
        return col
    return pl.when(col == CLEAR_MARK).then(pl.lit(None, STR)).otherwise(col)


def codes_list(*pairs: tuple[pl.Expr, Code]) -> pl.Expr:
    """A list of codes, in the order codes are always listed."""
    ordered = sorted(pairs, key=lambda p: CODE_ORDER.index(p[1]))
    return pl.concat_list(
        [pl.when(c).then(pl.lit(code.value)).otherwise(pl.lit(None, STR)) for c, code in ordered]
    ).list.drop_nulls()


#: The codes a row is skipped with when one of its cells does not normalise.
INVALID_CODES = (Code.INVALID_PHONE, Code.INVALID_EMAIL, Code.INVALID_VALUE)


def invalid_code_column(code: Code) -> str:
    return f"invalid:{code.value}"


def new_value(
    settings: AccountSettings, key: str, fields: list[str], may_clear: bool = True
) -> pl.Expr:
    """What a new contact holds in ``key``: the row's value, else the field's empty value
    (``may_clear``: a cell of the column may have said UNSET)."""
    empty = settings.field(key).cleared_value
    default = pl.lit(empty, STR)
    if key not in fields:
        return default
    col = pl.col(key)
    if empty is None and not may_clear:  # the column as it is (no copy)
        return col
    return pl.when(col.is_not_null() & (col != CLEAR_MARK)).then(col).otherwise(default)


def custom_json(frame: pl.DataFrame, keys: list[str]) -> pl.Series:
    """Custom values (the columns ``keys`` of ``frame``) as the JSON object the store keeps:
    set fields only, canonical strings."""
    if not keys:
        return pl.Series("custom", ["{}"] * frame.height, dtype=STR)
    encoded, unset = frame.select_seq(
        pl.struct(keys).struct.json_encode().alias("custom"),
        pl.any_horizontal(pl.col(k).is_null() for k in keys).alias("unset"),
    )
    index = unset.arg_true()
    if index.is_empty():
        return encoded
    # Leave out the fields that are not set: {"a":null,"b":"x"} -> {"b":"x"} (only on the rows
    # that have such fields: the expressions cost twice the encoding)
    part = encoded.gather(index)
    stripped = part.str.replace_all(r'"[a-z][a-z0-9_]*":null,?', "").str.replace(r",\}$", "}")
    return encoded.scatter(index, stripped)


@dataclass
class PreparedBatch:
    frame: pl.DataFrame
    batch: NormalisedBatch


def prepare(nb: NormalisedBatch, settings: AccountSettings) -> PreparedBatch:
    fields = list(nb.fields)
    frame = nb.frame.with_row_index("i")
    missing = [k for k in ("id", "crm_id", "phone", "first_name", "last_name") if k not in fields]
    frame = frame.with_columns_seq(
        *(pl.lit(None, STR).alias(k) for k in missing),
        *(pl.lit(False).alias(invalid_column(k)) for k in missing),
    )
    invalid = {c: pl.lit(False) for c in INVALID_CODES}
    for key in fields:
        code = settings.field(key).invalid_code
        invalid[code] = invalid[code] | pl.col(invalid_column(key))
    keys = [f.key for f in settings.fields if f.type is not FieldType.ID]
    frame = frame.with_columns_seq(
        *(cond.alias(invalid_code_column(code)) for code, cond in invalid.items()),
        given("id", nb.may_clear("id")).cast(pl.Int64, strict=False).alias("idv"),
        given("crm_id", nb.may_clear("crm_id")).alias("crm"),
        given("phone", nb.may_clear("phone")).alias("ph"),
        *(new_value(settings, k, fields, nb.may_clear(k)).alias(f"new:{k}") for k in keys),
    )
    born = (
        frame[f"new:{BIRTH_DATE_KEY}"]
        if settings.has_birth_date
        else pl.Series([None] * frame.height, dtype=STR)
    )
    frame = frame.with_columns_seq(
        email_key_series(frame["new:email"]).alias("key:email"),
        person_key_series(frame["new:first_name"], frame["new:last_name"], born).alias(
            "key:person"
        ),
    )
    return PreparedBatch(frame, nb)
