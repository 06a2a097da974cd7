"""Catalogue batches (`jobs/<name>.csv` or `jobs/<name>.jsonl`): one look per row, as
spreadsheets and catalogue exports write them.

A CSV file has a header row naming its columns (COLUMNS, and `attr.<name>` for an
attribute), in any order and case; UTF-8 with or without a BOM; comma or semicolon
between cells; quoted cells as spreadsheets write them (a quote doubled inside, a
line break allowed). A JSON Lines file has one look object per line, with the
fields of a manifest v1 look (`attributes` an object). An empty cell, or a field
left out, is not given.

Each row is checked by the manifest's own rules (tryon.manifest): a row that fails
fails its look alone, with an error naming the row and the column. A file-level
fault (an unknown column, no `person` column, more rows than the stack takes, not
UTF-8) refuses the whole file before anything is paid."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from tryon.jobs import Look
from tryon.manifest import ManifestError, manifest_of

COLUMNS = ("id", "person", "top", "bottom", "dress", "keep", "model", "resolution",
           "restore_face", "priority", "instruction")
ATTRIBUTE_PREFIX = "attr."
ERROR_COLUMN = "error"  # the canonical CSV's only: a row's read-time fault (JSON)
KINDS = {".csv": "csv", ".jsonl": "jsonl"}  # the file's suffix -> how it is read
MAX_BATCH_LOOKS = 10_000  # the stack's default (parameter MaxBatchLooks)
MAX_BATCH_BYTES = 32 * 1024 * 1024  # 10,000 rows of long keys fit in a few MB
MAX_CELL_CHARS = 2048  # a key is at most 1024; an instruction a few hundred
_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n"}


class BatchFileError(ValueError):
    """The whole file is refused (nothing is made of it): `code` and what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RowError(ValueError):
    """One row refused: its look fails alone."""

    row: int  # as a spreadsheet numbers it (the header is row 1) or the JSON line's number
    column: str | None  # None: the row as a whole
    message: str
    code: str = "InvalidRow"

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Row:
    number: int
    cells: dict[str, str]  # column -> its text, empty cells left out
    error: RowError | None = None  # met while reading it: its look fails with this

    @property
    def look_id(self) -> str:
        """The look's id: its `id`, else `row-<n>` (what its job and result are named)."""
        return self.cells.get("id") or f"row-{self.number}"


def kind_of(key: str) -> str | None:
    """"csv" or "jsonl" for a catalogue batch's key under jobs/, None for any other."""
    return next((kind for suffix, kind in KINDS.items() if key.lower().endswith(suffix)), None)


def read_rows(stream: IO[bytes], kind: str, max_looks: int = MAX_BATCH_LOOKS) -> Iterator[Row]:
    """The file's rows, read as they come (a 10,000-row file is never held whole).
    Raises BatchFileError for a fault of the file, at the point it is met."""
    rows = _csv_rows(stream) if kind == "csv" else _jsonl_rows(stream)
    for count, row in enumerate(rows, start=1):
        if count > max_looks:
            raise BatchFileError("BatchTooLarge", f"more than {max_looks} looks (rows): split "
                                 f"the file into files of at most {max_looks} rows")
        yield row


def look_of(row: Row, default_model: str) -> Look:
    """The row's look, checked as a manifest's look is; RowError names what to fix."""
    if row.error:
        raise row.error
    entry: dict[str, Any] = {"id": row.look_id}
    attributes: dict[str, str] = {}
    for column, text in row.cells.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            attributes[column.removeprefix(ATTRIBUTE_PREFIX)] = text
        elif column != "id":
            entry[column] = _typed(row.number, column, text)
    if attributes:
        entry["attributes"] = attributes
    try:
        [look] = manifest_of({"version": 1, "looks": [entry]}, default_model).looks
    except ManifestError as exc:
        raise RowError(row.number, _column_of(exc.pointer), str(exc).rsplit(" (at ", 1)[0]
                       ) from None
    return look


def canonical_csv(rows: Iterable[Row], attribute_columns: Iterable[str]) -> bytes:
    """The rows as one plain CSV (UTF-8, comma, a `row` column first): the form the
    batch's expansion reads (Step Functions' CSV reader takes no other), whatever
    dialect or format the retailer's file was in. A row's read-time fault (a RowError
    met reading it, or found by the first pass, such as a repeated id) travels in
    its `error` column, so that the expansion fails that row's look alone."""
    columns = ["row", *COLUMNS, *sorted(attribute_columns), ERROR_COLUMN]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"row": row.number, **row.cells,
                         **({ERROR_COLUMN: _error_cell(row.error)} if row.error else {})})
    return out.getvalue().encode()


def row_of_item(item: dict[str, str]) -> Row:
    """A row of the canonical CSV, as the expansion hands it on (every cell a string)."""
    cells = {column: text for column, text in item.items()
             if column not in ("row", ERROR_COLUMN) and text}
    number = int(item["row"])
    error = item.get(ERROR_COLUMN)
    return Row(number, cells, _error_of(number, error) if error else None)


def _error_cell(error: RowError) -> str:
    return json.dumps({"column": error.column, "message": error.message, "code": error.code},
                      separators=(",", ":"))


def _error_of(number: int, cell: str) -> RowError:
    fault = json.loads(cell)
    return RowError(number, fault.get("column"), fault["message"],
                    fault.get("code") or "InvalidRow")


# --- reading -----------------------------------------------------------------------------

def _text(stream: IO[bytes]) -> IO[str]:
    # utf-8-sig: a BOM (as Excel writes) is dropped; strict: a file in another encoding
    # is refused, not read into wrong keys.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")


def _guarded(items: Iterable[Any]) -> Iterator[Any]:
    """`items` (lines, or CSV records), a file that cannot be read as text refused."""
    try:
        yield from items
    except UnicodeDecodeError as exc:
        raise BatchFileError("InvalidBatchFile", f"not UTF-8 (byte {exc.start} of a line): "
                             "save the file as UTF-8 (CSV UTF-8 in a spreadsheet)") from None
    except csv.Error as exc:
        raise BatchFileError("InvalidBatchFile", f"not a CSV file the rows can be read "
                             f"from ({exc}): save it again as CSV") from None


def _csv_rows(stream: IO[bytes]) -> Iterator[Row]:
    lines = _guarded(_text(stream))
    header_line = next(lines, "")
    if not header_line.strip():
        raise BatchFileError("InvalidBatchFile", "the file is empty: its first row names "
                             f"the columns ({', '.join(COLUMNS)}, attr.<name>)")
    # A spreadsheet set to a comma-decimal locale writes semicolons.
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    records = _guarded(csv.reader(_chain(header_line, lines), delimiter=delimiter))
    header = _columns([cell.strip() for cell in next(records)])
    for number, cells in enumerate(records, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a row of empty cells
        if len(cells) > len(header):
            raise BatchFileError("InvalidBatchFile", f"row {number} has {len(cells)} cells, "
                                 f"more than the {len(header)} columns the header names: "
                                 "quote a cell that holds the separator")
        yield _row(number, partial(dict, zip(header, cells, strict=False)))


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _columns(names: list[str]) -> list[str]:
    """The header's columns, each known (in any case) or an attribute."""
    columns = []
    for place, name in enumerate(names, start=1):
        column = name.lower() if name.lower() in COLUMNS else name
        if column.lower().startswith(ATTRIBUTE_PREFIX):
            column = ATTRIBUTE_PREFIX + column[len(ATTRIBUTE_PREFIX):]
        elif column not in COLUMNS:
            raise BatchFileError("InvalidBatchFile", f"column {place} ({name!r}) is not one "
                                 f"this file may have: {', '.join(COLUMNS)}, or attr.<name> "
                                 "for an attribute; rename or remove it")
        if column in columns:
            raise BatchFileError("InvalidBatchFile", f"column {name!r} is named twice")
        columns.append(column)
    if "person" not in columns:
        raise BatchFileError("InvalidBatchFile", "no person column: the header row names the "
                             f"columns ({', '.join(COLUMNS)}, attr.<name>), person among them")
    return columns


def _row(number: int, cells_of: Callable[[], dict[str, str]], look_id: str = "") -> Row:
    """A row read, or the fault that fails its look alone (keeping its id if it has one)."""
    try:
        return Row(number, _cells(number, cells_of()))
    except RowError as exc:
        return Row(number, {"id": look_id} if look_id else {}, exc)


def _cells(number: int, cells: dict[str, str]) -> dict[str, str]:
    kept = {}
    for column, text in cells.items():
        text = text.strip()
        if len(text) > MAX_CELL_CHARS:
            raise RowError(number, column, f"more than {MAX_CELL_CHARS} characters")
        if text:
            kept[column] = text
    return kept


def _jsonl_rows(stream: IO[bytes]) -> Iterator[Row]:
    for number, line in enumerate(_guarded(_text(stream)), start=1):
        if not line.strip():
            continue
        try:
            look = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BatchFileError("InvalidBatchFile", f"line {number} is not a JSON object "
                                 f"({exc}): write one look object per line") from None
        if not isinstance(look, dict):
            raise BatchFileError("InvalidBatchFile", f"line {number} is not a JSON object: "
                                 "write one look object per line")
        yield _row(number, partial(_flat, number, look), str(look.get("id") or ""))


def _flat(number: int, look: dict[str, Any]) -> dict[str, str]:
    """A JSON look as the cells a CSV row would have."""
    cells = {}
    for field, value in look.items():
        if field == "attributes" and isinstance(value, dict):
            cells.update({ATTRIBUTE_PREFIX + name: _cell(number, f"attributes.{name}", text)
                          for name, text in value.items()})
        elif field in COLUMNS:
            cells[field] = _cell(number, field, value)
        else:
            raise RowError(number, field, f"unknown field {field!r}: a look has "
                           f"{', '.join(COLUMNS)} and attributes")
    return cells


def _cell(number: int, field: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise RowError(number, field, f"{field} must be a string, a number or true/false")


def _typed(number: int, column: str, text: str) -> Any:
    """A cell's text as the manifest's field takes it."""
    if column == "resolution":
        try:
            return int(text)
        except ValueError:
            raise RowError(number, column, f"{text!r} is not a number: write -1, 1024 or "
                           "1280") from None
    if column == "restore_face":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise RowError(number, column, f"{text!r} is not true or false")
    return text


def _column_of(pointer: str) -> str | None:
    """The column a manifest error's pointer (into the one-look manifest) is about."""
    parts = pointer.split("/")[3:]  # "", "looks", "0", field, ...
    if not parts:
        return None
    if parts[0] == "attributes":  # a name, or all of them (their names, their number)
        return ATTRIBUTE_PREFIX + (parts[1] if len(parts) > 1 else "*")
    return parts[0]

