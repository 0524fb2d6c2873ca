"""Promises of the README and docs that a user relies on and that no other test checked: --help, the `trainer`
console script, --debug on every command, `sweep --storage`, the pictures of 2-D toy problems, and the advice on
a rising loss and on overfitting reaching both the console and the run's diagnosis.txt."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC

REPO = Path(__file__).resolve().parents[1]
# The commands the README, DESIGN and `--help` promise (trainer/cli.py's COMMANDS is checked against this list).
COMMANDS = (
    *("train", "check", "lr-find", "resume", "eval", "predict", "export", "sweep"),
    *("try", "runs", "diff", "show", "init", "schema", "eject", "report"),
)


def trainer(*args: str, cwd: Path, program: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m trainer ARGS` (or another program) in a real process: its exit code, stdout and stderr."""
    program = program or [sys.executable, "-m", "trainer"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*program, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_help_lists_every_command_with_examples_and_exits_0(tmp_path):
    from trainer.cli import COMMANDS as commands_of_the_cli

    assert set(commands_of_the_cli) == set(COMMANDS)
    done = trainer("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ") and line.split()]
    assert set(COMMANDS) <= set(listed), done.stdout
    assert "examples:\n  python -m trainer configs/mnist.yaml" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_own_help_with_debug(command, tmp_path):
    done = trainer(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m trainer {command} ")
    assert "--debug" in done.stdout and "example" in done.stdout  # every command shows how it is typed


def test_the_trainer_console_script_is_python_m_trainer(write_config, tmp_path):
    """pyproject's [project.scripts] installs `trainer`: the same program as `python -m trainer`."""
    script = Path(sys.executable).parent / "trainer"
    if not script.exists():
        script = Path(shutil.which("trainer") or "")
    if not script.is_file():
        pytest.skip("no `trainer` console script beside this Python (the package is not installed, pip install -e .)")
    config = write_config(SYNTHETIC)
    for args in (["--help"], ["show", str(config), "optimizer.lr=0.05"]):
        by_script = trainer(*args, cwd=tmp_path, program=[str(script)])
        by_module = trainer(*args, cwd=tmp_path)
        assert by_script.returncode == 0, by_script.stderr
        assert (by_script.stdout, by_script.returncode) == (by_module.stdout, by_module.returncode)
    assert "command line 'optimizer.lr=0.05'" in by_script.stdout
    refused = trainer("eval", "runs/none", cwd=tmp_path, program=[str(script)])
    assert refused.returncode == 2 and "'runs/none' does not exist" in refused.stderr


# A mistake of the user's for every command: each is refused with a message (exit 2) and no traceback, and with
# --debug it shows the traceback. A file f.txt stands where a folder is meant.
MISTAKES = {
    "train": (["missing.yaml"], "cannot read the config"),
    "check": (["missing.yaml"], "cannot read the config"),
    "lr-find": (["missing.yaml"], "cannot read the config"),
    "resume": (["runs/none"], "'runs/none' does not exist"),
    "eval": (["runs/none"], "'runs/none' does not exist"),
    "predict": (["runs/none", "x.png"], "'runs/none' does not exist"),
    "export": (["runs/none", "--format", "pt2"], "'runs/none' does not exist"),
    "report": (["f.txt"], "'f.txt'"),
    "sweep": (["missing.yaml"], "cannot read the config"),
    "try": (["missing.yaml", "optimizer.lr=x0.3"], "cannot read the config"),
    "runs": (["f.txt"], "'f.txt' is a file, not a run folder"),
    "diff": (["runs/a", "runs/b"], "'runs/a' does not exist"),
    "show": (["missing.yaml"], "cannot read the config"),
    "init": (["--template", "mnsit"], "no template 'mnsit' (did you mean 'mnist'?)"),
    "schema": (["-o", "f.txt/leaptrain.schema.json"], "f.txt is a file, not a folder"),
    "eject": (["missing.yaml"], "cannot read the config"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_debug_shows_the_traceback_of_a_mistake_and_without_it_there_is_none(command, tmp_path):
    assert set(MISTAKES) == set(COMMANDS)
    (tmp_path / "f.txt").write_text("not a folder\n")
    args, said = MISTAKES[command]
    plain = trainer(command, *args, cwd=tmp_path)
    assert plain.returncode == 2, plain.stderr
    assert said in plain.stderr and "(add --debug to see the traceback)" in plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
    debug = trainer(command, *args, "--debug", cwd=tmp_path)
    assert debug.returncode != 0
    assert "Traceback (most recent call last):" in debug.stderr and said in debug.stderr
    assert "(add --debug" not in debug.stderr  # the error itself, not the message made of it


OPTUNA_SWEEP = SYNTHETIC + (
    "sweep:\n  method: optuna\n  params:\n    optimizer.lr: {dist: log_uniform, low: 1.0e-3, high: 1.0e-1}\n"
)


def test_sweep_storage_keeps_the_study_in_that_database_and_a_second_sweep_carries_it_on(
    write_config, run_cli, tmp_path
):
    optuna = pytest.importorskip("optuna", reason="the optuna extra (pip install leaptrain[sweep]) is not installed")
    config = write_config(OPTUNA_SWEEP)
    storage = f"sqlite:///{tmp_path / 'shared' / 'studies.db'}"
    (tmp_path / "shared").mkdir()
    code, _, err = run_cli("sweep", config, "train.epochs=1", "--trials", "3", "--storage", storage)
    assert code == 0, err
    (first,) = (tmp_path / "runs" / "tiny").glob("sweep-*")
    assert not (first / "study.db").exists()  # the study went to the storage given, not the default file
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert len([t for t in study.trials if t.state.is_finished()]) == 3
    assert sorted(p.name for p in first.glob("trial-*")) == ["trial-000", "trial-001", "trial-002"]
    # Another sweep given the same storage (another process, another machine) works on the same study.
    code, _, err = run_cli("sweep", config, "train.epochs=1", "--trials", "5", "--storage", storage)
    assert code == 0, err
    (second,) = set((tmp_path / "runs" / "tiny").glob("sweep-*")) - {first}
    assert sorted(p.name for p in second.glob("trial-*")) == ["trial-003", "trial-004"]
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.number for t in study.trials if t.state.is_finished()] == [0, 1, 2, 3, 4]
    assert all(1e-3 <= t.params["optimizer.lr"] <= 1e-1 for t in study.trials)


def test_sweeps_sharing_a_storage_try_different_values(write_config, run_cli, tmp_path):
    optuna = pytest.importorskip("optuna", reason="the optuna extra (pip install leaptrain[sweep]) is not installed")
    config = write_config(OPTUNA_SWEEP)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for trials in ("2", "4"):  # two sweeps, as two machines would run them, on one study
        code, _, err = run_cli("sweep", config, "train.epochs=1", "--trials", trials, "--storage", storage)
        assert code == 0, err
    lrs = [t.params["optimizer.lr"] for t in optuna.load_study(study_name="tiny", storage=storage).trials]
    assert len(lrs) == 4 and len(set(lrs)) == 4, lrs


def pictures(run_dir: Path, tag: str) -> list:
    """The RGB pixels (H x W x 3 numpy arrays) of every image under `tag` in the run's TensorBoard events."""
    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    assert tag in events.Tags()["images"], events.Tags()["images"]
    return [np.array(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")) for e in events.Images(tag)]


def colour_shares(pixels) -> dict[tuple[int, int, int], float]:
    import numpy as np

    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    return {tuple(int(v) for v in c): n / counts.sum() for c, n in zip(colours, counts, strict=True)}


def test_a_2d_toy_problem_shows_the_decision_regions_of_each_class(write_config, run_cli, tmp_path):
    code, _, err = run_cli(write_config(SYNTHETIC))  # blobs: 3 classes of 2-D points
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    regions = pictures(run_dir, "val/decision regions")[-1]
    height, width, _ = regions.shape
    assert height >= 200 and width >= 200
    shares = colour_shares(regions)
    white = shares.pop((255, 255, 255), 0)
    assert white < 0.5  # mostly the map, not an empty canvas
    areas = [share for share in shares.values() if share > 0.02]
    assert len(areas) >= 3, sorted(shares.values())[-6:]  # a region for each of the 3 classes the model learnt


def test_a_sine_run_shows_the_fitted_curve_through_the_samples(write_config, run_cli, tmp_path):
    import numpy as np

    config = write_config(
        "name: sine\ndata: {dataset: synthetic, kind: sine, samples: 400, test_samples: 100, noise: 0.1,"
        " batch_size: 32}\nmodel: {name: mlp, hidden: [32, 32]}\nloss: mse\n"
        "optimizer: {name: adamw, lr: 1e-2}\ntrain: {epochs: 5}\n"
    )
    code, _, err = run_cli(config)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "sine").iterdir()
    curve = pictures(run_dir, "val/fitted curve")[-1]
    height, width, _ = curve.shape
    assert height >= 200 and width >= 200
    # The legend says: the fitted curve in red, the samples in blue.
    red = np.all(curve == (214, 39, 40), axis=-1)
    blue = np.all(curve == (31, 119, 180), axis=-1)
    assert red.sum() > 500 and blue.sum() > 100
    rows, columns = np.nonzero(red)
    assert rows.max() - rows.min() > height / 4  # a curve that goes up and down, not a flat line
    line_at = {c: rows[columns == c].mean() for c in np.unique(columns)}
    dot_rows, dot_columns = np.nonzero(blue)
    gaps = [abs(r - line_at[c]) for r, c in zip(dot_rows, dot_columns, strict=True) if c in line_at]
    assert np.median(gaps) < height / 20  # the samples lie along the curve the model fitted


def only_run(tmp_path: Path, name: str) -> Path:
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return run_dir


# Gradient ascent (SGD's own `maximize`) makes the training loss climb steadily: 1.6 -> 2.9 in the first epoch.
RISING = """
name: rising
data: {dataset: synthetic, samples: 400, test_samples: 50, classes: 3, batch_size: 16}
model: {name: mlp, hidden: [32]}
optimizer: {name: sgd, lr: 0.003, maximize: true}
train: {epochs: 1}
log: {every_n_steps: 2, pictures: false, graph: false}
"""
# A big network, 30 noisy training samples and many epochs: it memorizes them and the validation loss climbs.
OVERFITTING = """
name: overfitting
data: {dataset: synthetic, samples: 60, test_samples: 20, classes: 3, noise: 3.0, batch_size: 10, val_split: 0.5}
model: {name: mlp, hidden: [256, 256]}
optimizer: {name: adam, lr: 1e-2}
train: {epochs: 12}
log: {every_n_steps: 1, pictures: false, graph: false}
"""


@pytest.mark.parametrize(
    ("config", "name", "advice", "fix"),
    [
        (RISING, "rising", "train/loss rose during the epoch (", "Try: optimizer.lr=0.0003"),
        (OVERFITTING, "overfitting", "val/loss has risen for 2 epochs (", "Try: fewer epochs"),
    ],
)
def test_advice_on_the_curves_reaches_the_console_once_and_the_runs_diagnosis(
    config, name, advice, fix, write_config, run_cli, tmp_path
):
    code, out, err = run_cli(write_config(config))
    assert code == 0, err
    console = out + err
    assert console.count(advice) == 1, console  # said once, as a warning line
    assert f"warning: {advice}" in console
    (said,) = [line for line in console.splitlines() if advice in line]
    diagnosis = (only_run(tmp_path, name) / "diagnosis.txt").read_text().splitlines()
    assert f"- {said.removeprefix('warning: ')}" in diagnosis  # the same words kept in the run folder
    assert fix in said


def layers(table: str) -> list[list[str]]:
    """The rows of a layer table (model.txt): name, type, output shape, parameters (not the total under it)."""
    rows = [re.split(r"\s{2,}", row.strip()) for row in table.splitlines()[1:]]
    return [row for row in rows if len(row) == 4]


@pytest.mark.parametrize(
    ("model", "first_layer"),
    [
        ("{name: mlp, hidden: [8], activation: tanh}", ["Linear", "[B, 8]", "6,280"]),
        ("{name: cnn, channels: [4], kernel_size: 5}", ["Conv2d", "[B, 4, 28, 28]", "100"]),  # 4 x 5 x 5, no bias
        ("{name: resnet, stem: 8, channels: [8]}", ["Conv2d", "[B, 8, 28, 28]", "72"]),  # 8 x 3 x 3
    ],
)
def test_the_keys_of_the_built_in_models_shape_their_layers(
    model, first_layer, fake_mnist, write_config, run_cli, tmp_path
):
    config = write_config("name: m\ndata: {dataset: mnist, root: data, batch_size: 64}\nmodel: " + model + "\n")
    quick = ["train.epochs=1", "train.preflight=false", "log.pictures=false", "log.graph=false"]
    code, _, err = run_cli(config, *quick)
    assert code == 0, err
    rows = layers((only_run(tmp_path, "m") / "model.txt").read_text())
    assert next(row[1:] for row in rows if row[1] in ("Linear", "Conv2d")) == first_layer
    if "activation: tanh" in model:
        types = {row[1] for row in rows}
        assert "Tanh" in types and "ReLU" not in types


def test_an_optuna_sweep_without_pruning_trains_every_trial_to_the_end(write_config, run_cli, tmp_path):
    """The same sweep as tests/test_sweep.py's pruning test (which prunes), with sweep.prune: false."""
    optuna = pytest.importorskip("optuna", reason="the optuna extra (pip install leaptrain[sweep]) is not installed")
    config = write_config(
        SYNTHETIC + "sweep:\n  method: optuna\n  trials: 8\n  prune: false\n  params:\n"
        "    optimizer.lr: {dist: log_uniform, low: 1.0e-5, high: 1.0e-1}\n"
    )
    code, _, err = run_cli("sweep", config, "train.epochs=4")
    assert code == 0, err
    (folder,) = (tmp_path / "runs" / "tiny").glob("sweep-*")
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 8
    for trial in folder.glob("trial-*"):
        assert len((trial / "metrics.jsonl").read_text().splitlines()) == 4


# The name a package is imported by, where it differs from the name pip installs it by.
DISTRIBUTION = {"yaml": "PyYAML", "PIL": "pillow", "mlflow": "mlflow-skinny", "websocket": "websocket-client"}
# Installed with the core dependencies by torch and torchvision themselves.
CARRIED_IN = {"numpy", "PIL"}


def test_the_dev_extra_installs_every_package_the_tests_import():
    """README: `pip install -e ".[dev]" && pytest` sets up for development: nothing the tests need is missing."""
    import ast

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}

    installed = names(project["dependencies"]) | names(project["optional-dependencies"]["dev"])
    imported = set()
    for path in (REPO / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip":
                imported.add(node.args[0].value.split(".")[0])
    local = {"tests", "conftest", "trainer"}
    needed = {m for m in imported if m not in sys.stdlib_module_names and m not in local | CARRIED_IN}
    assert {"pytest", "hypothesis", "optuna", "jsonschema"} <= needed  # the tests were read
    missing = sorted(m for m in needed if DISTRIBUTION.get(m, m).lower() not in installed)
    assert not missing, f"the tests import {missing}, which neither the dependencies nor the dev extra install"
