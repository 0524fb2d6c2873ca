"""A stopped run carries on from its checkpoint with the same numbers as a run that never stopped."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.checkpoint import load_checkpoint
from trainer.components.data import InMemoryLoader

DROPOUT = ["model.dropout=0.3"]  # dropout draws random numbers every step: resuming must restore them too


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir: Path) -> list[tuple[float, float]]:
    return [(row["train/loss"], row.get("val/loss")) for row in rows(run_dir)]


def test_resumed_run_gives_the_same_losses_to_the_last_bit(write_config, run_cli, tmp_path):
    path = write_config(SYNTHETIC)
    assert run_cli(path, "name=whole", "train.epochs=3", *DROPOUT)[0] == 0
    assert run_cli(path, "name=parts", "train.epochs=1", *DROPOUT)[0] == 0
    (whole,) = (tmp_path / "runs" / "whole").iterdir()
    (parts,) = (tmp_path / "runs" / "parts").iterdir()
    code, out, _ = run_cli("resume", parts, "train.epochs=3")
    assert code == 0
    assert "resuming with train.epochs changed: 1 -> 3" in out
    assert losses(parts) == losses(whole)
    assert [row["epoch"] for row in rows(parts)] == [1, 2, 3]


def test_resume_refuses_a_changed_model_and_says_what_differs(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=1")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    code, _, err = run_cli("resume", run_dir, "model.hidden=[8]", "data.batch_size=16")
    assert code == 2
    assert "model.hidden: was [16]" in err and "now [8]" in err and "data.batch_size: was 32" in err
    code, _, err = run_cli(write_config(SYNTHETIC), "optimizer.lr=0.5", "--resume", run_dir)
    assert code == 2 and "optimizer.lr: was 0.01" in err


def test_ctrl_c_mid_epoch_saves_and_resume_carries_on_exactly(tmp_path):
    def make(out_dir: Path) -> tuple[Trainer, InMemoryLoader]:
        torch.manual_seed(0)
        inputs, targets = torch.randn(300, 4), torch.randint(0, 3, (300,))
        model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 3))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        trainer = Trainer(model, torch.nn.CrossEntropyLoss(), optimizer, epochs=3, out_dir=out_dir, log_every=3)
        return trainer, InMemoryLoader(inputs, targets, 32, shuffle=True, seed=0)

    trainer, loader = make(tmp_path / "whole")
    expected = trainer.fit(loader)

    trainer, loader = make(tmp_path / "parts")
    original_step = trainer.optimizer_step

    def step_then_press_ctrl_c() -> None:
        original_step()
        trainer.stop_requested = trainer.state.step == 14  # in the middle of epoch 2
        if trainer.stop_requested:
            trainer.optimizer_step = original_step

    trainer.optimizer_step = step_then_press_ctrl_c
    with pytest.raises(Exception, match="stopped by Ctrl-C after step 14"):
        trainer.fit(loader)
    checkpoint = load_checkpoint(tmp_path / "parts" / "checkpoints" / "last.pt")
    assert checkpoint["state"]["epoch"] == 1 and checkpoint["state"]["batch"] == 4

    trainer, loader = make(tmp_path / "parts")
    trainer.load(checkpoint)
    assert trainer.fit(loader) == expected
    assert losses(tmp_path / "parts") == losses(tmp_path / "whole")
    # The step log right after the resume (step 15) averages steps 13-15, as the uninterrupted run's did.
    assert step_losses(tmp_path / "parts") == step_losses(tmp_path / "whole")


def step_losses(run_dir: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars("train/loss")]


LONG = [
    "data.samples=6000",
    "model.hidden=[64,64]",
    "model.dropout=0.2",
    "train.epochs=6",
    "data.batch_size=16",
    "log.every_n_steps=20",
    "seed=3",
]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *args], cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def wait_for_line(process: subprocess.Popen, text: str) -> bool:
    """True once the process prints `text`; False if it ends first."""
    return any(text in line for line in process.stdout)


@pytest.mark.slow
def test_killed_run_loses_at_most_the_epoch_in_progress(write_config, tmp_path):
    path = write_config(SYNTHETIC)
    whole = start([str(path), "name=whole", *LONG], tmp_path)
    whole.communicate()
    assert whole.returncode == 0
    chance = random.Random(0)
    process = start([str(path), "name=killed", *LONG], tmp_path)
    kills = 0
    while True:
        if not wait_for_line(process, "epoch "):  # killed after the last epoch: the resume only tests and sums up
            process.wait()
            break
        try:  # an epoch has ended; kill at a random moment of the next ones
            process.wait(timeout=chance.uniform(0.05, 1.5))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            break
        (run_dir,) = (tmp_path / "runs" / "killed").iterdir()
        load_checkpoint(run_dir / "checkpoints" / "last.pt")  # never half-written
        process = start(["resume", str(run_dir)], tmp_path)
    assert process.returncode == 0 and kills >= 1
    (run_dir,) = (tmp_path / "runs" / "killed").iterdir()
    (reference,) = (tmp_path / "runs" / "whole").iterdir()
    assert losses(run_dir) == losses(reference)


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_prints_the_resume_command(write_config, tmp_path):
    process = start([str(write_config(SYNTHETIC)), *LONG], tmp_path)
    assert wait_for_line(process, "epoch 1/6")
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]["step"] > 0
    process = start(["resume", str(run_dir)], tmp_path)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and "test/accuracy" in out


def test_resuming_a_finished_run_says_how_to_train_longer(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=1")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    before = (run_dir / "metrics.jsonl").read_text()
    code, out, _ = run_cli("resume", run_dir)
    assert code == 0 and "nothing to resume" in out and "train.epochs=6" in out
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_a_run_stopped_while_testing_resumes_to_a_complete_summary(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC))[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    finished = json.loads((run_dir / "summary.json").read_text())["metrics"]
    (run_dir / "summary.json").unlink()  # as if killed after the last epoch's checkpoint, during the test pass
    code, _, err = run_cli("resume", run_dir)
    assert code == 0, err
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == finished


def test_resume_may_change_where_the_data_and_runs_are_and_lengthen_a_planned_schedule(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=1", "scheduler=one_cycle")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    code, out, _ = run_cli("resume", run_dir, "train.epochs=2")
    assert code == 0 and "epoch 2 gets a new one_cycle of its own (a warm restart" in out
    code, out, _ = run_cli("resume", run_dir, "log.dir=elsewhere", "train.device=cpu")
    assert code == 0 and "nothing to resume" in out


def test_an_early_stopped_run_resumes_only_with_more_patience(write_config, run_cli, tmp_path):
    stopping = "train.early_stopping={monitor: train/loss, mode: max, patience: 1}"
    assert run_cli(write_config(SYNTHETIC), "train.epochs=6", stopping)[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert len(rows(run_dir)) == 2
    code, out, _ = run_cli("resume", run_dir)
    assert code == 0 and "stopped early: nothing to resume" in out and len(rows(run_dir)) == 2
    code, out, _ = run_cli("resume", run_dir, "train.early_stopping.patience=2")
    assert code == 0 and len(rows(run_dir)) == 3


def test_files_that_are_not_checkpoints_are_named_as_such(tmp_path, run_cli):
    (tmp_path / "notes.pt").write_text("hello")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "weights.pt")
    code, _, err = run_cli("eval", tmp_path / "notes.pt")
    assert code == 2 and "is not a PyTorch checkpoint (or it was cut short)" in err
    code, _, err = run_cli("eval", tmp_path / "weights.pt")
    assert code == 2 and "holds weights but not the config they were trained with" in err
