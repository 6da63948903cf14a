"""Phone numbers: E.164 in the account's region, as phonenumbers decides, at bulk speed.

The definition is phonenumbers: ``parse(raw, region)``, valid iff ``is_valid_number``, canonical
text ``format_number(..., E164)``. It costs ~30 µs a number, too slow for a million-row file, so
the vectorised twin re-traces the steps ``parse`` and ``is_valid_number`` take for the common
shapes (digits, spaces, dots, dashes, parentheses, an optional ``+`` and the country code) as
Polars expressions over the region's own metadata: its national-prefix and international-prefix
patterns, its possible lengths and the national-number patterns of every number type of every
region that shares the country code. No area code is written here; a metadata update is picked
up as it is. Every step the fast path cannot retrace exactly (another country code, an
international prefix, a national-prefix *transform*, letters, extensions, other characters)
marks the value "not sure", and those values go through phonenumbers itself.

The steps retraced, in ``parse`` order (phonenumberutil.py names):

1. ``_extract_possible_number`` / ``_normalize``: for these shapes, the ASCII digits.
2. ``_maybe_extract_country_code``: a ``+`` followed by the region's country code; or, without
   ``+``, the country code at the start is dropped when the rest (national prefix stripped) fits
   the region's general pattern and the whole did not, or the whole is too long.
3. ``_maybe_strip_national_prefix_carrier_code`` then ``_test_number_length``: the national
   prefix is dropped unless that spoils a number that fitted, or leaves a wrong length.
4. ``is_valid_number``: the region that owns the number (leading digits, or the first region of
   the country code where it is valid) must have a number type whose pattern it matches.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers
import polars as pl
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    region_code_for_country_code,
)

from rollbook.fields._series import fill_from_scalar

# Limits from phonenumberutil: longest input parse looks at, shortest and longest national number.
_MAX_INPUT: Final = 250
_MIN_NSN: Final = 2
_MAX_NSN: Final = 17

#: The number types is_valid_number accepts, in the order _number_type_helper tries them.
_TYPES: Final = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)

#: The shapes the fast path reads: an optional leading "+", then digits and common separators.
_SHAPE: Final = r"^\+?[0-9 ().\-]*$"


def normalise_phone(raw: str, region: str) -> str | None:
    """The definition: phonenumbers' E.164 text for a valid number, else ``None``."""
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# -- one region's metadata as Polars patterns -----------------------------------------------------


@dataclass(frozen=True)
class _Prefix:
    """A pattern phonenumbers matches at the start of the digits (``re.match``)."""

    pattern: str

    @property
    def literal(self) -> str | None:
        return self.pattern if re.fullmatch(r"[0-9]+", self.pattern) else None

    def matches(self, x: pl.Expr) -> pl.Expr:
        if self.literal is not None:
            return x.str.starts_with(self.literal)
        return x.str.contains(f"^(?:{self.pattern})")

    def strip(self, x: pl.Expr) -> pl.Expr:
        """``x`` without the match (only meaningful where ``matches``)."""
        if self.literal is not None:
            return x.str.slice(len(self.literal))
        return x.str.replace(f"^(?:{self.pattern})", "")


@dataclass(frozen=True)
class _Rules:
    """What parse and is_valid_number read from one region's metadata."""

    general: str | None
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]
    national_prefix: _Prefix | None
    transforms: bool
    leading_digits: _Prefix | None
    #: (lengths, union of the patterns of the number types that admit those lengths)
    type_groups: tuple[tuple[tuple[int, ...], str], ...]

    @classmethod
    def of(cls, metadata: Any) -> _Rules:
        general = metadata.general_desc
        lengths = tuple(general.possible_length)
        types = [
            (tuple(desc.possible_length), desc.national_number_pattern)
            for name in _TYPES
            if (desc := getattr(metadata, name)) is not None
            and desc.national_number_pattern
            and not (name == "mobile" and metadata.same_mobile_and_fixed_line_pattern)
        ]
        by_set: dict[tuple[str, ...], list[int]] = {}
        for n in lengths:
            admitting = tuple(p for ls, p in types if not ls or n in ls)
            if admitting:
                by_set.setdefault(admitting, []).append(n)
        npp = metadata.national_prefix_for_parsing
        return cls(
            general=general.national_number_pattern or None,
            lengths=lengths,
            local_lengths=tuple(general.possible_length_local_only),
            national_prefix=_Prefix(npp) if npp else None,
            transforms=bool(metadata.national_prefix_transform_rule),
            leading_digits=_Prefix(metadata.leading_digits) if metadata.leading_digits else None,
            type_groups=tuple(
                (tuple(ns), "|".join(f"(?:{p})" for p in pats)) for pats, ns in by_set.items()
            ),
        )

    def fits_general(self, x: pl.Expr) -> pl.Expr:
        """``_match_national_number(x, general_desc)``: the pattern alone, no length check."""
        if self.general is None:
            return pl.lit(False)
        return x.str.contains(f"^(?:{self.general})$")

    def length_ok(self, n: pl.Expr) -> pl.Expr:
        """``_test_number_length`` is IS_POSSIBLE or TOO_LONG."""
        first, last = self.lengths[0], self.lengths[-1]
        return ~n.is_in(self.local_lengths) & (
            (n == first) | ((n > first) & ((n > last) | n.is_in(self.lengths[1:])))
        )

    def too_long(self, n: pl.Expr) -> pl.Expr:
        """``_test_number_length`` is TOO_LONG."""
        first, last = self.lengths[0], self.lengths[-1]
        return ~n.is_in(self.local_lengths) & (n != first) & (n > first) & (n > last)

    def strip_national_prefix(self, x: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """``_maybe_strip_national_prefix_carrier_code``: (result, not sure)."""
        if self.national_prefix is None:
            return x, pl.lit(False)
        matched = self.national_prefix.matches(x)
        if self.transforms:
            return x, matched
        stripped = self.national_prefix.strip(x)
        spoils = self.fits_general(x) & ~self.fits_general(stripped)
        return pl.when(matched & ~spoils).then(stripped).otherwise(x), pl.lit(False)

    def valid(self, nsn: pl.Expr) -> pl.Expr:
        """``_number_type_helper(nsn) != UNKNOWN``."""
        if self.general is None or not self.type_groups:
            return pl.lit(False)
        n = nsn.str.len_bytes()
        general = n.is_in(self.lengths) & nsn.str.contains(f"^(?:{self.general})$")
        typed = pl.any_horizontal(
            *[n.is_in(ns) & nsn.str.contains(f"^(?:{u})$") for ns, u in self.type_groups]
        )
        return general & typed


@dataclass(frozen=True)
class _Plan:
    """Everything the fast path needs for one account region."""

    country_code: str
    here: _Rules  # the region's own rules: numbers written without a country code
    main: _Rules  # the country code's main region: numbers written with it
    international_prefix: _Prefix | None
    #: the regions sharing the country code, in phonenumbers' order
    owners: tuple[_Rules, ...]


@functools.cache
def _plan(region: str) -> _Plan | None:
    """The fast path for ``region``, or None if it has none (every value goes to phonenumbers)."""
    if region not in SUPPORTED_REGIONS:
        return None
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    code = metadata.country_code
    if code is None:
        return None
    main = PhoneMetadata.metadata_for_region(region_code_for_country_code(code), None)
    owners = [PhoneMetadata.metadata_for_region(r, None) for r in COUNTRY_CODE_TO_REGION_CODE[code]]
    idd = metadata.international_prefix
    plan = _Plan(
        country_code=str(code),
        here=_Rules.of(metadata),
        main=_Rules.of(main),
        international_prefix=_Prefix(idd) if idd else None,
        owners=tuple(_Rules.of(m) for m in owners if m is not None),
    )
    try:  # Polars' regex engine must accept every pattern, or the region has no fast path.
        _fast_phone(pl.Series(["+1 (234) 567-890", "0123456789"]), plan)
    except pl.exceptions.PolarsError:
        return None
    return plan


# -- the fast path --------------------------------------------------------------------------------


def _owner_valid(owners: tuple[_Rules, ...], nsn: pl.Expr) -> pl.Expr:
    """``is_valid_number`` over the regions of the country code (``_region_code_for_number``)."""
    if len(owners) == 1:
        return owners[0].valid(nsn)
    chain: Any = pl
    for rules in owners:
        if rules.leading_digits is not None:
            chain = chain.when(rules.leading_digits.matches(nsn)).then(rules.valid(nsn))
        else:
            chain = chain.when(rules.valid(nsn)).then(pl.lit(True))
    result: pl.Expr = chain.otherwise(pl.lit(False))
    return result


@functools.cache
def _later_valid(plan: _Plan) -> pl.Expr:
    """``_owner_valid`` over the regions after the first of the code, on ``nsn``: built once
    (dozens of patterns for the NANP's 24 regions; ~5 ms of Python a batch)."""
    return _owner_valid(plan.owners[1:], pl.col("nsn"))


def _where(frame: pl.DataFrame, rows: pl.Expr, **columns: pl.Expr) -> pl.DataFrame:
    """Set ``columns`` on the ``rows`` only, computing them for those rows only.

    Polars evaluates both branches of ``when``; the rare steps (a country code written without
    ``+``, a national prefix) are worth running on just the values that need them.
    """
    mask = frame.select(rows.fill_null(False)).to_series()
    index = mask.arg_true()
    if len(index) == 0:
        return frame
    part = frame.filter(mask).select(**columns)
    return frame.with_columns(
        frame[name].scatter(index, part[name].cast(frame.schema[name])) for name in columns
    )


def _fast_phone(raw: pl.Series, plan: _Plan) -> pl.DataFrame:
    """Columns ``fast`` (E.164 or null) and ``unsure`` (true where ``fast`` means nothing)."""
    code = plan.country_code
    here, main = plan.here, plan.main
    raw_col, digits, national = pl.col("raw"), pl.col("digits"), pl.col("national")
    unsure, use_main = pl.col("unsure"), pl.col("use_main")

    # Step 1: the digits, and whether a "+" comes first.
    frame = pl.DataFrame({"raw": raw.cast(pl.String)}).with_columns(
        shaped=raw_col.str.contains(_SHAPE) & (raw_col.str.len_chars() <= _MAX_INPUT),
        plus=raw_col.str.starts_with("+"),
        digits=raw_col.str.replace_all("[^0-9]", ""),
    )
    # Step 2: the country code. "+" and the region's code: read it. Another code, or an
    # international prefix: not sure. The code without "+": decided on the rows that have it.
    after_code = digits.str.starts_with(code)
    idd = (
        plan.international_prefix.matches(digits)
        if plan.international_prefix is not None
        else pl.lit(False)
    )
    frame = frame.with_columns(
        unsure=~pl.col("shaped")
        | (digits.str.len_bytes() < 3)
        | (pl.col("plus") & ~after_code)
        | (~pl.col("plus") & idd),
        use_main=pl.col("plus") & after_code,
        national=pl.when(pl.col("plus")).then(digits.str.slice(len(code))).otherwise(digits),
    )
    rest = digits.str.slice(len(code))
    rest_national, rest_unsure = here.strip_national_prefix(rest)
    implicit = (~here.fits_general(digits) & here.fits_general(rest_national)) | here.too_long(
        digits.str.len_bytes()
    )
    frame = _where(
        frame,
        ~unsure & ~pl.col("plus") & after_code,
        national=pl.when(implicit).then(rest_national).otherwise(digits),
        use_main=implicit,
        unsure=rest_unsure,
    )
    # Step 3: the national prefix, by the main region's rules once a country code was read.
    frame = frame.with_columns(nsn=national)
    passes = [(main, use_main), (here, ~use_main)] if main != here else [(here, pl.lit(True))]
    for rules, rows in passes:
        if rules.national_prefix is None:
            continue
        stripped, stripped_unsure = rules.strip_national_prefix(national)
        keep = rules.length_ok(stripped.str.len_bytes())
        frame = _where(
            frame,
            ~unsure & rows & rules.national_prefix.matches(national),
            nsn=pl.when(keep).then(stripped).otherwise(national),
            unsure=stripped_unsure,
        )
    nsn = pl.col("nsn")
    frame = frame.with_columns(
        possible=(national.str.len_bytes() >= _MIN_NSN)
        & nsn.str.len_bytes().is_between(_MIN_NSN, _MAX_NSN),
    )
    # Step 4: validity. The first region of a shared code usually decides alone; only the rest
    # (invalid there, or owned by a smaller region) pays for the whole list.
    first, *later = plan.owners
    if first.leading_digits is None and later:
        frame = frame.with_columns(valid=pl.col("possible") & first.valid(nsn))
        # A number of a length none of them admits is valid in none (each type's pattern
        # needs one of its region's lengths): the usual typo, a number too short, skips the
        # patterns of every region of the code (~40 ms a batch of 50,000 with 2% of them).
        lengths = sorted({n for rules in later for n in rules.lengths})
        frame = _where(
            frame,
            pl.col("possible") & ~pl.col("valid") & ~unsure & nsn.str.len_bytes().is_in(lengths),
            valid=_later_valid(plan),
        )
    else:
        frame = frame.with_columns(valid=pl.col("possible") & _owner_valid(plan.owners, nsn))
    return frame.select(
        fast=pl.when("valid").then("+" + pl.lit(code) + nsn).otherwise(pl.lit(None)),
        unsure=unsure,
    )


def normalise_phone_series(raw: pl.Series, region: str) -> pl.Series:
    """Vectorised ``normalise_phone``: the fast path where it is sure, phonenumbers elsewhere."""
    raw = raw.cast(pl.String)
    plan = _plan(region)
    if plan is None:
        return fill_from_scalar(
            raw,
            pl.Series([None] * len(raw), dtype=pl.String),
            raw.is_not_null(),
            lambda v: normalise_phone(v, region),
        )
    out = _fast_phone(raw, plan)
    return fill_from_scalar(raw, out["fast"], out["unsure"], lambda v: normalise_phone(v, region))


def fast_path_share(raw: pl.Series, region: str) -> float:
    """The share of non-null values the fast path decides alone (for tests and benchmarks)."""
    plan = _plan(region)
    values = raw.drop_nulls()
    if plan is None or len(values) == 0:
        return 0.0
    decided = (~_fast_phone(values, plan)["unsure"]).sum()
    return int(decided) / len(values)
