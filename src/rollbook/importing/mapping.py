"""Headers → fields (SPEC §3.1): explicit choices, the remembered mapping, suggestions and the
drift guard. Pure functions over plain data; the service reads and writes what they need.

Which field a column feeds, in order of precedence:

1. the user's explicit choice (``--map HEADER=FIELD``, or the dashboard's mapping table);
2. the remembered mapping: the field this header was mapped to by the last import that ran;
3. a header that *is* a field (its key or label, ignoring case, spaces and underscores), so that
   an export imports back as it is;
4. otherwise the column is unmapped: listed, with suggestions, and not imported.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rollbook.errors import DriftGuardRefused, MappingRefused
from rollbook.fields import normalise_value
from rollbook.model import IGNORE, AccountSettings, FieldType

#: The header rollbook's exports give the platform id; a column so named is mapped to ``id``.
PLATFORM_ID_HEADER = "rollbook_id"
#: Why a column is mapped the way it is.
EXPLICIT, REMEMBERED, SAME_NAME = "explicit", "remembered", "same name"


def header_key(header: str) -> str:
    """The form headers are compared in: case-insensitive, inner white space collapsed."""
    return " ".join(header.casefold().split())


def _loose(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


#: Names student systems' exports commonly give the built-in fields' columns. They make
#: suggestions, never a mapping by themselves: "ID" or "Number" mean different things in
#: different files, so a person confirms.
USUAL_HEADERS: dict[str, tuple[str, ...]] = {
    "crm_id": (
        "student id",
        "student number",
        "student no",
        "emplid",
        "banner id",
        "sis id",
        "person id",
        "external id",
        "applicant id",
        "record id",
    ),
    "phone": (
        "mobile",
        "mobile phone",
        "mobile number",
        "cell",
        "cell phone",
        "cell number",
        "phone number",
        "telephone",
        "sms number",
    ),
    "email": ("email address", "e-mail", "student email", "personal email"),
    "first_name": ("first", "given name", "forename", "preferred name"),
    "last_name": ("last", "surname", "family name"),
}
_USUAL = {_loose(h): key for key, names in USUAL_HEADERS.items() for h in names}


@dataclass(frozen=True)
class Suggestion:
    field: str
    score: float  # 0..1
    why: str


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    field: str | None  # a field key, IGNORE, or None (unmapped)
    how: str | None = None  # EXPLICIT, REMEMBERED, SAME_NAME
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class FileMapping:
    """The resolved mapping of one file."""

    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def fields(self) -> dict[str, int]:
        """field key -> column index, for the columns that feed a field."""
        return {c.field: c.index for c in self.columns if c.field not in (None, IGNORE)}

    @property
    def unmapped(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.field is None)

    def header_of(self, field_key: str) -> str:
        return self.columns[self.fields[field_key]].header

    def as_pairs(self) -> list[list[str | None]]:
        return [[c.header, c.field] for c in self.columns]


def parse_map_options(options: Sequence[str]) -> dict[str, str]:
    """``HEADER=FIELD`` strings (the CLI's ``--map``) → {header: field}. The last ``=`` splits,
    so a header may itself contain ``=``."""
    result: dict[str, str] = {}
    for option in options:
        header, sep, target = option.rpartition("=")
        if not sep or not header.strip() or not target.strip():
            raise MappingRefused(
                f"--map {option!r}: write it as HEADER=FIELD (FIELD may be 'ignore')"
            )
        result[header.strip()] = target.strip()
    return result


def resolve_mapping(
    headers: Sequence[str],
    settings: AccountSettings,
    *,
    explicit: Mapping[str, str] | None = None,
    remembered: Mapping[str, tuple[str, str]] | None = None,
    samples: Sequence[Sequence[str | None]] = (),
) -> FileMapping:
    """Decide which field every column feeds. Raises ``MappingRefused`` when the choice is not
    the user's to skip: an unknown header or field, or a field mapped twice."""
    explicit = dict(explicit or {})
    remembered = dict(remembered or {})
    keys = {header_key(h): i for i, h in enumerate(headers)}
    known_fields = {f.key for f in settings.fields}

    chosen: dict[int, tuple[str, str]] = {}
    for header, target in explicit.items():
        index = keys.get(header_key(header))
        if index is None:
            raise MappingRefused(
                f"--map {header}={target}: the file has no column {header!r}; its columns are "
                + ", ".join(repr(h) for h in headers),
                header=header,
            )
        if target != IGNORE and target not in known_fields:
            raise MappingRefused(
                f"--map {header}={target}: {target!r} is not a field of this account; the fields "
                f"are {', '.join(sorted(known_fields))} (or 'ignore')",
                field=target,
            )
        chosen[index] = (target, EXPLICIT)
    _refuse_twice(headers, chosen, "mapped")

    taken = {t for t, _ in chosen.values() if t != IGNORE}
    remembered_hits: dict[int, str] = {}
    for i, h in enumerate(headers):
        if i in chosen:
            continue
        hit = remembered.get(header_key(h))
        if hit is not None and (hit[1] == IGNORE or hit[1] in known_fields):
            remembered_hits[i] = hit[1]
    clashes = _twice({i: t for i, t in remembered_hits.items() if t != IGNORE and t not in taken})
    if clashes:
        target, indexes = clashes[0]
        names = " and ".join(repr(headers[i]) for i in indexes)
        raise MappingRefused(
            f"columns {names} were both mapped to {target} by earlier imports; choose one with "
            f"--map HEADER={target} and map the other (or 'ignore') too",
            field=target,
        )
    notes = []
    for i, target in remembered_hits.items():
        if target != IGNORE and target in taken:
            notes.append(
                f"column {headers[i]!r} was mapped to {target} before; it is not imported now "
                f"because another column was chosen for {target}"
            )
            continue
        chosen[i] = (target, REMEMBERED)
        if target != IGNORE:
            taken.add(target)

    # The platform id is never taken by name: nearly every student system has a column called
    # "ID", and it is not rollbook's. Exports name theirs PLATFORM_ID_HEADER.
    by_name = {_loose(f.key): f.key for f in settings.fields if f.key != "id"}
    by_name.update({_loose(f.label): f.key for f in settings.fields if f.key != "id"})
    by_name[_loose(PLATFORM_ID_HEADER)] = "id"
    for i, h in enumerate(headers):
        if i in chosen:
            continue
        same = by_name.get(_loose(h))
        if same is not None and same not in taken:
            chosen[i] = (same, SAME_NAME)
            taken.add(same)

    columns = []
    for i, h in enumerate(headers):
        if i in chosen:
            target, how = chosen[i]
            columns.append(Column(i, h, target, how))
        else:
            column_samples = [row[i] for row in samples if i < len(row)]
            columns.append(
                Column(
                    i,
                    h,
                    None,
                    suggestions=tuple(suggest(h, column_samples, settings, remembered, taken)),
                )
            )
    return FileMapping(tuple(columns), tuple(notes))


def _twice(assigned: Mapping[int, str]) -> list[tuple[str, list[int]]]:
    by_field: dict[str, list[int]] = {}
    for i, target in sorted(assigned.items()):
        by_field.setdefault(target, []).append(i)
    return [(t, ix) for t, ix in by_field.items() if len(ix) > 1]


def _refuse_twice(headers: Sequence[str], chosen: Mapping[int, tuple[str, str]], verb: str) -> None:
    clashes = _twice({i: t for i, (t, _) in chosen.items() if t != IGNORE})
    if clashes:
        target, indexes = clashes[0]
        names = " and ".join(repr(headers[i]) for i in indexes)
        raise MappingRefused(
            f"columns {names} are both {verb} to {target}; a field takes one column"
        )


def suggest(
    header: str,
    samples: Sequence[str | None],
    settings: AccountSettings,
    remembered: Mapping[str, tuple[str, str]],
    taken: set[str] = frozenset(),  # type: ignore[assignment]
    limit: int = 3,
) -> list[Suggestion]:
    """Fields this column may be meant for, best first, each with the reason."""
    scores: dict[str, Suggestion] = {}

    def offer(key: str, score: float, why: str) -> None:
        if key in taken or (key == "id" and score < 0.9):
            return
        if key not in scores or scores[key].score < score:
            scores[key] = Suggestion(key, round(score, 2), why)

    mine = _loose(header)
    if mine in _USUAL and _USUAL[mine] in settings.keys:
        key = _USUAL[mine]
        offer(key, 0.95, f"a usual name for {settings.field(key).label}")
    for f in settings.fields:
        for name in (f.key, f.label):
            ratio = difflib.SequenceMatcher(None, mine, _loose(name)).ratio()
            if ratio >= 0.6:
                offer(f.key, ratio, f"the header looks like {f.label!r}")
    for _, (old_header, target) in remembered.items():
        if target == IGNORE:
            continue
        ratio = difflib.SequenceMatcher(None, mine, _loose(old_header)).ratio()
        if ratio >= 0.6:
            offer(target, min(1.0, ratio + 0.05), f"≈ {old_header!r}, mapped to {target} before")
    values = [v.strip() for v in samples if v and v.strip()]
    if values:
        for f in settings.fields:
            if f.type in (FieldType.TEXT, FieldType.ID):
                continue
            fits = sum(normalise_value(f, v, settings.region) is not None for v in values)
            if fits / len(values) >= 0.8:
                offer(f.key, 0.5 + 0.4 * fits / len(values), f"the values look like {f.label}")
    return sorted(scores.values(), key=lambda s: -s.score)[:limit]


def drift_guard(
    mapping: FileMapping,
    *,
    account_uses_crm_ids: bool,
    allow_unmapped_crm_id: bool,
    remembered: Mapping[str, tuple[str, str]],
    crm_id_hits: Mapping[int, tuple[int, int]] | None = None,
) -> None:
    """Refuse a file that maps no column to crm_id when the account's contacts have CRM IDs
    (SPEC §3.1): every row would create a duplicate profile instead of updating its contact."""
    if not account_uses_crm_ids or "crm_id" in mapping.fields or allow_unmapped_crm_id:
        return
    before = [h for h, t in remembered.values() if t == "crm_id"]
    likely = _likely_crm_column(mapping, before, crm_id_hits or {})
    message = (
        "no column is mapped to crm_id, but this account's contacts have CRM IDs: every row "
        "would create a new contact instead of updating its profile."
    )
    if likely is not None:
        column, why = likely
        message += f" The CRM ID column is probably {column.header!r} ({why})."
        message += f" Map it with --map {column.header!r}=crm_id"
    else:
        message += " Map the file's unique ID column with --map HEADER=crm_id"
    message += ", or pass --allow-unmapped-crm-id if this file really has no CRM IDs."
    raise DriftGuardRefused(
        message,
        likely_column=likely[0].header if likely else None,
        previous_headers=before,
    )


def _likely_crm_column(
    mapping: FileMapping, before: list[str], crm_id_hits: Mapping[int, tuple[int, int]]
) -> tuple[Column, str] | None:
    """The column most like the CRM ID column: by its header against the headers mapped to
    crm_id before, and by its first values (``crm_id_hits``: column -> (values that are CRM IDs
    of existing contacts, values looked at)). Returns it with the reasons."""
    best: tuple[float, Column, str] | None = None
    for column in mapping.columns:
        if column.field not in (None, IGNORE):
            continue
        score, reasons = 0.0, []
        for old in before:
            ratio = difflib.SequenceMatcher(None, _loose(column.header), _loose(old)).ratio()
            if ratio >= 0.6 and ratio > score:
                score, reasons = ratio, [f"≈ last time's {old!r}"]
        hits, seen = crm_id_hits.get(column.index, (0, 0))
        if hits:
            score = max(score, 0.5 + 0.5 * hits / seen)
            reasons.append(f"{hits} of its first {seen} values are CRM IDs of existing contacts")
        for s in column.suggestions:
            if s.field == "crm_id" and not reasons:
                score, reasons = s.score, [s.why]
        if reasons and (best is None or score > best[0]):
            best = (score, column, "; ".join(reasons))
    return (best[1], best[2]) if best else None
