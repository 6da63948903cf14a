"""The ``rollbook`` command: a thin shell over the services. It parses arguments, calls one
service function, prints the result, and turns rollbook's errors into messages and exit codes.

Exit codes: 0 done; 1 refused or failed (the message says why); 2 wrong usage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from rollbook.errors import RollbookError
from rollbook.importing.mapping import parse_map_options
from rollbook.importing.reports import write_changed_numbers, write_row_report
from rollbook.model import Source
from rollbook.services import accounts as accounts_service
from rollbook.services import contacts as contacts_service
from rollbook.services import imports as imports_service
from rollbook.store import Store
from rollbook.store.database import ENV_URL

F = TypeVar("F", bound=Callable[..., Any])


class State:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_state = click.make_pass_decorator(State)


def _fail(error: RollbookError) -> click.ClickException:
    return click.ClickException(error.message)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RollbookError as error:
        raise _fail(error) from error


def _json(value: Any, out: TextIO | None = None) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out)


def account_option(f: F) -> F:
    return click.option(
        "--account", "-a", "account", required=True, metavar="SLUG", help="The account (its slug)."
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "url",
    metavar="URL",
    envvar=ENV_URL,
    help=f"Database URL (sqlite:///file.db or postgresql://…). Default: ${ENV_URL}, "
    "else ./rollbook.db.",
)
@click.version_option(package_name="rollbook")
@click.pass_context
def main(ctx: click.Context, url: str | None) -> None:
    """rollbook — a contact store for teams that text students.

    Imports that match reliably and explain every row, platform edits that survive stale
    uploads, and reports that send the truth back to the student system."""
    ctx.obj = State(url)
    ctx.call_on_close(ctx.obj.close)


# --- accounts ------------------------------------------------------------------------------


@main.group()
def accounts() -> None:
    """Create and list accounts (one institution's workspace each)."""


@accounts.command("create")
@click.argument("slug")
@click.option(
    "--region",
    default="US",
    show_default=True,
    metavar="CC",
    help="Default phone region: numbers without a country code are read as this country's.",
)
@click.option("--name", help="A display name (default: the slug).")
@pass_state
def accounts_create(state: State, slug: str, region: str, name: str | None) -> None:
    """Create the account SLUG."""
    with _errors():
        accounts_service.create_account(state.store, slug, region=region, name=name)
    click.echo(f"Created account {slug} (phone region {region.upper()}).")


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def accounts_list(state: State, as_json: bool) -> None:
    """List the accounts."""
    with _errors():
        rows = accounts_service.list_accounts(state.store)
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{r['slug']}\tregion {r['region']}\trequired: {', '.join(r['required'])}")


@accounts.command("set")
@click.argument("slug")
@click.option("--region", metavar="CC", help="Default phone region.")
@click.option(
    "--required",
    "required",
    multiple=True,
    metavar="FIELD",
    help="A field every new contact must have (repeat for several; replaces the list).",
)
@pass_state
def accounts_set(state: State, slug: str, region: str | None, required: tuple[str, ...]) -> None:
    """Change an account's settings."""
    with _errors():
        settings = accounts_service.set_account(
            state.store, slug, region=region, required=list(required) if required else None
        )
    click.echo(f"{slug}: region {settings.region}; required {', '.join(settings.required)}")


# --- fields --------------------------------------------------------------------------------


@main.group()
def fields() -> None:
    """Define an account's custom fields."""


@fields.command("add")
@account_option
@click.argument("key")
@click.option(
    "--type",
    "kind",
    default="text",
    show_default=True,
    type=click.Choice(["text", "number", "date", "boolean", "choice"]),
    help="The field's type.",
)
@click.option("--label", help="How the field is shown (default: from the key).")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="TEXT",
    help="An option of a choice field (repeat for each).",
)
@pass_state
def fields_add(
    state: State, account: str, key: str, kind: str, label: str | None, options: tuple[str, ...]
) -> None:
    """Add the custom field KEY to an account. A date field named birth_date is used, with the
    names, to find possible duplicates."""
    with _errors():
        f = accounts_service.add_field(
            state.store, account, key, type=kind, label=label, options=options
        )
    click.echo(f"Added field {f.key} ({f.type.value}) to {account}.")


@fields.command("rename")
@account_option
@click.argument("key")
@click.argument("new_key", required=False)
@click.option("--label", help="A new label (default: the label stays).")
@pass_state
def fields_rename(
    state: State, account: str, key: str, new_key: str | None, label: str | None
) -> None:
    """Give the custom field KEY the key NEW_KEY, with every contact's value of it (or, with
    --label alone, another label). Past imports and events keep the old key."""
    if new_key is None and label is None:
        raise click.UsageError("give NEW_KEY, or --label for a new label")
    with _errors():
        f = accounts_service.rename_field(state.store, account, key, new_key or key, label=label)
    if f.key == key:
        click.echo(f"Field {key} of {account} is now labelled {f.label!r}.")
    else:
        click.echo(f"Renamed field {key} to {f.key} in {account}.")


@fields.command("list")
@account_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def fields_list(state: State, account: str, as_json: bool) -> None:
    """List an account's fields, built-in and custom."""
    with _errors():
        settings = accounts_service.account_settings(state.store, account)
    rows = accounts_service.fields_json(settings)
    if as_json:
        _json(rows)
        return
    for r in rows:
        extra = f" [{', '.join(r['options'])}]" if r["options"] else ""
        flags = " (built-in)" if r["builtin"] else ""
        flags += " (required)" if r["required"] else ""
        click.echo(f"{r['key']}\t{r['type']}{extra}\t{r['label']}{flags}")


# --- import --------------------------------------------------------------------------------


def _import_options(
    maps: tuple[str, ...], allow: bool, sheet: str | None, filename: str | None = None
) -> imports_service.ImportOptions:
    return imports_service.ImportOptions(
        explicit=parse_map_options(maps),
        allow_unmapped_crm_id=allow,
        sheet=sheet,
        filename=filename,
    )


def _print_mapping(result: imports_service.ImportResult | imports_service.FileInspection) -> None:
    for c in result.mapping.columns:
        if c.field is None:
            hint = ", ".join(f"{s.field} ({s.why})" for s in c.suggestions) or "no suggestion"
            click.echo(f"  {c.header!r}: not imported — map it with --map; suggestions: {hint}")
        else:
            click.echo(f"  {c.header!r} → {c.field} ({c.how})")
    for note in result.mapping.notes:
        click.echo(f"  note: {note}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@account_option
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="HEADER=FIELD",
    help="Map a column to a field, or to 'ignore' (repeat for each column).",
)
@click.option("--dry-run", is_flag=True, help="Preview: the same results, nothing is kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the row report (CSV) here.",
)
@click.option(
    "--changed",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the changed-numbers report (CSV) here.",
)
@click.option(
    "--allow-unmapped-crm-id",
    is_flag=True,
    help="Import although no column is mapped to crm_id while the account uses CRM IDs.",
)
@click.option(
    "--sheet", metavar="NAME", help="The sheet of an Excel workbook (default: the first)."
)
@pass_state
def import_command(
    state: State,
    file: Path,
    account: str,
    maps: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    report: Path | None,
    changed: Path | None,
    allow_unmapped_crm_id: bool,
    sheet: str | None,
) -> None:
    """Import FILE (CSV or .xlsx) into an account.

    Every row ends created, updated, unchanged or skipped, with codes that say why; see the row
    report. A refused file (mapping, drift guard) changes nothing and exits with status 1."""
    options = _import_options(maps, allow_unmapped_crm_id, sheet)
    last_step = "Finishing the dry run" if dry_run else "Saving"
    with _errors(), _progress(enabled=not as_json, last_step=last_step) as progress:
        result = imports_service.import_file(
            state.store,
            account,
            file,
            options,
            dry_run=dry_run,
            progress=progress,
            keep_report=dry_run,
        )
    if report:
        with report.open("w", newline="", encoding="utf-8") as out:
            chunks = (
                result.report
                if dry_run
                else imports_service.row_report(state.store, account, result.import_id or 0)
            )
            write_row_report(chunks, out)
    if changed:
        rows = (
            result.changed
            if dry_run
            else imports_service.changed_numbers(state.store, account, result.import_id or 0)
        )
        with changed.open("w", newline="", encoding="utf-8") as out:
            write_changed_numbers(rows, out)
    if as_json:
        _json(result.summary())
        return
    head = "Preview (nothing was kept)" if dry_run else f"Import {result.import_id}"
    click.echo(f"{head}: {file.name} — {result.format.describe()}")
    _print_mapping(result)
    counts = result.counts.as_json()
    click.echo("  rows: " + ", ".join(f"{n} {s}" for s, n in counts["counts"].items()))
    for code, n in counts["codes"].items():
        click.echo(f"  {code}: {n}")
    if result.blank_rows:
        click.echo(f"  blank rows ignored: {result.blank_rows}")
    click.echo(f"  changed numbers: {result.changed_numbers}")
    if result.label:
        click.echo(f"  contacts labelled {result.label}")


@contextmanager
def _progress(enabled: bool, last_step: str) -> Iterator[Callable[[int, int], None] | None]:
    """The import's progress bar on a terminal. Once every row is checked, its label says
    ``last_step``: the last batches' writes and the commit take a moment more (~1.5 s of a
    million-row import), and a full bar that says nothing looks stuck."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(
                length=max(total, 1), label="Importing", file=sys.stderr, show_pos=True
            )
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total and bar.label != last_step:
            bar.label = last_step
            bar.render_progress()

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@main.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@account_option
@click.option("--map", "maps", multiple=True, metavar="HEADER=FIELD", help="As for import.")
@click.option("--sheet", metavar="NAME", help="The sheet of an Excel workbook.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def inspect_command(
    state: State, file: Path, account: str, maps: tuple[str, ...], sheet: str | None, as_json: bool
) -> None:
    """Show how FILE would be read and mapped, with suggestions and the drift guard, without
    importing anything."""
    with _errors():
        found = imports_service.inspect_file(
            state.store, account, file, _import_options(maps, False, sheet)
        )
    if as_json:
        _json(
            {
                "format": imports_service.format_json(found.format),
                "headers": list(found.headers),
                "mapping": [
                    {
                        "column": c.header,
                        "field": c.field,
                        "how": c.how,
                        "suggestions": [
                            {"field": s.field, "score": s.score, "why": s.why}
                            for s in c.suggestions
                        ],
                    }
                    for c in found.mapping.columns
                ],
                "drift_warning": found.drift_warning,
            }
        )
        return
    click.echo(f"{file.name}: {found.format.describe()}")
    _print_mapping(found)
    if found.drift_warning:
        click.echo(f"Warning: {found.drift_warning}")


@main.group()
def imports() -> None:
    """Past imports: list, show, reports."""


@imports.command("list")
@account_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def imports_list(state: State, account: str, as_json: bool) -> None:
    """List an account's imports, newest first."""
    with _errors():
        rows = imports_service.list_imports(state.store, account)
    if as_json:
        _json(rows)
        return
    for r in rows:
        counts = ", ".join(f"{n} {s}" for s, n in r["counts"].items() if n)
        click.echo(f"{r['import_id']}\t{r['started_at']}\t{r['status']}\t{r['filename']}\t{counts}")


@imports.command("show")
@account_option
@click.argument("import_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def imports_show(state: State, account: str, import_id: int, as_json: bool) -> None:
    """Show one import: file, mapping, counts."""
    with _errors():
        r = imports_service.show_import(state.store, account, import_id)
    if as_json:
        _json(r)
        return
    click.echo(f"Import {r['import_id']}: {r['filename']} ({r['status']}), {r['started_at']}")
    click.echo(f"  {r['format'].get('description')}")
    for m in r["mapping"]:
        click.echo(f"  {m['column']!r} → {m['field'] or 'not imported'}")
    click.echo("  rows: " + ", ".join(f"{n} {s}" for s, n in r["counts"].items()))
    for code, n in r["codes"].items():
        click.echo(f"  {code}: {n}")


@imports.command("report")
@account_option
@click.argument("import_id", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
@pass_state
def imports_report(state: State, account: str, import_id: int, output: Path | None) -> None:
    """Write an import's row report (CSV)."""
    with _errors(), _output(output) as out:
        imports_service.write_row_report_csv(state.store, account, import_id, out)


@imports.command("changed")
@account_option
@click.argument("import_id", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
@pass_state
def imports_changed(state: State, account: str, import_id: int, output: Path | None) -> None:
    """Write an import's changed-numbers report (CSV)."""
    with _errors():
        rows = imports_service.changed_numbers(state.store, account, import_id)
    with _output(output) as out:
        write_changed_numbers(rows, out)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", newline="", encoding="utf-8") as out:
        yield out


# --- contacts ------------------------------------------------------------------------------


def _filter_options(f: F) -> F:
    f = click.option(
        "--label", metavar="LABEL", help="Only contacts with this label (import-<id>)."
    )(f)
    f = click.option(
        "--search", metavar="TEXT", help="Name, email, CRM ID, id or phone (any format)."
    )(f)
    f = click.option(
        "--archived/--active",
        "archived",
        default=None,
        help="Only archived, or only active, contacts.",
    )(f)
    return f


@main.group()
def contacts() -> None:
    """List, show, add and edit contacts."""


@contacts.command("list")
@account_option
@_filter_options
@click.option("--limit", type=int, help="At most this many.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list of contacts, the built-in fields as keys.",
)
@pass_state
def contacts_list(
    state: State,
    account: str,
    label: str | None,
    search: str | None,
    archived: bool | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List an account's contacts."""
    flt = contacts_service.ContactFilter(label=label, search=search, archived=archived)
    with _errors():
        rows = contacts_service.iter_contacts(state.store, account, flt, limit=limit)
        if as_json:
            out = sys.stdout
            out.write("[")
            for i, row in enumerate(rows):
                out.write(("," if i else "") + "\n  " + json.dumps(row, ensure_ascii=False))
            out.write("\n]\n")
            return
        for row in rows:
            name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
            flags = " [archived]" if row["archived"] else ""
            flags += " [opted out]" if row["opted_out"] else ""
            click.echo(
                f"{row['id']}\t{row['crm_id'] or ''}\t{name}\t{row['phone'] or ''}\t"
                f"{row['email'] or ''}{flags}"
            )


@contacts.command("show")
@account_option
@click.argument("contact_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def contacts_show(state: State, account: str, contact_id: int, as_json: bool) -> None:
    """Show one contact: fields, phone history, timeline."""
    with _errors():
        c = contacts_service.get_contact(state.store, account, contact_id)
    if as_json:
        _json(c)
        return
    click.echo(f"Contact {c['id']}")
    for key, value in c.items():
        if key in ("id", "custom", "phone_history", "timeline", "bases"):
            continue
        click.echo(f"  {key}: {'' if value is None else value}")
    for key, value in c["custom"].items():
        click.echo(f"  {key}: {'' if value is None else value}")
    if c["bases"]:
        click.echo(
            "  kept from stale imports (base): "
            + ", ".join(f"{k}={v}" for k, v in c["bases"].items())
        )
    if c["phone_history"]:
        click.echo("Phone history:")
        for h in c["phone_history"]:
            why = f" — {h['reason']}" if h["reason"] else ""
            click.echo(f"  {h['phone']}  {h['from'] or '?'} → {h['to']}  ({h['source']}){why}")
    click.echo("Timeline:")
    for e in c["timeline"]:
        where = f" import {e['import_id']} row {e['row']}" if e["import_id"] else ""
        who = f" by {e['actor']}" if e["actor"] else ""
        why = f" — {e['reason']}" if e["reason"] else ""
        changes = "; ".join(f"{k}: {o!r} → {n!r}" for k, (o, n) in e["changes"].items())
        click.echo(f"  {e['at']} {e['what']} ({e['source']}{where}{who}){why} {changes}".rstrip())


def _assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"{pair!r}: write FIELD=VALUE (VALUE UNSET clears the field)")
        result[key.strip()] = value
    return result


@contacts.command("set")
@account_option
@click.argument("contact_id", type=int)
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE…")
@click.option(
    "--source",
    type=click.Choice(["staff", "contact"]),
    default="staff",
    show_default=True,
    help="Who asked for the change.",
)
@click.option(
    "--reason",
    metavar="TEXT",
    help="Why, e.g. 'student texted a new number' (kept in the phone history).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the contact as JSON.")
@pass_state
def contacts_set(
    state: State,
    account: str,
    contact_id: int,
    assignments: tuple[str, ...],
    source: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Change fields of a contact. VALUE UNSET clears the field."""
    how = contacts_service.EditSource(Source(source), reason)
    with _errors():
        c = contacts_service.set_contact(
            state.store, account, contact_id, _assignments(assignments), how
        )
    if as_json:
        _json(c)
    else:
        click.echo(f"Contact {c['id']} saved.")


@contacts.command("add")
@account_option
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE…")
@click.option("--json", "as_json", is_flag=True, help="Print the contact as JSON.")
@pass_state
def contacts_add(state: State, account: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Create a contact."""
    with _errors():
        c = contacts_service.create_contact(state.store, account, _assignments(assignments))
    if as_json:
        _json(c)
    else:
        click.echo(f"Created contact {c['id']}.")


@main.command("export")
@account_option
@_filter_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
@pass_state
def export_command(
    state: State,
    account: str,
    label: str | None,
    search: str | None,
    archived: bool | None,
    output: Path | None,
) -> None:
    """Export contacts as CSV (formula-safe; imports back unchanged)."""
    flt = contacts_service.ContactFilter(label=label, search=search, archived=archived)
    with _errors(), _output(output) as out:
        n = contacts_service.export_contacts(state.store, account, out, flt)
    if output:
        click.echo(f"Exported {n} contacts to {output}.")


# --- database ------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database: migrations."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Bring the database schema up to date (opening the database does this too)."""
    from rollbook.store.migrate import current_revision

    with _errors():
        store = state.store
    click.echo(f"Database at revision {current_revision(store)}.")


# --- demo ----------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("rollbook-demo"),
    show_default=True,
    help="Where the demo's files and reports are written.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Then run the dashboard and the API (as 'rollbook serve') to click through it.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: the address.")
@click.option("--port", default=8000, show_default=True, type=int, help="With --serve: the port.")
@pass_state
def demo_command(state: State, folder: Path, serve: bool, host: str, port: int) -> None:
    """Create a demo account and tell its story: two terms of uploads, students who texted a
    new number, a stale file that does not revert them, and a demo user to sign in with."""
    from rollbook.services.demo import run_demo

    with _errors():
        result = run_demo(state.store, folder)
        for label, r in (("first", result.first), ("second", result.second)):
            assert r.import_id is not None
            for name, write in (
                ("rows", imports_service.write_row_report_csv),
                ("changed-numbers", imports_service.write_changed_numbers_csv),
            ):
                path = folder / f"{label}-import-{name}.csv"
                with path.open("w", newline="", encoding="utf-8") as o:
                    write(state.store, result.slug, r.import_id, o)

    def counts(r: imports_service.ImportResult) -> str:
        c = r.counts.as_json()
        text = ", ".join(f"{n} {s}" for s, n in c["counts"].items() if n)
        codes = ", ".join(f"{n} {code}" for code, n in c["codes"].items())
        return text + (f" ({codes})" if codes else "")

    click.echo(f"Demo account '{result.slug}' is ready (files and reports in {folder}/).")
    click.echo(f"1. Fall upload, import {result.first.import_id}: {counts(result.first)}")
    click.echo(f"2. Students {', '.join(map(str, result.corrected))} texted new numbers.")
    click.echo(
        f"3. Spring upload of the stale export, import {result.second.import_id}: "
        f"{counts(result.second)}"
    )
    click.echo(
        f"   The corrected numbers were kept; {result.second.changed_numbers} rows are in "
        "the changed-numbers report for the student system."
    )
    click.echo(
        f"4. Summer's export, {result.renamed}, has its ID column renamed: upload it in the "
        "dashboard and see the drift guard."
    )
    me = sys.argv[0] if sys.argv[0].endswith("rollbook") else "rollbook"
    rb = f"{me} --db {state.url}" if state.url else me
    click.echo("Look around:")
    click.echo(f"  {rb} contacts list -a demo --search Lopez")
    click.echo(f"  {rb} contacts show -a demo {result.corrected[0]}")
    click.echo(f"  {rb} imports show -a demo {result.second.import_id}")
    where = f"http://{host}:{port}/" if serve else f"http://127.0.0.1:8000/ (after: {rb} serve)"
    click.echo("")
    click.echo(f"The dashboard: {where}")
    click.echo(f"  sign in as {result.email} with the password {result.password}")
    click.echo("")
    if serve:
        _serve(state, host, port, None)


# --- the service ---------------------------------------------------------------------------


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="The port to listen on.")
@click.option(
    "--jobs",
    type=click.Choice(["thread", "queue"]),
    default=None,
    help="Run import jobs in this process (thread, the default) or put them on the "
    "PostgreSQL job queue for 'rollbook worker' processes (queue).",
)
@pass_state
def serve_command(state: State, host: str, port: int, jobs: str | None) -> None:
    """Run the dashboard and the REST API (under /api/v1)."""
    _serve(state, host, port, jobs)


def _serve(state: State, host: str, port: int, jobs: str | None) -> None:
    import uvicorn

    from rollbook.api import ApiSettings, create_app
    from rollbook.logs import configure

    configure()
    with _errors():  # a bad setting, or the job queue asked for on SQLite
        settings = ApiSettings.from_env(database_url=state.url, jobs=jobs)
        app = create_app(settings)
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)


@main.command("worker")
@click.option("--once", is_flag=True, help="Run the queued jobs, then stop.")
@pass_state
def worker_command(state: State, once: bool) -> None:
    """Run import jobs from the job queue (PostgreSQL; for servers run with --jobs queue)."""
    from datetime import timedelta

    from rollbook.api import ApiSettings
    from rollbook.logs import configure
    from rollbook.queue import run_worker

    configure()
    with _errors():
        settings = ApiSettings.from_env(database_url=state.url)
        run_worker(
            state.store,
            settings.read_limits(),
            timedelta(seconds=settings.stale_job_seconds),
            once=once,
        )


@main.group()
def tokens() -> None:
    """API tokens of an account (shown once, stored hashed)."""


@tokens.command("create")
@account_option
@click.option("--name", required=True, help="What the token is for, e.g. 'nightly upload'.")
@click.option(
    "--role",
    type=click.Choice(["admin", "staff", "read-only"]),
    default="staff",
    show_default=True,
    help="What the token may do.",
)
@pass_state
def tokens_create(state: State, account: str, name: str, role: str) -> None:
    """Create a token; it is printed this once."""
    from rollbook.services import auth

    with _errors():
        token, info = auth.create_token(state.store, account, name, role, created_by="cli")
    click.echo(token)
    click.echo(
        f"(token {info['id']}, {info['role']}, prefix {info['prefix']}: keep it safe, "
        "it is not shown again)",
        err=True,
    )


@tokens.command("list")
@account_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def tokens_list(state: State, account: str, as_json: bool) -> None:
    """List an account's tokens (never their secrets)."""
    from rollbook.services import auth

    with _errors():
        rows = auth.list_tokens(state.store, account)
    if as_json:
        _json(rows)
        return
    for r in rows:
        status = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        click.echo(f"{r['id']}\t{r['prefix']}\t{r['role']}\t{r['name']}\t{status}")


@tokens.command("revoke")
@account_option
@click.argument("token_id", type=int)
@pass_state
def tokens_revoke(state: State, account: str, token_id: int) -> None:
    """Revoke a token."""
    from rollbook.services import auth

    with _errors():
        auth.revoke_token(state.store, account, token_id)
    click.echo(f"Token {token_id} revoked.")


@main.group()
def users() -> None:
    """People who sign in to the dashboard, and their roles."""


@users.command("create")
@click.argument("email")
@click.option("--account", "-a", "account", metavar="SLUG", help="Give the user a role here.")
@click.option(
    "--role",
    type=click.Choice(["admin", "staff", "read-only"]),
    default="staff",
    show_default=True,
    help="The role in --account.",
)
@click.password_option(help="The password (asked for if not given).")
@pass_state
def users_create(state: State, email: str, account: str | None, role: str, password: str) -> None:
    """Create a user (and give them a role in an account)."""
    from rollbook.services import auth

    with _errors():
        auth.create_user(state.store, email, password)
        if account:
            auth.grant(state.store, email, account, role)
    click.echo(f"Created user {email}" + (f" ({role} in {account})." if account else "."))


@users.command("grant")
@click.argument("email")
@account_option
@click.option(
    "--role",
    type=click.Choice(["admin", "staff", "read-only"]),
    default="staff",
    show_default=True,
    help="The role.",
)
@pass_state
def users_grant(state: State, email: str, account: str, role: str) -> None:
    """Give a user a role in an account."""
    from rollbook.services import auth

    with _errors():
        auth.grant(state.store, email, account, role)
    click.echo(f"{email} is {role} in {account}.")


@users.command("password")
@click.argument("email")
@click.password_option(help="The new password (asked for if not given).")
@pass_state
def users_password(state: State, email: str, password: str) -> None:
    """Give a user a new password; their open dashboard sessions end."""
    from rollbook.services import auth

    with _errors():
        auth.set_password(state.store, email, password)
    click.echo(f"{email} has a new password; their sessions have ended.")


@users.command("disable")
@click.argument("email")
@pass_state
def users_disable(state: State, email: str) -> None:
    """Stop a user from signing in; their open sessions end, their roles are kept."""
    _set_disabled(state, email, True)


@users.command("enable")
@click.argument("email")
@pass_state
def users_enable(state: State, email: str) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(state, email, False)


def _set_disabled(state: State, email: str, disabled: bool) -> None:
    from rollbook.services import auth

    with _errors():
        auth.set_disabled(state.store, email, disabled)
    click.echo(f"{email} is {'disabled' if disabled else 'enabled'}.")


@users.command("list")
@account_option
@pass_state
def users_list(state: State, account: str) -> None:
    """List an account's users and roles."""
    from rollbook.services import auth

    with _errors():
        rows = auth.list_users(state.store, account)
    for r in rows:
        click.echo(f"{r['email']}\t{r['role']}")
