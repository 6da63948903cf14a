"""Seeded, realistic contact files for the benchmarks: a student population as a registrar's
export has it, with the usual mess — phones written four ways, ~2% invalid phones, siblings
sharing a family phone, a few repeated CRM IDs — and the next term's variant of it."""

from __future__ import annotations

import csv
import random
import unicodedata
from pathlib import Path

HEADERS = [
    "Student ID",
    "First Name",
    "Last Name",
    "Mobile Phone",
    "Email",
    "Birth Date",
    "City",
    "State",
    "Program",
    "GPA",
    "Enrolled",
    "Term",
]
FIRST = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Maria",
    "Luis",
    "Wei",
    "Aisha",
    "Ngozi",
    "Hiroshi",
    "Zoë",
    "Mateo",
    "Priya",
    "Omar",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Nguyen",
    "Kim",
    "Okafor",
    "Sato",
    "Müller",
    "Patel",
]
# A real population has thousands of surnames; built from syllables, these give ~30,000, so that
# "same name and birth date" is as rare as it is in a registrar's data.
_SYLLABLES = [
    "an",
    "ber",
    "cal",
    "dor",
    "el",
    "fen",
    "gar",
    "hal",
    "is",
    "jo",
    "kel",
    "lan",
    "mar",
    "nor",
    "os",
    "pen",
    "quin",
    "ros",
    "sal",
    "tor",
    "ul",
    "ven",
    "wil",
    "yar",
    "zan",
    "bro",
    "cha",
    "dre",
    "fin",
    "gra",
    "hol",
]
SURNAMES = [
    *LAST,
    *(
        a.capitalize() + b + c
        for a in _SYLLABLES
        for b in _SYLLABLES
        for c in ("", "s", "son", "er")
    ),
]
AREAS = ["212", "415", "617", "312", "213", "305", "404", "503", "206", "720", "512", "646"]
CITIES = [
    ("Boston", "MA"),
    ("Austin", "TX"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
    ("Chicago", "IL"),
    ("Miami", "FL"),
]
PROGRAMS = ["Nursing", "Biology", "History", "Computer Science", "Business"]
TERMS = ["Fall 2026", "Spring 2027"]


def _digits(i: int) -> tuple[str, str, str]:
    """A distinct, valid US number for every i (area, exchange, line)."""
    area = AREAS[i % len(AREAS)]
    n = i // len(AREAS)
    exchange = 200 + (n // 10000) % 800
    return area, str(exchange), f"{n % 10000:04d}"


def _written(parts: tuple[str, str, str], rng: random.Random) -> str:
    a, x, line = parts
    return rng.choice(
        [f"({a}) {x}-{line}", f"{a}.{x}.{line}", f"+1 {a} {x} {line}", f"{a}{x}{line}"]
    )


def _ascii(name: str) -> str:
    """Institutions' addresses are ASCII: Zoë Müller is zoe.muller@…"""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def student(i: int, rng: random.Random, number: int | None = None) -> list[str]:
    """Student ``i``; their phone is the ``number``-th distinct number (default ``i``)."""
    first, last = rng.choice(FIRST), rng.choice(SURNAMES)
    city, state = rng.choice(CITIES)
    digits = _digits(i if number is None else number)
    phone = "555-12" if rng.random() < 0.02 else _written(digits, rng)
    return [
        f"S{i:07d}",
        first,
        last,
        phone,
        f"{_ascii(first)}.{_ascii(last)}{i}@students.example.edu",
        f"{rng.randint(1996, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        city,
        state,
        rng.choice(PROGRAMS),
        f"{rng.uniform(2, 4):.2f}",
        rng.choice(["yes", "no"]),
        rng.choice(TERMS),
    ]


def population(n: int, seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    # Phones in no particular order, as in a registrar's export (sorted by student ID at most):
    # a file whose numbers rise row by row would spare the database's unique phone index the
    # scattered writes a real file costs it.
    numbers = list(range(n))
    random.Random(seed + 1000).shuffle(numbers)
    rows = [student(i, rng, numbers[i]) for i in range(n)]
    # Siblings: every 200th student shares the previous one's family phone and last name.
    for i in range(200, n, 200):
        rows[i][3], rows[i][2] = rows[i - 1][3], rows[i - 1][2]
    # Repeated CRM IDs: every 1000th row repeats the previous row's ID.
    for i in range(1000, n, 1000):
        rows[i][0] = rows[i - 1][0]
    return rows


def next_term(rows: list[list[str]], seed: int = 2) -> list[list[str]]:
    """The same file a term later: 5% of rows with changed fields, 1% new students, 1% phone
    moves (a new number, or — every other one — a number another student has)."""
    rng = random.Random(seed)
    out = [list(r) for r in rows]
    n = len(out)
    for i in rng.sample(range(n), n * 5 // 100):
        out[i][8] = rng.choice(PROGRAMS)
        out[i][9] = f"{rng.uniform(2, 4):.2f}"
        out[i][11] = rng.choice(TERMS)
    for k, i in enumerate(rng.sample(range(n), n // 100)):
        if k % 2:
            out[i][3] = out[rng.randrange(n)][3]  # a clash with another student's number
        else:
            out[i][3] = _written(_digits(n * 3 + k), rng)  # a new number
    out.extend(student(n * 2 + k, rng) for k in range(n // 100))
    return out


def write(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows(rows)
    return path


FIELDS = [  # (key, type, options) the benchmark account defines
    ("birth_date", "date", ()),
    ("city", "text", ()),
    ("state", "text", ()),
    ("program", "choice", tuple(PROGRAMS)),
    ("gpa", "number", ()),
    ("enrolled", "boolean", ()),
    ("term", "choice", tuple(TERMS)),
]
MAPPING = {
    "Student ID": "crm_id",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Mobile Phone": "phone",
    "Email": "email",
    "Birth Date": "birth_date",
    "City": "city",
    "State": "state",
    "Program": "program",
    "GPA": "gpa",
    "Enrolled": "enrolled",
    "Term": "term",
}
