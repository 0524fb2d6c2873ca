"""A stopped run carries on from its checkpoint with the same numbers as a run that never stopped."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.checkpoint import checksum, load_checkpoint
from trainer.components.splits import InMemoryLoader

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


# Every kind of schedule, with gradient accumulation and with early stopping: each changes as training goes on, and
# a resumed run must carry its state on (the lr, the plateau's count, the accumulated batches, the epochs without
# improvement), not start it again.
RESUMED_KINDS = {
    "step": ["scheduler=step"],  # lr x 0.7 after every epoch
    # val/loss never falls by half: after two epochs without that, the lr halves
    "plateau": ["scheduler={name: plateau, patience: 1, factor: 0.5, threshold: 0.5}"],
    "exponential": ["scheduler={name: ExponentialLR, gamma: 0.5}"],
    "one_cycle": ["scheduler=one_cycle"],
    "cosine": ["scheduler=cosine"],
    # 12 batches an epoch in groups of 5, 5 and 2: 3 steps an epoch
    "step, accumulating 5 batches": ["scheduler=step", "train.accumulate=5"],
    "one_cycle, accumulating 5 batches": ["scheduler=one_cycle", "train.accumulate=5"],
    # only epoch 1 improves by 10: stops after epoch 3, when epochs 2 and 3 have not improved
    "early stopping": ["train.early_stopping={monitor: val/loss, min_delta: 10, patience: 2}"],
}
PLANNED = ("one_cycle", "cosine")  # planned for the run's length: resumed longer, they restart (not the same run)
STOPS = {
    "Ctrl-C in the middle of epoch 3": "middle",
    "Ctrl-C at the last step of epoch 2": "end of epoch",
    "trained 2 epochs, resumed with train.epochs=4": "longer",
}


def press_ctrl_c_at_step(monkeypatch, step: int) -> None:
    """As if Ctrl-C were pressed during that optimizer step: the loop finishes it, saves and stops (exit 130)."""
    original = Trainer.optimizer_step

    def step_then_stop(self: Trainer) -> None:
        original(self)
        if self.state.step == step:
            self.stop_requested = True
            monkeypatch.setattr(Trainer, "optimizer_step", original)

    monkeypatch.setattr(Trainer, "optimizer_step", step_then_stop)


def step_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard holds, by tag: the loss and the lr at each step log, and each epoch's values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def summary(run_dir: Path) -> dict:
    found = json.loads((run_dir / "summary.json").read_text())
    del found["wall_seconds"]
    return found


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("kind", RESUMED_KINDS)
def test_every_schedule_resumes_to_the_numbers_of_a_run_that_never_stopped(
    kind, stop, write_config, run_cli, tmp_path, monkeypatch
):
    if STOPS[stop] == "longer" and kind.startswith(PLANNED):
        pytest.skip("a planned schedule resumed longer gets a warm restart: tested in test_printed_commands.py")
    path = write_config(SYNTHETIC)
    args = ["train.epochs=4", *RESUMED_KINDS[kind], *DROPOUT]
    assert run_cli(path, "name=whole", *args)[0] == 0
    (whole,) = (tmp_path / "runs" / "whole").iterdir()
    expected = rows(whole)
    if kind == "early stopping":
        assert [row["epoch"] for row in expected] == [1, 2, 3]  # stopped early, on the epoch the counter says
    else:
        assert len({row["lr"] for row in expected}) > 1  # the lr changes from epoch to epoch: a resume must follow it

    if STOPS[stop] == "longer":
        assert run_cli(path, "name=parts", *args, "train.epochs=2")[0] == 0
        resume = ["train.epochs=4"]
    else:
        steps_after_epoch_2 = expected[1]["step"]
        at = steps_after_epoch_2 + 1 if STOPS[stop] == "middle" else steps_after_epoch_2
        press_ctrl_c_at_step(monkeypatch, at)
        code, _, err = run_cli(path, "name=parts", *args)
        assert code == 130 and f"stopped by Ctrl-C after step {at}" in err
        resume = []
    (parts,) = (tmp_path / "runs" / "parts").iterdir()
    code, _, err = run_cli("resume", parts, *resume)
    assert code == 0, err

    assert rows(parts) == expected  # losses, accuracies, the lr and the step count of every epoch
    scalars = step_scalars(parts)
    if STOPS[stop] == "longer":  # the 2-epoch run was tested when it finished: that point stays in its curves
        finished_at = expected[1]["step"]
        scalars = {
            tag: [p for p in points if not (tag.startswith("test/") and p[0] == finished_at)]
            for tag, points in scalars.items()
        }
    assert scalars == step_scalars(whole)  # the lr and loss at every step log too
    assert summary(parts) == summary(whole)  # the test metrics, the best epoch, where it stopped
    got = load_checkpoint(parts / "checkpoints" / "last.pt")
    want = load_checkpoint(whole / "checkpoints" / "last.pt")
    for part in ("model", "optimizer", "scheduler", "state", "metrics", "rng"):  # all but the config (its name)
        assert checksum(got[part]) == checksum(want[part]), f"last.pt's {part} differs"


@pytest.mark.parametrize("kind", PLANNED)
def test_a_schedule_lengthened_on_resume_and_stopped_in_its_warm_restart_carries_on_to_the_same_numbers(
    kind, write_config, run_cli, tmp_path, monkeypatch
):
    """A planned schedule resumed longer runs a new segment; stopped inside it, the resume must carry on in that
    segment (not begin it again, nor the first one)."""
    path = write_config(SYNTHETIC)
    args = ["train.epochs=2", f"scheduler={kind}", *DROPOUT]
    for name in ("whole", "parts"):
        assert run_cli(path, f"name={name}", *args)[0] == 0
    (whole,) = (tmp_path / "runs" / "whole").iterdir()
    (parts,) = (tmp_path / "runs" / "parts").iterdir()
    assert run_cli("resume", whole, "train.epochs=4")[0] == 0
    expected = rows(whole)
    press_ctrl_c_at_step(monkeypatch, expected[2]["step"] + 1)  # in the middle of epoch 4, the new segment's second
    assert run_cli("resume", parts, "train.epochs=4")[0] == 130
    code, _, err = run_cli("resume", parts)
    assert code == 0, err
    assert rows(parts) == expected
    assert step_scalars(parts) == step_scalars(whole)
    assert summary(parts) == summary(whole)


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


def start(args: list[str], cwd: Path, stderr: int = subprocess.DEVNULL, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *args], cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=stderr, env=env
    )


def wait_for_line(process: subprocess.Popen, start: str) -> bool:
    """True once the process prints a line that begins with `start`; False if it ends first."""
    return any(line.startswith(start) for line in process.stdout)


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
        # An epoch's line ("epoch 2/6  train/loss ..."), not "resuming ... after epoch 2": one epoch ends each time.
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
def test_ctrl_c_in_a_real_process_prints_the_resume_command_that_ends_the_run_as_if_never_stopped(
    write_config, run_cli, tmp_path, monkeypatch
):
    """The command is read from what the stopped process printed, and run as a learner would paste it."""
    config = str(write_config(SYNTHETIC))
    shorter = [*LONG, "train.epochs=3"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same threads in every process: the same rounding
    env = dict(os.environ)
    assert run_cli(config, "name=whole", *shorter)[0] == 0
    process = start([config, *shorter], tmp_path, stderr=subprocess.PIPE, env=env)
    assert wait_for_line(process, "epoch 1/3")  # training has begun epoch 2: press Ctrl-C now
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Ctrl-C: finishing this step and saving (press Ctrl-C again to stop at once)" in out
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]
    assert state["epoch"] in (1, 2) and state["batch"] > 0  # saved in the middle of an epoch
    printed = re.findall(r"Resume with: (python -m trainer resume \S+)$", err, re.MULTILINE)
    assert len(printed) == 1, err
    command = shlex.split(printed[0])
    assert Path(tmp_path, command[-1]).resolve() == run_dir.resolve()
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0 and "test/accuracy" in resumed.stdout, resumed.stderr
    assert f"resuming {command[-1]} after epoch {state['epoch']}, step {state['step']}" in resumed.stdout
    (reference,) = (tmp_path / "runs" / "whole").iterdir()
    assert rows(run_dir) == rows(reference)  # every epoch's losses, accuracies and lr
    assert summary(run_dir) == summary(reference)  # the test metrics, the best epoch


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


@pytest.mark.parametrize("writers_made", [6, 7])
def test_a_resume_in_the_same_second_keeps_its_event_files_in_order(
    writers_made, write_config, run_cli, tmp_path, monkeypatch
):
    """TensorBoard sorts event files by name: the second, then a counter of the writers the process made (9 sorts
    after 10). A resume whose writers pass 9 -> 10 within the first part's second must still be read last."""
    from tensorboard.summary.writer import event_file_writer

    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(writers_made))
    test_every_schedule_resumes_to_the_numbers_of_a_run_that_never_stopped(
        "cosine", "Ctrl-C at the last step of epoch 2", write_config, run_cli, tmp_path, monkeypatch
    )
