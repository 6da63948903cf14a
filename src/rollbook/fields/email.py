"""Email addresses: checked and normalised by email-validator, with a fast path for plain ones.

The definition is ``email_validator.validate_email(raw, check_deliverability=False)`` and its
``.normalized`` form (the domain lower-cased, RFC 2142 role names like ``Info@`` lower-cased too).
Nearly every address in a student file is plain ASCII ``local@host.tld``; for those the rules the
library applies are few and are repeated below as Polars expressions: a dot-atom local part, a
host name of letters, digits and hyphens whose labels do not start or end with a hyphen and are at
most 63 characters, a dot, a last label ending in a letter, not a special-use domain, at most 254
characters in all. Anything else (quotes, Unicode, ``xn--`` labels, ``--`` anywhere in the domain,
angle brackets, …) is left to the library itself.
"""

from __future__ import annotations

import re
from typing import Final

import email_validator
import polars as pl
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DNS_LABEL_LENGTH_LIMIT,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
)

from rollbook.fields._series import fill_from_scalar

_ATEXT: Final = r"[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]"
# The shapes the fast path answers for; everything else goes to email-validator.
_PLAIN: Final = rf"^({_ATEXT}+(?:\.{_ATEXT}+)*)@([A-Za-z0-9.\-]+)$"
_LABEL_MAX: Final = DNS_LABEL_LENGTH_LIMIT - 2
_HOST: Final = (
    rf"^(?:[a-z0-9](?:[a-z0-9\-]{{0,{_LABEL_MAX}}}[a-z0-9])?\.)+"
    rf"(?:[a-z]|[a-z0-9][a-z0-9\-]{{0,{_LABEL_MAX}}}[a-z])$"
)


def normalise_email(raw: str) -> str | None:
    """The definition: email-validator's normalised address, or ``None`` if it refuses."""
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def normalise_email_series(raw: pl.Series) -> pl.Series:
    """Vectorised: the plain ASCII addresses in Polars, the rest through ``normalise_email``."""
    special = list(email_validator.SPECIAL_USE_DOMAIN_NAMES)
    parts = (
        pl.DataFrame({"raw": raw.cast(pl.String)})
        .with_columns(pl.col("raw").str.extract_groups(_PLAIN).alias("p"))
        .select(
            "raw",
            pl.col("p").struct.field("1").alias("local"),
            pl.col("p").struct.field("2").str.to_lowercase().alias("domain"),
        )
    )
    local, domain = pl.col("local"), pl.col("domain")
    local = (
        pl.when(local.str.to_lowercase().is_in(CASE_INSENSITIVE_MAILBOX_NAMES))
        .then(local.str.to_lowercase())
        .otherwise(local)
    )
    plain = domain.is_not_null() & ~domain.str.contains("--", literal=True)
    good = _good_domains(parts["domain"].drop_nulls().unique(), special)
    valid = (
        plain & (pl.col("raw").str.len_bytes() <= EMAIL_MAX_LENGTH) & domain.is_in(good.implode())
    )
    out = parts.select(
        fast=pl.when(valid).then(local + "@" + domain).otherwise(pl.lit(None, dtype=pl.String)),
        unsure=~plain,
    )
    return fill_from_scalar(raw, out["fast"], out["unsure"], normalise_email)


def _good_domains(domains: pl.Series, special: list[str]) -> pl.Series:
    """The (lower-cased) domains the fast path accepts. A file has few distinct domains, so
    each is checked once rather than once per row."""
    d = pl.col("d")
    reserved = pl.any_horizontal(*[(d == s) | d.str.ends_with("." + s) for s in special])
    good = (
        d.is_not_null()
        & (d.str.len_bytes() <= DOMAIN_MAX_LENGTH)
        & d.str.contains(_HOST)
        & ~reserved
    )
    return pl.DataFrame({"d": domains}).filter(good)["d"]


def is_plain_address(raw: str) -> bool:
    """True if the fast path answers for ``raw`` itself (for tests and benchmarks)."""
    m = re.fullmatch(_PLAIN[1:-1], raw)
    return m is not None and "--" not in m.group(2)
