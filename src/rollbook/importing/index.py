"""The account's key index: which contacts a batch of rows can possibly touch or be compared with.

Held in memory for the length of one import, as compact Polars columns — the contact id, its
phone as a 64-bit number, and 64-bit hashes of its CRM ID, its email and its name-and-birth-date
key — plus the former phones. That is a few dozen bytes a contact, whatever the size of the file.
A batch joins its own keys against it to find its *candidates*; only those are read from the
database, with their exact values, and the rules decide on exact values. A hash collision costs
one extra candidate, never a wrong decision.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.importing.keys import email_key_series, person_key_series, phone_number_series
from rollbook.importing.normalise import CLEAR_MARK, NormalisedBatch
from rollbook.model import BIRTH_DATE_KEY, AccountSettings, ContactState
from rollbook.store.schema import contacts, phone_history

_KEYS_SCHEMA = {
    "id": pl.Int64,
    "crm_id": pl.String,
    "phone": pl.String,
    "email": pl.String,
    "first_name": pl.String,
    "last_name": pl.String,
    BIRTH_DATE_KEY: pl.String,
}


def _hash(s: pl.Series) -> pl.Series:
    """64-bit hashes of the values; a missing value stays missing (it matches nothing)."""
    return pl.select(
        pl.when(s.is_not_null()).then(s.hash(seed=0x5EED)).otherwise(pl.lit(None, pl.UInt64))
    ).to_series()


def key_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Exact key values (``_KEYS_SCHEMA``) → the index's compact columns."""
    return pl.DataFrame(
        {
            "id": frame["id"],
            "crm": _hash(frame["crm_id"]),
            "phone": phone_number_series(frame["phone"]),
            "email": _hash(email_key_series(frame["email"])),
            "person": _hash(
                person_key_series(frame["first_name"], frame["last_name"], frame[BIRTH_DATE_KEY])
            ),
        }
    )


class KeyIndex:
    def __init__(self, keys: pl.DataFrame, history: pl.DataFrame) -> None:
        self.keys = keys  # id, crm, phone, email, person
        self.history = history  # phone, id

    @classmethod
    def load(cls, conn: Connection, settings: AccountSettings) -> KeyIndex:
        born = (
            contacts.c.custom[BIRTH_DATE_KEY].as_string() if settings.has_birth_date else sa.null()
        )
        q = sa.select(
            contacts.c.id,
            contacts.c.crm_id,
            contacts.c.phone,
            contacts.c.email,
            contacts.c.first_name,
            contacts.c.last_name,
            born.label(BIRTH_DATE_KEY),
        ).where(contacts.c.account_id == settings.account_id)
        rows = conn.execute(q).all()
        keys = key_columns(pl.DataFrame(rows, schema=_KEYS_SCHEMA, orient="row"))
        q2 = sa.select(phone_history.c.phone, phone_history.c.contact_id).where(
            phone_history.c.account_id == settings.account_id
        )
        former = pl.DataFrame(
            conn.execute(q2).all(), schema={"phone": pl.String, "id": pl.Int64}, orient="row"
        )
        history = former.with_columns(phone_number_series(former["phone"]).alias("phone"))
        return cls(keys, history)

    def candidates(self, nb: NormalisedBatch) -> set[int]:
        """The contacts any row of this batch could identify, clash with or resemble."""
        frame = nb.frame
        height = frame.height

        def given(key: str) -> pl.Series:
            if key not in nb.fields:
                return pl.Series(key, [None] * height, dtype=pl.String)
            col = frame[key]
            return col.set(col == CLEAR_MARK, None)

        probes = {
            "id": given("id").cast(pl.Int64, strict=False),
            "crm": _hash(given("crm_id")),
            "phone": phone_number_series(given("phone")),
            "email": _hash(email_key_series(given("email"))),
            "person": _hash(
                person_key_series(given("first_name"), given("last_name"), given(BIRTH_DATE_KEY))
            ),
        }
        found: set[int] = set()
        for key, probe in probes.items():
            wanted = probe.drop_nulls().unique()
            if wanted.len():
                found.update(self.keys.filter(pl.col(key).is_in(wanted.implode()))["id"].to_list())
        phones = probes["phone"].drop_nulls().unique()
        if phones.len():
            found.update(
                self.history.filter(pl.col("phone").is_in(phones.implode()))["id"].to_list()
            )
        return found

    def update(
        self, changed: Iterable[ContactState], former_phones: Iterable[tuple[str, int]]
    ) -> None:
        """Bring the index up to date with contacts created or changed by a batch."""
        changed = list(changed)
        if changed:
            frame = pl.DataFrame(
                [
                    (
                        c.id,
                        c.values.get("crm_id"),
                        c.values.get("phone"),
                        c.values.get("email"),
                        c.values.get("first_name"),
                        c.values.get("last_name"),
                        c.values.get(BIRTH_DATE_KEY),
                    )
                    for c in changed
                ],
                schema=_KEYS_SCHEMA,
                orient="row",
            )
            ids = frame.get_column("id").implode()
            self.keys = pl.concat([self.keys.filter(~pl.col("id").is_in(ids)), key_columns(frame)])
        former = list(former_phones)
        if former:
            extra = pl.DataFrame(former, schema={"phone": pl.String, "id": pl.Int64}, orient="row")
            extra = extra.with_columns(phone_number_series(extra["phone"]).alias("phone"))
            self.history = pl.concat([self.history, extra])
