"""The JSON Schema editors use: in sync with the config classes, and every shipped config valid under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.schema import SCHEMA_COMMENT, SCHEMA_FILE, config_schema
from trainer.yamlio import load_config_file

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def validator():
    return jsonschema.Draft202012Validator(config_schema())


def test_the_shipped_schema_is_up_to_date():
    shipped = json.loads((ROOT / "configs" / SCHEMA_FILE).read_text())
    assert shipped == config_schema(), "regenerate it: python -m trainer schema -o configs/leaptrain.schema.json"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_points_at_the_schema_and_is_valid_under_it(path):
    assert path.read_text().splitlines()[0] == SCHEMA_COMMENT
    data, _ = load_config_file(path)
    assert list(validator().iter_errors(data)) == []


def test_the_schema_flags_typos_and_wrong_types_as_an_editor_would():
    errors = lambda data: [e.message for e in validator().iter_errors(data)]  # noqa: E731
    good = {"data": {"dataset": "mnist"}, "model": {"name": "cnn"}, "loss": "mse", "optimizer": {"name": "sgd"}}
    assert errors(good) == []
    assert errors({**good, "trian": {"epochs": 3}})  # a misspelled section
    assert errors({**good, "model": {"name": "cnn", "chanels": [8]}})  # a misspelled key of a built-in model
    assert errors({**good, "data": {"dataset": "mnist", "batch_size": "big"}})
    assert errors({**good, "model": {"name": "resnet18", "anything": 1}}) == []  # torchvision: checked at load


def test_schema_command_prints_and_writes_it(run_cli, tmp_path):
    code, out, _ = run_cli("schema")
    assert code == 0 and json.loads(out) == config_schema()
    code, out, _ = run_cli("schema", "-o", tmp_path / "s.json")
    assert code == 0 and SCHEMA_COMMENT in out
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "leaptrain config"


def test_the_config_reference_in_docs_is_up_to_date():
    from trainer.schema import reference_markdown

    shipped = (ROOT / "docs" / "config.md").read_text()
    assert shipped == reference_markdown(), "regenerate it: python -m trainer schema --reference -o docs/config.md"
    for key in ("`batch_size`", "`early_stopping`", "`crop_padding`", "`target`", "`storage`", "`progress`"):
        assert key in shipped
