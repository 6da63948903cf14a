"""The demo: an account with realistic students, two terms of uploads, and the problems the
product exists for — a stale file that would revert corrected numbers, a shared family phone,
repeated IDs, invalid cells. Seeded, so every run tells the same story. (Made-up data: the
``random`` module is right here; nothing secret is drawn from it.)"""

from __future__ import annotations

import csv
import random
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rollbook.errors import Conflict, NotFound
from rollbook.model import Source
from rollbook.services import accounts as accounts_service
from rollbook.services import auth
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store

FIRST = [
    "Maria",
    "Wei",
    "Aisha",
    "James",
    "Sofia",
    "Liam",
    "Fatima",
    "Noah",
    "Priya",
    "Mateo",
    "Emma",
    "Kwame",
    "Hana",
    "Lucas",
    "Zoë",
    "Diego",
    "Amara",
    "Ethan",
    "Mei",
    "Omar",
    "Chloe",
    "Andrés",
    "Ngozi",
    "Ryan",
    "Isabella",
    "Kenji",
    "Layla",
    "Daniel",
    "Ana",
    "Tariq",
]
LAST = [
    "Lopez",
    "Chen",
    "Okafor",
    "Smith",
    "Garcia",
    "Nguyen",
    "Khan",
    "Johnson",
    "Patel",
    "Rossi",
    "Brown",
    "Mensah",
    "Sato",
    "Müller",
    "Martinez",
    "Kim",
    "Diallo",
    "Williams",
    "Wang",
    "Haddad",
]
PROGRAMS = ["Nursing", "Biology", "History", "Computer Science", "Business"]
AREAS = ["212", "415", "617", "312", "213", "305", "404", "503", "206", "720"]
HEADERS = [
    "Student ID",
    "First Name",
    "Last Name",
    "Mobile Phone",
    "Email",
    "Birth Date",
    "Program",
    "GPA",
]


#: The demo's user, an admin of the demo account; its password is new at every run.
DEMO_EMAIL = "demo@rollbook.example"
#: The next export, as a student system might send it after an upgrade: the ID column renamed.
RENAMED_FILE = "summer-2027-renamed-id.csv"


@dataclass
class DemoResult:
    slug: str
    folder: Path
    first: imports_service.ImportResult
    second: imports_service.ImportResult
    corrected: list[int]
    email: str
    password: str
    renamed: Path


def _phone(rng: random.Random) -> str:
    area, exchange, line = rng.choice(AREAS), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice(
        [
            f"({area}) {exchange}-{line:04d}",
            f"{area}.{exchange}.{line:04d}",
            f"+1 {area} {exchange} {line:04d}",
            f"{area}{exchange}{line:04d}",
        ]
    )


def _ascii(name: str) -> str:
    """Institutions' addresses are ASCII: Zoë Müller is zoe.muller@…"""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def _students(rng: random.Random, n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            [
                f"S{10000 + i}",
                first,
                last,
                _phone(rng),
                f"{_ascii(first)}.{_ascii(last)}{i}@students.example.edu",
                f"{rng.randint(1998, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice(PROGRAMS),
                f"{rng.uniform(2.0, 4.0):.2f}",
            ]
        )
    return rows


def _write(path: Path, rows: list[list[str]], headers: list[str] = HEADERS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(headers)
        w.writerows(rows)
    return path


def run_demo(store: Store, folder: Path, slug: str = "demo", students: int = 240) -> DemoResult:
    """Create (or re-create the story in) the demo account; write its files under ``folder``."""
    rng = random.Random(2026)  # noqa: S311
    folder.mkdir(parents=True, exist_ok=True)
    try:
        accounts_service.account_settings(store, slug)
    except NotFound:
        accounts_service.create_account(store, slug, region="US", name="Demo College")
        accounts_service.add_field(store, slug, "birth_date", type="date", label="Birth date")
        accounts_service.add_field(store, slug, "program", type="choice", options=PROGRAMS)
        accounts_service.add_field(store, slug, "gpa", type="number", label="GPA")

    fall = _students(rng, students)
    fall[7][3] = "555-0100"  # an invalid phone
    fall[12][0] = fall[11][0]  # a repeated Student ID
    fall[20][3] = fall[19][3]  # a sibling with the family's phone
    fall[20][2] = fall[19][2]
    options = imports_service.ImportOptions(
        explicit={"Student ID": "crm_id", "Mobile Phone": "phone"}, actor="demo"
    )
    first = imports_service.import_file(
        store, slug, _write(folder / "fall-2026.csv", fall), options
    )

    # Three students text the right number; the student system never hears of it.
    contacts = {c["crm_id"]: c for c in contacts_service.list_contacts(store, slug)}
    corrected = []
    for row in (fall[3], fall[30], fall[44]):
        contact = contacts[row[0]]
        contacts_service.set_contact(
            store,
            slug,
            contact["id"],
            {"phone": _phone(rng)},
            contacts_service.EditSource(Source.CONTACT, "student texted a new number", "demo"),
        )
        corrected.append(contact["id"])

    # Spring: the stale export again, some programs changed, a few new students.
    spring = [list(r) for r in fall]
    for r in rng.sample(spring, 15):
        r[6] = rng.choice(PROGRAMS)
    newcomers = _students(random.Random(7), 12)  # noqa: S311
    for i, r in enumerate(newcomers):
        r[0] = f"S2{i:04d}"
    spring.extend(newcomers)
    second = imports_service.import_file(
        store,
        slug,
        _write(folder / "spring-2027.csv", spring),
        imports_service.ImportOptions(actor="demo"),
    )
    # Summer's export, not imported: its ID column was renamed, for the dashboard's drift guard.
    summer = [list(r) for r in spring]
    for r in rng.sample(summer, 10):
        r[7] = f"{rng.uniform(2.0, 4.0):.2f}"
    renamed = _write(folder / RENAMED_FILE, summer, ["StudentID", *HEADERS[1:]])

    password = _demo_user(store, slug)
    return DemoResult(slug, folder, first, second, corrected, DEMO_EMAIL, password, renamed)


def _demo_user(store: Store, slug: str) -> str:
    """The demo admin, with a new random password (printed for the person who ran the demo)."""
    password = secrets.token_urlsafe(12)
    try:
        auth.create_user(store, DEMO_EMAIL, password)
    except Conflict:
        auth.set_password(store, DEMO_EMAIL, password)
    auth.grant(store, DEMO_EMAIL, slug, "admin")
    return password
