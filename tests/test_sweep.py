"""Sweeps: a grid, random draws and Optuna's TPE, each trial a normal run; resumable; compared in a table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC
from trainer import sweep


def sweep_dir_of(tmp_path: Path, name: str = "tiny") -> Path:
    (found,) = (tmp_path / "runs" / name).glob("sweep-*")
    return found


def test_a_two_by_two_grid_gives_four_runs_a_table_and_the_best_config(write_config, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_config(SYNTHETIC)
    code, out, err = run_cli("sweep", config, "optimizer.lr=1e-3,1e-2", "model.hidden=[8],[32]")
    assert code == 0, err
    folder = sweep_dir_of(tmp_path)
    trials = sorted(p.name for p in folder.glob("trial-*"))
    assert trials == ["trial-000", "trial-001", "trial-002", "trial-003"]
    for name in trials:
        assert (folder / name / "summary.json").is_file() and (folder / name / "config.yaml").is_file()
    rows = list(csv.DictReader((folder / "sweep_summary.csv").open()))
    assert len(rows) == 4 and [float(r["val/loss"]) for r in rows] == sorted(float(r["val/loss"]) for r in rows)
    assert rows[0]["optimizer.lr"] == "0.01" and rows[0]["model.hidden"] == "[32]"  # the big net, fast rate wins here
    assert (folder / "sweep_summary.md").read_text().startswith("| trial | status | optimizer.lr")
    best = (folder / "best.yaml").read_text()
    assert f"({rows[0]['trial']})" in best and "lr: 0.01" in best
    assert "best config:" in out and "HParams" in out
    # Each trial's real hyperparameters and final metrics, as TensorBoard's HParams dashboard reads them.
    events = EventAccumulator(str(folder / rows[0]["trial"]))
    events.Reload()
    plugin = events.PluginTagToContent("hparams")
    assert plugin and "_hparams_/session_start_info" in plugin


def test_a_stopped_sweep_resumes_with_only_the_missing_trials(write_config, run_cli, tmp_path, monkeypatch):
    config = write_config(SYNTHETIC)
    trained = []
    real = sweep.run_trial

    def stop_at_the_third(sweep_dir, trial, base, callbacks=None):
        if len(trained) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the sweep
        trained.append(trial.name)
        return real(sweep_dir, trial, base, callbacks)

    monkeypatch.setattr(sweep, "run_trial", stop_at_the_third)
    code, _, err = run_cli("sweep", config, "optimizer.lr=1e-3,3e-3,1e-2,3e-2")
    assert code == 130 and trained == ["trial-000", "trial-001"]
    folder = sweep_dir_of(tmp_path)
    assert f"Resume with: python -m trainer sweep --resume {folder.relative_to(tmp_path)}" in err
    first = (folder / "trial-000" / "metrics.jsonl").read_text()

    (folder / "trial-002").mkdir()  # as if killed in the middle of trial-002: a folder without a summary
    (folder / "trial-002" / "metrics.jsonl").write_text('{"epoch": 1, "half": "written"}\n')
    trained.clear()
    monkeypatch.setattr(sweep, "run_trial", lambda *a, **k: (trained.append(a[1].name), real(*a, **k))[1])
    code, _, err = run_cli("sweep", "--resume", folder)
    assert code == 0, err
    assert trained == ["trial-002", "trial-003"]  # the finished ones are not trained again
    assert (folder / "trial-000" / "metrics.jsonl").read_text() == first
    assert [r["status"] for r in csv.DictReader((folder / "sweep_summary.csv").open())] == ["finished"] * 4
    assert "half" not in (folder / "trial-002" / "metrics.jsonl").read_text()  # trained again from the start


def test_random_search_draws_from_ranges_and_the_seed_fixes_the_plan(write_config, run_cli, tmp_path):
    config = write_config(
        SYNTHETIC + "sweep:\n  method: random\n  trials: 3\n  params:\n"
        "    optimizer.lr: {dist: log_uniform, low: 1.0e-4, high: 1.0e-1}\n    model.hidden: [[8], [16]]\n"
    )
    code, _, err = run_cli("sweep", config)
    assert code == 0, err
    plan = json.loads((sweep_dir_of(tmp_path) / "sweep.json").read_text())
    rates = [t["values"]["optimizer.lr"] for t in plan["trials"]]
    assert len(rates) == 3 and all(1e-4 <= r <= 1e-1 for r in rates) and len(set(rates)) == 3
    again = sweep.draw_trials(sweep.SweepConfig.model_validate(plan["settings"]), seed=0)
    assert [t.values for t in again] == [t["values"] for t in plan["trials"]]


# A learner's model whose constructor waits (at most 60 s) for another process to build one too: a trial can only
# finish when another trial is being built at the same time, in another process.
MEETING_NET = """
import os
import time
from pathlib import Path

from torch import nn

ARRIVED = Path({arrived!r})


class Net(nn.Module):
    def __init__(self, num_classes, input_shape):
        super().__init__()
        (ARRIVED / str(os.getpid())).write_text("")
        deadline = time.monotonic() + 60
        while not [p for p in ARRIVED.iterdir() if p.name != str(os.getpid())]:
            if time.monotonic() > deadline:
                raise RuntimeError("no other trial was built within 60 s: the trials ran one at a time")
            time.sleep(0.05)
        self.layer = nn.Linear(input_shape[0], num_classes)

    def forward(self, x):
        return self.layer(x)
"""


@pytest.mark.slow  # two worker processes start and import torch: about 20 s
def test_trials_run_in_parallel_processes(write_config, run_cli, tmp_path):
    """Each trial's model is built only when the other trial's is being built too, in another process: with the
    trials run one after the other, the first would wait for the second in vain and fail."""
    import os

    arrived = tmp_path / "arrived"
    arrived.mkdir()
    (tmp_path / "net.py").write_text(MEETING_NET.format(arrived=str(arrived)))
    config = write_config(SYNTHETIC.replace("{name: mlp, hidden: [16]}", "{name: net.py:Net}"))
    code, out, err = run_cli("sweep", config, "optimizer.lr=1e-3,1e-2", "--jobs", "2")
    assert code == 0, err
    assert "2 at a time" in out
    rows = list(csv.DictReader((sweep_dir_of(tmp_path) / "sweep_summary.csv").open()))
    assert [r["status"] for r in rows] == ["finished", "finished"], out + err
    pids = {int(p.name) for p in arrived.iterdir()}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, neither of them this one


def test_sweep_mistakes_are_reported_before_any_trial_trains(write_config, run_cli, tmp_path):
    config = write_config(SYNTHETIC)
    code, _, err = run_cli("sweep", config, "optimizer.lr=1e-3,abc")
    assert code == 2 and "optimizer.lr" in err and "(in the trial with optimizer.lr=abc)" in err
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli("sweep", config, "optimizer.lr=1e-3")
    assert code == 2 and "nothing to sweep" in err and "optimizer.lr=1e-3,3e-3,1e-2" in err
    ranged = write_config(
        SYNTHETIC + "sweep:\n  params:\n    optimizer.lr: {dist: log_uniform, low: 1.0e-4, high: 1}\n"
    )
    code, _, err = run_cli("sweep", ranged)
    assert code == 2 and "a grid needs lists of values, but optimizer.lr is a range" in err
    assert "sweep.method: random" in err


def test_split_overrides_reads_lists_of_values_and_leaves_plain_overrides():
    fixed, swept = sweep.split_overrides(["a=1,2", "b=[16,32],[32,64]", "c=[1,2]", "d={x: 1, y: 2}", "e=3"])
    assert fixed == ["c=[1,2]", "d={x: 1, y: 2}", "e=3"]
    assert swept == {"a": [1, 2], "b": [[16, 32], [32, 64]]}


def test_try_multiplies_the_configs_own_value(write_config, run_cli, tmp_path):
    code, _, err = run_cli("try", write_config(SYNTHETIC), "optimizer.lr=x0.1,x3", "--epochs", "1")
    assert code == 0, err
    plan = json.loads((sweep_dir_of(tmp_path) / "sweep.json").read_text())
    assert [t["values"]["optimizer.lr"] for t in plan["trials"]] == [0.001, 0.01, 0.03]  # around 1e-2, itself too
    assert plan["base"]["train"]["epochs"] == 1
    code, _, err = run_cli("try", write_config(SYNTHETIC), "model.name=x2")
    assert code == 2 and "try multiplies numbers" in err


@pytest.fixture
def optuna():
    return pytest.importorskip("optuna", reason="the optuna extra (pip install leaptrain[sweep]) is not installed")


def test_optuna_prunes_poor_trials_on_a_tiny_problem(optuna, write_config, run_cli, tmp_path):
    config = write_config(
        SYNTHETIC + "sweep:\n  method: optuna\n  trials: 8\n  params:\n"
        "    optimizer.lr: {dist: log_uniform, low: 1.0e-5, high: 1.0e-1}\n"
    )
    code, _, err = run_cli("sweep", config, "train.epochs=4")
    assert code == 0, err
    folder = sweep_dir_of(tmp_path)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}")
    states = [t.state for t in study.trials]
    assert len(states) == 8 and optuna.trial.TrialState.PRUNED in states
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    log = (folder / f"trial-{pruned[0]:03d}" / "log.txt").read_text()
    assert "pruned by the sweep" in log
    rows = list(csv.DictReader((folder / "sweep_summary.csv").open()))
    assert rows[0]["status"] == "finished" and "pruned" in {r["status"] for r in rows}


def test_two_processes_share_one_sqlite_study(optuna, write_config, tmp_path):
    config = write_config(
        SYNTHETIC + "sweep:\n  method: optuna\n  trials: 6\n  params:\n"
        "    optimizer.lr: {dist: log_uniform, low: 1.0e-4, high: 1.0e-1}\n"
    )
    command = [sys.executable, "-m", "trainer", "sweep"]
    first = subprocess.run([*command, str(config)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    folder = sweep_dir_of(tmp_path)
    # Two more workers join the finished study with a higher goal: they share its database and its numbering.
    for resumed in [
        subprocess.Popen(
            [*command, "--resume", str(folder), "--trials", "10"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]:
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}")
    done = [t for t in study.trials if t.state.is_finished()]
    assert len(done) >= 10 and len({t.number for t in study.trials}) == len(study.trials)
    assert len(list(folder.glob("trial-*"))) == len(study.trials)


def test_runs_lists_finished_stopped_and_failed_runs(write_config, run_cli, tmp_path):
    config = write_config(SYNTHETIC)
    assert run_cli(config, "name=good")[0] == 0
    assert run_cli(config, "name=broken", "model.hidden=[0]")[0] == 2  # refused before a folder is made
    (good,) = (tmp_path / "runs" / "good").iterdir()
    stopped = tmp_path / "runs" / "stopped" / "20260101-000000"
    (stopped / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pt"):
        (stopped / name).write_bytes((good / name).read_bytes())
    failed = tmp_path / "runs" / "failed" / "20260101-000001"
    failed.mkdir(parents=True)
    (failed / "config.yaml").write_text((good / "config.yaml").read_text())
    (failed / "metrics.jsonl").write_text("")
    code, out, _ = run_cli("runs")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("good", "stopped", "failed"))}
    assert "finished" in lines[f"good/{good.name}"] and "val/loss 0." in lines[f"good/{good.name}"]
    assert "stopped" in lines["stopped/20260101-000000"] and "failed" in lines["failed/20260101-000001"]
    assert "3 run(s)" in out


def test_diff_shows_the_keys_that_differ_and_the_metrics_side_by_side(write_config, run_cli, tmp_path):
    config = write_config(SYNTHETIC)
    assert run_cli(config, "name=a")[0] == 0
    assert run_cli(config, "name=b", "optimizer.lr=1e-3", "model.hidden=[32]")[0] == 0
    (a,) = (tmp_path / "runs" / "a").iterdir()
    (b,) = (tmp_path / "runs" / "b").iterdir()
    code, out, _ = run_cli("diff", a, b)
    assert code == 0
    keys = [line.split()[0] for line in out.splitlines()[4:] if line and not line.startswith(("-", "metric"))]
    assert keys[:2] == ["model.hidden", "optimizer.lr"]
    assert "optimizer.lr  0.01  0.001" in out and "test/accuracy" in out
    code, _, err = run_cli("diff", a, tmp_path / "runs")
    assert code == 2 and "is a folder of 2 runs" in err and f"Try: python -m trainer diff {a} {b}" in err


def test_the_data_is_loaded_once_for_all_trials_of_a_process(write_config, run_cli, tmp_path, monkeypatch):
    from trainer.components import data

    loads = []
    real = data.build_data
    monkeypatch.setattr(data, "build_data", lambda *a, **k: (loads.append(a[0]), real(*a, **k))[1])
    monkeypatch.setattr(sweep, "_DATA", {})
    code, _, err = run_cli("sweep", write_config(SYNTHETIC), "optimizer.lr=1e-3,3e-3,1e-2")
    assert code == 0, err
    assert len(loads) == 1
    # The shuffling starts again from the seed for each trial: a trial gives what a single run gives.
    rows = {r["optimizer.lr"]: r for r in csv.DictReader((sweep_dir_of(tmp_path) / "sweep_summary.csv").open())}
    assert run_cli(write_config(SYNTHETIC), "name=single", "optimizer.lr=3e-3")[0] == 0
    (single,) = (tmp_path / "runs" / "single").iterdir()
    alone = json.loads((single / "summary.json").read_text())["metrics"]["val/loss"]
    assert float(rows["0.003"]["val/loss"]) == pytest.approx(alone, rel=1e-3)


def test_a_bad_sweep_option_names_its_key(write_config, run_cli):
    code, _, err = run_cli("sweep", write_config(SYNTHETIC), "optimizer.lr=1e-3,1e-2", "--jobs", "0")
    assert code == 2 and "sweep.jobs" in err and "greater than 0" in err


def test_wrong_swept_keys_in_the_file_and_on_the_command_line_are_reported_together(write_config, run_cli, tmp_path):
    config = write_config(SYNTHETIC + "sweep:\n  params:\n    lr: [1.0e-3, 3.0e-3]\n")
    code, _, err = run_cli("sweep", config, "hidden=[8],[32]")
    assert code == 2, err
    assert "config.yaml:9: sweep.params.lr: is not a config key; it belongs in optimizer" in err
    assert "command line 'hidden=[8],[32]': hidden: is not a config key" in err
    assert "Try: sweep model.hidden=[8],[32]" in err and "2 problems in the config" in err
    assert not (tmp_path / "runs").exists()


OPTUNA_OVER_LR_AND_DROPOUT = (
    "sweep:\n  method: optuna\n  trials: 3\n  params:\n"
    "    optimizer.lr: {dist: log_uniform, low: 1.0e-3, high: 1.0e-1}\n    model.dropout: [0.0, 0.2, %s]\n"
)


def test_an_optuna_sweep_whose_every_trial_fails_ends_after_its_trials(optuna, tmp_path, monkeypatch):
    """A failed trial counts toward `trials`, as with Optuna's own n_trials: a mistake the checks cannot see before
    training, shared by every trial, ends the sweep after its 3 trials instead of failing for ever."""
    import itertools

    data = {"name": "tiny", "data": {"dataset": "synthetic"}, "model": {"name": "mlp"}}
    data["sweep"] = {"method": "optuna", "trials": 3, "params": {"optimizer.lr": [1e-3, 1e-2]}}
    plan = sweep.make_plan(data, {}, {})

    def fails(sweep_dir, trial, base, callbacks=None):
        return sweep.Outcome(trial.name, "failed", trial.values, {}, 0.0, "error: out of memory")

    monkeypatch.setattr(sweep, "run_trial", fails)
    outcomes = list(itertools.islice(sweep.optuna_worker(str(tmp_path), plan), 10))
    assert [o.name for o in outcomes] == ["trial-000", "trial-001", "trial-002"]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 3


def test_a_mistake_in_every_optuna_trial_is_said_once_before_any_trains(
    optuna, write_config, run_cli, tmp_path, monkeypatch
):
    """Optuna chooses its trials as it goes: every listed value and both ends of each range are checked before the
    first trains. A momentum of 9 is in every trial: said once, for all 3; a dropout of 2 only where it is chosen."""
    monkeypatch.setattr(sweep, "run_trial", lambda *a, **k: pytest.fail("a trial trained despite the mistake"))
    momentum_9 = SYNTHETIC.replace("{name: adamw, lr: 1e-2}", "{name: sgd, lr: 0.1, momentum: 9}")
    code, _, err = run_cli("sweep", write_config(momentum_9 + OPTUNA_OVER_LR_AND_DROPOUT % "0.5"))
    assert code == 2, err
    assert "config.yaml:4: optimizer.momentum: 9 is not a momentum" in err
    assert "Try: optimizer.momentum=0.9 (in all 3 trials)" in err and err.count("is not a momentum") == 1
    assert "1 problem in the config" in err
    code, _, err = run_cli("sweep", write_config(SYNTHETIC + OPTUNA_OVER_LR_AND_DROPOUT % "2.0"))
    assert code == 2, err
    assert "model.dropout: 2 reads as a percent" in err and "model.dropout=2.0, which optuna may choose)" in err
    assert "model.dropout=0.0" not in err and "model.dropout=0.2" not in err
    assert not (tmp_path / "runs").exists()


def test_a_sweep_under_a_file_names_the_file_and_a_log_dir_that_works(write_config, run_cli, tmp_path):
    (tmp_path / "notes.txt").write_text("lr 1e-2 was best\n")
    code, _, err = run_cli("sweep", write_config(SYNTHETIC), "optimizer.lr=1e-3,1e-2", "log.dir=notes.txt/runs")
    assert code == 2, err
    assert "command line 'log.dir=notes.txt/runs': log.dir: cannot make the sweep folder notes.txt/runs/tiny/" in err
    assert ": notes.txt is a file, not a folder" in err and "Traceback" not in err
    assert "Try: log.dir=runs (a folder, or a path not yet there), or move notes.txt away" in err
    assert (tmp_path / "notes.txt").read_text() == "lr 1e-2 was best\n"


def test_a_sweep_whose_every_trial_fails_says_the_first_failure_and_exits_2(write_config, run_cli, tmp_path):
    """A mistake only training meets (here a model one output short) fails every trial: the sweep ends with the
    first failure, where its log is and how to train the failed trials again, not with exit 0 and a table."""
    (tmp_path / "short.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Linear):\n    def __init__(self, num_classes):\n"
        "        super().__init__(2, num_classes - 1)\n"
    )
    config = write_config(SYNTHETIC.replace("model: {name: mlp, hidden: [16]}", "model: short.py:Net"))
    code, out, err = run_cli("sweep", config, "optimizer.lr=1e-3,1e-2")
    assert code == 2, err
    (sweep_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    sweep_dir = sweep_dir.relative_to(tmp_path)  # as the learner types it
    assert "trial-000" in out and "trial-001" in out  # the table of failures is still shown
    assert (
        "error: no trial of the sweep finished: 2 of 2 failed. The first, trial-000: [FAIL] loss vs targets: the "
        "targets go from 0 to 2, but the model outputs 2 scores"
    ) in err
    assert (
        f"Try: fix that (the whole output is in {sweep_dir / 'trial-000' / 'log.txt'}), then train the failed "
        f"trials again: python -m trainer sweep --resume {sweep_dir}"
    ) in err.replace("\n", " ")
    assert "best config" not in out and not (sweep_dir / "best.yaml").exists()


def test_an_optuna_sweep_with_no_finished_trial_says_to_start_again(tmp_path):
    """Optuna counts failed trials toward `trials`, so --resume would not train them again: the advice differs."""
    data = {"name": "tiny", "data": {"dataset": "synthetic"}, "model": {"name": "mlp"}}
    data["sweep"] = {"method": "optuna", "trials": 2, "params": {"optimizer.lr": [1e-3, 1e-2]}}
    plan = sweep.make_plan(data, {}, {})
    assert sweep.no_trial_finished(tmp_path, plan) is None  # no trial failed (all pruned, say): nothing to say
    for name in ("trial-000", "trial-001"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.txt").write_text("epoch 1\nerror: out of memory on the GPU\n")
    err = sweep.no_trial_finished(tmp_path, plan)
    assert err is not None
    assert str(err) == "no trial of the sweep finished: 2 of 2 failed. The first, trial-000: out of memory on the GPU"
    assert err.fix == (
        f"fix that (the whole output is in {tmp_path / 'trial-000' / 'log.txt'}), then start the sweep again (failed "
        "trials count toward sweep.trials)"
    )


def test_trials_are_ranked_the_way_the_early_stopping_mode_says():
    """A metric of the learner's own (not named like accuracy) with early_stopping.mode max ranks highest first."""
    data = {"name": "tiny", "data": {"dataset": "synthetic"}, "model": {"name": "mlp"}}
    data["train"] = {"early_stopping": {"monitor": "val/f1", "mode": "max", "patience": 2}}
    params = {"optimizer.lr": [1e-3, 1e-2]}
    ranking = sweep.monitor_of(sweep.make_plan({**data, "sweep": {"method": "grid", "params": params}}, {}, {}))
    assert (ranking.name, ranking.mode) == ("val/f1", "max")
    own = {"method": "grid", "params": params, "monitor": "val/loss"}  # the sweep's metric: lower is better
    assert sweep.monitor_of(sweep.make_plan({**data, "sweep": own}, {}, {})).mode == "min"
