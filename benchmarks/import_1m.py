"""How fast rollbook imports a million-row file, side by side with its floors and a peer.

    .venv/bin/python benchmarks/import_1m.py            # 1,000,000 rows, 3 runs, everything
    .venv/bin/python benchmarks/import_1m.py --rows 100000 --runs 1 --no-peer   # a quick look

In one run, on the same seeded file (benchmarks/datagen.py), each measured command in a process
of its own, wall time and peak RSS:

  (a) floor: the sqlite3 command line's `.import --csv` into an empty table
  (b) rollbook: a fresh import into an empty account (SQLite)
  (c) rollbook: the same file again (nothing changes)
  (d) rollbook: next term's file (5% changed fields, 1% new students, 1% phone moves/clashes)
  (e) PostgreSQL: rollbook's fresh import, next to psql's `\\copy` of the file into an empty table
  (f) peer: `sqlite-utils upsert` of the file
  (g) the store's own share: the contacts rollbook's fresh import wrote, copied into an empty
      store with rollbook's schema (its keys, its columns) by the database alone, on SQLite
      (one `INSERT … SELECT`) and on PostgreSQL (psql's `\\copy`)
  and the peak RSS of a fresh 2,000,000-row import against the 1,000,000-row one.

It prints medians, rows/s, ratios to the floors and the acceptance checks of the benchmark
issue; `--write-docs` also writes them to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.datagen import FIELDS, MAPPING, next_term, population, write  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
BIN = Path(sys.executable).parent
ROLLBOOK = str(BIN / "rollbook")


@dataclass
class Measure:
    wall: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def peak_mb(self) -> float:
        return max(self.rss_mb) if self.rss_mb else float("nan")


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd`` in a process of its own; its wall seconds and peak RSS (MB). If the benchmark
    is stopped meanwhile, the command is stopped with it."""
    probe = (
        "import json,resource,subprocess,sys,time\n"
        "t=time.perf_counter()\n"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL)\n"
        "w=time.perf_counter()-t\n"
        "print(json.dumps([r.returncode,w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    # The probe and the command in a process group of their own, which goes as one.
    with subprocess.Popen(
        [sys.executable, "-c", probe, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as run:
        try:
            stdout, stderr = run.communicate()
        except BaseException:
            os.killpg(run.pid, signal.SIGKILL)
            raise
    if run.returncode != 0:
        raise subprocess.CalledProcessError(run.returncode, run.args, stdout, stderr)
    code, wall, rss_kb = json.loads(stdout.strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}: {stderr[-2000:]}")
    return wall, rss_kb / 1024


def files(rows: int) -> dict[str, Path]:
    paths = {
        "fresh": DATA / f"contacts-{rows}.csv",
        "next": DATA / f"contacts-{rows}-next-term.csv",
        "double": DATA / f"contacts-{rows * 2}.csv",
    }
    if not paths["fresh"].exists() or not paths["next"].exists():
        base = population(rows)
        write(paths["fresh"], base)
        write(paths["next"], next_term(base))
    if not paths["double"].exists():
        write(paths["double"], population(rows * 2))
    return paths


def run_ratios(a: Measure, b: Measure) -> list[float]:
    """``a``'s time over ``b``'s, run by run (the runs both were measured in)."""
    return [x / y for x, y in zip(a.wall, b.wall, strict=False)]


#: What is measured, in the order of the table.
KEYS = (
    "raw",
    "fresh",
    "again",
    "next",
    "store",
    "pg_raw",
    "pg_fresh",
    "pg_store",
    "peer",
    "double",
)

#: SQLite's settings in rollbook's import transaction (store/database.py), for the copy.
SQLITE_BULK = "PRAGMA cache_size=-32768; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"

#: Runs a script of SQL in SQLite through Python's sqlite3 (the library rollbook writes
#: with): the interpreter hands it over once, and SQLite runs it alone.
RUN_SQLITE_SCRIPT = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(sys.argv[2])"

#: The copy of ``store_copy_sqlite``, from the imported file attached as ``f``. ``ORDER BY``
#: keeps SQLite from copying the tables' pages whole (its transfer optimisation): each row
#: goes into the table and its keys, as in an import. The rows are read in the table's own
#: order, so nothing is sorted.
STORE_COPY = "INSERT INTO contacts SELECT * FROM f.contacts ORDER BY id"


def quoted(path: Path) -> str:
    """``path`` as a quoted literal, for SQL and for psql's meta-commands alike."""
    return "'" + str(path).replace("'", "''") + "'"


def floor_cmd(sqlite3_bin: str, db: Path, csv_path: Path) -> list[str]:
    """Row (a): the ``sqlite3`` command line's ``.import --csv`` of the file into table ``t``.
    The shell splits a dot-command's arguments at spaces; a double-quoted one may hold anything,
    with ``\\`` and ``\"`` for a backslash and a quote."""
    arg = '"' + str(csv_path).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [sqlite3_bin, str(db), f".import --csv {arg} t"]


def store_copy_sqlite(work: Path, imported: Path) -> tuple[float, float]:
    """The database's own share of a fresh import: the contacts rollbook wrote (``imported``),
    inserted into an empty store with rollbook's schema by SQLite alone (``STORE_COPY``) — no
    file to parse, nothing to normalise or plan, no value through Python. As in rollbook's
    import transaction, the foreign keys are not checked: the target's account is checked to
    be the imported one's afterwards."""
    path, url = fresh_sqlite(work, "store")
    setup_account(url)
    sql = f"{SQLITE_BULK} ATTACH {quoted(imported)} AS f; BEGIN; {STORE_COPY}; COMMIT;"
    measured = measure([sys.executable, "-c", RUN_SQLITE_SCRIPT, str(path), sql])
    with closing(sqlite3.connect(path)) as db:
        if db.execute("PRAGMA foreign_key_check('contacts')").fetchone() is not None:
            raise RuntimeError("the copied contacts name an account the store does not have")
    return measured


def store_copy_postgres(pg_url: str, imported: str, work: Path) -> tuple[float, float]:
    """``store_copy_sqlite`` on PostgreSQL: the contacts rollbook wrote (database
    ``imported``), written out as CSV, then ``\\copy``-ed by psql into an empty store. As in
    rollbook's import, the server checks each row's account (the foreign key)."""
    csv_path = work / "pg_contacts.csv"
    try:
        subprocess.run(
            [
                "psql",
                imported,
                "-qc",
                f"\\copy (SELECT * FROM contacts ORDER BY id) TO {quoted(csv_path)} csv",
            ],
            check=True,
        )
        url = pg_database(pg_url, "rollbook_store")
        setup_account(url)
        return measure(["psql", url, "-qc", f"\\copy contacts FROM {quoted(csv_path)} csv"])
    finally:
        csv_path.unlink(missing_ok=True)


def rollbook(db: str, *args: str) -> list[str]:
    return [ROLLBOOK, "--db", db, *args]


def setup_account(db: str) -> None:
    subprocess.run(
        rollbook(db, "accounts", "create", "bench", "--region", "US"),
        check=True,
        capture_output=True,
    )
    for key, kind, options in FIELDS:
        opts = [x for o in options for x in ("--option", o)]
        subprocess.run(
            rollbook(db, "fields", "add", "-a", "bench", key, "--type", kind, *opts),
            check=True,
            capture_output=True,
        )


def import_cmd(db: str, path: Path) -> list[str]:
    maps = [x for h, f in MAPPING.items() for x in ("--map", f"{h}={f}")]
    return rollbook(db, "import", str(path), "-a", "bench", *maps, "--json")


def fresh_sqlite(work: Path, name: str) -> tuple[Path, str]:
    path = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path, f"sqlite:///{path}"


def start_postgres() -> tuple[str, object | None]:
    url = os.environ.get("ROLLBOOK_BENCH_POSTGRES_URL")
    if url:
        return url, None
    from tests.support.postgres import start_cluster

    cluster = start_cluster()
    return cluster.url, cluster


#: The databases the benchmark makes on a PostgreSQL server: the floor's, the import's, the
#: store's own share's.
PG_DATABASES = ("raw", "rollbook_bench", "rollbook_store")


def _pg_server(url: str) -> str:
    """The server's URL as psql and psycopg take it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def drop_pg_databases(url: str, *names: str) -> None:
    import psycopg

    with psycopg.connect(_pg_server(url), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def pg_database(url: str, name: str) -> str:
    """An empty database ``name`` on the server of ``url`` (dropped first if it was there)."""
    import psycopg

    drop_pg_databases(url, name)
    base = _pg_server(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="Skip sqlite-utils (slow).")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-double", action="store_true", help="Skip the 2x-rows RSS check.")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    paths = files(args.rows)
    work = DATA / "work"
    work.mkdir(parents=True, exist_ok=True)
    m: dict[str, Measure] = {k: Measure() for k in KEYS}
    # Stopped by `kill` or a time limit, the benchmark ends as Ctrl-C ends it: through the
    # `finally` below, which stops its throwaway PostgreSQL server (and `measure`, the command
    # it was measuring).
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    pg_url: str | None = None
    cluster: object | None = None
    pg_version = ""
    sqlite3_bin = shutil.which("sqlite3")
    if not sqlite3_bin:
        print(
            "no sqlite3 command line on the PATH: the SQLite floor (a), and the checks against "
            "it, are left out",
            file=sys.stderr,
        )
    try:
        if not args.no_postgres:
            pg_url, cluster = start_postgres()
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", file=sys.stderr)
            if sqlite3_bin:
                raw, _ = fresh_sqlite(work, "raw")
                w, r = measure(floor_cmd(sqlite3_bin, raw, paths["fresh"]))
                m["raw"].wall.append(w)
                m["raw"].rss_mb.append(r)
            db_path, db = fresh_sqlite(work, "rollbook")
            setup_account(db)
            for key, path in (("fresh", paths["fresh"]), ("again", paths["fresh"])):
                w, r = measure(import_cmd(db, path))
                m[key].wall.append(w)
                m[key].rss_mb.append(r)
            w, r = store_copy_sqlite(work, db_path)
            m["store"].wall.append(w)
            m["store"].rss_mb.append(r)
            next_db, next_url = fresh_sqlite(work, "next")
            shutil.copyfile(db_path, next_db)
            w, r = measure(import_cmd(next_url, paths["next"]))
            m["next"].wall.append(w)
            m["next"].rss_mb.append(r)
            if pg_url:
                raw_url = pg_database(pg_url, "raw")
                columns = ", ".join(f'"c{i}" text' for i in range(12))
                subprocess.run(["psql", raw_url, "-qc", f"CREATE TABLE t ({columns})"], check=True)
                w, r = measure(
                    ["psql", raw_url, "-qc", f"\\copy t from {quoted(paths['fresh'])} csv header"]
                )
                m["pg_raw"].wall.append(w)
                m["pg_raw"].rss_mb.append(r)
                url = pg_database(pg_url, "rollbook_bench")
                server = subprocess.run(
                    ["psql", url, "-tAc", "SHOW server_version"],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                pg_version = server.stdout.split()[0]
                setup_account(url)
                w, r = measure(import_cmd(url, paths["fresh"]))
                m["pg_fresh"].wall.append(w)
                m["pg_fresh"].rss_mb.append(r)
                w, r = store_copy_postgres(pg_url, url, work)
                m["pg_store"].wall.append(w)
                m["pg_store"].rss_mb.append(r)
            if not args.no_peer:
                peer, _ = fresh_sqlite(work, "peer")
                w, r = measure(
                    [
                        str(BIN / "sqlite-utils"),
                        "upsert",
                        str(peer),
                        "t",
                        str(paths["fresh"]),
                        "--csv",
                        "--pk",
                        "Student ID",
                    ]
                )
                m["peer"].wall.append(w)
                m["peer"].rss_mb.append(r)
        if not args.no_double:
            _, db = fresh_sqlite(work, "double")
            setup_account(db)
            w, r = measure(import_cmd(db, paths["double"]))
            m["double"].wall.append(w)
            m["double"].rss_mb.append(r)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal would cut this short
        try:
            if cluster is not None:
                cluster.stop()  # type: ignore[attr-defined]
            elif pg_url:  # an operator's server: the million-row databases go
                drop_pg_databases(pg_url, *PG_DATABASES)
        finally:
            signal.signal(signal.SIGTERM, previous)
    report(args, m, pg_version)


def report(args: argparse.Namespace, m: dict[str, Measure], pg_version: str) -> None:
    n = args.rows
    lines = []

    def row(label: str, key: str, rows: int, floor: str | None = None) -> None:
        x = m[key]
        if not x.wall:
            return
        ratio = f"{x.median / m[floor].median:.2f}×" if floor and m[floor].wall else ""
        lines.append(
            f"| {label} | {rows:,} | {x.median:.2f} | {rows / x.median:,.0f} | "
            f"{x.peak_mb:,.0f} | {ratio} | {len(x.wall)} |"
        )

    lines.append("| | rows | median s | rows/s | peak RSS MB | ratio to floor | runs |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    row("(a) sqlite3 `.import --csv` (floor)", "raw", n)
    row("(b) rollbook fresh import, SQLite", "fresh", n, "raw")
    row("(c) rollbook re-import, nothing changes", "again", n, "raw")
    row("(d) rollbook next term (5% changes, 1% new, 1% phone moves)", "next", n + n // 100, "raw")
    row("(g) SQLite alone: (b)'s contacts into an empty store", "store", n, "raw")
    row("(e) psql `\\copy` (floor)", "pg_raw", n)
    row("(e) rollbook fresh import, PostgreSQL", "pg_fresh", n, "pg_raw")
    row("(g) psql `\\copy` of (e)'s contacts into an empty store", "pg_store", n, "pg_raw")
    row("(f) sqlite-utils upsert (peer)", "peer", n, "raw")
    row("rollbook fresh import of twice the rows, SQLite", "double", 2 * n)

    checks = []

    def check(text: str, ok: bool | None) -> None:
        if ok is not None:
            checks.append(f"- {'PASS' if ok else 'FAIL'}: {text}")

    def ratio(a: str, b: str) -> float | None:
        return m[a].median / m[b].median if m[a].wall and m[b].wall else None

    def each(a: str, b: str) -> str:
        """Each run's own ratio, taken within the run: the machine's speed drifts between runs."""
        per = run_ratios(m[a], m[b])
        return f" (each run: {', '.join(f'{x:.2f}×' for x in per)})" if len(per) > 1 else ""

    for key, limit, text in (
        ("fresh", 3.0, "fresh import ≤ 3× sqlite3 .import"),
        ("again", 2.0, "unchanged re-import ≤ 2× sqlite3 .import"),
        ("next", 2.5, "5%-change re-import ≤ 2.5× sqlite3 .import"),
    ):
        r = ratio(key, "raw")
        check(
            f"{text}: {r:.2f}×{each(key, 'raw')}" if r else text, None if r is None else r <= limit
        )
    r = ratio("pg_fresh", "pg_raw")
    check(
        f"PostgreSQL fresh import ≤ 4× COPY: {r:.2f}×{each('pg_fresh', 'pg_raw')}" if r else "",
        None if r is None else r <= 4,
    )
    r = ratio("peer", "fresh")
    check(
        f"≥ 8× faster than sqlite-utils upsert: {r:.1f}×{each('peer', 'fresh')}" if r else "",
        None if r is None else r >= 8,
    )
    # The database's own share of a fresh import, next to the targets (no target of its own).
    for key, floor, text in (
        ("store", "raw", "SQLite alone, the contacts into rollbook's schema: {}× sqlite3 .import"),
        ("pg_store", "pg_raw", "PostgreSQL alone, the contacts into rollbook's schema: {}× COPY"),
    ):
        r = ratio(key, floor)
        if r is not None:
            checks.append(
                f"- the store's share (no target): {text.format(f'{r:.2f}')}{each(key, floor)}"
            )
    if m["fresh"].rss_mb:
        check(
            f"peak RSS of the {n:,}-row import ≤ 600 MB: {m['fresh'].peak_mb:.0f} MB",
            m["fresh"].peak_mb <= 600,
        )
    if m["double"].rss_mb and m["fresh"].rss_mb:
        growth = m["double"].peak_mb / m["fresh"].peak_mb
        check(f"{2 * n:,} rows take ≤ 1.3× the {n:,}-row peak RSS: {growth:.2f}×", growth <= 1.3)

    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}" + (f", PostgreSQL {pg_version}" if pg_version else "")
    )
    command = "python benchmarks/import_1m.py " + " ".join(sys.argv[1:])
    text = "\n".join([*lines, "", *checks])
    print(text)
    if args.write_docs:
        write_docs(text, machine, command)


def write_docs(text: str, machine: str, command: str) -> None:
    """Replace the "Latest run" section of docs/benchmarks.md; the rest is written by hand."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text(encoding="utf-8")
    section = (
        "## Latest run\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {machine}, with\n`{command}`:\n\n{text}\n"
    )
    start = doc.find("## Latest run\n")
    if start < 0:
        path.write_text(doc.rstrip("\n") + "\n\n" + section, encoding="utf-8")
        return
    end = doc.find("\n## ", start + 1)
    rest = doc[end + 1 :] if end >= 0 else ""
    path.write_text(doc[:start] + section + ("\n" + rest if rest else ""), encoding="utf-8")


if __name__ == "__main__":
    main()
