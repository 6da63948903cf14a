"""The possible-duplicate index kept between imports (``schema.flag_index_snapshots``).

An import that creates contacts needs every contact's keys, hashed (importing/flags.py): read
from the contacts and hashed, a million took ~3 s of CPU. The last import's hashes, kept here,
load in a fraction of that. They are used only while they describe the account: as many
contacts, none newer (ids are never reused, so a contact created since shows in the newest id,
one deleted in the count), and none whose keys may have changed (a trigger deletes the rows
when an update changes a contact's email, names or custom fields, migration 0005); and only if
made as ``stamp`` says."""

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
        sa.select(_SNAPSHOTS.stamp, _SNAPSHOTS.contacts, _SNAPSHOTS.max_id).where(
            mine, _SNAPSHOTS.part == 0
        )
    ).one_or_none()
    if kept is None or kept.stamp != stamp:
        return None
    if (kept.contacts, kept.max_id) != _extent(conn, account_id):
        return None
    parts = []
    for (part,) in conn.execute(
        sa.select(_SNAPSHOTS.part).where(mine).order_by(_SNAPSHOTS.part)
    ).all():
        # A part at a time: the bytes of one are let go before the next is read.
        blob = conn.execute(
            sa.select(_SNAPSHOTS.hashes).where(mine, _SNAPSHOTS.part == part)
        ).scalar_one()
        parts.append(pl.read_ipc(io.BytesIO(blob)))
        del blob
    keys = pl.concat(parts, rechunk=True)
    if keys.height != kept.contacts or (keys["id"].max() if keys.height else None) != kept.max_id:
        return None
    return keys


#: Contacts a part holds (~4 MB of hashes).
PART_ROWS = 100_000


def write_snapshot(conn: Connection, account_id: int, stamp: str, keys: pl.DataFrame) -> None:
    """Keep ``keys`` (one row per contact of the account, with ``id``) for the next import, in
    parts of ``PART_ROWS`` contacts (an empty account's in one empty part).

    The count and newest id kept are the frame's own: if it is not one row per contact, the
    next import finds that they differ from the account's and reads the contacts instead."""
    conn.execute(flag_index_snapshots.delete().where(_SNAPSHOTS.account_id == account_id))
    newest = keys["id"].max() if keys.height else None
    for part, rows in enumerate(keys.iter_slices(PART_ROWS) if keys.height else [keys]):
        buf = io.BytesIO()
        rows.write_ipc(buf, compression="uncompressed")  # hashes do not compress
        conn.execute(
            flag_index_snapshots.insert().values(
                account_id=account_id,
                part=part,
                stamp=stamp,
                contacts=keys.height,
                max_id=newest,
                hashes=buf.getbuffer(),
            )
        )
