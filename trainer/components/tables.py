"""Tables from CSV files: one row per sample, a target column to predict, and number or text feature columns.

Numbers are standardized and text columns one-hot encoded with what the training rows alone show, so that nothing
about the validation and test rows leaks into training; the statistics go into `DataSplits.info` (and so into
every checkpoint), to treat new rows the same way.

Files are often almost right: another separator or encoding, numbers written with symbols ('$1,234', '3,5', '12%'),
markers of missing values, labels that do not start at 0. One cell reader (`read_cell`) says what each cell is or
almost is; what admits one reading is read so and said in one line, the rest is an error naming column and lines.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.components.splits import DataSplits, check_split_classes, in_memory_splits
from trainer.components.text import encode_texts, fit_vocabulary, looks_like_free_text, words
from trainer.config import CsvData
from trainer.errors import UserError, did_you_mean, did_you_mean_path, one_of

# Markers of a missing value, compared in lower case. Spreadsheets, R, pandas and SQL exports write these for
# "no value" in any column; an Excel error (#DIV/0!) is a formula that gave no value.
MISSING = frozenset({"", "na", "n/a", "nan", "#n/a", "null", "?", "#null!", "#div/0!", "#value!", "#ref!", "#num!"})
# These mean "no value" only among numbers (ND: "no data", a dash or an em dash in printed tables): in a text column
# 'none' or '-' may well be a category of its own.
MISSING_AMONG_NUMBERS = frozenset({"-", "--", "\u2014", "\u2013", "none", "missing", ".", "n.a.", "nil", "nd", "n.d."})
MINUS_SIGNS = "\u2212\u2013\u2014\ufe63\uff0d"  # − – — and their wide forms, which word processors put for '-'
CURRENCIES = "$€£¥₹₩₽"
DIGIT = re.compile(r"\d")
# After a number these multiply it: 1.5k and 500 in one column are not in one unit (a unit such as kg may be left off).
MULTIPLIERS = {"k", "K", "M", "B", "bn", "mn", "mio", "Mio", "Mrd", "thousand", "million", "billion"}
# A number as people write it: an optional sign and currency symbol, digits with separators, a unit or symbol after.
ALMOST = re.compile(
    r"(?P<sign>[-+]?)\s*(?P<before>[" + CURRENCIES + r"])?\s*(?P<sign2>[-+]?)"
    r"(?P<digits>\d(?:[\d.,\s\u00a0\u202f\u2009'’]*\d)?)\s*(?P<after>[^\d\s.,+-][^\d]{0,7})?"
)
GROUPS = {  # separators between digits -> the reading they allow
    "thousands": re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,2}(?:,\d{2})+,\d{3}(?:\.\d+)?"),  # 1,234; 12,34,567
    "decimal": re.compile(r"\d+,\d+|\d{1,3}(?:\.\d{3})+,\d+"),  # 3,5 or 1.234,5
    "dots": re.compile(r"\d{1,3}(?:\.\d{3}){2,}"),  # 1.234.567: dots between thousands
    "spaces": re.compile(r"\d{1,3}(?:[\s\u00a0\u202f\u2009'’]\d{3})+(?:[.,]\d+)?"),  # 1 234 567,5 or 1'234.5
}
MAX_CLASSES = 20  # task auto: a target of at most this many whole numbers holds class labels, not quantities
TYPO_SHARE = 0.05  # a column of many numbers with at most this share of text cells is numbers with typos
TYPO_SHARE_FEW = 0.2  # ... and a column of a few distinct numbers, with at most this share
LINES_SHOWN = 5  # line numbers shown per problem; the rest are counted
FILE_KEYS = {"path": "data.path", "val_path": "data.val_path", "test_path": "data.test_path"}


@dataclass
class Table:
    """A CSV file as read: its column names, and each row's cells with the line of the file it came from."""

    path: Path
    key: str  # the config key that names the file, for error messages
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]
    # Columns of numbers that could be read two ways ('1,234'), and why: raised only when a config uses one.
    problems: dict[str, UserError] = field(default_factory=dict)
    # A file of plain numbers only is kept as one float64 array (rows, columns) instead of a string per cell.
    values: np.ndarray | None = None

    def cells(self, name: str) -> list[str]:
        index = self.columns.index(name)
        if self.values is not None:
            return [number_text(value) for value in self.values[:, index].tolist()]
        return [row[index] for row in self.rows]

    def numbers(self, name: str) -> np.ndarray | None:
        """The column as float64 when the whole file is plain numbers, else None (read its cells)."""
        return None if self.values is None else self.values[:, self.columns.index(name)]


class NumberRows:
    """The rows of a table of plain numbers, as strings only when one row is asked for."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> list[str]:
        return [number_text(value) for value in self.values[index].tolist()]

    def __iter__(self) -> Iterator[list[str]]:
        return (self[i] for i in range(len(self)))


def number_text(value: float) -> str:
    """A number read by the fast reader, written back as a cell: 3 for 3.0 (class labels), else its repr."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


@dataclass
class Rows:
    """Some rows of a table: one split."""

    table: Table
    index: list[int]

    def cells(self, name: str) -> list[str]:
        column = self.table.columns.index(name)
        if self.table.values is not None:
            return [number_text(value) for value in self.table.values[self.index, column].tolist()]
        return [self.table.rows[i][column] for i in self.index]


def build_table(cfg: CsvData, device: torch.device, seed: int) -> DataSplits:
    """Train / val / test loaders over a CSV file (and the optional separate val and test files)."""
    table = read_table(cfg.path, FILE_KEYS["path"])
    features = choose_features(cfg, table)
    others = {}  # the separate val and test files, when given
    for name in ("val_path", "test_path"):
        if getattr(cfg, name) is not None:
            others[name] = check_header(read_table(getattr(cfg, name), FILE_KEYS[name]), table)
    tables = [table, *others.values()]
    check_readable(tables, [cfg.target, *features])
    text = text_columns(cfg, tables, features)
    check_missing(tables, cfg.target, [name for name in features if name not in text])  # an empty text: no words
    task, class_names = choose_task(cfg, tables)
    kinds = {name: "words" if name in text else column_kind(tables, name) for name in features}
    warnings = check_categories(cfg, tables, features, kinds)

    train, val, test = split_rows(cfg, table, others, seed)
    if class_names is not None:
        warnings += check_class_rows(cfg, class_names, train, val, test)
    encoding = fit_encoding(train, features, kinds, cfg)
    info: dict[str, Any] = {"task": task, "input_shape": [len(encoding["columns"])], "target": cfg.target}
    info |= encoding
    if class_names is not None:
        info["class_names"] = class_names
    tensors = [
        (encode_inputs(rows, info), encode_targets(rows, cfg.target, class_names)) for rows in (train, val, test)
    ]
    data = in_memory_splits(cfg, tensors[0], tensors[2], device, seed, info=info, val=tensors[1])
    unknown = {name: unknown_share(val if val.index else train, name, info) for name in text}
    data.description = describe(cfg, info, kinds, [len(rows.index) for rows in (train, val, test)], unknown)
    data.warnings += warnings
    return data


def read_table(name: str, key: str) -> Table:
    """The header and rows of a CSV file, with every row checked to have one cell per column.

    What a spreadsheet program or pandas adds to a file, and nothing can mistake, is undone here and said in one
    line: another separator, UTF-16, an empty last column, pandas' row numbers, a header pasted in twice, numbers
    written with symbols or separators. Whatever could be read two ways is an error that names the cells.
    """
    path = Path(name).expanduser()
    if not path.is_file():
        what = "is a folder, not a CSV file" if path.is_dir() else "does not exist"
        near = did_you_mean_path(path) if not path.exists() else ""
        raise UserError(
            f"'{name}' {what}{near} (looked for {path.absolute()}; the current directory is {Path.cwd()})",
            fix=f"give the path of a CSV file relative to the folder you run python -m trainer in ({Path.cwd()}), "
            "or an absolute path",
            key=key,
        )
    fast = read_plain_numbers(path, key)
    if fast is not None:
        return fast
    notes: list[str] = []
    text = decode(path, key, notes)
    delimiter = choose_delimiter(path, text, key, notes)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):  # a blank line, often the last one: no sample
                continue
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    except csv.Error as err:
        raise UserError(f"{path} line {reader.line_num}: {err}", fix="correct that line of the file", key=key) from err
    if header is None or not any(cell.strip() for cell in header):
        raise UserError(
            f"{path} is empty",
            fix="a CSV file starts with a header row naming the columns, then one row per sample, e.g. "
            "'age,height,label' then '34,1.72,yes'",
            key=key,
        )
    # A second byte-order mark (a file saved twice) or a zero-width space pasted from a web page would make a name
    # that looks right and matches nothing.
    columns = [cell.strip().strip("\ufeff\u200b").strip() for cell in header]
    repeated = {i for i, row in enumerate(rows) if row == columns}
    if repeated:  # a row that is the header again is no sample: files pasted one after the other
        verb = "repeats" if len(repeated) == 1 else "repeat"
        shown = line_list([lines[i] for i in sorted(repeated)])
        notes.append(f"{shown} {verb} the header (files pasted together?): left out")
        rows = [row for i, row in enumerate(rows) if i not in repeated]
        lines = [line for i, line in enumerate(lines) if i not in repeated]
    columns, rows = drop_empty_last_column(path, columns, rows, notes)
    columns, rows = drop_row_numbers(columns, rows, notes)
    check_columns(path, columns, key)
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(columns):
            fix = (
                'give that row one cell per column; a cell that holds a comma goes in double quotes, e.g. "Smith, Jane"'
            )
            if delimiter == "," and len(row) > len(columns) and all(read_cell(cell).kind == "number" for cell in row):
                # 3,5 unquoted in a comma-separated file is two cells: the decimal comma became a separator.
                fix = (
                    "numbers written with a decimal comma (3,5) split into two cells here: save the file with ';' "
                    "between cells, or with decimal points"
                )
            raise UserError(
                f"{path} line {line}: {len(row)} cells, but the header (line 1) names {len(columns)} columns "
                f"({one_of(columns)})",
                fix=fix,
                key=key,
            )
    if not rows:
        raise UserError(f"{path} has a header but no rows", fix="add one row per sample below the header", key=key)
    check_header_is_names(path, columns, rows, key)
    table = Table(path, key, columns, rows, lines)
    read_numbers(table, semicolons=delimiter == ";", notes=notes)
    for note in notes:
        print(f"note: {path}: {note}", file=sys.stderr)
    return table


def read_plain_numbers(path: Path, key: str) -> Table | None:
    """The common file read the fast way: UTF-8, commas, a header of names, then plain finite numbers only, one row
    a line. None for anything else: read_table's careful reader then reads it, notes what it undoes and explains
    what it cannot read, cell by cell, so every message stays the same. numpy's loadtxt parses in C into one float64
    array: no Python string per cell, and no Python code per cell after it."""
    with path.open("rb") as file:
        first = file.readline()
        newlines, last = first.count(b"\n"), first[-1:]
        for chunk in iter(lambda: file.read(1 << 20), b""):
            newlines, last = newlines + chunk.count(b"\n"), chunk[-1:]
    try:
        header = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "," not in header:
        return None
    columns = [cell.strip().strip("\ufeff\u200b").strip() for cell in next(csv.reader([header]))]
    if len(set(columns)) != len(columns) or any(
        not name or re.fullmatch(r"Unnamed: \d+", name) or read_cell(name).kind in ("number", "almost")
        for name in columns
    ):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loadtxt warns about a file with no rows
            values = np.loadtxt(
                path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2, encoding="utf-8", comments=None
            )
    except (ValueError, UnicodeDecodeError):
        return None
    count = newlines + (last != b"\n") - 1  # the lines below the header; fewer rows: blank lines, read carefully
    if values.shape != (count, len(columns)) or count == 0 or not np.isfinite(values).all():
        return None
    return Table(path, key, columns, NumberRows(values), list(range(2, count + 2)), values=values)  # type: ignore[arg-type]


def decode(path: Path, key: str, notes: list[str]) -> str:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text" is UTF-16 with a byte-order mark
        notes.append("read as UTF-16 (it starts with UTF-16's byte-order mark)")
        return data.decode("utf-16")
    try:
        # utf-8-sig: spreadsheet programs start their "CSV UTF-8" files with a byte-order mark; it is no part of
        # the first column's name, and dropping it changes nothing else, so it goes without a note.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        shown = data[start : data.find(b"\n", err.start) if b"\n" in data[err.start :] else len(data)]
        raise UserError(
            f"{path} line {line} is not UTF-8 text (byte {err.start}, 0x{data[err.start]:02x}, cannot be read; as "
            f"Windows text the line reads {shown.decode('cp1252', errors='replace').strip()[:60]!r})",
            fix="save the file as 'CSV UTF-8 (comma delimited)' from your spreadsheet program",
            key=key,
        ) from err


def choose_delimiter(path: Path, text: str, key: str, notes: list[str]) -> str:
    """',' unless the header has none and every line splits on ';' or tabs into as many cells as the header."""
    first = text.split("\n", 1)[0]
    if "," in first or not any(other in first for other in ";\t"):
        return ","
    delimiter = ";" if first.count(";") >= first.count("\t") else "\t"
    words = "semicolons" if delimiter == ";" else "tabs"
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(row)]
    odd = next((i for i, row in enumerate(rows) if len(row) != len(rows[0])), None)
    if odd is not None:
        raise UserError(
            f"{path}: the header has no commas but has {words}; split on {words}, the header holds "
            f"{len(rows[0])} cells and line {odd + 1} holds {len(rows[odd])}",
            fix="save the file as 'CSV UTF-8 (comma delimited)' from your spreadsheet program",
            key=key,
        )
    # Every line splits into the same number of cells: no other reading of the file is possible.
    notes.append(f"its cells are separated by {words}, not commas: read it so")
    return delimiter


def drop_empty_last_column(
    path: Path, columns: list[str], rows: list[list[str]], notes: list[str]
) -> tuple[list[str], list[list[str]]]:
    """A comma at the end of every line (a spreadsheet's empty last column) makes an empty column: dropped."""
    if columns[-1] == "" and len(columns) > 1 and all(len(row) <= len(columns) and not row[-1] for row in rows):
        notes.append("its last column has no name and no values (each line ends with a comma): left out")
        return columns[:-1], [row[: len(columns) - 1] for row in rows]
    if rows and columns[-1] and all(len(row) == len(columns) + 1 and not row[-1] for row in rows):
        notes.append("every row but the header ends with a comma (an empty last cell): left out")
        return columns, [row[:-1] for row in rows]
    return columns, rows


def is_row_number_column(table: Table, name: str) -> bool:
    values = table.numbers(name)
    if values is None:
        return is_row_number(table.cells(name))
    return bool(values[0] in (0, 1) and np.array_equal(values, values[0] + np.arange(len(values))))


def is_row_number(cells: list[str]) -> bool:
    """0, 1, 2, ... or 1, 2, 3, ... down the file."""
    values = [number(cell) for cell in cells]
    first = values[0] if values else None
    return first in (0, 1) and values == [first + i for i in range(len(values))]


def drop_row_numbers(columns: list[str], rows: list[list[str]], notes: list[str]) -> tuple[list[str], list[list[str]]]:
    """pandas' to_csv writes the row numbers as a first column named '' (or 'Unnamed: 0' once read again):
    a row's number is not something about the sample, and a table sorted by class would give the answer away."""
    for position, name in enumerate(columns):
        if name and not re.fullmatch(r"Unnamed: \d+", name):
            continue
        cells = [row[position] if position < len(row) else "" for row in rows]
        if is_row_number(cells):
            label = f"'{name}'" if name else f"{position + 1} (no name)"
            notes.append(
                f"column {label} holds the row numbers {cells[0]}, {int(cells[0]) + 1}, ... (pandas writes them "
                "unless to_csv(index=False)): left out"
            )
            return columns[:position] + columns[position + 1 :], [row[:position] + row[position + 1 :] for row in rows]
    return columns, rows


def read_numbers(table: Table, semicolons: bool, notes: list[str]) -> None:
    """Columns of numbers written with symbols or separators float() cannot read, rewritten as plain numbers.

    Only where a column admits one reading: one unit or currency throughout, one way of writing commas. A column
    that admits two readings keeps its cells, and its problem is raised when a config uses the column.
    """
    for position, name in enumerate(table.columns):
        cells = [row[position] for row in table.rows]
        if not any(read_cell(cell).kind == "almost" for cell in cells):
            continue
        read = [read_cell(cell, among_numbers=True) for cell in cells]
        given = [cell for cell in read if cell.kind != "missing"]
        if sum(cell.kind in ("number", "almost") for cell in given) < len(given) / 2:
            continue  # mostly text: a few number-like cells are categories ('1,2' as a name), not numbers
        reading = number_reading(table, name, cells, read, semicolons)
        if isinstance(reading, UserError):
            table.problems[name] = reading
            continue
        values, changed, comma = reading
        if not changed:
            continue
        for row, value in zip(table.rows, values, strict=True):
            if value is not None:
                row[position] = value
        signs = list(dict.fromkeys(comma if sign == "a comma" else sign for i in changed for sign in read[i].signs))
        # The example shows a fraction where there is one: '4,5' as 4.5 says more than '4,0' as 4.
        shown = next((i for i in changed if "." in str(values[i])), changed[0])
        notes.append(
            f"column '{name}': {len(changed)} cells written with {' and '.join(signs)} read as numbers, e.g. "
            f"'{cells[shown]}' as {values[shown]} ({line_list([table.lines[i] for i in changed])})"
        )


def number_reading(
    table: Table, name: str, cells: list[str], read: list[Cell], semicolons: bool
) -> tuple[list[str | None], list[int], str] | UserError:
    """The column's cells as plain numbers (None: left as it is), the rows changed and how a lone comma was read;
    or why the column is ambiguous."""
    where = f"{table.path} column '{name}'"

    def at(indices: list[int]) -> str:
        return f"'{cells[indices[0]]}' ({line_list([table.lines[i] for i in indices])})"

    def rows_where(test: Callable[[Cell, str], bool]) -> list[int]:
        return [i for i, (cell, text) in enumerate(zip(read, cells, strict=True)) if test(cell, text)]

    fix_one_way = "write every number of the column the same way, as plain digits with a decimal point: 1234.5"
    units = Counter(cell.unit for cell in read if cell.kind == "almost" and cell.unit)
    numeric = rows_where(lambda cell, _: cell.kind in ("number", "almost"))
    if len(units) > 1:
        parts = [f"'{unit}' in {at(rows_where(lambda cell, _, u=unit: cell.unit == u))}" for unit in units]
        return UserError(
            f"{where} mixes units or symbols: {'; '.join(parts)}",
            fix=f"convert the column to one unit and write the numbers alone; name the unit in the header, e.g. "
            f"{name}_{units.most_common(1)[0][0].strip('%$€£') or 'unit'}",
            key=table.key,
        )
    typos: set[int] = set()
    if units:
        (unit,) = units
        marked = rows_where(lambda cell, _: cell.unit == unit)
        bare = sorted(set(numeric) - set(marked))
        if unit == "%" and bare:
            return UserError(
                f"{where} holds percentages such as {at(marked)} and numbers without '%' such as {at(bare)}: "
                "12% and 0.12 could mean the same or not",
                fix="write the whole column one way: 12 (percent) or 0.12 (a fraction), without '%'",
                key=table.key,
            )
        if unit in MULTIPLIERS and bare and len(marked) * 2 >= len(numeric):
            return UserError(
                f"{where} holds numbers with '{unit}' such as {at(marked)} and without it such as {at(bare)}: "
                f"'{unit}' multiplies (1.5{unit} is not 1.5), so the column cannot be read as one unit",
                fix=f"write every number of the column in full, e.g. {cells[marked[0]]} as plain digits",
                key=table.key,
            )
        if len(marked) * 2 < len(numeric):
            typos = set(marked)  # '12O' among plain numbers is a typo, not a unit: left for the text check to name
    thousands = rows_where(lambda cell, _: cell.comma == "thousands")
    decimal = rows_where(lambda cell, _: cell.comma == "decimal")
    either = rows_where(lambda cell, _: cell.comma == "either")
    points = rows_where(lambda cell, text: cell.kind == "number" and "." in text)
    if thousands and decimal:
        return UserError(
            f"{where} writes numbers with commas between thousands, {at(thousands)}, and with a decimal comma, "
            f"{at(decimal)}",
            fix=fix_one_way,
            key=table.key,
        )
    # A cell such as '1,234' is 1234 or 1.234: the other cells of the column, or the file's ';', say which.
    comma_is_decimal = bool(decimal) or (bool(either) and not thousands and not points and semicolons)
    if either and not (decimal or thousands or points or semicolons):
        example = read[either[0]]
        return UserError(
            f"{where} holds numbers such as {at(either)} that read as {example.value:g} with a comma between "
            f"thousands or as {example.decimal_value:g} with a decimal comma, and no cell of the column says which",
            fix=fix_one_way,
            key=table.key,
        )
    if comma_is_decimal and points:
        return UserError(
            f"{where} writes numbers with a decimal comma, {at(decimal or either)}, and with a decimal point, "
            f"{at(points)}",
            fix=fix_one_way,
            key=table.key,
        )
    values: list[str | None] = [None] * len(cells)
    changed = []
    for i, cell in enumerate(read):
        if cell.kind != "almost" or i in typos:
            continue
        value = cell.decimal_value if comma_is_decimal and cell.comma == "either" else cell.value
        assert value is not None
        values[i] = str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
        changed.append(i)
    return values, changed, "a decimal comma" if comma_is_decimal else "commas between thousands"


def check_readable(tables: list[Table], names: list[str]) -> None:
    """The columns a config uses must not be numbers that could be read two ways (see read_numbers)."""
    for table in tables:
        for name in names:
            if name in table.problems:
                raise table.problems[name]


def check_columns(path: Path, columns: list[str], key: str) -> None:
    """Column names that a config can point at: unique, and each column named."""
    for position, name in enumerate(columns):
        if not name:
            raise UserError(
                f"{path}: column {position + 1} of the header has no name",
                fix="give every column a name in the first line of the file",
                key=key,
            )
        if columns.index(name) != position:
            raise UserError(
                f"{path}: the header names the column '{name}' twice (columns {columns.index(name) + 1} and "
                f"{position + 1})",
                fix="give each column its own name in the first line of the file",
                key=key,
            )


def check_header_is_names(path: Path, columns: list[str], rows: list[list[str]], key: str) -> None:
    """A first line of numbers where the rows hold numbers, and of row values elsewhere, is a row of data."""
    numbers_in_header = 0
    for position, name in enumerate(columns):
        below = [row[position] for row in rows]
        if read_cell(name).kind in ("number", "almost"):
            if sum(read_cell(cell).kind in ("number", "almost") for cell in below) < len(below) / 2:
                return
            numbers_in_header += 1
        elif name not in below:
            return
    if numbers_in_header:
        names = ",".join(f"x{i + 1}" for i in range(len(columns) - 1)) + ",label"
        raise UserError(
            f"{path} line 1 holds data ({', '.join(columns[:6])}{', ...' if len(columns) > 6 else ''}), not the "
            "names of the columns: the file has no header",
            fix=f"add a first line that names the {len(columns)} columns, e.g. '{names}', and point data.target at "
            "the column to predict",
            key=key,
        )


def choose_features(cfg: CsvData, table: Table) -> list[str]:
    """data.features, or every column but the target; each name checked against the file's header."""
    lookup(table, cfg.target, "data.target")
    if cfg.features is None:
        features = [name for name in table.columns if name != cfg.target]
        numbered = [name for name in features if len(table.rows) >= 10 and is_row_number_column(table, name)]
        if numbered and len(numbered) < len(features):
            # A row's place in the file is nothing about the sample, and in a file sorted by class it is the answer.
            features = [name for name in features if name not in numbered]
            first = table.cells(numbered[0])[:3]
            print(
                f"note: {table.path}: column{'s' if len(numbered) > 1 else ''} {one_of(repr(n) for n in numbered)} "
                f"hold{'s' if len(numbered) == 1 else ''} the row numbers {', '.join(first)}, ...: left out of the "
                "features (list the column in data.features to use it)",
                file=sys.stderr,
            )
    else:
        features = [lookup(table, name, "data.features") for name in cfg.features]
        if cfg.target in features:
            raise UserError(
                f"data.features includes the target column '{cfg.target}': the model would be given the answer",
                fix=f"take '{cfg.target}' out of data.features",
                key="data.features",
            )
        twice = sorted({name for name in features if features.count(name) > 1})
        if twice:
            raise UserError(
                f"data.features names {', '.join(twice)} more than once",
                fix="name each column once",
                key="data.features",
            )
    if not features:
        raise UserError(
            f"{table.path} has no column besides the target '{cfg.target}' to predict it from",
            fix="add feature columns to the file, or list them in data.features",
            key="data.features" if cfg.features is not None else "data.target",
        )
    return features


def lookup(table: Table, name: str, key: str) -> str:
    if name not in table.columns:
        raise UserError(
            f"{table.path} has no column '{name}'{did_you_mean(name, table.columns)}; its columns are "
            f"{one_of(table.columns)}",
            fix="use a column name exactly as the first line of the file writes it",
            key=key,
        )
    return name


def check_header(other: Table, table: Table) -> Table:
    """A separate val or test file must have the training file's columns; their order may differ."""
    if set(other.columns) != set(table.columns):
        missing = [name for name in table.columns if name not in other.columns]
        extra = [name for name in other.columns if name not in table.columns]
        parts = [f"lacks {one_of(missing)}" if missing else "", f"adds {one_of(extra)}" if extra else ""]
        raise UserError(
            f"the header of {other.path} differs from that of {table.path}: it {' and '.join(p for p in parts if p)}",
            fix=f"give {other.path} the same columns as {table.path} ({one_of(table.columns)})",
            key=other.key,
        )
    order = [other.columns.index(name) for name in table.columns]
    if other.values is not None:
        values = other.values[:, order]
        return Table(other.path, other.key, list(table.columns), NumberRows(values), other.lines, values=values)  # type: ignore[arg-type]
    rows = [[row[i] for i in order] for row in other.rows]
    return Table(other.path, other.key, list(table.columns), rows, other.lines, other.problems)


def check_missing(tables: list[Table], target: str, features: list[str]) -> None:
    """Every missing value (empty, NA, N/A, NaN, ?, null, #N/A, ..., and '-' or 'none' among numbers) of the
    columns used, reported by column with its markers and lines.

    Nothing is filled in: a mean, a median or a 'missing' category are modelling choices with different results,
    and a model trained on invented values hides how much of the table was invented.
    """
    found = []
    for table in tables:
        for name in [target, *features] if table.values is None else []:  # plain finite numbers: none missing
            cells = table.cells(name)
            markers = MISSING | MISSING_AMONG_NUMBERS
            candidates = [
                (line, cell) for cell, line in zip(cells, table.lines, strict=True) if cell.lower() in markers
            ]
            among_numbers = bool(candidates) and mostly_numbers(cells)
            missing = [(line, cell) for line, cell in candidates if read_cell(cell, among_numbers).kind == "missing"]
            if missing:
                found.append((table, name, missing))
    if not found:
        return
    report = []
    for table, name, missing in found:
        markers = Counter(repr(cell) for _, cell in missing)
        shown = ", ".join(f"{marker} x{count}" if len(markers) > 1 else marker for marker, count in markers.items())
        report.append(
            f"  {table.path} column '{name}': {len(missing)} missing ({shown}), "
            f"{line_list([line for line, _ in missing])}"
        )
    fix = "fill them in, or delete those rows"
    left_out = {name for _, name, _ in found if name != target}
    kept = [name for name in features if name not in left_out]
    medians = [f"'{name}' is {median_of(tables, name):g}" for name in left_out if median_of(tables, name) is not None]
    if medians:
        which = f"the median of {medians[0]}" if len(medians) == 1 else f"medians: {', '.join(sorted(medians))}"
        fix = f"fill them in ({which}), or delete those rows"
    if left_out and kept:
        fix += f", or leave the column{'s' if len(left_out) > 1 else ''} out: data.features: [{', '.join(kept)}]"
    raise UserError(
        f"missing values in {len(found)} column{'s' if len(found) > 1 else ''}:\n" + "\n".join(report),
        fix=fix,
        key=found[0][0].key,
    )


def mostly_numbers(cells: list[str]) -> bool:
    given = [cell for cell in cells if read_cell(cell).kind != "missing"]
    return sum(read_cell(cell).kind in ("number", "almost") for cell in given) >= max(len(given), 1) / 2


def median_of(tables: list[Table], name: str) -> float | None:
    values = sorted(v for table in tables for cell in table.cells(name) if (v := number(cell)) is not None)
    if not values or not mostly_numbers([cell for table in tables for cell in table.cells(name)]):
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def line_list(lines: list[int]) -> str:
    """'line 7', 'lines 3, 8, 12' or 'lines 3, 8, 12, 20, 31, ... (40 in all)'."""
    more = f", ... ({len(lines)} in all)" if len(lines) > LINES_SHOWN else ""
    shown = ", ".join(str(line) for line in lines[:LINES_SHOWN]) + more
    return f"line{'s' if len(lines) > 1 else ''} {shown}"


def number(cell: str) -> float | None:
    """The cell as a finite number, or None when it holds text."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Cell:
    """What one cell holds, or almost holds: the number float() would read, or what stops it."""

    kind: str  # number | missing | almost (a number float() cannot read as written) | text
    value: float | None = None  # the number; for almost, read with commas between thousands
    comma: str = ""  # almost: thousands ('1,234.5'), decimal ('3,5'), either ('1,234'), or '' (no comma)
    signs: tuple[str, ...] = ()  # almost: what float() stumbles on, in words
    unit: str = ""  # almost: the symbol or unit around the digits ('$', '%', 'kg')
    decimal_value: float | None = None  # almost, comma either: the number with the comma as decimal point


@functools.lru_cache(maxsize=2**16)  # tables repeat their cells (categories, small numbers) over many rows
def read_cell(text: str, among_numbers: bool = False) -> Cell:
    """Classify a cell: a number, a missing value, a number written with symbols or separators, or text."""
    cell = text.strip()
    lowered = cell.lower()
    if lowered in MISSING or (among_numbers and lowered in MISSING_AMONG_NUMBERS):
        return Cell("missing")
    value = number(cell)
    if value is not None:
        return Cell("number", value)
    if not DIGIT.search(cell):
        return Cell("text")
    signs = []
    if cell[:1] in MINUS_SIGNS:
        cell = "-" + cell[1:]
        signs.append(f"'{text.strip()[0]}' for a minus sign")
    match = ALMOST.fullmatch(cell)
    if match is None or (match["sign"] and match["sign2"]):
        return Cell("text")
    digits, comma, decimal_value = match["digits"], "", None
    if re.search(r"[\s\u00a0\u202f\u2009'’]", digits):
        if not GROUPS["spaces"].fullmatch(digits):
            return Cell("text")
        signs.append("apostrophes between thousands" if re.search("['’]", digits) else "spaces between digit groups")
        digits = re.sub(r"[\s\u00a0\u202f\u2009'’]", "", digits)
    if "," in digits:
        if GROUPS["thousands"].fullmatch(digits):
            either = "." not in digits and digits.count(",") == 1
            comma = "either" if either else "thousands"
            if either:
                decimal_value = float(digits.replace(",", "."))
            digits = digits.replace(",", "")
        elif GROUPS["decimal"].fullmatch(digits):
            comma, digits = "decimal", digits.replace(".", "").replace(",", ".")
        else:
            return Cell("text")
        signs.append({"thousands": "commas between thousands", "decimal": "a decimal comma"}.get(comma, "a comma"))
    elif GROUPS["dots"].fullmatch(digits):
        comma, digits = "decimal", digits.replace(".", "")  # 1.234.567 is the decimal-comma way of writing it
        signs.append("dots between thousands")
    unit = (match["before"] or "") + (match["after"] or "").strip()
    if match["before"] and match["after"]:
        return Cell("text")
    if unit:
        signs.append(f"'{unit}'")
    value = number(digits)
    if value is None or not signs:
        return Cell("text")
    negative = "-" in (match["sign"] + match["sign2"])
    sign = -1.0 if negative else 1.0
    if decimal_value is not None:
        decimal_value *= sign
    return Cell("almost", sign * value, comma, tuple(signs), unit, decimal_value)


def located_cells(tables: list[Table], name: str) -> list[tuple[Table, int, str]]:
    """Every cell of a column in all the files, with its file and line, for messages that point at one."""
    return [(table, line, cell) for table in tables for cell, line in zip(table.cells(name), table.lines, strict=True)]


def column_kind(tables: list[Table], name: str, key: str = "data.features") -> str:
    """'number' or 'text'; a column of many numbers with a few text cells is an error, not a text column."""
    if all(table.values is not None for table in tables):
        return "number"
    cells = located_cells(tables, name)
    text = [(table, line, cell) for table, line, cell in cells if number(cell) is None]
    if not text:
        return "number"
    distinct_numbers = {cell for _, _, cell in cells if number(cell) is not None}
    many = len(distinct_numbers) > MAX_CLASSES and len(text) <= TYPO_SHARE * len(cells)
    if many or (len(distinct_numbers) > 1 and len(text) <= max(1, TYPO_SHARE_FEW * len(cells))):
        # Hundreds of prices and one 'abc' is a typo: as text, every price would become a category of its own;
        # and a few numbers with one word among them would lose their order as categories.
        table, line, cell = text[0]
        raise not_a_number(table, line, name, cell, key, more=len(text) - 1)
    return "text"


def mostly_unique(cells: list[str]) -> bool:
    """At least 10 distinct values, and half the rows or more hold a value no other row holds: names, identifiers,
    timestamps or quantities, not classes or categories."""
    counts = Counter(cells)
    return len(counts) >= 10 and sum(count == 1 for count in counts.values()) * 2 >= len(cells)


def check_categories(cfg: CsvData, tables: list[Table], features: list[str], kinds: dict[str, str]) -> list[str]:
    """A text column where most rows have a value of their own (names, identifiers, dates, numbers written in a way
    not read here) is no category: one-hot encoded, each of its columns would be seen once. An error, or a warning
    when data.features lists such a column."""
    found = []
    for name in features:
        if kinds[name] != "text":
            continue
        cells = [cell for table in tables for cell in table.cells(name)]
        if mostly_unique(cells):
            found.append((name, cells, set(cells)))
    if not found:
        return []
    parts = []
    for name, cells, distinct in found:
        # Digits and separators only: a date, a time, or a number written in a way not read here.
        digits = sum(not re.sub(r"[\d\s.,:/'’+-]", "", cell) for cell in cells) * 2 > len(cells)
        kind = "; digits and separators only: dates, or numbers in a form not read here?" if digits else ""
        if not digits and looks_like_free_text(cells, least=2):  # short texts: titles, names, messages
            kind = f"; if it is free text, it can be read as words: data.text: [{name}]"
        parts.append(
            f"column '{name}' holds {len(distinct):,} distinct values in {len(cells):,} rows (e.g. '{cells[0]}'{kind})"
        )
    names = [name for name, _, _ in found]
    kept = [name for name in features if name not in names]
    them = "them" if len(names) > 1 else "it"
    message = f"{tables[0].path} {'; '.join(parts)}: as categories, most would be seen once"
    if cfg.features is not None:  # listed on purpose: said, not refused
        return [f"{message}, and the model can learn little from {them}"]
    raise UserError(
        f"{message}, and the model would learn little from {them}",
        fix=f"leave {them} out: data.features: [{', '.join(kept)}]"
        if kept
        else f"add columns to learn from, or write {', '.join(names)} as plain numbers",
        key="data.features",
    )


def not_a_number(table: Table, line: int, name: str, cell: str, key: str, more: int = 0) -> UserError:
    what = f"target column '{name}'" if key in ("data.target", "data.task") else f"column '{name}'"
    others = f" ({more} more cells of it hold text)" if more else ""
    almost = read_cell(cell)
    if almost.kind == "almost" and almost.unit:
        looks = {"O": " (a letter O for a zero?)", "o": " (a letter o for a zero?)", "l": " (a letter l for a one?)"}
        others += f"; '{almost.unit}' after the digits is in no other cell{looks.get(almost.unit, '')}"
    if key == "data.features":
        fix = f"correct that cell, or leave '{name}' out of data.features"
    else:
        fix = "correct that cell; or set data.task: classification if the column holds class names"
    return UserError(f"{table.path} line {line}: {what} holds '{cell}', not a number{others}", fix=fix, key=key)


def choose_task(cfg: CsvData, tables: list[Table]) -> tuple[str, list[str] | None]:
    """classification (with its class names, in sorted order) or regression (None), as data.task says or guesses."""
    cells = located_cells(tables, cfg.target)
    task = guess_task(tables, cfg.target) if cfg.task == "auto" else cfg.task
    if task == "regression":
        text = [(table, line, cell) for table, line, cell in cells if number(cell) is None]
        if len(text) > len(cells) / 2:  # mostly words: class names, not one typo among numbers
            distinct = sorted({cell for _, _, cell in text})
            raise UserError(
                f"{text[0][0].path}: target column '{cfg.target}' holds text in {len(text)} of {len(cells)} rows "
                f"({one_of(distinct, 5)}; {line_list([line for _, line, _ in text])}), but data.task: regression "
                "predicts a number",
                fix="set data.task: classification to predict which of these classes a row belongs to",
                key="data.task",
            )
        for table, line, cell in text[:1]:
            raise not_a_number(table, line, cfg.target, cell, "data.task", more=len(text) - 1)
        return "regression", None
    numeric = all(number(cell) is not None for _, _, cell in cells)
    for table, line, cell in cells if numeric else []:
        if not float(cell).is_integer():
            raise UserError(
                f"{table.path} line {line}: target column '{cfg.target}' holds '{cell}', but classification "
                "needs class names or whole numbers (class labels)",
                fix="set data.task: regression to predict the number itself, or correct that cell",
                key="data.task",
            )
    class_names = class_names_of([cell for _, _, cell in cells], numeric=numeric)
    if len(class_names) < 2:
        raise UserError(
            f"target column '{cfg.target}' holds '{class_names[0]}' in every row: there is only one class",
            fix="a classifier needs rows of at least two classes; check data.target names the column to predict",
            key="data.target",
        )
    check_class_counts(cfg, cells, numeric)
    if numeric and class_names != [str(i) for i in range(len(class_names))]:
        # The outputs of a classifier are numbered 0..K-1; any K distinct labels map onto them one to one, in
        # order, and class_names (kept in every checkpoint) maps them back, so predict prints the labels.
        shown = ", ".join(f"{name} -> {i}" for i, name in enumerate(class_names[:6]))
        values = [int(name) for name in class_names]
        consecutive = values == list(range(values[0], values[0] + len(values))) and len(values) > 2
        labels = f"{values[0]}..{values[-1]}" if consecutive else one_of(class_names, 6)
        print(
            f"note: target column '{cfg.target}' holds the class labels {labels}, not 0.."
            f"{len(class_names) - 1}: the model's outputs stand for them in order ({shown}"
            f"{', ...' if len(class_names) > 6 else ''}); predict prints the labels",
            file=sys.stderr,
        )
    return "classification", class_names


def check_class_counts(cfg: CsvData, cells: list[tuple[Table, int, str]], numeric: bool) -> None:
    """A class target where most rows are a class of their own is an identifier or a quantity, not a label."""
    labels = Counter(str(int(float(cell))) if numeric else cell for _, _, cell in cells)
    alone = sum(1 for count in labels.values() if count == 1)
    if not mostly_unique(list(labels.elements())):
        return
    what = f"{len(labels):,} distinct values in {len(cells):,} rows ({alone:,} of them in one row only)"
    if alone == len(cells):
        what = f"a different value in each of its {len(cells):,} rows"
    fix = (
        "set data.task: regression to predict the number itself"
        if numeric
        else "check that data.target names the column to predict: a name or an identifier is not a class"
    )
    raise UserError(
        f"{cells[0][0].path}: target column '{cfg.target}' holds {what}: a classifier cannot learn a class from "
        "a single example",
        fix=fix,
        key="data.task" if numeric else "data.target",
    )


def guess_task(tables: list[Table], target: str) -> str:
    """task auto: classification for text or a few whole numbers (labels such as 0, 1, 2), else regression."""
    if column_kind(tables, target, "data.target") == "text":
        return "classification"
    values = [float(cell) for _, _, cell in located_cells(tables, target)]
    distinct = set(values)
    few = len(distinct) <= MAX_CLASSES and len(distinct) < len(values) / 2
    return "classification" if few and all(value.is_integer() for value in distinct) else "regression"


def class_names_of(cells: list[str], numeric: bool) -> list[str]:
    """The distinct labels in sorted order (2 before 10 when they are numbers), which fixes each class's index."""
    if numeric:
        names = sorted({float(cell) for cell in cells})
        return [str(int(value)) for value in names]  # '1', '1.0' and '01' are one class
    return sorted(set(cells))


def split_rows(cfg: CsvData, table: Table, others: dict[str, Table], seed: int) -> tuple[Rows, Rows, Rows]:
    """Train, val and test rows: the separate files when given, else seeded fractions of data.path's rows."""
    order = torch.randperm(len(table.rows), generator=torch.Generator().manual_seed(seed)).tolist()
    # The test rows are taken first, so that changing val_split never moves a row into or out of the test split.
    n_test = 0 if "test_path" in others else int(len(order) * cfg.test_split)
    test, rest = order[:n_test], order[n_test:]
    n_val = 0 if "val_path" in others else int(len(rest) * cfg.val_split)
    val, train = rest[:n_val], rest[n_val:]
    if not train:
        raise UserError(
            f"{table.path} has {len(table.rows)} rows: none is left for training after data.test_split "
            f"({cfg.test_split}) and data.val_split ({cfg.val_split})",
            fix="lower data.val_split and data.test_split, or add rows",
            key="data.val_split",
        )

    def rows(name: str, index: list[int]) -> Rows:
        other = others.get(name)
        return Rows(other, list(range(len(other.rows)))) if other else Rows(table, sorted(index))

    return Rows(table, sorted(train)), rows("val_path", val), rows("test_path", test)


def check_class_rows(cfg: CsvData, class_names: list[str], train: Rows, val: Rows, test: Rows) -> list[str]:
    """Every class needs training rows (the error names the rows of one that has none, file and lines); the warnings
    for a class missing from val or test."""
    numeric = all(number(name) is not None for name in class_names)

    def labels(rows: Rows) -> Counter[str]:
        return Counter(str(int(float(cell))) if numeric else cell for cell in rows.cells(cfg.target))

    counts = {name: labels(rows) for name, rows in (("train", train), ("val", val), ("test", test))}
    total = counts["train"] + counts["val"] + counts["test"]

    def untrained_error(untrained: list[str]) -> UserError:
        name = untrained[0]
        places: dict[Path, list[int]] = {}
        for rows in (val, test):
            for i, cell in zip(rows.index, rows.cells(cfg.target), strict=True):
                if labels_equal(cell, name):
                    places.setdefault(rows.table.path, []).append(rows.table.lines[i])
        where = "; ".join(f"{path} {line_list(lines)}" for path, lines in places.items())
        others = f" (and {len(untrained) - 1} more classes)" if len(untrained) > 1 else ""
        if val.table is train.table and test.table is train.table:
            why = f"the random split put none of them in training (data.val_split {cfg.val_split}, data.test_split "
            why += f"{cfg.test_split})"
            fix = f"add rows of class '{name}' (a few per split at least), lower data.val_split and data.test_split, "
            fix += "or delete the rows of a class too rare to learn"
        else:
            why = f"none of them is in the training file {train.table.path}"
            fix = f"move some rows of class '{name}' into {train.table.path}, or delete them"
        return UserError(
            f"class '{name}' of target column '{cfg.target}' has {total[name]} row{'s' if total[name] > 1 else ''} "
            f"({where}), and {why}{others}",
            fix=fix,
            key="data.val_split" if val.table is train.table else "data.path",
        )

    return check_split_classes(class_names, counts, "row", untrained_error)


def labels_equal(cell: str, name: str) -> bool:
    value = number(cell)
    return cell == name or (value is not None and value.is_integer() and str(int(value)) == name)


def fit_encoding(train: Rows, features: list[str], kinds: dict[str, str], cfg: CsvData) -> dict[str, Any]:
    """The mean and std of each number column, the categories of each category column and the vocabulary of each
    text column, from the training rows only.

    Returned as plain data (names, floats, lists), as kept in checkpoints: the model's input columns in order,
    e.g. ['age', 'city=Lyon', 'city=Paris', 'review[1]', ...]: number and category columns first, then for each text
    column `max_words` columns of word ids (trainer/components/text.py).
    """
    columns, mean, std, categories, text = [], {}, {}, {}, {}
    for name in features:
        if kinds[name] == "number":
            values = number_columns(train, [name])[:, 0].numpy()  # numpy: one thread, no pool to wake per column
            spread = float(values.std())
            mean[name] = float(values.mean())
            std[name] = spread if spread > 0 else 1.0  # a constant column: centred to 0, not divided by 0
            columns.append(name)
        elif kinds[name] == "text":
            categories[name] = sorted(set(train.cells(name)))
            columns += [f"{name}={category}" for category in categories[name]]
    for name in (name for name in features if kinds[name] == "words"):
        vocabulary = fit_vocabulary(train.cells(name), cfg.vocab_size, cfg.min_word_count)
        if not vocabulary:
            raise no_vocabulary(train, name, cfg)
        text[name] = {"vocabulary": vocabulary, "max_words": cfg.max_words}
        columns += [f"{name}[{i + 1}]" for i in range(cfg.max_words)]
    encoding = {"features": features, "columns": columns, "mean": mean, "std": std, "categories": categories}
    return encoding | ({"text": text} if text else {})


def text_columns(cfg: CsvData, tables: list[Table], features: list[str]) -> list[str]:
    """The columns read as words: data.text, each checked; by default the text columns that look like free text."""
    if cfg.text is None:
        return [
            name
            for name in features
            if not all(t.values is not None for t in tables)
            and any(number(cell) is None for cell in tables[0].cells(name))
            and mostly_unique(cells := [c for t in tables for c in t.cells(name)])
            and looks_like_free_text(cells)
        ]
    for name in cfg.text:
        lookup(tables[0], name, "data.text")
        if name == cfg.target:
            raise UserError(
                f"data.text names the target column '{name}': the model would be given the answer",
                fix=f"take '{name}' out of data.text",
                key="data.text",
            )
        if name not in features:
            raise UserError(
                f"data.text names '{name}', which data.features leaves out",
                fix=f"add '{name}' to data.features, or take it out of data.text",
                key="data.text",
            )
        cells = [(table, line, cell) for table, line, cell in located_cells(tables, name) if cell.strip()]
        if cells and all(number(cell) is not None for _, _, cell in cells):
            table, line, cell = cells[0]
            raise UserError(
                f"column '{name}' holds numbers (e.g. '{cell}' on line {line} of {table.path}), not words",
                fix=f"leave it out of data.text: [{', '.join(n for n in cfg.text if n != name)}]; it is read as a "
                "number column",
                key="data.text",
            )
    return list(cfg.text)


def no_vocabulary(train: Rows, name: str, cfg: CsvData) -> UserError:
    """No word of a text column is common enough in the training rows to be learned."""
    counts = Counter(word for cell in train.cells(name) for word in words(cell))
    if not counts:
        return UserError(
            f"column '{name}' has no words in any training row: every cell is empty (or punctuation only)",
            fix=f"fill the column in, or leave it out: data.text and data.features without '{name}'",
            key="data.text",
        )
    word, count = counts.most_common(1)[0]
    return UserError(
        f"no word of column '{name}' is seen {cfg.min_word_count} times or more in the training rows (the most "
        f"frequent, '{word}', is seen {count} times)",
        fix=f"lower data.min_word_count (to {max(1, count)} or less), or train on more rows",
        key="data.min_word_count",
    )


def unknown_share(rows: Rows, name: str, info: dict[str, Any]) -> float:
    """The share of a split's words that the training vocabulary lacks."""
    column = info["text"][name]
    _, seen, unknown = encode_texts(rows.cells(name), column["vocabulary"], column["max_words"])
    return unknown / seen if seen else 0.0


def encode_inputs(rows: Rows, info: dict[str, Any]) -> torch.Tensor:
    """(rows, inputs) float32: standardized numbers, and one 0/1 column per category (all 0 for an unseen one)."""
    blocks = []
    numeric = [name for name in info["features"] if name in info["mean"]]
    mean = torch.tensor([info["mean"][name] for name in numeric], dtype=torch.float64)
    std = torch.tensor([info["std"][name] for name in numeric], dtype=torch.float64)
    standardized = number_columns(rows, numeric).sub_(mean).div_(std).float()  # in place: a copy less of the table
    if len(numeric) == len(info["features"]):
        return standardized  # numbers only: the columns are already in order
    text = info.get("text", {})
    for name in info["features"]:
        if name in text:
            continue  # after the others: see fit_encoding
        if name in info["mean"]:
            blocks.append(standardized[:, numeric.index(name), None])
        else:
            cells = rows.cells(name)
            index = {category: i for i, category in enumerate(info["categories"][name])}
            one_hot = torch.zeros(len(cells), len(index), dtype=torch.float64)
            for row, cell in enumerate(cells):
                if cell in index:
                    one_hot[row, index[cell]] = 1
            blocks.append(one_hot.float())
    if text:
        for name, column in text.items():
            blocks.append(encode_texts(rows.cells(name), column["vocabulary"], column["max_words"])[0])
    return torch.cat(blocks, dim=1)


def number_columns(rows: Rows, names: list[str]) -> torch.Tensor:
    """Number columns of some rows as a new float64 tensor (rows, columns), gathered at once from a table of plain
    numbers."""
    if rows.table.values is not None:
        positions = [rows.table.columns.index(name) for name in names]
        return torch.from_numpy(rows.table.values[np.ix_(rows.index, positions)])
    cells = [[float(cell) for cell in rows.cells(name)] for name in names]
    return torch.tensor(cells, dtype=torch.float64).reshape(len(names), len(rows.index)).T


def encode_targets(rows: Rows, target: str, class_names: list[str] | None) -> torch.Tensor:
    """Class indices (int64), or for regression the numbers in their own units as float32 of shape (rows, 1)."""
    cells = rows.cells(target)
    if class_names is None:
        return torch.tensor([float(cell) for cell in cells], dtype=torch.float32)[:, None]
    index = {name: i for i, name in enumerate(class_names)}
    numeric = all(number(name) is not None for name in class_names)
    labels = [str(int(float(cell))) if numeric else cell for cell in cells]
    return torch.tensor([index[label] for label in labels], dtype=torch.int64)


def describe(
    cfg: CsvData, info: dict[str, Any], kinds: dict[str, str], counts: list[int], unknown: dict[str, float]
) -> str:
    """One line: what is predicted from what, and the rows of each split."""
    numbers = sum(kind == "number" for kind in kinds.values())
    categories = [f"{name} ({len(values)} values)" for name, values in info["categories"].items()]
    inputs = f"{numbers} number column{'s' if numbers != 1 else ''}"
    inputs += f", categories: {', '.join(categories)}" if categories else ""
    texts = [
        f"{name} ({len(column['vocabulary']):,} words, the first {column['max_words']} of each text; "
        f"{unknown[name]:.0%} of the val words unknown)"
        for name, column in info.get("text", {}).items()
    ]
    inputs += f", text: {', '.join(texts)}" if texts else ""
    if "class_names" in info:
        names = info["class_names"]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        task = f"classification, {len(names)} classes: {shown}"
    else:
        task = "regression"
    split = " / ".join(f"{count:,} {name}" for count, name in zip(counts, ("train", "val", "test"), strict=True))
    return f"csv {cfg.path}: predict '{cfg.target}' ({task}) from {inputs}; {split} rows"
