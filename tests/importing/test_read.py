"""The file reader (SPEC §3): real files in real encodings → header, row numbers, string cells."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbook.errors import FileRefused
from rollbook.fields import WHITESPACE
from rollbook.importing import read
from rollbook.importing.read import BadRow, FileFormat, ReadLimits, SourceFile, open_file

Row = tuple[int, list[str | None]]


# --------------------------------------------------------------------------------------------
# Helpers


def write(tmp_path: Path, data: bytes | str, name: str = "students.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read_all(
    source: SourceFile, batch_rows: int = 100_000, kept: list[int] | None = None
) -> tuple[list[Row], list[BadRow], int]:
    """Every data row, every bad row and the number of blank rows, checking batch invariants.
    With ``kept``, the cells of those columns only, a row blank only when all its cells are."""
    rows: list[Row] = []
    bad: list[BadRow] = []
    blank = 0
    expected_columns = [str(i) for i in (kept or range(len(source.headers)))]
    batches = (
        source.batches(batch_rows=batch_rows)
        if kept is None
        else source.batches(batch_rows, kept, blank_by_all_cells=True)
    )
    for batch in batches:
        assert batch.rows.dtype == pl.Int64
        assert batch.cells.columns == expected_columns
        assert all(dtype == pl.String for dtype in batch.cells.dtypes)
        assert batch.cells.height == batch.rows.len() <= batch_rows
        assert batch.cells.select(pl.any_horizontal(pl.all() == "")).to_series().sum() == 0
        rows += [(n, list(c)) for n, c in zip(batch.rows, batch.cells.iter_rows(), strict=True)]
        bad += batch.bad_rows
        blank += batch.blank_rows
    numbers = [n for n, _ in rows]
    assert numbers == sorted(numbers)
    assert [b.row for b in bad] == sorted(b.row for b in bad)
    return rows, bad, blank


def cells(source: SourceFile) -> list[Row]:
    rows, bad, _ = read_all(source)
    assert bad == []
    return rows


def refused(path: Path, *patterns: str, **kwargs: object) -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        open_file(path, **kwargs)  # type: ignore[arg-type]
    for pattern in patterns:
        assert re.search(pattern, caught.value.message), caught.value.message
    return caught.value


@contextmanager
def csv_module_only() -> Iterator[None]:
    """Read CSV with the csv-module fallback instead of pyarrow."""

    def no_pyarrow(source: SourceFile, assembler: object) -> Iterator[None]:
        raise read._UseCsvModule
        yield  # a generator, like the real one

    with mock.patch.object(read, "_pyarrow_blocks", no_pyarrow):
        yield


@contextmanager
def block_size(size: int) -> Iterator[None]:
    with mock.patch.object(read, "_BLOCK_BYTES", size):
        yield


ENGINES = {"pyarrow": nullcontext, "csv module": csv_module_only}


# --------------------------------------------------------------------------------------------
# Encodings and delimiters


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter", "described"),
    [
        (
            "Zoë;Müller\r\nAnaïs;Ødegård\r\n".encode(),
            "utf-8",
            ";",
            "CSV, UTF-8, semicolon-separated",
        ),
        (
            "Zoë,Müller\nAnaïs,Ødegård\n".encode("utf-8-sig"),
            "utf-8-sig",
            ",",
            "CSV, UTF-8 with BOM, comma-separated",
        ),
        (
            "Zoë\tMüller\nAnaïs\tØdegård\n".encode("utf-16"),
            "utf-16",
            "\t",
            "CSV, UTF-16, tab-separated",
        ),
        (
            codecs.BOM_UTF16_BE + "Zoë|Müller\nAnaïs|Ødegård\n".encode("utf-16-be"),
            "utf-16",
            "|",
            "CSV, UTF-16, pipe-separated",
        ),
        (
            "Zoë;Müller\r\nAnaïs;Ødegård\r\n".encode("cp1252"),
            "cp1252",
            ";",
            "CSV, Windows-1252, semicolon-separated",
        ),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be", "cp1252"],
)
def test_encodings_and_delimiters_are_detected(
    tmp_path: Path, data: bytes, encoding: str, delimiter: str, described: str
) -> None:
    source = open_file(write(tmp_path, data))
    assert source.format == FileFormat("csv", encoding, delimiter, None)
    assert source.format.describe() == described
    assert source.headers == ("Zoë", "Müller")
    assert cells(source) == [(2, ["Anaïs", "Ødegård"])]


def test_kind_is_read_from_the_content_not_the_name(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, "Name,Phone\nZoë,555\n", name="students.xlsx"))
    assert source.format.kind == "csv"


def test_cp1252_is_chosen_only_when_the_file_is_not_utf8(tmp_path: Path) -> None:
    # Valid UTF-8 early on, one Windows-1252 byte far beyond the sample: the whole file counts.
    data = "Name,City\n" + "Zoë,Köln\n" * 100_000
    path = write(tmp_path, data.encode() + "Zoë,Köln\n".encode("cp1252"))
    source = open_file(path)
    assert source.format.encoding == "cp1252"
    rows = cells(source)
    assert rows[0] == (2, ["ZoÃ«", "KÃ¶ln"])  # what the UTF-8 bytes are in Windows-1252
    assert rows[-1] == (100_002, ["Zoë", "Köln"])


def test_a_comma_inside_a_semicolon_file_stays_in_its_cell(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, "Name;Note\nZoë;late, again\nAna;ok\n"))
    assert source.format.delimiter == ";"
    assert cells(source) == [(2, ["Zoë", "late, again"]), (3, ["Ana", "ok"])]


def test_ties_between_delimiters_go_to_comma(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, "a;b,c\n1;2,3\n"))
    assert source.format.delimiter == ","
    assert source.headers == ("a;b", "c")


def test_a_single_column_file_has_no_delimiter(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, 'Name\nSmith, John\n"Quoted; ""x"""\n\nZoë|Ana\n'))
    assert source.format.delimiter is None
    assert source.format.describe() == "CSV, UTF-8, one column"
    assert source.headers == ("Name",)
    rows, bad, blank = read_all(source)
    assert rows == [(2, ["Smith, John"]), (3, ['Quoted; "x"']), (5, ["Zoë|Ana"])]
    assert (bad, blank) == ([], 1)


# --------------------------------------------------------------------------------------------
# Parsing and row numbers


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_quoted_newlines_are_one_row_and_later_rows_keep_their_numbers(
    tmp_path: Path, engine: str, newline: str
) -> None:
    text = newline.join(
        [
            "Name,Note,Phone",
            'Zoë,"first line\nsecond line",555 0101',
            'Ana,"a ""quoted"" word, and a comma",555 0102',
            f'Li,"three{newline}lines{newline}here",555 0103',
            "Olu,plain,555 0104",
            "",
        ]
    )
    with ENGINES[engine]():
        rows = cells(open_file(write(tmp_path, text)))
    assert rows == [
        (2, ["Zoë", "first line\nsecond line", "555 0101"]),
        (3, ["Ana", 'a "quoted" word, and a comma', "555 0102"]),
        (4, ["Li", f"three{newline}lines{newline}here", "555 0103"]),
        (5, ["Olu", "plain", "555 0104"]),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_ragged_rows_are_reported_never_padded_or_cut(tmp_path: Path, engine: str) -> None:
    text = (
        "Name,Email,Phone\n"
        "Zoë,zoe@example.edu,555 0101\n"
        "Ana,ana@example.edu\n"  # row 3: one cell short
        'Li,"li@example.edu\nstill li",555 0103,extra\n'  # row 4: spans two lines, one too many
        "Olu,olu@example.edu,555 0105\n"  # row 5
    )
    with ENGINES[engine]():
        rows, bad, blank = read_all(open_file(write(tmp_path, text)))
    assert rows == [
        (2, ["Zoë", "zoe@example.edu", "555 0101"]),
        (5, ["Olu", "olu@example.edu", "555 0105"]),
    ]
    assert [b.row for b in bad] == [3, 4]
    assert bad[0].reason == "this row has 2 cells; the header has 3"
    assert bad[1].reason.startswith("this row has 4 cells; the header has 3")
    assert blank == 0
    for b in bad:  # reasons never quote the row's contents
        assert "example" not in b.reason
        assert "Ana" not in b.reason


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_rows_are_counted_and_keep_their_numbers(tmp_path: Path, engine: str) -> None:
    text = 'Name,Phone\n\nZoë,555\n,\n  ,\t\n"","  "\n\nAna, \n   \n,,,\n\n'
    with ENGINES[engine]():
        rows, bad, blank = read_all(open_file(write(tmp_path, text)))
    # rows: 2 blank, 3 Zoë, 4 ",", 5 "  ,\t", 6 quoted blanks, 7 blank, 8 Ana, 9 spaces,
    # 10 ",,," (four empty cells: blank, not bad), 11 blank
    assert rows == [(3, ["Zoë", "555"]), (8, ["Ana", None])]
    assert bad == []
    assert blank == 8


def test_empty_and_white_space_cells_are_null_other_cells_are_trimmed(tmp_path: Path) -> None:
    """Trimmed of exactly the white space cleaning takes off (``fields.WHITESPACE``): a no-break
    space and a byte-order mark go, a next-line character (U+0085) stays, as ``clean_cell``
    would leave it."""
    source = open_file(write(tmp_path, 'a,b,c,d\n"",  , x ,"\t"\n\u00a0y\ufeff,\u0085z,,\n'))
    assert cells(source) == [(2, [None, None, "x", None]), (3, ["y", "\u0085z", None, None])]
    batch = next(iter(source.batches()))
    assert batch.trimmed


def test_headers_are_trimmed_and_empty_ones_named(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, " First  Name ,,Phone,\n1,2,3,4\n"))
    assert source.headers == ("First  Name", "(column 2)", "Phone", "(column 4)")


@pytest.mark.parametrize("text", ["Name,Phone\n", "Name,Phone", "Name,Phone\r\n"])
def test_a_header_only_file_has_no_rows(tmp_path: Path, text: str) -> None:
    source = open_file(write(tmp_path, text))
    assert source.headers == ("Name", "Phone")
    assert list(source.batches()) == []
    assert source.sample() == []


def test_a_header_with_a_newline_in_quotes(tmp_path: Path) -> None:
    source = open_file(write(tmp_path, '"Student\nID",Name\n1,Zoë\n2\n3,Ana\n'))
    assert source.headers == ("Student\nID", "Name")
    rows, bad, _ = read_all(source)
    assert rows == [(2, ["1", "Zoë"]), (4, ["3", "Ana"])]
    assert [b.row for b in bad] == [3]


def test_sample_gives_the_first_data_rows(tmp_path: Path) -> None:
    text = "Name\n" + "".join(f"person {i}\n" if i % 3 else "\n" for i in range(100))
    source = open_file(write(tmp_path, text))
    assert source.sample(3) == [(3, ["person 1"]), (4, ["person 2"]), (6, ["person 4"])]
    assert len(source.sample()) == 20


def test_batches_cover_consecutive_rows_and_report_each_bad_row_once(tmp_path: Path) -> None:
    lines = ["ID,Name,Phone"]
    blank_lines = 0
    for n in range(2, 2_002):  # row numbers
        if n % 97 == 0:
            lines.append(f"{n},too,many,cells")
        elif n % 89 == 0:
            lines.append("")
            blank_lines += 1
        elif n % 83 == 0:
            lines.append(f'{n},"two\nlines",555')
        else:
            lines.append(f"{n},person,555")
    path = write(tmp_path, "\n".join(lines) + "\n")
    source = open_file(path)
    whole = read_all(source)
    with block_size(1024):  # many pyarrow blocks too
        batches = list(source.batches(batch_rows=150))
    assert len(batches) == 14  # 2,000 rows, 150 a batch
    covered = 2
    for batch in batches:
        last = min(covered + 149, 2001)
        numbers = batch.rows.to_list() + [b.row for b in batch.bad_rows]
        assert all(covered <= n <= last for n in numbers)
        assert len(numbers) + batch.blank_rows == last - covered + 1
        covered = last + 1
    assert [b.row for batch in batches for b in batch.bad_rows] == [n * 97 for n in range(1, 21)]
    assert sum(b.blank_rows for b in batches) == blank_lines
    assert read_all(source, batch_rows=150) == whole  # and again: batches() can be re-run
    rows, _, _ = whole
    assert all(cells_[0] == str(n) for n, cells_ in rows)


def test_pyarrow_numbering_across_small_blocks(tmp_path: Path) -> None:
    text = "a,b\n" + "".join(
        ['1,"x\ny"\n', "\n", "2,3,4\n", '"long ' + "z" * 40 + '",5\n', "6\n", "7,8\n"] * 50
    )
    path = write(tmp_path, text)
    with csv_module_only():
        expected = read_all(open_file(path))
    for size in (64, 100, 333, 4096):
        with block_size(size):
            assert read_all(open_file(path), batch_rows=7) == expected


def test_pyarrow_behaviour_the_reader_relies_on() -> None:
    """pyarrow's streaming reader on one thread: invalid records come with their record number
    (header = 1, a quoted newline does not start a record, blank lines count), and a blank line
    is not an invalid record but a row of nulls. If an upgrade changes this, numbering breaks."""
    data = b'a,b\n1,"x\ny"\n\n2,3,4\n5\n6,7\n'
    invalid: list[tuple[int, int]] = []

    def handler(row: pa_csv.InvalidRow) -> str:
        invalid.append((row.number, row.actual_columns))
        return "skip"

    reader = pa_csv.open_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(use_threads=False, block_size=16),
        parse_options=pa_csv.ParseOptions(
            newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=handler
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={"a": pa.string(), "b": pa.string()},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    assert reader.read_all().to_pylist() == [
        {"a": "1", "b": "x\ny"},  # row 2
        {"a": None, "b": None},  # row 3, the blank line
        {"a": "6", "b": "7"},  # row 6
    ]
    assert invalid == [(4, 3), (5, 1)]


# --------------------------------------------------------------------------------------------
# Refusals


def test_duplicate_headers_are_refused(tmp_path: Path) -> None:
    error = refused(
        write(tmp_path, "Name,Email,Phone, e-MAIL , email\n"),
        r"'Email'",
        r"column 2 and column 5",
    )
    assert error.details["columns"] == [2, 5]
    refused(write(tmp_path, "First  Name,first name\n"), "column 1 and column 2")


def test_a_header_with_a_control_character_is_refused(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "Phone,First\x00Name\n2025550123,Ann\n"), "column 2", "NUL")
    assert error.details["columns"] == [2]


@pytest.mark.parametrize(
    "data", [b"", codecs.BOM_UTF8, b"\n\n", "  \r\n".encode("utf-16")], ids=repr
)
def test_an_empty_file_is_refused(tmp_path: Path, data: bytes) -> None:
    refused(write(tmp_path, data), "The file is empty")


def test_a_first_row_without_names_is_refused(tmp_path: Path) -> None:
    refused(write(tmp_path, "\nName,Phone\n"), "first row is empty")
    refused(write(tmp_path, " , ,\n1,2,3\n"), "first row is empty")


def test_bytes_that_are_neither_utf8_nor_cp1252_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"Name,Phone\r\nZo\xeb,555\r\nAna,5\x81\r\n")
    error = refused(path, "neither UTF-8 nor Windows-1252", r"0x81", r"line 3")
    assert error.details == {"byte": 26, "line": 3}


def test_invalid_utf8_after_a_bom_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + b"Name\nZo\xeb\n")
    refused(path, "UTF-8", r"0xEB", r"line 2")


def test_invalid_utf16_is_refused(tmp_path: Path) -> None:
    data = "Name\nZoë\n".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")
    refused(write(tmp_path, codecs.BOM_UTF16_LE + data), "UTF-16", r"0x00", r"line 3")


def test_the_delimiter_is_detected_on_the_same_sample_whatever_the_block_size(
    tmp_path: Path,
) -> None:
    """Ragged rows crowding the first kilobyte do not hide the delimiter when rows are read
    in small blocks: the detection sample does not shrink with the blocks."""
    ragged = "".join(f"only{i}\n" for i in range(150))
    rows = "".join(f"S{i},Ann,Lee\n" for i in range(400))
    path = write(tmp_path, ("Student ID,First,Last\n" + ragged + rows).encode())
    with block_size(1024):
        source = open_file(path)
    assert source.headers == ("Student ID", "First", "Last")
    assert source.format.delimiter == ","


def test_a_record_longer_than_a_block_is_refused_with_its_row(tmp_path: Path) -> None:
    # An unclosed quote: the rest of the file would be one cell.
    text = 'Name,Note\nZoë,fine\n"never closed,Ana\n' + "Li,fine\n" * 300
    source = open_file(write(tmp_path, text))
    with block_size(512), pytest.raises(FileRefused, match="Row 3 is longer"):
        read_all(source)
    # At the end of a file the same mistake is one bad row.
    rows, bad, _ = read_all(source)
    assert rows == [(2, ["Zoë", "fine"])]
    assert [b.row for b in bad] == [3]
    assert "quotation mark" in bad[0].reason


def test_limits(tmp_path: Path) -> None:
    path = write(tmp_path, "A,B,C\n" + "1,2,3\n" * 10)
    refused(path, "too large", limits=ReadLimits(max_bytes=20))
    refused(path, "3 columns; at most 2", limits=ReadLimits(max_columns=2))
    assert len(cells(open_file(path, limits=ReadLimits(max_rows=10)))) == 10
    source = open_file(path, limits=ReadLimits(max_rows=9))
    with pytest.raises(FileRefused, match="more than 9 rows"):
        read_all(source)


def test_an_old_excel_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.xls")
    refused(path, r"\.xls")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    refused(tmp_path / "nope.csv", "no file")


# --------------------------------------------------------------------------------------------
# Workbooks


def workbook(tmp_path: Path, name: str = "students.xlsx") -> tuple[openpyxl.Workbook, Path]:
    return openpyxl.Workbook(), tmp_path / name


def test_xlsx_values_become_text(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    sheet = book.active
    sheet.title = "Students"
    sheet.append(["Name", "Phone", "Born", "Seen", "Active", "Score", "Paid", "Count"])
    seen = dt.datetime(2024, 5, 6, 13, 5, 9)
    sheet.append(["Zoë", 5551234567, dt.date(2004, 3, 1), seen, True, 0.1, 12.5, 3])
    midnight = dt.datetime(2024, 5, 6)
    sheet.append(["Ana", 5551234567.0, dt.datetime(2004, 3, 1), midnight, False, 1e20, -2.25])
    sheet.append(["  ", None, None, None, None, None, None, None])  # blank
    book.save(path)
    source = open_file(path)
    assert source.format == FileFormat("xlsx", None, None, "Students")
    assert source.format.describe() == "Excel workbook, sheet 'Students'"
    rows, bad, blank = read_all(source)
    assert rows == [
        (2, ["Zoë", "5551234567", "2004-03-01", "2024-05-06T13:05:09", "true", "0.1", "12.5", "3"]),
        (
            3,
            [
                "Ana",
                "5551234567",
                "2004-03-01",
                "2024-05-06",
                "false",
                "1" + "0" * 20,
                "-2.25",
                None,
            ],
        ),
    ]
    assert (bad, blank) == ([], 1)


def test_xlsx_formulas_give_their_cached_value_never_the_formula(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    sheet = book.active
    sheet.append(["Name", "Total", "Uncached"])
    sheet.append(["Zoë", "=1+2", "=2+2"])
    book.save(path)
    # openpyxl writes formulas without a cached value; give the first one the value Excel would
    # have saved with it, as a workbook saved by Excel has.
    patched = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>1+2</f><v />" in data
                data = data.replace(b"<f>1+2</f><v />", b"<f>1+2</f><v>3</v>")
            dst.writestr(item, data)
    # A formula without a cached value is empty: rollbook never evaluates formulas.
    assert cells(open_file(patched)) == [(2, ["Zoë", "3", None])]
    assert cells(open_file(path)) == [(2, ["Zoë", None, None])]


def test_xlsx_row_numbers_are_the_sheets(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    sheet = book.active
    sheet["C3"], sheet["D3"], sheet["E3"] = "Name", "Phone", None  # the table starts at C3
    sheet["C4"], sheet["D4"] = "Zoë", 5550101
    sheet["C6"], sheet["D6"] = "Ana", 5550102  # row 5 is blank
    sheet["C7"], sheet["F7"] = "Li", "stray"  # a value right of the table
    sheet["D8"] = 5550104
    book.save(path)
    source = open_file(path)
    assert source.headers == ("Name", "Phone")
    rows, bad, blank = read_all(source, batch_rows=2)
    assert rows == [(4, ["Zoë", "5550101"]), (6, ["Ana", "5550102"]), (8, [None, "5550104"])]
    assert bad == [
        BadRow(7, "this row has a value in column F, right of the last column with a name (D)")
    ]
    assert blank == 1


def test_xlsx_sheet_is_loaded_once_and_read_again_the_same(tmp_path: Path) -> None:
    """calamine loads a sheet whole, which takes about as long as the rest of its import: the
    sheet ``open_file`` loaded is read once, and later readings (an import reads a file twice,
    and looks at its first rows before that) get what that one found."""
    book, path = workbook(tmp_path)
    sheet = book.active
    sheet["C3"], sheet["D3"], sheet["E3"] = "Name", "Phone", "Notes"
    sheet["C4"], sheet["D4"] = "Zoë", 5550101
    sheet["E5"] = "call back"  # only in the column not kept below
    sheet["C6"], sheet["D6"] = "Ana", 5550102  # row 7 is blank
    sheet["C8"], sheet["F8"] = "Li", "stray"  # bad: a value right of the table
    sheet["D9"] = 5550104
    book.save(path)
    loads = mock.Mock(wraps=python_calamine.CalamineWorkbook.from_path)
    with mock.patch.object(python_calamine.CalamineWorkbook, "from_path", loads):
        source = open_file(path)
        assert source.sample(1) == [(4, ["Zoë", "5550101", None])]
        whole = read_all(source, batch_rows=2)
        assert source._sheet is None  # calamine's cells let go of, once read through
        again = read_all(source, batch_rows=3)
        kept = read_all(source, batch_rows=2, kept=[0, 1])
        assert loads.call_count == 1
        # The last reading lets go of what was found; a reading after it loads the sheet again.
        last = list(source.batches(2, last=True))
        assert source._sheet_read is None
        after = read_all(source, batch_rows=2)
        assert loads.call_count == 2
    assert [(b.rows.to_list(), b.cells.rows()) for b in last] == [
        (b.rows.to_list(), b.cells.rows()) for b in open_file(path).batches(2)
    ]
    rows = [
        (4, ["Zoë", "5550101", None]),
        (5, [None, None, "call back"]),
        (6, ["Ana", "5550102", None]),
        (9, [None, "5550104", None]),
    ]
    bad = [BadRow(8, "this row has a value in column F, right of the last column with a name (E)")]
    assert whole == again == after == (rows, bad, 1)
    assert kept == ([(n, c[:2]) for n, c in rows], bad, 1)


def test_xlsx_a_reading_stopped_part_way_keeps_nothing_of_it(tmp_path: Path) -> None:
    """``sample`` reads a sheet's first rows only: what it found is not kept as the sheet's,
    or every later reading would get those rows alone."""
    book, path = workbook(tmp_path)
    book.active.append(["Name", "Phone"])
    for i in range(1_500):
        book.active.append([f"Student {i}", 5550000 + i])
    book.save(path)
    with mock.patch.object(read, "_ROWS_PER_BLOCK", 100):
        source = open_file(path)
        assert source.sample(2) == [(2, ["Student 0", "5550000"]), (3, ["Student 1", "5550001"])]
        assert source._sheet_read is None and source._sheet is not None
        rows, bad, blank = read_all(source, batch_rows=400)
        assert (rows, bad, blank) == read_all(open_file(path), batch_rows=400)
    assert len(rows) == 1_500


def test_xlsx_sheet_choice(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    book.active.title = "Cover"
    book.active.append(["About this file"])
    book.create_sheet("Students").append(["Name"])
    book["Students"].append(["Zoë"])
    book.save(path)
    assert open_file(path).headers == ("About this file",)
    source = open_file(path, sheet="Students")
    assert source.format.sheet == "Students"
    assert cells(source) == [(2, ["Zoë"])]
    error = refused(path, "no sheet called 'Pupils'", "'Cover', 'Students'", sheet="Pupils")
    assert error.details["sheets"] == ["Cover", "Students"]


def test_xlsx_duplicate_headers_name_the_sheet_columns(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    book.active["B1"], book.active["C1"], book.active["D1"] = "Email", "Name", "EMAIL"
    book.save(path)
    refused(path, "'Email' and 'EMAIL'", "column B and column D")


def test_xlsx_refusals(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    book.save(path)
    refused(path, "sheet 'Sheet' is empty")
    refused(path, "too large once unpacked", limits=ReadLimits(max_xlsx_uncompressed=1000))
    not_a_book = tmp_path / "photos.zip"
    with zipfile.ZipFile(not_a_book, "w") as archive:
        archive.writestr("photo.txt", "not a workbook")
    refused(not_a_book, "zip archive, not an Excel workbook")
    refused(write(tmp_path, b"PK\x03\x04 broken", "broken.xlsx"), "damaged")
    refused(write(tmp_path, "Name\n"), "CSV file", sheet="Students")


def test_xlsx_row_limit(tmp_path: Path) -> None:
    book, path = workbook(tmp_path)
    for i in range(6):
        book.active.append([f"row {i}"])
    book.save(path)
    assert len(cells(open_file(path, limits=ReadLimits(max_rows=5)))) == 5
    refused(path, "at most 4", limits=ReadLimits(max_rows=4))


# --------------------------------------------------------------------------------------------
# Any table Python's csv module writes reads back exactly

CP1252_SAFE = "éßÜñ"  # never valid UTF-8 in Windows-1252, so detection is certain
UNICODE = "éßÜñ€中😀Ω"
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "cp1252"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, str, str, list[tuple[str, list[str]]]]:
    """A CSV file and what it holds: ("data" | "blank line" | "ragged", cells) per row."""
    encoding = draw(st.sampled_from(ENCODINGS))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    extra = CP1252_SAFE if encoding == "cp1252" else UNICODE
    text = st.text(alphabet=st.sampled_from(list('ab ,;|\t"\n\rxyz') + list(extra)), max_size=8)
    width = draw(st.integers(1, 5))
    rows: list[tuple[str, list[str]]] = [
        ("data", draw(st.lists(text, min_size=width, max_size=width)))
        for _ in range(draw(st.integers(0, 25)))
    ]
    for _ in range(draw(st.integers(0, 4))):
        rows.insert(draw(st.integers(0, len(rows))), ("blank line", []))
    if width > 1:  # ragged rows, fewer than the rows that fit so the delimiter is still clear
        data_rows = sum(kind == "data" for kind, _ in rows)
        for _ in range(draw(st.integers(0, data_rows // 2))):
            other = draw(st.integers(1, 7).filter(lambda n: n != width))
            ragged = draw(st.lists(text, min_size=other, max_size=other))
            rows.insert(draw(st.integers(0, len(rows))), ("ragged", ragged))
    header = [f"Näme {i}" for i in range(width)]
    records = [header] + [row for _, row in rows]
    lines = []
    for record in records:
        out = io.StringIO()
        # "\r\n" as the writer's terminator so that it quotes cells holding either character.
        csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(record)
        lines.append(out.getvalue().removesuffix("\r\n") if record else "")
    content = newline.join(lines) + newline
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + content.encode("utf-16-be")
    else:
        data = content.encode(encoding)
    return data, encoding, delimiter, rows


@given(table=tables(), engine=st.sampled_from(["pyarrow", "pyarrow, small blocks", "csv module"]))
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_written_table_reads_back_exactly(
    tmp_path: Path, table: tuple[bytes, str, str, list[tuple[str, list[str]]]], engine: str
) -> None:
    data, encoding, delimiter, rows = table
    path = write(tmp_path, data)
    expected_rows: list[Row] = []
    expected_bad: list[int] = []
    expected_blank = 0
    for number, (kind, row) in enumerate(rows, start=2):
        if all(not cell.strip() for cell in row):
            expected_blank += 1
        elif kind == "ragged":
            expected_bad.append(number)
        else:
            expected_rows.append((number, [cell.strip(WHITESPACE) or None for cell in row]))
    with (
        csv_module_only() if engine == "csv module" else ENGINES["pyarrow"](),
        block_size(1024 if engine.endswith("small blocks") else read._BLOCK_BYTES),
    ):
        source = open_file(path)
        got_rows, got_bad, got_blank = read_all(source, batch_rows=7)
    width = len(source.headers)
    assert source.headers == tuple(f"Näme {i}" for i in range(width))
    assert source.format.delimiter == (delimiter if width > 1 else None)
    ascii_only = data.isascii() and encoding == "cp1252"
    expected_encoding = {"utf-16-be": "utf-16"}.get(encoding, encoding)
    assert source.format.encoding == ("utf-8" if ascii_only else expected_encoding)
    assert got_rows == expected_rows
    assert [b.row for b in got_bad] == expected_bad
    assert got_blank == expected_blank


@given(
    table=tables(),
    engine=st.sampled_from(["pyarrow", "pyarrow, small blocks", "csv module"]),
    chosen=st.lists(st.integers(0, 4), min_size=1, unique=True),
)
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_kept_columns_read_as_the_whole_rows_do(
    tmp_path: Path,
    table: tuple[bytes, str, str, list[tuple[str, list[str]]]],
    engine: str,
    chosen: list[int],
) -> None:
    """The import reads only its mapped columns' cells (``blank_by_all_cells``): the same rows,
    bad rows and blank rows as the whole file, each row's kept cells as they were. A row whose
    kept cells are empty is blank only if its other cells are too."""
    path = write(tmp_path, table[0])
    with (
        csv_module_only() if engine == "csv module" else ENGINES["pyarrow"](),
        block_size(1024 if engine.endswith("small blocks") else read._BLOCK_BYTES),
    ):
        source = open_file(path)
        kept = sorted({c % len(source.headers) for c in chosen})
        rows, bad, blank = read_all(source, batch_rows=7)
        got = read_all(source, batch_rows=7, kept=kept)
    assert got == ([(n, [c[i] for i in kept]) for n, c in rows], bad, blank)


@pytest.mark.parametrize("engine", [*ENGINES, "xlsx"])
def test_a_row_with_cells_only_outside_the_kept_columns_is_not_blank(
    tmp_path: Path, engine: str
) -> None:
    table = [
        ["Name", "Notes", "Phone", "Advisor"],
        ["Zoë", "", "555", ""],
        ["", "call back", "", ""],  # only a column not kept: a row, its kept cells empty
        ["", "  ", "", "\t"],  # only white space: blank
        ["", "", "", ""],  # blank
        ["", "", "", "Dr. Nick"],
        ["Ana", "x", "", "y"],
    ]
    if engine == "xlsx":
        book = openpyxl.Workbook()
        for record in table:
            book.active.append([cell or None for cell in record])
        path = tmp_path / "students.xlsx"
        book.save(path)
    else:
        path = write(tmp_path, "".join(",".join(record) + "\n" for record in table))
    with nullcontext() if engine == "xlsx" else ENGINES[engine]():
        got = read_all(open_file(path), batch_rows=3, kept=[0, 2])
    assert got == (
        [(2, ["Zoë", "555"]), (3, [None, None]), (6, [None, None]), (7, ["Ana", None])],
        [],
        2,
    )


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        ([], "columns must name at least one column"),
        ([3], "column 3 is not one of the file's columns 0 to 2"),
        ([-1], "column -1 is not one of the file's columns 0 to 2"),
        ([1, 0, 1], "columns name 1 more than once"),
    ],
)
@pytest.mark.parametrize("blank_by_all_cells", [False, True])
def test_columns_that_are_not_the_files_are_refused(
    tmp_path: Path, columns: list[int], error: str, blank_by_all_cells: bool
) -> None:
    """A reading of some columns names each once, within the file; else it says which is wrong
    before reading anything (an empty list failed deep inside the reader, a repeated column
    failed in Polars, and -1 was read as the last column but named "-1")."""
    source = open_file(write(tmp_path, "a,b,c\n1,2,3\n"))
    with pytest.raises(ValueError, match=f"^{re.escape(error)}"):
        source.batches(10, columns, blank_by_all_cells=blank_by_all_cells)
    with pytest.raises(ValueError, match=r"^batch_rows must be at least 1$"):
        source.batches(0)
    assert [b.cells.rows() for b in source.batches(10, [2, 0])] == [[("3", "1")]]


# --------------------------------------------------------------------------------------------
# Throughput


@pytest.mark.slow
def test_throughput_a_million_rows(tmp_path: Path) -> None:
    """1,000,000 rows × 12 columns (~125 MB of UTF-8) through open_file() and batches()."""
    n = 1_000_000
    i = pl.int_range(0, n, eager=True)

    def pick(*values: str) -> pl.Series:
        return pl.Series(values).sample(n, with_replacement=True, seed=len(values))

    frame = pl.DataFrame(
        {
            "Student ID": "S" + i.cast(pl.String).str.zfill(8),
            "First Name": pick("Zoë", "Ana", "Mohammed", "Siobhán"),
            "Last Name": pick("Müller", "O'Brien", "García", "Nguyen", "Okafor"),
            "Email": "student" + i.cast(pl.String) + "@example.edu",
            "Mobile": "+1555" + i.cast(pl.String).str.zfill(7),
            "Birth Date": "2004-03-1" + (i % 10).cast(pl.String),
            "Grade": (9 + i % 4).cast(pl.String),
            "Program": pick("Nursing", "Engineering, Civil", "Arts"),
            "City": pick("Springfield", "Shelbyville"),
            "Opt In": pick("yes", "no", "", "unknown", "y", "n"),
            "Advisor": pick("Dr. Hibbert", "Ms. Krabappel", "Mr. Largo", "Dr. Nick", "Mr. Burns"),
            "Notes": pick("", "prefers text", 'has "nickname"', "line1\nline2", "x", "y", "z"),
        }
    )
    path = tmp_path / "big.csv"
    frame.write_csv(path)
    start, cpu = time.perf_counter(), time.process_time()
    source = open_file(path)
    rows = sum(batch.rows.len() for batch in source.batches())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    megabytes = path.stat().st_size / 1e6
    print(f"\n{rows:,} rows, {megabytes:.0f} MB: {seconds:.2f} s ({cpu:.2f} s of CPU)")
    assert rows == n
    assert seconds < 10  # ~1 s on the development machine; generous for slow CI runners
