"""Phones: E.164 as phonenumbers says, and the fast path agrees with phonenumbers everywhere."""

from __future__ import annotations

import random
import string

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from rollbook.fields import invalid_reason, normalise_value
from rollbook.fields.phone import fast_path_share, normalise_phone
from tests.fields.agreement import PHONE, assert_agree

REGIONS = ("US", "GB", "CA", "DE", "FR", "IN")

ACCEPTED = [
    # (region, cell, canonical)
    ("US", "(201) 555-0123", "+12015550123"),
    ("US", "201.555.0123", "+12015550123"),
    ("US", "201-555-0123", "+12015550123"),
    ("US", "2015550123", "+12015550123"),
    ("US", "+1 201 555 0123", "+12015550123"),
    ("US", "1 (201) 555-0123", "+12015550123"),
    ("US", "12015550123", "+12015550123"),
    ("US", "416 555 0123", "+14165550123"),  # Canadian: valid, NANP shares +1
    ("US", "201-555-0123 ext. 12", "+12015550123"),  # the extension is not kept
    ("US", "+44 20 7946 0958", "+442079460958"),
    ("US", "011 44 20 7946 0958", "+442079460958"),
    ("GB", "020 7946 0958", "+442079460958"),
    ("GB", "07400 123456", "+447400123456"),
    ("GB", "+44 (0)20 7946 0958", "+442079460958"),
    ("DE", "030 123456", "+4930123456"),
    ("FR", "06 12 34 56 78", "+33612345678"),
    ("IN", "081234 56789", "+918123456789"),
]

REFUSED = [
    ("US", "(555) 123-4567"),  # 555 is not an area code
    ("US", "201-555-012"),  # too short
    ("US", "201-555-01234"),
    ("US", "phone"),
    ("US", "+999 1234 5678"),
    ("US", "1-800-FLOWERS-NOW-PLEASE"),
    ("GB", "020 7946 095"),
    ("FR", "00 00 00 00 00"),
]


@pytest.mark.parametrize(("region", "cell", "canonical"), ACCEPTED)
def test_accepted_phones(region: str, cell: str, canonical: str) -> None:
    assert normalise_value(PHONE, cell, region) == canonical
    assert_agree(PHONE, [cell], region)


@pytest.mark.parametrize(("region", "cell"), REFUSED)
def test_refused_phones(region: str, cell: str) -> None:
    assert normalise_value(PHONE, cell, region) is None
    assert_agree(PHONE, [cell], region)


def test_reason_names_the_region_not_the_number() -> None:
    assert invalid_reason(PHONE, "US") == "not a valid phone number for region US"


def test_unknown_region_still_reads_international_numbers() -> None:
    assert normalise_phone("+44 20 7946 0958", "XX") == "+442079460958"
    assert_agree(PHONE, ["+44 20 7946 0958", "020 7946 0958", None], "XX")


# -- the fast path decides the common shapes itself ------------------------------------------------


def national_examples(region: str) -> list[str]:
    out = []
    for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is not None:
            out.append(phonenumbers.national_significant_number(number))
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_fast_path_decides_common_shapes(region: str) -> None:
    cc = str(phonenumbers.country_code_for_region(region))
    cells = []
    for nsn in national_examples(region):
        national = phonenumbers.format_number(
            phonenumbers.parse(nsn, region), phonenumbers.PhoneNumberFormat.NATIONAL
        )
        cells += [
            nsn,
            national,
            f"+{cc} {nsn}",
            f"+{cc}-{nsn[:3]}-{nsn[3:]}",
            f"({nsn[:3]}) {nsn[3:]}",
        ]
        cells += [nsn[:-1], nsn + "9", f"+{cc} {nsn[:-2]}"]  # invalid ones too
    assert fast_path_share(pl.Series(cells), region) == 1.0
    assert_agree(PHONE, cells, region)


# -- Hypothesis: phone-like strings of every kind, vectorised == scalar ---------------------------

PLAIN_SEPARATORS = [" ", "-", ".", "", "(", ")", ") ", " - "]
ODD_SEPARATORS = ["  ", "/", "\u00a0", "\u2013", "\t", "x", ",", "+"]
ODD_PREFIXES = ["+0", "++", "(", "tel:", "(+", "00", "011", "8", "x", "\u00a0"]
ODD_SUFFIXES = [" x12", " ext. 7", "#", " ", ")", ".", ",,3", ";ext=5", "-503#", "abc", "/x2"]


@st.composite
def phone_like(draw: st.DrawFn, region: str) -> str:
    """Mostly the shapes the fast path reads (so that it is what gets compared), some not."""
    rnd = draw(st.randoms(use_true_random=False))
    cc = str(phonenumbers.country_code_for_region(region))
    kind = rnd.choice(["example"] * 5 + ["digits"] * 2 + ["other_cc", "letters", "unicode"])
    if kind == "example":
        digits = rnd.choice(national_examples(region))
        edit = rnd.choice(["none", "none", "digit", "length", "prefix"])
        if edit == "digit":
            i = rnd.randrange(len(digits))
            digits = digits[:i] + rnd.choice(string.digits) + digits[i + 1 :]
        elif edit == "length":
            digits = digits[:-1] if rnd.random() < 0.5 else digits + rnd.choice(string.digits)
        elif edit == "prefix":
            digits = rnd.choice(["0", "1", "00", "01", cc]) + digits
    elif kind == "digits":
        digits = "".join(rnd.choice(string.digits) for _ in range(rnd.randint(0, 20)))
    elif kind == "other_cc":
        other = str(rnd.choice(sorted(COUNTRY_CODE_TO_REGION_CODE)))
        digits = other + "".join(rnd.choice(string.digits) for _ in range(rnd.randint(4, 12)))
    elif kind == "letters":
        digits = "".join(
            rnd.choice(string.digits + "ADGJMPTWxX") for _ in range(rnd.randint(3, 14))
        )
    else:
        digits = "".join(
            rnd.choice("0123456789٠١٢٣٤٥٦٧٨٩０１２") for _ in range(rnd.randint(3, 14))
        )
    if rnd.random() < 0.8:
        prefix = rnd.choice(["", "", "", "+", "+" + cc, "+" + cc + " ", cc, cc + " ", "0", "1"])
    else:
        prefix = rnd.choice([*ODD_PREFIXES, "00" + cc, "011" + cc, "+" + cc + "0"])
    # split the digits into groups with separators between them
    cuts = sorted(rnd.randint(0, len(digits)) for _ in range(rnd.randint(0, 4)))
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    separators = PLAIN_SEPARATORS if rnd.random() < 0.85 else ODD_SEPARATORS
    body = "".join(g + rnd.choice(separators) for g in groups)
    suffix = rnd.choice(ODD_SUFFIXES) if rnd.random() < 0.15 else ""
    return prefix + body + suffix


@pytest.mark.parametrize("region", REGIONS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_vectorised_equals_phonenumbers(region: str, data: st.DataObject) -> None:
    cells = data.draw(st.lists(phone_like(region), min_size=1, max_size=40))
    assert_agree(PHONE, cells, region)


@pytest.mark.parametrize("region", REGIONS)
@settings(max_examples=25, deadline=None)
@given(cells=st.lists(st.text(max_size=25), max_size=20))
def test_vectorised_equals_phonenumbers_on_any_text(region: str, cells: list[str]) -> None:
    assert_agree(PHONE, cells, region)


# -- many random numbers in every region phonenumbers knows ---------------------------------------


def random_cells(rng: random.Random, region: str, count: int) -> list[str]:
    cc = str(phonenumbers.country_code_for_region(region))
    examples = national_examples(region) or ["1234567"]
    cells = []
    for _ in range(count):
        nsn = list(rng.choice(examples))
        for _ in range(rng.randint(0, 3)):
            nsn[rng.randrange(len(nsn))] = rng.choice(string.digits)
        if rng.random() < 0.2:
            nsn = nsn[:-1] if rng.random() < 0.5 else [*nsn, rng.choice(string.digits)]
        digits = "".join(nsn)
        prefix = rng.choice(["", "", "0", "1", "+" + cc, cc, "+" + cc + " 0", "00" + cc, "8"])
        sep = rng.choice(["", " ", "-", "."])
        cut = rng.randint(1, max(1, len(digits) - 1))
        cells.append(prefix + sep + digits[:cut] + sep + digits[cut:])
    return cells


@pytest.mark.slow
def test_fast_path_agrees_in_every_region() -> None:
    rng = random.Random(20240601)
    for region in sorted(SUPPORTED_REGIONS):
        assert_agree(PHONE, random_cells(rng, region, 60), region)


@pytest.mark.parametrize("region", REGIONS)
def test_fast_path_agrees_on_many_random_numbers(region: str) -> None:
    rng = random.Random(region)
    assert_agree(PHONE, random_cells(rng, region, 4000), region)
