"""Tables (data.dataset: csv): small CSV files written in tmp_path, every error message, and the two shipped tables."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import torch

from trainer.components.data import build_data
from trainer.components.tables import read_cell
from trainer.config import CsvData
from trainer.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
HOUSES = [  # rooms, city, price: a number feature, a text feature and a number to predict
    (3, "Paris", 310),
    (2, "Lyon", 180),
    (4, "Paris", 420),
    (1, "Nice", 120),
    (3, "Lyon", 250),
    (5, "Paris", 530),
    (2, "Nice", 190),
    (4, "Lyon", 330),
    (3, "Nice", 260),
    (1, "Paris", 160),
]


def write_csv(path: Path, rows: list[tuple | list], header: str = "rooms,city,price") -> Path:
    lines = [header, *(",".join(str(cell) for cell in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def table(path: Path, **data) -> CsvData:
    return CsvData(dataset="csv", path=str(path), **({"target": "price", "val_split": 0.0} | data))


def run_table(write_config, run_cli, data: str, *overrides: str) -> tuple[int, str, str]:
    """The CLI on a config whose data section is `data` (flow style), run from tmp_path."""
    text = f"data: {{dataset: csv, {data}}}\nmodel: {{name: mlp, hidden: [8]}}\nloss: mse\ntrain: {{epochs: 1}}\n"
    return run_cli(write_config(text), *overrides)


def test_numbers_are_standardized_and_text_is_one_hot_encoded(tmp_path):
    data = build_data(table(write_csv(tmp_path / "houses.csv", HOUSES)), CPU, 0)
    assert data.task == "regression" and data.input_shape == (4,) and data.num_classes == 1
    assert data.info["columns"] == ["rooms", "city=Lyon", "city=Nice", "city=Paris"]
    assert data.info["categories"] == {"city": ["Lyon", "Nice", "Paris"]}
    inputs, targets = data.train.inputs, data.train.targets
    assert torch.allclose(inputs[:, 0].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(inputs[:, 0].std(correction=0), torch.tensor(1.0), atol=1e-6)
    assert inputs[0].tolist()[1:] == [0.0, 0.0, 1.0]  # the first row is in Paris
    assert targets.dtype == torch.float32 and targets.shape == (10, 1)  # prices in their own units, not scaled
    assert targets[:, 0].tolist() == [price for _, _, price in HOUSES]


def test_statistics_come_from_the_training_rows_only(tmp_path):
    cfg = table(write_csv(tmp_path / "houses.csv", HOUSES * 3), val_split=0.25, test_split=0.2, task="regression")
    data = build_data(cfg, CPU, 0)
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (18, 6, 6)
    train = data.train.inputs[:, 0]
    # Standardized with the training rows' own mean and std: exactly 0 and 1 there, and not on the other rows.
    assert abs(train.mean()) < 1e-6 and abs(train.std(correction=0) - 1) < 1e-6
    # Each price is one house's: the targets tell which houses are the training rows, and so their rooms.
    rooms_of = {price: rooms for rooms, _, price in HOUSES}
    rooms = torch.tensor([float(rooms_of[price]) for price in data.train.targets[:, 0].tolist()])
    assert data.info["mean"]["rooms"] == pytest.approx(rooms.mean().item(), rel=1e-6)
    assert data.info["std"]["rooms"] == pytest.approx(rooms.std(correction=0).item(), rel=1e-6)
    assert torch.allclose(train, (rooms - rooms.mean()) / rooms.std(correction=0), atol=1e-5)  # row by row
    assert data.info["mean"]["rooms"] != pytest.approx(sum(r for r, _, _ in HOUSES) / len(HOUSES))

    # Separate val and test files with huge values change nothing about the training statistics.
    write_csv(tmp_path / "val.csv", [(100, "Paris", 1)])
    write_csv(tmp_path / "test.csv", [(200, "Lyon", 1)])
    paths = {"val_path": str(tmp_path / "val.csv"), "test_path": str(tmp_path / "test.csv")}
    files = build_data(table(tmp_path / "houses.csv", task="regression", **paths), CPU, 0)
    mean, std = files.info["mean"]["rooms"], files.info["std"]["rooms"]
    assert (mean, std) == pytest.approx((2.8, 1.249), abs=1e-3)  # the ten rooms of HOUSES
    assert files.val.inputs[0, 0].item() == pytest.approx((100 - mean) / std, rel=1e-5)


def test_a_category_unseen_in_training_becomes_all_zeros(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "houses.csv", HOUSES)
    write_csv(tmp_path / "val.csv", [(2, "Marseille", 200), (3, "Nice", 250)])
    data = build_data(table(Path("houses.csv"), val_path="val.csv"), CPU, 0)
    assert data.val.inputs[0, 1:].tolist() == [0.0, 0.0, 0.0]
    assert data.val.inputs[1, 1:].tolist() == [0.0, 1.0, 0.0]


def test_a_val_file_may_order_its_columns_differently(tmp_path):
    write_csv(tmp_path / "houses.csv", HOUSES)
    write_csv(tmp_path / "val.csv", [("Nice", 250, 3)], header="city,price,rooms")
    data = build_data(table(tmp_path / "houses.csv", val_path=str(tmp_path / "val.csv")), CPU, 0)
    assert data.val.targets.tolist() == [[250.0]] and data.val.inputs[0, 1:].tolist() == [0.0, 1.0, 0.0]


def test_task_auto_makes_text_and_a_few_whole_numbers_classes(tmp_path):
    labels = ["10", "2", "2", "10", "7", "7", "2", "10"]  # sorted as numbers: 2, 7, 10
    numbers = write_csv(tmp_path / "numbers.csv", [(i, label) for i, label in enumerate(labels)], header="x,label")
    data = build_data(table(numbers, target="label"), CPU, 0)
    assert data.task == "classification" and data.class_names == ["2", "7", "10"]
    assert data.train.targets.tolist() == [2, 0, 0, 2, 1, 1, 0, 2] and data.num_classes == 3

    words = write_csv(tmp_path / "words.csv", [(i, ("yes", "no")[i % 2]) for i in range(6)], header="x,answer")
    assert build_data(table(words, target="answer"), CPU, 0).class_names == ["no", "yes"]

    measured = write_csv(tmp_path / "measured.csv", [(i, i * 0.5) for i in range(8)], header="x,y")
    assert build_data(table(measured, target="y"), CPU, 0).task == "regression"


def test_data_info_is_plain_data_that_checkpoints_can_hold(tmp_path):
    data = build_data(table(write_csv(tmp_path / "houses.csv", HOUSES), target="city"), CPU, 0)
    assert data.class_names == ["Lyon", "Nice", "Paris"]
    buffer = io.BytesIO()
    torch.save(data.info, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == data.info
    assert data.info["input_shape"] == [2] and data.info["columns"] == ["rooms", "price"]


def test_missing_values_are_listed_by_column_with_their_lines(tmp_path, write_config, run_cli):
    rows = [list(row) for row in HOUSES]
    rows[1][0], rows[4][0], rows[6][1], rows[8][2] = "", "NA", "?", "NaN"
    write_csv(tmp_path / "houses.csv", rows)
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price")
    assert code == 2
    assert "data.path: missing values in 3 columns:" in err
    assert "houses.csv column 'rooms': 2 missing ('' x1, 'NA' x1), lines 3, 6" in err
    assert "houses.csv column 'city': 1 missing ('?'), line 8" in err
    assert "houses.csv column 'price': 1 missing ('NaN'), line 10" in err
    # No feature left to train on without these columns; the median is that of the cells given.
    assert "Try: fill them in (the median of 'rooms' is 3), or delete those rows\n" in err


def test_missing_values_fix_names_the_features_to_keep(tmp_path):
    rows = [list(row) for row in HOUSES]
    rows[2][1] = ""
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert caught.value.fix == "fill them in, or delete those rows, or leave the column out: data.features: [rooms]"


def test_unknown_target_suggests_the_closest_column(tmp_path, write_config, run_cli):
    write_csv(tmp_path / "houses.csv", HOUSES)
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: prise")
    assert code == 2
    assert (
        "data.target: houses.csv has no column 'prise' (did you mean 'price'?); its columns are rooms, city, price"
        in err
    )


def test_unknown_feature_suggests_the_closest_column(tmp_path, write_config, run_cli):
    write_csv(tmp_path / "houses.csv", HOUSES)
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price, features: [rooms, City]")
    assert code == 2
    assert "data.features: houses.csv has no column 'City' (did you mean 'city'?)" in err


def test_a_regression_target_that_is_not_a_number_names_its_line(tmp_path, write_config, run_cli):
    rows = [list(row) for row in HOUSES]
    rows[3][2] = "abc"
    write_csv(tmp_path / "houses.csv", rows)
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price, task: regression")
    assert code == 2
    assert "data.task: houses.csv line 5: target column 'price' holds 'abc', not a number" in err
    assert "Try: correct that cell; or set data.task: classification" in err


def test_task_auto_takes_many_numbers_and_one_word_for_a_typo_not_for_classes(tmp_path, write_config, run_cli):
    rows = [(i % 4, "Paris", 100 + 7 * i) for i in range(40)]
    rows[30] = (1, "Paris", "12O")  # the letter O for a zero
    write_csv(tmp_path / "houses.csv", rows)
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price")
    assert code == 2
    assert "data.target: houses.csv line 32: target column 'price' holds '12O', not a number" in err


def test_a_number_feature_with_a_typo_names_its_line(tmp_path):
    rows = [(100 + i, "Paris", i) for i in range(40)]
    rows[5] = ("1O5", "Paris", 5)
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert caught.value.key == "data.features"
    assert caught.value.message.endswith("line 7: column 'rooms' holds '1O5', not a number")


def test_classification_of_a_fractional_target_says_to_use_regression(tmp_path, write_config, run_cli):
    write_csv(tmp_path / "marks.csv", [(1, 0), (2, 1), (3, 1.5), (4, 0)], header="x,label")
    code, _, err = run_table(write_config, run_cli, "path: marks.csv, target: label, task: classification")
    assert code == 2
    assert (
        "data.task: marks.csv line 4: target column 'label' holds '1.5', but classification needs class names "
        "or whole numbers" in err
    )
    assert "Try: set data.task: regression" in err


def test_a_target_of_one_class_is_an_error(tmp_path):
    rows = [(rooms, "Paris", price) for rooms, _, price in HOUSES]
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "paris.csv", rows), target="city"), CPU, 0)
    assert caught.value.message == "target column 'city' holds 'Paris' in every row: there is only one class"
    assert caught.value.key == "data.target"


def test_a_row_with_the_wrong_number_of_cells_names_its_line(tmp_path, write_config, run_cli):
    (tmp_path / "houses.csv").write_text("rooms,city,price\n3,Paris,310\n2,Lyon\n")
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price")
    assert code == 2
    assert "data.path: houses.csv line 3: 2 cells, but the header (line 1) names 3 columns (rooms, city, price)" in err
    assert 'in double quotes, e.g. "Smith, Jane"' in err


def test_an_empty_file_asks_for_a_header(tmp_path, write_config, run_cli):
    (tmp_path / "houses.csv").write_text("")
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, target: price")
    assert code == 2
    assert "data.path: houses.csv is empty" in err and "Try: a CSV file starts with a header row" in err


def test_a_missing_file_says_where_it_looked(tmp_path, write_config, run_cli):
    code, _, err = run_table(write_config, run_cli, "path: data/houses.csv, target: price")
    assert code == 2
    here = Path.cwd()  # run_cli runs in tmp_path
    assert f"data.path: 'data/houses.csv' does not exist (looked for {here / 'data' / 'houses.csv'}; " in err
    assert f"the current directory is {here})" in err


def test_a_test_file_with_other_columns_names_them(tmp_path, write_config, run_cli):
    write_csv(tmp_path / "houses.csv", HOUSES)
    write_csv(tmp_path / "test.csv", [(3, "Paris", 300)], header="rooms,town,price")
    code, _, err = run_table(write_config, run_cli, "path: houses.csv, test_path: test.csv, target: price")
    assert code == 2
    assert "data.test_path: the header of test.csv differs from that of houses.csv: it lacks city and adds town" in err


def test_a_table_trains_end_to_end_through_the_cli(tmp_path, write_config, run_cli):
    rows = [(rooms, city, price + i) for i, (rooms, city, price) in enumerate(HOUSES * 4)]  # 40 different prices
    write_csv(tmp_path / "houses.csv", rows)
    code, out, err = run_table(write_config, run_cli, "path: houses.csv, target: price, test_split: 0.2")
    assert code == 0, err
    assert "csv houses.csv: predict 'price' (regression) from 1 number column, categories: city (3 values)" in out
    assert "test/r2" in out


def train_shipped(run_cli, tmp_path: Path, name: str, *overrides: str) -> tuple[dict[str, float], float]:
    """A shipped config trained from tmp_path (its data path made absolute): its test metrics and seconds."""
    started = time.perf_counter()
    code, _, err = run_cli(ROOT / f"configs/{name}.yaml", f"data.path={ROOT}/configs/tables/{name}.csv", *overrides)
    seconds = time.perf_counter() - started
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return json.loads((run_dir / "summary.json").read_text())["metrics"], seconds


def test_iris_trains_to_90_percent_test_accuracy_in_seconds(tmp_path, run_cli):
    metrics, seconds = train_shipped(run_cli, tmp_path, "iris", "log.pictures=false")
    assert metrics["test/accuracy"] >= 0.9
    assert seconds < 60  # about 1 s on an idle laptop CPU; generous for a busy CI machine


def test_diabetes_explains_a_third_of_the_variance_in_seconds(tmp_path, run_cli):
    metrics, seconds = train_shipped(run_cli, tmp_path, "diabetes", "log.pictures=false")
    assert metrics["test/r2"] >= 0.3  # about 0.45, what linear regression gets on this split too
    assert seconds < 60  # about 1 s on an idle laptop CPU; generous for a busy CI machine


def test_predict_reads_new_rows_of_a_table(run_cli, tmp_path):
    root = Path(__file__).resolve().parents[1]
    table = root / "configs" / "tables" / "iris.csv"
    assert run_cli(root / "configs" / "iris.yaml", f"data.path={table}", "train.epochs=20")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "iris").iterdir()
    rows = table.read_text().splitlines()
    (tmp_path / "new.csv").write_text("\n".join([rows[0], rows[1], rows[-1]]) + "\n")  # a setosa, a virginica
    code, out, err = run_cli("predict", run_dir, "new.csv", "--out", "p.csv")
    assert code == 0, err
    assert "new.csv:2  setosa" in out and "new.csv:3  virginica" in out
    assert (tmp_path / "p.csv").read_text().splitlines()[1].startswith("new.csv:2,setosa,0.")
    (tmp_path / "bad.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,x,0.2\n")
    code, _, err = run_cli("predict", run_dir, "bad.csv")
    assert code == 2 and "bad.csv line 2: column 'petal_length' holds 'x', not a number" in err


def test_predict_gives_numbers_for_a_regression_table(run_cli, tmp_path):
    root = Path(__file__).resolve().parents[1]
    table = root / "configs" / "tables" / "diabetes.csv"
    assert run_cli(root / "configs" / "diabetes.yaml", f"data.path={table}", "train.epochs=5")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "diabetes").iterdir()
    features = [",".join(line.split(",")[:10]) for line in table.read_text().splitlines()[:3]]
    (tmp_path / "new.csv").write_text("\n".join(features) + "\n")  # the target column left out
    code, out, err = run_cli("predict", run_dir, "new.csv")
    assert code == 0, err
    values = [float(line.split()[1]) for line in out.splitlines() if line.startswith("new.csv:")]
    assert len(values) == 2 and all(0 < v < 500 for v in values) and "%" not in out


@pytest.mark.parametrize(
    ("text", "kind", "value", "what"),
    [
        ("1,234", "almost", 1234.0, "either"),
        ("3,5", "almost", 3.5, "decimal"),
        ("1.234,5", "almost", 1234.5, "decimal"),
        ("$1,234.50", "almost", 1234.5, "$"),
        ("12%", "almost", 12.0, "%"),
        ("12 kg", "almost", 12.0, "kg"),
        ("\u22125", "almost", -5.0, ""),
        ("1 234", "almost", 1234.0, ""),
        ("2.5", "number", 2.5, ""),
        ("#N/A", "missing", None, ""),
        ("1O5", "text", None, ""),
        ("2020-01-01", "text", None, ""),
        ("Paris", "text", None, ""),
    ],
)
def test_the_cell_reader_says_what_a_cell_almost_is(text, kind, value, what):
    cell = read_cell(text)
    assert (cell.kind, cell.value) == (kind, value)
    assert what in (cell.comma, cell.unit) or not what


def test_a_dash_or_none_is_missing_among_numbers_and_a_category_among_words():
    assert read_cell("-", among_numbers=True).kind == "missing" and read_cell("-").kind == "text"
    assert read_cell("none", among_numbers=True).kind == "missing" and read_cell("none").kind == "text"


def test_a_semicolon_file_with_decimal_commas_is_read_and_said_in_one_line(tmp_path, capsys):
    (tmp_path / "houses.csv").write_text(
        "rooms;area;price\n" + "".join(f"{r};{r * 20},5;{r * 100}\n" for r, _, _ in HOUSES)
    )
    data = build_data(table(tmp_path / "houses.csv"), CPU, 0)
    assert data.info["mean"]["area"] == pytest.approx(2.8 * 20 + 0.5)
    err = capsys.readouterr().err
    assert "houses.csv: its cells are separated by semicolons, not commas: read it so" in err
    assert "column 'area': 10 cells written with a decimal comma read as numbers, e.g. '60,5' as 60.5" in err


def test_thousands_separators_are_read_when_a_decimal_point_says_what_the_commas_are(tmp_path, capsys):
    rows = [(rooms, city, f'"{price // 100},{price % 100:03d}"') for rooms, city, price in HOUSES]
    rows[0] = (3, "Paris", '"3,100.50"')
    data = build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert data.train.targets[:2, 0].tolist() == [3100.5, 1080.0]
    assert "column 'price': 10 cells written with commas between thousands read as numbers" in capsys.readouterr().err


def test_commas_that_read_two_ways_name_the_column_and_the_cells(tmp_path):
    rows = [(rooms, city, f'"1,{price:03d}"') for rooms, city, price in HOUSES]
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    message = caught.value.message
    assert "houses.csv column 'price' holds numbers such as '1,310' (lines 2, 3, 4, 5, 6, ... (10 in all))" in message
    assert "read as 1310 with a comma between thousands or as 1.31 with a decimal comma" in message
    assert caught.value.key == "data.path" and "decimal point" in caught.value.fix


def test_a_column_that_is_not_used_may_stay_ambiguous(tmp_path):
    rows = [(rooms, f'"1,{i:03d}"', price) for i, (rooms, _, price) in enumerate(HOUSES)]
    write_csv(tmp_path / "houses.csv", rows)
    data = build_data(table(tmp_path / "houses.csv", features=["rooms"]), CPU, 0)
    assert data.info["features"] == ["rooms"]


def test_mixed_units_and_mixed_percentages_are_errors_that_name_each_kind(tmp_path):
    weights = ["12kg", "500g", "3kg", "4kg", "1kg", "2kg", "7kg", "8kg", "9kg", "5kg"]
    rows = [(w, city, price) for w, (_, city, price) in zip(weights, HOUSES, strict=True)]
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "w.csv", rows, header="weight,city,price")), CPU, 0)
    assert (
        "column 'weight' mixes units or symbols: 'kg' in '12kg' (lines 2, 4, 5, 6, 7, ... (9 in all)); 'g' in '500g'"
        in (caught.value.message)
    )
    rates = ["10%", "0.1", "12%", "13%", "14%", "15%", "16%", "17%", "18%", "19%"]
    rows = [(rate, city, price) for rate, (_, city, price) in zip(rates, HOUSES, strict=True)]
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "r.csv", rows, header="rate,city,price")), CPU, 0)
    assert (
        "percentages such as '10%' (lines 2, 4, 5, 6, 7, ... (9 in all)) and numbers without '%' such as '0.1' (line 3)"
        in (caught.value.message)
    )


def test_one_currency_throughout_a_column_is_dropped(tmp_path, capsys):
    rows = [(rooms, city, f"${price}") for rooms, city, price in HOUSES]
    data = build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert data.train.targets[:, 0].tolist() == [price for _, _, price in HOUSES]
    assert "10 cells written with '$' read as numbers, e.g. '$310' as 310" in capsys.readouterr().err


def test_missing_markers_are_missing_among_numbers_and_the_fix_names_the_median(tmp_path):
    rows = [list(row) for row in HOUSES]
    rows[2][0], rows[5][0], rows[7][1] = "-", "#N/A", "none"  # 'none' in a text column is a category
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert "houses.csv column 'rooms': 2 missing ('-' x1, '#N/A' x1), lines 4, 7" in caught.value.message
    assert "city" not in caught.value.message
    assert caught.value.fix == (
        "fill them in (the median of 'rooms' is 2.5), or delete those rows, or leave the column out: "
        "data.features: [city]"
    )


def test_pandas_row_numbers_an_empty_last_column_and_a_repeated_header_are_left_out(tmp_path, capsys):
    lines = ["Unnamed: 0,rooms,city,price,"] + [f"{i},{r},{c},{p}," for i, (r, c, p) in enumerate(HOUSES)]
    lines.insert(6, "Unnamed: 0,rooms,city,price,")  # a second file pasted below the first
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    data = build_data(table(tmp_path / "houses.csv"), CPU, 0)
    assert data.info["features"] == ["rooms", "city"] and data.train.num_samples == 10
    err = capsys.readouterr().err
    assert "its last column has no name and no values (each line ends with a comma): left out" in err
    assert "column 'Unnamed: 0' holds the row numbers 0, 1, ... (pandas writes them unless to_csv(index=False))" in err
    assert "line 7 repeats the header (files pasted together?): left out" in err


def test_utf16_is_read_and_the_windows_encoding_names_its_line(tmp_path, capsys):
    text = "rooms\tcity\tprice\n" + "".join(f"{r}\t{c}\t{p}\n" for r, c, p in HOUSES)
    (tmp_path / "houses.csv").write_bytes(text.encode("utf-16"))
    assert build_data(table(tmp_path / "houses.csv"), CPU, 0).train.num_samples == 10
    assert "read as UTF-16" in capsys.readouterr().err
    (tmp_path / "cities.csv").write_bytes("rooms,city,price\n3,Paris,310\n2,Montr\u00e9al,180\n".encode("cp1252"))
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "cities.csv"), CPU, 0)
    assert "cities.csv line 3 is not UTF-8 text" in caught.value.message and "'2,Montr\u00e9al,180'" in (
        caught.value.message
    )


def test_a_file_whose_first_line_is_data_has_no_header(tmp_path):
    write_csv(tmp_path / "houses.csv", HOUSES[1:], header="3,Paris,310")
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "houses.csv"), CPU, 0)
    assert caught.value.message.endswith(
        "line 1 holds data (3, Paris, 310), not the names of the columns: the file has no header"
    )
    assert "x1,x2,label" in caught.value.fix


def test_labels_that_do_not_start_at_zero_map_onto_the_outputs_in_order(tmp_path, capsys):
    rows = [(i, (-1, 1)[i % 2]) for i in range(12)]
    data = build_data(table(write_csv(tmp_path / "signs.csv", rows, header="x,label"), target="label"), CPU, 0)
    assert data.class_names == ["-1", "1"] and data.train.targets.tolist() == [i % 2 for i in range(12)]
    assert (
        "holds the class labels -1, 1, not 0..1: the model's outputs stand for them in order" in capsys.readouterr().err
    )
    rows = [(i, 1 + i % 10) for i in range(40)]
    data = build_data(table(write_csv(tmp_path / "stars.csv", rows, header="x,stars"), target="stars"), CPU, 0)
    assert data.num_classes == 10 and int(data.train.targets.max()) == 9
    assert "holds the class labels 1..10, not 0..9" in capsys.readouterr().err


def test_a_class_target_with_a_value_in_every_row_is_an_identifier_or_a_quantity(tmp_path):
    rows = [(i, f"person{i}", 100 + 7 * i) for i in range(12)]
    write_csv(tmp_path / "people.csv", rows, header="x,name,price")
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "people.csv", target="name"), CPU, 0)
    assert "target column 'name' holds a different value in each of its 12 rows" in caught.value.message
    assert caught.value.key == "data.target"
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "people.csv", target="price", task="classification", features=["x"]), CPU, 0)
    assert (
        caught.value.key == "data.task" and caught.value.fix == "set data.task: regression to predict the number itself"
    )


def test_regression_of_a_column_of_class_names_says_to_classify(tmp_path):
    write_csv(tmp_path / "houses.csv", HOUSES)
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "houses.csv", target="city", task="regression"), CPU, 0)
    assert (
        "target column 'city' holds text in 10 of 10 rows (Lyon, Nice, Paris; lines 2, 3, 4, 5, 6, ... (10 in all))"
        in (caught.value.message)
    )
    assert caught.value.fix.startswith("set data.task: classification")


def test_a_class_that_the_split_leaves_out_of_training_is_named_with_its_rows(tmp_path):
    rows = [(i, "rare" if i in (4, 5) else ("a" if i % 2 else "b")) for i in range(20)]
    write_csv(tmp_path / "kinds.csv", rows, header="x,kind")
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "kinds.csv", target="kind", val_split=0.5), CPU, 0)
    assert caught.value.message.startswith("class 'rare' of target column 'kind' has 2 rows (")
    assert "kinds.csv lines 6, 7), and the random split put none of them in training" in caught.value.message
    assert caught.value.key == "data.val_split"
    assert build_data(table(tmp_path / "kinds.csv", target="kind", val_split=0.0), CPU, 0).num_classes == 3


def test_a_class_missing_from_the_val_file_is_a_warning_kept_in_the_runs_diagnosis(tmp_path, write_config, run_cli):
    write_csv(tmp_path / "train.csv", [(i, "abc"[i % 3]) for i in range(30)], header="x,kind")
    write_csv(tmp_path / "val.csv", [(i, "ab"[i % 2]) for i in range(8)], header="x,kind")  # no row of class c
    data = build_data(table(tmp_path / "train.csv", target="kind", val_path=str(tmp_path / "val.csv")), CPU, 0)
    said = "1 of 3 classes have no row in the val split (c; 10 rows in all): val metrics say nothing about them"
    assert data.warnings == [said]
    text = "data: {dataset: csv, path: train.csv, val_path: val.csv, target: kind}\nmodel: {name: mlp, hidden: [8]}\n"
    config = write_config(text + "loss: cross_entropy\ntrain: {epochs: 1}\n")
    code, out, err = run_cli(config)
    assert code == 0, err
    assert out.count(f"warning: {said}") == 1  # said once, by the run's logger
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    assert said in (run_dir / "diagnosis.txt").read_text()
    code, out, err = run_cli("check", config)
    assert code == 0, err
    assert f"warning: {said}" in out


def test_predict_reads_new_rows_written_as_the_training_rows_were(tmp_path, write_config, run_cli):
    lines = ["rooms;area;label"] + [f"{i % 5};{i * 3},{i % 10};{'big' if i % 5 > 2 else 'small'}" for i in range(40)]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    text = (
        "data: {dataset: csv, path: houses.csv, target: label}\nmodel: {name: mlp, hidden: [8]}\ntrain: {epochs: 2}\n"
    )
    assert run_cli(write_config(text))[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    (tmp_path / "new.csv").write_text("rooms;area\n4;12,5\n0;3,5\n")
    code, out, err = run_cli("predict", run_dir, "new.csv")
    assert code == 0, err
    assert "new.csv:2" in out and "new.csv:3" in out and "decimal comma" in err


def test_apostrophes_and_lakh_groups_between_thousands_are_read(tmp_path, capsys):
    assert read_cell("1'234.50").value == 1234.5 and read_cell("12,34,567").value == 1234567
    rows = [(rooms, city, f"{price // 100}'{price % 100:03d}") for rooms, city, price in HOUSES]
    data = build_data(table(write_csv(tmp_path / "houses.csv", rows)), CPU, 0)
    assert data.train.targets[0, 0].item() == 3010
    assert "written with apostrophes between thousands read as numbers" in capsys.readouterr().err


def test_a_multiplier_on_some_cells_only_is_an_error(tmp_path):
    views = ["1.5k", "800", "2k", "3k", "4k", "950", "5k", "6k", "7k", "8k"]
    rows = [(v, city, price) for v, (_, city, price) in zip(views, HOUSES, strict=True)]
    with pytest.raises(UserError) as caught:
        build_data(table(write_csv(tmp_path / "views.csv", rows, header="views,city,price")), CPU, 0)
    assert "column 'views' holds numbers with 'k' such as '1.5k'" in caught.value.message
    assert "and without it such as '800' (lines 3, 7)" in caught.value.message


def test_a_text_column_with_a_value_per_row_is_no_category(tmp_path):
    rows = [(f"2024-05-{i + 1:02d}", city, price) for i, (_, city, price) in enumerate(HOUSES * 2)]
    write_csv(tmp_path / "days.csv", rows, header="day,city,price")
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "days.csv", task="regression"), CPU, 0)
    assert "days.csv column 'day' holds 20 distinct values in 20 rows (e.g. '2024-05-01'; digits and separators" in (
        caught.value.message
    )
    assert caught.value.key == "data.features" and caught.value.fix == "leave it out: data.features: [city]"
    listed = build_data(table(tmp_path / "days.csv", task="regression", features=["day", "city"]), CPU, 0)
    (warning,) = listed.warnings  # listed on purpose: a warning the run's logger says, not an error
    assert "column 'day' holds 20 distinct values in 20 rows" in warning
    assert warning.endswith("and the model can learn little from it")


def test_a_column_of_row_numbers_is_left_out_of_the_default_features(tmp_path, capsys):
    rows = [(i + 1, rooms, city, price) for i, (rooms, city, price) in enumerate(HOUSES)]
    write_csv(tmp_path / "houses.csv", rows, header="Id,rooms,city,price")
    assert build_data(table(tmp_path / "houses.csv"), CPU, 0).info["features"] == ["rooms", "city"]
    assert "column 'Id' holds the row numbers 1, 2, 3, ...: left out of the features" in capsys.readouterr().err
    listed = build_data(table(tmp_path / "houses.csv", features=["Id", "rooms"]), CPU, 0)
    assert listed.info["features"] == ["Id", "rooms"]


def test_decimal_commas_in_a_comma_separated_file_are_named_as_the_cause(tmp_path):
    (tmp_path / "houses.csv").write_text("rooms,area,price\n3,62,5,310\n2,48,0,180\n")
    with pytest.raises(UserError) as caught:
        build_data(table(tmp_path / "houses.csv"), CPU, 0)
    assert caught.value.message.endswith(
        "houses.csv line 2: 4 cells, but the header (line 1) names 3 columns (rooms, area, price)"
    )
    assert caught.value.fix.startswith("numbers written with a decimal comma (3,5) split into two cells here")
