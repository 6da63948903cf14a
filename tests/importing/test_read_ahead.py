"""A re-import reads each batch's candidates before the batch before is written, and brings
them up to date with that batch's plan (``lookup.brought_up_to_date``). Here every batch's
candidates, so brought up to date, are compared with a read made after the writes: they must be
the same contacts, with the same values and bases, aliases and redirects."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from tests.importing.test_engine_matches_reference import (
    PHONES,
    PHONES_RAW,
    THROUGH_THE_DATABASE,
    _contact,
    _setup,
    files,
    import_as_reference,
    starting_states,
)
from tests.support.scenario import seed

from rollbook.importing import engine, lookup
from rollbook.importing.lookup import Candidates
from rollbook.importing.plan import read_candidates
from rollbook.importing.rules import State
from rollbook.importing.worker import DbWorker
from rollbook.model import AccountSettings
from rollbook.store import Store
from rollbook.store.accounts import settings_for


class _Checked:
    """Wraps ``engine.brought_up_to_date``: each result is compared with a read queued on the
    import's worker after everything queued so far — the batch before's writes among them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, settings: AccountSettings) -> None:
        self.workers: list[DbWorker] = []
        self.compared = 0
        checked = self

        class Recorded(DbWorker):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                checked.workers.append(self)

        real = lookup.brought_up_to_date

        def compared(c: Candidates, left: pl.DataFrame, rows: pl.DataFrame) -> Candidates:
            result = real(c, left, rows)
            read = self.workers[-1].call(read_candidates, settings, rows).candidates(settings)
            assert _contacts(result) == _contacts(read)
            assert result.aliases == read.aliases
            assert result.redirects == read.redirects
            self.compared += 1
            return result

        monkeypatch.setattr(engine, "DbWorker", Recorded)
        monkeypatch.setattr(engine, "brought_up_to_date", compared)


def _import_checked(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    state: State,
    headers: list[str],
    rows: list[list[str]],
    batch_rows: int,
) -> int:
    """Import the file into the account ``state`` (as the reference checks it), each batch's
    candidates checked: how many batches were brought up to date."""
    _setup(store)
    with store.read() as conn:
        account = settings_for(conn, "acme")
    seed(store, account, state)
    with monkeypatch.context() as patched:
        checked = _Checked(patched, account)
        import_as_reference(store, state, headers, rows, batch_rows)
    return checked.compared


def _contacts(c: Candidates) -> list[tuple[Any, ...]]:
    return sorted(c.frame.rows(), key=lambda r: r[0])


@pytest.mark.slow
@THROUGH_THE_DATABASE
@given(
    state=starting_states(),
    file=files(),
    batch_rows=st.sampled_from([1, 2, 3]),
)
def test_candidates_brought_up_to_date_are_what_a_read_after_the_writes_finds(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    state: State,
    file: tuple[list[str], list[list[str]]],
    batch_rows: int,
) -> None:
    headers, rows = file
    compared = _import_checked(store, monkeypatch, state, headers, rows, batch_rows)
    event(f"batches brought up to date: {compared if compared < 3 else '3+'}")


def test_each_batch_after_the_first_is_brought_up_to_date(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 1 takes contact 2's phone for contact 1, row 2 changes contact 2's email (found by
    CRM ID, its phone gone), row 3 gives contact 1's CRM ID to nobody (a new contact with it is
    refused): each batch reads before the one before is written."""
    headers = ["CRM", "Email", "Phone"]
    state = State(
        [
            _contact(1, crm_id="A1", phone=PHONES[0]),
            _contact(2, crm_id="A2", phone=PHONES[1], email="a@example.edu"),
        ]
    )
    rows = [
        ["A1", "", PHONES_RAW[1]],
        ["A2", "b@example.edu", ""],
        ["N1", "c@example.org", PHONES_RAW[0]],
    ]
    assert _import_checked(store, monkeypatch, state, headers, rows, 1) == 2
