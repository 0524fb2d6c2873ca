"""Training really learns, is repeatable, and leaves a complete run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.checkpoint import load_checkpoint
from trainer.components.data import InMemoryLoader


def only_run(tmp_path: Path, name: str = "tiny") -> Path:
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return run_dir


def epoch_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["train/loss"] for line in lines]


def test_training_on_synthetic_data_lowers_the_loss(write_config, run_cli, tmp_path):
    code, _, _ = run_cli(write_config(SYNTHETIC), "train.epochs=4")
    assert code == 0
    losses = epoch_losses(only_run(tmp_path))
    assert len(losses) == 4
    assert losses[-1] < 0.5 * losses[0]
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["metrics"]["test/accuracy"] > 0.9


def test_same_seed_gives_identical_losses(write_config, run_cli, tmp_path):
    path = write_config(SYNTHETIC)
    assert run_cli(path)[0] == 0
    assert run_cli(path)[0] == 0
    first, second = sorted((tmp_path / "runs" / "tiny").iterdir())
    assert epoch_losses(first) == epoch_losses(second)
    other_seed = run_cli(path, "seed=1", "name=seed1")
    assert other_seed[0] == 0
    assert epoch_losses(only_run(tmp_path, "seed1")) != epoch_losses(first)


def test_rerunning_the_saved_config_reproduces_the_run(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "optimizer.lr=3e-2", "model.hidden=[8,8]")[0] == 0
    first = only_run(tmp_path)
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["optimizer"]["lr"] == 0.03 and saved["model"]["hidden"] == [8, 8]
    assert saved["train"]["precision"] == "fp32"  # defaults are written out too
    assert run_cli(first / "config.yaml")[0] == 0
    second = next(p for p in (tmp_path / "runs" / "tiny").iterdir() if p != first)
    assert epoch_losses(second) == epoch_losses(first)


def test_run_folder_holds_every_promised_file(write_config, run_cli, tmp_path):
    code, out, _ = run_cli(write_config(SYNTHETIC))
    assert code == 0
    run_dir = only_run(tmp_path)
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "checkpoints"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    assert not [p for p in run_dir.rglob("*.tmp")]  # atomic writes leave no temporary files
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == 2 and summary["device"] == "cpu"
    assert {"val/loss", "val/accuracy", "test/loss", "test/accuracy", "train/loss"} <= set(summary["metrics"])
    assert summary["versions"]["torch"] == torch.__version__
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert last["state"]["epoch"] == 2 and best["state"]["epoch"] == summary["best_epoch"]
    assert last["config"]["name"] == "tiny"
    assert f"run saved in {run_dir.relative_to(tmp_path)}" in out
    assert "tensorboard --logdir" in out


def test_event_files_hold_the_scalars_and_real_hparams(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC))[0] == 0
    run_dir = only_run(tmp_path)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "lr", "val/loss", "val/accuracy", "train/accuracy", "test/accuracy", "test/loss"} <= tags
    assert len(events.Scalars("train/loss")) >= 4  # every 5 steps of 12 per epoch
    assert [s.value for s in events.Scalars("val/loss")] == pytest.approx(
        [json.loads(line)["val/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    )
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["optimizer.lr"].number_value == pytest.approx(0.01)
    assert start.hparams["model.name"].string_value == "mlp"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.SummaryMetadata("_hparams_/experiment").plugin_data.content
    ).experiment
    assert "test/accuracy" in {m.name.tag for m in experiment.metric_infos}
    test_accuracy = events.Scalars("test/accuracy")[-1].value
    summary = json.loads((run_dir / "summary.json").read_text())
    assert test_accuracy == pytest.approx(summary["metrics"]["test/accuracy"])


def test_python_api_trains_a_custom_model_with_a_custom_loss(tmp_path):
    torch.manual_seed(0)
    inputs = torch.randn(512, 4)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = torch.nn.Linear(4, 1)

    def squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((prediction.squeeze(1) - target) ** 2).mean()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, squared_error, optimizer, epochs=5, out_dir=tmp_path / "run")
    metrics = trainer.fit(InMemoryLoader(inputs, targets, 32, shuffle=True))
    assert metrics["train/loss"] < 1e-3
    assert "train/accuracy" not in metrics  # a regression loss: no accuracy
    assert torch.allclose(model.weight, torch.tensor([[1.0, -2.0, 0.5, 3.0]]), atol=0.05)


def test_bf16_autocast_trains_on_cpu(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.precision=bf16", "train.epochs=3")[0] == 0
    losses = epoch_losses(only_run(tmp_path))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("scheduler", ["step", "cosine", "one_cycle", "plateau", "{name: ExponentialLR, gamma: 0.5}"])
def test_schedulers_change_the_learning_rate(write_config, run_cli, tmp_path, scheduler):
    assert run_cli(write_config(SYNTHETIC), f"scheduler={scheduler}", "train.epochs=3")[0] == 0
    rows = [json.loads(line) for line in (only_run(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    lrs = [row["lr"] for row in rows]
    if scheduler == "plateau":
        assert lrs[0] == pytest.approx(0.01)
    else:
        assert lrs[-1] < 0.01
