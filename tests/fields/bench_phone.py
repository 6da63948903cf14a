"""Throughput of the vectorised phone normaliser on a million US numbers in mixed formats.

Run: ``.venv/bin/python -m tests.fields.bench_phone [rows]``. Not a test: timings depend on the
machine. About 2% of the numbers are invalid (unassigned area codes, wrong lengths).
"""

from __future__ import annotations

import random
import sys
import time

import phonenumbers
import polars as pl

from rollbook.fields.phone import fast_path_share, normalise_phone, normalise_phone_series

FORMATS = ("({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "{a}{b}{c}", "{a}-{b}-{c}")


def us_area_codes() -> list[str]:
    return [
        str(a)
        for a in range(200, 1000)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"{a}2345678", "US"))
    ]


def sample(rows: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    areas = us_area_codes()
    out = []
    for _ in range(rows):
        a = rng.choice(areas)
        b = f"{rng.randint(200, 999)}"
        c = f"{rng.randint(0, 9999):04d}"
        roll = rng.random()
        if roll < 0.005:
            a = rng.choice(["555", "123", "099", "911"])
        elif roll < 0.01:
            c = c[:3]
        out.append(rng.choice(FORMATS).format(a=a, b=b, c=c))
    return out


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    series = pl.Series("phone", sample(rows))
    normalise_phone_series(series.head(1000), "US")  # build the region's plan once
    start = time.perf_counter()
    result = normalise_phone_series(series, "US")
    elapsed = time.perf_counter() - start
    print(f"{rows:,} numbers in {elapsed:.2f} s: {rows / elapsed:,.0f} numbers/s")
    print(
        f"invalid: {result.null_count() / rows:.2%}; decided by the fast path: "
        f"{fast_path_share(series, 'US'):.2%}"
    )
    check = series.head(20_000)
    expected = [normalise_phone(v, "US") for v in check.to_list()]
    assert normalise_phone_series(check, "US").to_list() == expected
    start = time.perf_counter()
    for v in check.to_list():
        normalise_phone(v, "US")
    print(f"phonenumbers alone: {len(check) / (time.perf_counter() - start):,.0f} numbers/s")


if __name__ == "__main__":
    main()
