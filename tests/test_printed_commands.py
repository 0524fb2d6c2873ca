"""Every command we print works: the README's command lines, run on tiny data, and the full commands in the hints
the tool prints ("Try: ...", "To train longer: ...", "Resume with: ..."), run as printed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC, make_fake_mnist
from tests.promises import command_lines
from tests.test_mistakes import (  # clean_process: a fixture undoing what a gallery case leaves in this process
    clean_process,  # noqa: F401
    gallery_params,
    prepared,
    run_in_process,
    trainer_args,
)
from trainer.cli import main

REPO = Path(__file__).resolve().parents[1]
PROGRAM = "python -m trainer"
# What comes after these words in a message is a command to type.
HINT = re.compile(r"(?:Try|To train longer|Resume with|carry on with|carry on training from it with):\s+(.+)")
# Command lines of the README that this test cannot run, and why; every other line must run and exit 0.
NOT_RUN_HERE = {
    "pip": "installs from the network; the test environment has the project installed",
    "pytest": "the test suite itself",
    "tensorboard": "starts a server that runs until stopped; tests/test_tensorboard_server.py runs it",
    "torchrun": "needs 4 GPUs; tests/test_distributed.py runs torchrun with gloo on the CPU",
}
# The run that a placeholder such as runs/iris/<date-time> names, made first when the README has not made one yet.
MAKES = {"iris": ["configs/iris.yaml"]}
SMALLER = {
    "mnist.yaml": ("channels: [32, 64]\n  fc: 128", "channels: [4, 8]\n  fc: 16"),
    "spirals_sweep.yaml": ("samples: 3000", "samples: 600"),
}


def readme_command_lines() -> list[str]:
    """The command lines of the README's shell code blocks, as tests/promises.py lists them (without their
    comments, `a && b` split in two), of the programs this test knows."""
    programs = ("python", "trainer", *NOT_RUN_HERE)
    return [line for line in command_lines(REPO / "README.md") if line.split()[0] in programs]


def run(args: list[str], capsys) -> tuple[int, str]:
    """`python -m trainer ARGS` in this process; the exit code and everything it printed."""
    try:
        code = main(args)
    except SystemExit as exit_:  # --help
        code = exit_.code if isinstance(exit_.code, int) else 0
    out, err = capsys.readouterr()
    return code, out + err


def runs_of(name: str, sweeps: bool = False) -> list[Path]:
    folder = Path("runs") / name
    found = sorted(path for path in folder.glob("*") if path.is_dir() and path.name.startswith("sweep-") == sweeps)
    return found


def fill_in(command: str, capsys) -> str:
    """The README's placeholders replaced by what they stand for in this folder: runs/NAME/<date-time> by the
    newest run of that name (made first when there is none), <A> and <B> by the two oldest."""

    def newest(match: re.Match) -> str:
        name, sweep = match.group(1), bool(match.group(2))
        if not runs_of(name, sweep) and name in MAKES:
            assert run(MAKES[name], capsys)[0] == 0
        found = runs_of(name, sweep)
        assert found, f"{command}: no run of {name!r} to stand for the placeholder"
        return str(found[-1])

    command = re.sub(r"runs/([\w-]+)/(sweep-)?<date-time>", newest, command)
    return re.sub(r"runs/([\w-]+)/<([AB])>", lambda m: str(runs_of(m.group(1))["AB".index(m.group(2))]), command)


@pytest.fixture
def readme_folder(tmp_path: Path, monkeypatch) -> Path:
    """A folder to run the README in: the shipped configs, fake MNIST in data/ and ~/datasets, a digit to predict
    and table rows without their target."""
    from PIL import Image

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    # Smaller networks and data than shipped, with the same keys: the commands are under test here, not the numbers.
    for name, (shipped, small) in SMALLER.items():
        path = tmp_path / "configs" / name
        assert shipped in path.read_text(), f"{name} has changed: update SMALLER"
        path.write_text(path.read_text().replace(shipped, small))
    make_fake_mnist(tmp_path / "data", train=192, test=32)
    make_fake_mnist(tmp_path / "datasets", train=192, test=32)
    monkeypatch.setenv("HOME", str(tmp_path))
    Image.new("L", (28, 28), color=0).save(tmp_path / "my_digit.png")
    rows = (REPO / "configs" / "tables" / "iris.csv").read_text().splitlines()
    (tmp_path / "new_rows.csv").write_text("\n".join(row.rsplit(",", 1)[0] for row in rows[:6]) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_every_command_line_of_the_readme_runs_on_tiny_data(readme_folder, capsys):
    lines = readme_command_lines()
    assert sum(line.startswith(PROGRAM) for line in lines) >= 20, lines  # the blocks were found and read
    failed = []
    for line in lines:
        program = line.split()[0]
        if program in NOT_RUN_HERE:
            print(f"not run here: {line} ({NOT_RUN_HERE[program]})")
            continue
        assert line.startswith(PROGRAM), f"the README shows a command this test cannot run: {line}"
        command = fill_in(line, capsys)
        code, output = run(shlex.split(command)[3:], capsys)
        if code != 0:
            failed.append(f"{command}\n  exit {code}:\n{output[-1500:]}")
        with capsys.disabled():  # shown with pytest -s
            print(f"{command}: exit {code}; it says to run {hints_in(output)}")
        failed += [f"{command}: {failure}" for failure in follow_hints(output, capsys, depth=1)]
    assert not failed, "\n\n".join(failed)
    assert (readme_folder / "train_mnist.py").exists() and (readme_folder / "my_table.yaml").exists()


def hints_in(output: str) -> list[str]:
    """The full `python -m trainer ...` commands the output tells to type, each cut where its sentence goes on.
    Templates (CONFIG.yaml, RUN_A: words in capitals) are left out: they are not meant to run as printed."""
    commands = []
    for match in HINT.finditer(output):
        found = re.search(rf"{PROGRAM} .*", match.group(1))
        if found is None:
            continue
        command = re.split(r"\s{2,}| \(|; |, or |\. ", found.group(0))[0].rstrip(".")
        if not re.search(r"\b[A-Z][A-Z_]+\b", command):
            commands.append(command)
    return commands


ONE_CYCLE = ["scheduler=one_cycle"]
STOPS_EARLY = "train.early_stopping={monitor: train/loss, mode: max, patience: 1}"  # the loss falls: stops at once


def epochs_trained(run_dir: Path) -> int:
    return len((run_dir / "metrics.jsonl").read_text().splitlines())


def press_ctrl_c_at_step_3(monkeypatch) -> None:
    """As if Ctrl-C were pressed during the third step: the loop finishes the step, saves and says how to resume."""
    from trainer.loop import Trainer

    step = Trainer.optimizer_step

    def step_then_stop(self: Trainer) -> None:
        step(self)
        self.stop_requested = self.stop_requested or self.state.step == 3
        if self.stop_requested:
            monkeypatch.setattr(Trainer, "optimizer_step", step)

    monkeypatch.setattr(Trainer, "optimizer_step", step_then_stop)


# Runs that end in a hint: the runs made first, the command, and what to do before it (press Ctrl-C).
FINISHING_AND_FAILING = {
    "finished one_cycle run, resumed": ([["config.yaml", "train.epochs=1", *ONE_CYCLE]], ["resume", "RUN"], None),
    "finished cosine run, resumed": ([["config.yaml", "train.epochs=1", "scheduler=cosine"]], ["resume", "RUN"], None),
    "finished run without a schedule": ([["config.yaml", "train.epochs=1"]], ["resume", "RUN"], None),
    "resume given the name folder": ([["config.yaml", "train.epochs=1"]], ["resume", "runs/tiny"], None),
    "eval given the name folder": ([["config.yaml", "train.epochs=1"]], ["eval", "runs/tiny"], None),
    "runs given a missing folder": ([["config.yaml", "train.epochs=1"]], ["runs", "runs/tin"], None),
    "early-stopped run, resumed": ([["config.yaml", "train.epochs=6", STOPS_EARLY]], ["resume", "RUN"], None),
    "a flag of another tool": ([], ["config.yaml", "--max_epochs=1"], None),
    "a flag for a config key": ([], ["config.yaml", "--lr", "0.1", "train.epochs=1"], None),
    "try without factors": ([], ["try", "config.yaml", "optimizer.lr=0.1"], None),
    "Ctrl-C while training": ([], ["config.yaml", *ONE_CYCLE], press_ctrl_c_at_step_3),
    "a one_cycle run cut short": (
        [["config.yaml", "train.epochs=2", *ONE_CYCLE]],
        ["resume", "RUN", "train.epochs=1"],
        None,
    ),
}
# Runs stopped by a missing argument: their hint lists what to give.
MISSING_ARGUMENT = {
    "resume without a run": ([["config.yaml", "train.epochs=1"]], ["resume"], None),
    "sweep without a config": ([], ["sweep"], None),
}


def follow_hints(output: str, capsys, depth: int = 2) -> list[str]:
    """Run every full command `output` tells to type, and those their output tells in turn; the failures."""
    failures = []
    for hint in hints_in(output):
        code, after = run(shlex.split(hint)[3:], capsys)
        if code != 0:
            failures.append(f"the printed {hint!r} exits {code}:\n{after}")
            continue
        words = hint.split()
        wanted = re.search(r"train\.epochs=(\d+)", hint)
        if words[3] == "resume":  # it trained as long as it says, to a finished run
            run_dir = Path(words[4])
            summary = json.loads((run_dir / "summary.json").read_text())
            if wanted and summary["epochs"] != int(wanted.group(1)):
                failures.append(f"{hint!r} trained {summary['epochs']} epochs")
        if depth > 1:
            failures += follow_hints(after, capsys, depth - 1)
    return failures


@pytest.mark.parametrize(
    "case",
    [
        *FINISHING_AND_FAILING,
        *MISSING_ARGUMENT,
    ],
)
def test_the_commands_a_run_prints_work_as_printed(case, write_config, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(SYNTHETIC)
    before, command, prepare = {**FINISHING_AND_FAILING, **MISSING_ARGUMENT}[case]
    for args in before:
        assert run(args, capsys)[0] == 0
    if "RUN" in command:
        (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
        if case == "a one_cycle run cut short":
            (run_dir / "summary.json").unlink()  # stopped while testing: not finished, so not "nothing to do"
        command = [str(run_dir) if arg == "RUN" else arg for arg in command]
    if prepare is not None:
        prepare(monkeypatch)
    _, output = run(command, capsys)
    with capsys.disabled():  # shown with pytest -s: the commands the case printed
        print(f"{case}: {hints_in(output)}")
    assert hints_in(output), f"{case}: no command in\n{output}"
    failures = follow_hints(output, capsys)
    assert not failures, f"{case}:\n" + "\n".join(failures)


def test_a_planned_schedule_resumed_longer_restarts_and_keeps_the_epochs_it_had(
    write_config, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_config(SYNTHETIC)
    for name in ("short", "again"):
        assert run(["config.yaml", f"name={name}", "train.epochs=2", *ONE_CYCLE], capsys)[0] == 0
    (run_dir,) = (tmp_path / "runs" / "short").iterdir()
    before = (run_dir / "metrics.jsonl").read_text().splitlines()
    code, output = run(["resume", str(run_dir), "train.epochs=4"], capsys)
    assert code == 0
    assert "epochs 3-4 get a new one_cycle of their own (a warm restart: the lr climbs to 0.01 again" in output
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert (run_dir / "metrics.jsonl").read_text().splitlines()[:2] == before
    assert [row["lr"] for row in rows[2:]] == [row["lr"] for row in rows[:2]]  # the same cycle again over 2 epochs
    assert rows[3]["lr"] < 1e-3 < rows[2]["lr"]
    # Carried on again, the run keeps both segments: resuming with nothing to add trains nothing.
    code, output = run(["resume", str(run_dir)], capsys)
    assert code == 0 and "trained 4 epochs: nothing to resume" in output


def test_a_restarted_schedule_resumes_mid_segment_to_the_same_learning_rates():
    import torch

    from trainer.components.optim import build_scheduler
    from trainer.config import SchedulerConfig

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.01)

    def lrs(opt: torch.optim.Optimizer, scheduler, steps: int) -> list[float]:
        seen = []
        for _ in range(steps):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        return seen

    for cfg in (SchedulerConfig(name="one_cycle"), SchedulerConfig(name="cosine")):
        first = optimizer()
        planned = build_scheduler(cfg, first, epochs=2, steps_per_epoch=5)
        lrs(first, planned, 10)  # the run as planned: 2 epochs of 5 steps
        saved = {"optimizer": first.state_dict(), "scheduler": planned.state_dict()}

        whole_opt = optimizer()
        whole = build_scheduler(cfg, whole_opt, epochs=4, steps_per_epoch=5, resumed=saved["scheduler"])
        whole_opt.load_state_dict(saved["optimizer"])
        whole.load_state_dict(saved["scheduler"])
        expected = lrs(whole_opt, whole, 10)
        assert max(expected) == pytest.approx(0.01) and expected[-1] < expected[0] / 10  # a new segment: up, down

        part_opt = optimizer()
        part = build_scheduler(cfg, part_opt, epochs=4, steps_per_epoch=5, resumed=saved["scheduler"])
        part_opt.load_state_dict(saved["optimizer"])
        part.load_state_dict(saved["scheduler"])
        got = lrs(part_opt, part, 3)  # stopped in the middle of the new segment, then carried on
        middle = {"optimizer": part_opt.state_dict(), "scheduler": part.state_dict()}
        again_opt = optimizer()
        again = build_scheduler(cfg, again_opt, epochs=4, steps_per_epoch=5, resumed=middle["scheduler"])
        again_opt.load_state_dict(middle["optimizer"])
        again.load_state_dict(middle["scheduler"])
        assert got + lrs(again_opt, again, 7) == expected


def test_resuming_a_planned_schedule_shorter_is_refused_with_the_command_that_works(
    write_config, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_config(SYNTHETIC)
    assert run(["config.yaml", "train.epochs=2", *ONE_CYCLE], capsys)[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    (run_dir / "summary.json").unlink()  # stopped while testing
    code, output = run(["resume", str(run_dir), "train.epochs=1"], capsys)
    assert code == 2
    assert "planned for 2 epochs: it can be lengthened, not cut short" in output
    assert hints_in(output) == [f"python -m trainer resume {run_dir}"]


# Hints that ask for what only a GPU has: they cannot work on a machine without one.
NEEDS_A_GPU = ("train.device=cuda", "train.precision=fp16")


@pytest.mark.slow
@pytest.mark.usefixtures("clean_process")
@pytest.mark.parametrize("folder", gallery_params())
def test_the_commands_the_gallery_messages_print_work(folder: Path, tmp_path, monkeypatch, capsys):
    """Each case of tests/mistakes/ run again, and the full commands its message prints run after it."""
    import torch

    case, _ = prepared(folder, tmp_path, monkeypatch, capsys)
    _, output = run_in_process(trainer_args(case["command"]), capsys)
    failures = []
    for hint in hints_in(output):
        if any(word in hint for word in NEEDS_A_GPU) and not torch.cuda.is_available():
            continue
        code, after = run_in_process(shlex.split(hint)[3:], capsys)
        if code != 0:
            failures.append(f"the printed {hint!r} exits {code}:\n{after}")
    assert not failures, "\n".join(failures)
