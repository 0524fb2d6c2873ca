"""A real TensorBoard server, started on a free localhost port, serves what a learner looks at over its HTTP API:
the scalars, train and val of each metric on one chart, the HParams columns that vary, and the Text tab."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.board_server import tensorboard
from tests.conftest import SYNTHETIC


def ask(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_tensorboard_serves_the_run_scalars(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC))[0] == 0
    with tensorboard(tmp_path / "runs") as server:
        tags = ask(f"{server}/data/plugin/scalars/tags")
    (run,) = [name for name in tags if "/train" not in name and "/val" not in name]
    assert run.startswith("tiny/")
    assert {"train/loss", "val/loss", "val/accuracy", "test/accuracy", "lr"} <= set(tags[run])
    assert {"loss", "accuracy"} <= set(tags[f"{run}/train"]) & set(tags[f"{run}/val"])  # one chart, two colours


@pytest.mark.slow
def test_train_and_val_share_a_chart_and_hparams_shows_what_varied(write_config, run_cli, tmp_path):
    import re

    config = write_config(SYNTHETIC)
    assert run_cli(config)[0] == 0
    assert run_cli(config, "optimizer.lr=0.05", "data.batch_size=16")[0] == 0
    with tensorboard(tmp_path / "runs" / "tiny") as server:
        layout = ask(f"{server}/data/plugin/custom_scalars/layout")
        experiment = ask(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""})
        scalar_tags = ask(f"{server}/data/plugin/scalars/tags")
        text_tags = ask(f"{server}/data/plugin/text/tags")
        (run, *_) = sorted(text_tags)
        config_text = ask(f"{server}/data/plugin/text/text?run={run}&tag=config/text_summary")
        diagnosis = ask(f"{server}/data/plugin/text/text?run={run}&tag=diagnosis/text_summary")

    # The first category's first chart is the loss, and its patterns match both the train and the val curve.
    first = layout["category"][0]
    assert first["title"] == "train and val"
    loss, *others = first["chart"]
    assert loss["title"] == "loss" and "accuracy" in [chart["title"] for chart in others]
    patterns = loss["multiline"]["tag"]
    plotted = {
        (name, tag) for name, tags in scalar_tags.items() for tag in tags if any(re.search(p, tag) for p in patterns)
    }
    assert plotted == {(f"{name}/{split}", "loss") for name in text_tags for split in ("train", "val")}

    columns = [info["name"] for info in experiment["hparamInfos"]]
    assert {"optimizer.lr", "data.batch_size", "model.name"} <= set(columns) and len(columns) <= 5
    assert not [name for name in columns if name.startswith("log.")]  # settings that changed nothing
    types = {info["name"]: info["type"] for info in experiment["hparamInfos"]}
    assert types["optimizer.lr"] == "DATA_TYPE_FLOAT64" and types["model.name"] == "DATA_TYPE_STRING"
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"val/loss", "test/accuracy"} <= metrics and not metrics & {"lr", "epoch"}

    assert "optimizer:" in config_text[0]["text"] and "lr: 0.01" in config_text[0]["text"]
    assert "No warnings" in diagnosis[-1]["text"]
