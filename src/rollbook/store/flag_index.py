"""The possible-duplicate index kept between imports (``schema.flag_index_snapshots``).

An import that creates contacts needs every contact's keys, hashed (importing/flags.py). Read
from the contacts and hashed, a million of them took ~3 s of CPU and ~200 MB at the import's
peak; the last import's hashes, kept here, are one row. They are used only while they describe
the account: as many contacts, none newer (ids are never reused, so any contact created since
shows in the newest id, and any deleted in the count), and none whose keys may have changed (a
trigger deletes the row when an update changes a contact's email, names or custom fields,
migration 0005). ``stamp`` says what the hashes were made with; another stamp
is not used.
"""

from __future__ import annotations

import io

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rollbook.store.schema import contacts, flag_index_snapshots

_SNAPSHOTS = flag_index_snapshots.c


def _extent(conn: Connection, account_id: int) -> tuple[int, int | None]:
    """How many contacts the account has, and the newest one's id."""
    count, newest = conn.execute(
        sa.select(sa.func.count(), sa.func.max(contacts.c.id)).where(
            contacts.c.account_id == account_id
        )
    ).one()
    return int(count), None if newest is None else int(newest)


def read_snapshot(conn: Connection, account_id: int, stamp: str) -> pl.DataFrame | None:
    """The keys the last import left (a frame with ``id``), if they still describe the
    account's contacts and were made as ``stamp`` says; else ``None``."""
    mine = _SNAPSHOTS.account_id == account_id
    kept = conn.execute(
        sa.select(_SNAPSHOTS.stamp, _SNAPSHOTS.contacts, _SNAPSHOTS.max_id).where(mine)
    ).one_or_none()
    if kept is None or kept.stamp != stamp:
        return None
    if (kept.contacts, kept.max_id) != _extent(conn, account_id):
        return None
    keys = pl.read_ipc(
        io.BytesIO(conn.execute(sa.select(_SNAPSHOTS.hashes).where(mine)).scalar_one())
    )
    if keys.height != kept.contacts or (keys["id"].max() if keys.height else None) != kept.max_id:
        return None
    return keys


def write_snapshot(conn: Connection, account_id: int, stamp: str, keys: pl.DataFrame) -> None:
    """Keep ``keys`` (one row per contact of the account, with ``id``) for the next import.

    The count and newest id kept are the frame's own: if it is not one row per contact, the
    next import finds that they differ from the account's and reads the contacts instead."""
    conn.execute(flag_index_snapshots.delete().where(_SNAPSHOTS.account_id == account_id))
    buf = io.BytesIO()
    keys.write_ipc(buf, compression="uncompressed")  # hashes do not compress
    conn.execute(
        flag_index_snapshots.insert().values(
            account_id=account_id,
            stamp=stamp,
            contacts=keys.height,
            max_id=keys["id"].max(),
            hashes=buf.getbuffer(),
        )
    )
