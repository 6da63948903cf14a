"""Emails: email-validator decides, and the plain-address fast path agrees with it."""

from __future__ import annotations

import re
import string

import email_validator
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.fields import invalid_reason, normalise_value
from rollbook.fields.email import is_plain_address
from tests.fields.agreement import EMAIL, assert_agree

ACCEPTED = [
    ("ada@example.com", "ada@example.com"),
    ("Ada.Lovelace@Example.COM", "Ada.Lovelace@example.com"),  # the domain is lower-cased
    ("INFO@school.edu", "info@school.edu"),  # RFC 2142 role names too
    ("first+tag@sub.school.ac.uk", "first+tag@sub.school.ac.uk"),
    ("o'brien@example.org", "o'brien@example.org"),
    ("x@a-b.co", "x@a-b.co"),
    ("zoë@example.com", "zoë@example.com"),
    ("ada@bücher.de", "ada@bücher.de"),
    ("ada@xn--bcher-kva.de", "ada@bücher.de"),
]

REFUSED = [
    "ada",
    "ada@",
    "@example.com",
    "ada@example",  # no dot
    "ada..l@example.com",
    ".ada@example.com",
    "ada.@example.com",
    "ada@-example.com",
    "ada@example-.com",
    "ada@example.c0",  # last label must end in a letter
    "ada@example.local",  # special-use
    "ada@school.test",
    "ada lovelace@example.com",
    '"ada"@example.com',  # quoted local parts are not allowed
    "Ada <ada@example.com>",
    "ada@[127.0.0.1]",
    "ada@" + "a" * 64 + ".com",  # label too long
    "a" * 250 + "@x.com",  # address too long
]


@pytest.mark.parametrize(("cell", "canonical"), ACCEPTED)
def test_accepted_emails(cell: str, canonical: str) -> None:
    assert normalise_value(EMAIL, cell, "US") == canonical
    assert_agree(EMAIL, [cell])


@pytest.mark.parametrize("cell", REFUSED)
def test_refused_emails(cell: str) -> None:
    assert normalise_value(EMAIL, cell, "US") is None
    assert_agree(EMAIL, [cell])


def test_reason() -> None:
    assert invalid_reason(EMAIL, "US") == "not a valid email address"


def test_plain_addresses_take_the_fast_path() -> None:
    assert is_plain_address("Ada.Lovelace+x@Mail.Example.com")
    assert not is_plain_address("ada@xn--bcher-kva.de")
    assert not is_plain_address("zoë@example.com")


# -- Hypothesis ----------------------------------------------------------------------------------

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
# Mostly well-formed parts, so that many addresses are valid, with every kind of flaw mixed in.
good_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
label = st.one_of(
    good_label,
    good_label,
    good_label,
    st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8),
    st.from_regex(r"[a-z]{61,65}", fullmatch=True),
    st.sampled_from(
        ["xn--bcher-kva", "ab--cd", "XN--x", "b\u00fccher", "ex\u0430mple", "-a", "a-"]
    ),
)
tld = st.one_of(
    st.from_regex(r"[a-zA-Z]{2,6}", fullmatch=True),
    st.from_regex(r"[a-zA-Z]{2,6}", fullmatch=True),
    st.sampled_from(["c0", "1", "x1y", "a"]),
    st.sampled_from(email_validator.SPECIAL_USE_DOMAIN_NAMES),
)
domain = st.builds(
    lambda labels, end, dots: ".".join([*labels, end]) + dots,
    st.one_of(st.lists(label, min_size=1, max_size=3), st.just([])),
    tld,
    st.sampled_from(["", "", "", "", "", "."]),
)
good_local = st.from_regex(
    rf"[{re.escape(ATEXT)}]{{1,8}}(\.[{re.escape(ATEXT)}]{{1,5}}){{0,2}}", fullmatch=True
)
local = st.one_of(
    good_local,
    good_local,
    good_local,
    st.sampled_from(["info", "Info", "POSTMASTER", "abuse", "www", '"q r"', '"a\\"b"', "zoë"]),
    st.text(ATEXT + ".", min_size=1, max_size=12),
    st.text(min_size=0, max_size=5),
    st.from_regex(r"[a-z]{200,250}", fullmatch=True),
)
address = st.builds(
    lambda lo, at, dom, pad: pad + lo + at + dom + pad,
    local,
    st.sampled_from(["@", "@", "@", "@", "@", "@@", "", "＠"]),
    domain,
    st.sampled_from(["", "", "", "", "", " ", "<", ">"]),
)


# Right at the 254-character limit for a whole address.
long_address = st.builds(
    lambda n, d: "a" * n + "@" + d, st.integers(240, 252), st.sampled_from(["ab.cd", "x.org"])
)


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(st.one_of(address, long_address, st.text(max_size=20)), min_size=1, max_size=40)
)
def test_vectorised_equals_email_validator(cells: list[str]) -> None:
    assert_agree(EMAIL, cells)


def test_fast_path_covers_ordinary_addresses() -> None:
    cells = pl.Series([f"student{i}.name@mail{i % 7}.school.edu" for i in range(1000)])
    assert all(is_plain_address(c) for c in cells)
    assert_agree(EMAIL, cells.to_list())
