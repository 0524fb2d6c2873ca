"""Tables from CSV files: one row per sample, a target column to predict, and number or text feature columns.

Numbers are standardized and text columns one-hot encoded with what the training rows alone show, so that nothing
about the validation and test rows leaks into training; the statistics go into `DataSplits.info` (and so into
every checkpoint), to treat new rows the same way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.components.data import DataSplits, in_memory_splits
from trainer.config import CsvData
from trainer.errors import UserError, did_you_mean, one_of

MISSING = frozenset({"", "na", "nan", "?"})  # how spreadsheets and R write a missing value; compared in lower case
MAX_CLASSES = 20  # task auto: a target of at most this many whole numbers holds class labels, not quantities
TYPO_SHARE = 0.05  # a column of many numbers with at most this share of text cells is numbers with typos
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

    def cells(self, name: str) -> list[str]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


@dataclass
class Rows:
    """Some rows of a table: one split."""

    table: Table
    index: list[int]

    def cells(self, name: str) -> list[str]:
        column = self.table.columns.index(name)
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
    check_missing(tables, cfg.target, features)
    task, class_names = choose_task(cfg, tables)
    kinds = {name: column_kind(tables, name) for name in features}

    train, val, test = split_rows(cfg, table, others, seed)
    encoding = fit_encoding(train, features, kinds)
    info: dict[str, Any] = {"task": task, "input_shape": [len(encoding["columns"])], "target": cfg.target}
    info |= encoding
    if class_names is not None:
        info["class_names"] = class_names
    tensors = [
        (encode_inputs(rows, info), encode_targets(rows, cfg.target, class_names)) for rows in (train, val, test)
    ]
    data = in_memory_splits(cfg, tensors[0], tensors[2], device, seed, info=info, val=tensors[1])
    data.description = describe(cfg, info, kinds, [len(rows.index) for rows in (train, val, test)])
    return data


def read_table(name: str, key: str) -> Table:
    """The header and rows of a CSV file, with every row checked to have one cell per column."""
    path = Path(name).expanduser()
    if not path.is_file():
        what = "is a folder, not a CSV file" if path.is_dir() else "does not exist"
        raise UserError(
            f"'{name}' {what} (looked for {path.absolute()}; the current directory is {Path.cwd()})",
            fix=f"give the path of a CSV file relative to the folder you run python -m trainer in ({Path.cwd()}), "
            "or an absolute path",
            key=key,
        )
    try:
        # utf-8-sig: spreadsheet programs start their "CSV UTF-8" files with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not row:  # a blank line, often the last one: no sample
                    continue
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text (byte {err.start} cannot be read): is it a CSV file?",
            fix="save it as 'CSV UTF-8 (comma delimited)' from your spreadsheet program",
            key=key,
        ) from err
    except csv.Error as err:
        raise UserError(f"{path} line {reader.line_num}: {err}", fix="correct that line of the file", key=key) from err
    if header is None or not any(cell.strip() for cell in header):
        raise UserError(
            f"{path} is empty",
            fix="a CSV file starts with a header row naming the columns, then one row per sample, e.g. "
            "'age,height,label' then '34,1.72,yes'",
            key=key,
        )
    columns = [cell.strip() for cell in header]
    check_columns(path, columns, key)
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(columns):
            raise UserError(
                f"{path} line {line}: {len(row)} cells, but the header (line 1) names {len(columns)} columns "
                f"({one_of(columns)})",
                fix="give that row one cell per column; a cell that holds a comma goes in double quotes, e.g. "
                '"Smith, Jane"',
                key=key,
            )
    if not rows:
        raise UserError(f"{path} has a header but no rows", fix="add one row per sample below the header", key=key)
    return Table(path, key, columns, rows, lines)


def check_columns(path: Path, columns: list[str], key: str) -> None:
    """Column names that a config can point at: unique, and not a whole line that used another separator."""
    if len(columns) == 1 and (";" in columns[0] or "\t" in columns[0]):
        separator = "semicolons" if ";" in columns[0] else "tabs"
        raise UserError(
            f"{path}: the header has no commas but has {separator}: its cells are not separated by commas",
            fix="save the file as 'CSV UTF-8 (comma delimited)' from your spreadsheet program",
            key=key,
        )
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


def choose_features(cfg: CsvData, table: Table) -> list[str]:
    """data.features, or every column but the target; each name checked against the file's header."""
    lookup(table, cfg.target, "data.target")
    if cfg.features is None:
        features = [name for name in table.columns if name != cfg.target]
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
    rows = [[row[i] for i in order] for row in other.rows]
    return Table(other.path, other.key, list(table.columns), rows, other.lines)


def check_missing(tables: list[Table], target: str, features: list[str]) -> None:
    """Every empty, NA, NaN or ? cell of the columns used, reported by column; nothing is filled in silently."""
    found = []
    for table in tables:
        for name in [target, *features]:
            lines = [line for cell, line in zip(table.cells(name), table.lines, strict=True) if is_missing(cell)]
            if lines:
                found.append((table, name, lines))
    if not found:
        return
    report = [
        f"  {table.path} column '{name}': {len(lines)} missing, {line_list(lines)}" for table, name, lines in found
    ]
    fix = "fill them in, or delete those rows"
    left_out = {name for _, name, _ in found if name != target}
    kept = [name for name in features if name not in left_out]
    if left_out and kept:
        fix += f", or leave the column{'s' if len(left_out) > 1 else ''} out: data.features: [{', '.join(kept)}]"
    raise UserError(
        f"missing values (empty cells, NA, NaN or ?) in {len(found)} column{'s' if len(found) > 1 else ''}:\n"
        + "\n".join(report),
        fix=fix,
        key=found[0][0].key,
    )


def is_missing(cell: str) -> bool:
    return cell.lower() in MISSING


def line_list(lines: list[int]) -> str:
    """'line 7' or 'lines 3, 8, 12, 20, 31, ...'."""
    shown = ", ".join(str(line) for line in lines[:LINES_SHOWN]) + (", ..." if len(lines) > LINES_SHOWN else "")
    return f"line{'s' if len(lines) > 1 else ''} {shown}"


def number(cell: str) -> float | None:
    """The cell as a finite number, or None when it holds text."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def located_cells(tables: list[Table], name: str) -> list[tuple[Table, int, str]]:
    """Every cell of a column in all the files, with its file and line, for messages that point at one."""
    return [(table, line, cell) for table in tables for cell, line in zip(table.cells(name), table.lines, strict=True)]


def column_kind(tables: list[Table], name: str, key: str = "data.features") -> str:
    """'number' or 'text'; a column of many numbers with a few text cells is an error, not a text column."""
    cells = located_cells(tables, name)
    text = [(table, line, cell) for table, line, cell in cells if number(cell) is None]
    if not text:
        return "number"
    distinct_numbers = {cell for _, _, cell in cells if number(cell) is not None}
    if len(distinct_numbers) > MAX_CLASSES and len(text) <= TYPO_SHARE * len(cells):
        # Hundreds of prices and one 'abc' is a typo: as text, every price would become a category of its own.
        table, line, cell = text[0]
        raise not_a_number(table, line, name, cell, key, more=len(text) - 1)
    return "text"


def not_a_number(table: Table, line: int, name: str, cell: str, key: str, more: int = 0) -> UserError:
    what = f"target column '{name}'" if key in ("data.target", "data.task") else f"column '{name}'"
    others = f" ({more} more cells of it hold text)" if more else ""
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
        for table, line, cell in cells:
            if number(cell) is None:
                raise not_a_number(table, line, cfg.target, cell, "data.task")
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
    return "classification", class_names


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


def fit_encoding(train: Rows, features: list[str], kinds: dict[str, str]) -> dict[str, Any]:
    """The mean and std of each number column and the categories of each text column, from the training rows only.

    Returned as plain data (names, floats, lists), as kept in checkpoints: the model's input columns in order,
    e.g. ['age', 'city=Lyon', 'city=Paris'].
    """
    columns, mean, std, categories = [], {}, {}, {}
    for name in features:
        cells = train.cells(name)
        if kinds[name] == "number":
            values = torch.tensor([float(cell) for cell in cells], dtype=torch.float64)
            spread = values.std(correction=0).item()
            mean[name] = values.mean().item()
            std[name] = spread if spread > 0 else 1.0  # a constant column: centred to 0, not divided by 0
            columns.append(name)
        else:
            categories[name] = sorted(set(cells))
            columns += [f"{name}={category}" for category in categories[name]]
    return {"features": features, "columns": columns, "mean": mean, "std": std, "categories": categories}


def encode_inputs(rows: Rows, info: dict[str, Any]) -> torch.Tensor:
    """(rows, inputs) float32: standardized numbers, and one 0/1 column per category (all 0 for an unseen one)."""
    blocks = []
    for name in info["features"]:
        cells = rows.cells(name)
        if name in info["mean"]:
            values = torch.tensor([float(cell) for cell in cells], dtype=torch.float64)
            blocks.append(((values - info["mean"][name]) / info["std"][name])[:, None])
        else:
            index = {category: i for i, category in enumerate(info["categories"][name])}
            one_hot = torch.zeros(len(cells), len(index), dtype=torch.float64)
            for row, cell in enumerate(cells):
                if cell in index:
                    one_hot[row, index[cell]] = 1
            blocks.append(one_hot)
    return torch.cat(blocks, dim=1).float()


def encode_targets(rows: Rows, target: str, class_names: list[str] | None) -> torch.Tensor:
    """Class indices (int64), or for regression the numbers in their own units as float32 of shape (rows, 1)."""
    cells = rows.cells(target)
    if class_names is None:
        return torch.tensor([float(cell) for cell in cells], dtype=torch.float32)[:, None]
    index = {name: i for i, name in enumerate(class_names)}
    numeric = all(number(name) is not None for name in class_names)
    labels = [str(int(float(cell))) if numeric else cell for cell in cells]
    return torch.tensor([index[label] for label in labels], dtype=torch.int64)


def describe(cfg: CsvData, info: dict[str, Any], kinds: dict[str, str], counts: list[int]) -> str:
    """One line: what is predicted from what, and the rows of each split."""
    numbers = sum(kind == "number" for kind in kinds.values())
    text = [f"{name} ({len(values)} values)" for name, values in info["categories"].items()]
    inputs = f"{numbers} number column{'s' if numbers != 1 else ''}" + (f", text: {', '.join(text)}" if text else "")
    if "class_names" in info:
        names = info["class_names"]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        task = f"classification, {len(names)} classes: {shown}"
    else:
        task = "regression"
    split = " / ".join(f"{count:,} {name}" for count, name in zip(counts, ("train", "val", "test"), strict=True))
    return f"csv {cfg.path}: predict '{cfg.target}' ({task}) from {inputs}; {split} rows"
