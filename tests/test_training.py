"""Training really learns, is repeatable, and leaves a complete run folder."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.checkpoint import load_checkpoint
from trainer.components.splits import InMemoryLoader


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


def lr_per_step(run_dir: Path) -> list[tuple[int, float]]:
    """The lr TensorBoard holds for each optimizer step (the run logs every step)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(scalar.step, scalar.value) for scalar in events.Scalars("lr")]


def lr_per_epoch(run_dir: Path) -> list[float]:
    """The lr each epoch trained with, as metrics.jsonl records it."""
    return [json.loads(line)["lr"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def run_schedule(write_config, run_cli, tmp_path, scheduler: str, epochs: int = 4) -> Path:
    assert (
        run_cli(write_config(SYNTHETIC), f"scheduler={scheduler}", f"train.epochs={epochs}", "log.every_n_steps=1")[0]
        == 0
    )
    return only_run(tmp_path)


def test_step_schedule_lowers_the_lr_by_gamma_every_step_size_epochs(write_config, run_cli, tmp_path):
    run_dir = run_schedule(write_config, run_cli, tmp_path, "{name: step, step_size: 2, gamma: 0.1}")
    assert lr_per_epoch(run_dir) == pytest.approx([0.01, 0.01, 0.001, 0.001])


def test_step_schedule_defaults_lower_the_lr_every_epoch(write_config, run_cli, tmp_path):
    assert lr_per_epoch(run_schedule(write_config, run_cli, tmp_path, "step")) == pytest.approx(
        [0.01 * 0.7**epoch for epoch in range(4)]
    )


def test_exponential_schedule_multiplies_the_lr_by_gamma_each_epoch(write_config, run_cli, tmp_path):
    run_dir = run_schedule(write_config, run_cli, tmp_path, "{name: ExponentialLR, gamma: 0.5}")
    assert lr_per_epoch(run_dir) == pytest.approx([0.01, 0.005, 0.0025, 0.00125])


def test_plateau_lowers_the_lr_only_after_patience_epochs_without_improvement(write_config, run_cli, tmp_path):
    # threshold 0.99: only a val/loss 100x lower would count as better, so every epoch after the first is a bad
    # one; with patience 1 the second bad epoch (epoch 3) halves the lr for epoch 4.
    plateau = "{name: plateau, patience: 1, factor: 0.5, threshold: 0.99}"
    assert lr_per_epoch(run_schedule(write_config, run_cli, tmp_path, plateau)) == pytest.approx(
        [0.01, 0.01, 0.01, 0.005]
    )


def test_plateau_keeps_the_lr_while_val_loss_improves(write_config, run_cli, tmp_path):
    run_dir = run_schedule(write_config, run_cli, tmp_path, "{name: plateau, patience: 1, factor: 0.5}")
    val_losses = [json.loads(line)["val/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert val_losses == sorted(val_losses, reverse=True)  # the premise: val/loss falls every epoch
    assert lr_per_epoch(run_dir) == pytest.approx([0.01] * 4)


def test_one_cycle_warms_up_to_the_lr_then_anneals_far_below_it(write_config, run_cli, tmp_path):
    lrs = [lr for _, lr in lr_per_step(run_schedule(write_config, run_cli, tmp_path, "one_cycle"))]
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1
    assert max(lrs) == pytest.approx(0.01, rel=0.05)  # max_lr is the config's lr
    assert lrs[0] < 0.01 / 10  # starts low (lr / 25)...
    rise, fall = lrs[: peak + 1], lrs[peak:]  # each value is the lr its step trained with
    assert all(a <= b for a, b in itertools.pairwise(rise))  # ...rises...
    assert all(a >= b for a, b in itertools.pairwise(fall))  # ...then only falls...
    assert fall[-1] < lrs[0] / 100  # ...to far below where it started


def test_cosine_falls_from_the_lr_to_zero_along_a_half_cosine(write_config, run_cli, tmp_path):
    run_dir = run_schedule(write_config, run_cli, tmp_path, "cosine")
    steps = lr_per_step(run_dir)
    total = load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]["step"]
    assert [step for step, _ in steps] == list(range(1, total + 1))
    # The lr a step trained with: step s follows s - 1 steps of the schedule.
    expected = [0.01 * (1 + math.cos(math.pi * (step - 1) / total)) / 2 for step, _ in steps]
    assert [lr for _, lr in steps] == pytest.approx(expected, abs=1e-7)
    assert lr_per_epoch(run_dir)[-1] == pytest.approx(0.0, abs=1e-9)
