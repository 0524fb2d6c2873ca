"""The inspector of folders and files given to commands: what a path is, and which paths to give instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.errors import UserError, close_paths
from trainer.folders import checkpoint_file, find_runs, run_folder, runs_folder, sweep_folder, what_is
from trainer.runs import status_of, sweep_status


def make_run(folder: Path, status: str = "finished", epochs: int = 1) -> Path:
    """A run folder as training leaves it: finished (summary), stopped (last.pt, no summary) or failed (neither)."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("name: tiny\n")
    (folder / "model.txt").write_text("layers\n")
    if status == "failed":
        (folder / "checkpoints").rmdir()
        return folder
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e + 1}) + "\n" for e in range(epochs)))
    (folder / "checkpoints" / "last.pt").write_bytes(b"")
    if status != "stopped":
        (folder / "checkpoints" / "best.pt").write_bytes(b"")
        summary = {"status": status, "epochs": epochs, "metrics": {}, "wall_seconds": 1.0}
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def make_sweep(folder: Path, finished: int, planned: int) -> Path:
    folder.mkdir(parents=True)
    trials = [{"name": f"trial-{i:03d}", "values": {"optimizer.lr": i}} for i in range(planned)]
    (folder / "sweep.json").write_text(json.dumps({"base": {}, "settings": {"method": "grid"}, "trials": trials}))
    for i in range(planned):
        make_run(folder / f"trial-{i:03d}", "finished" if i < finished else "stopped")
    return folder


def again(command: str):
    return lambda path: f"python -m trainer {command} {path}"


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    """runs/tiny with an older finished run, a newer stopped one, a failed one and a half-done sweep."""
    monkeypatch.chdir(tmp_path)
    make_run(Path("runs/tiny/20260101-120000"), "finished")
    make_run(Path("runs/tiny/20260102-090000"), "stopped")
    make_run(Path("runs/tiny/20260103-080000"), "failed")
    make_sweep(Path("runs/tiny/sweep-20260104-070000"), finished=1, planned=2)
    return Path("runs")


def error_of(call, *args, **kwargs) -> UserError:
    with pytest.raises(UserError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_every_kind_of_path_is_named_with_the_run_or_sweep_it_belongs_to(runs):
    run, sweep = runs / "tiny" / "20260101-120000", runs / "tiny" / "sweep-20260104-070000"
    assert what_is(str(run)).kind == "run" and what_is(str(run)).sweep is None
    trial = what_is(str(sweep / "trial-001"))
    assert (trial.kind, trial.sweep) == ("run", sweep)
    assert what_is(str(sweep)).kind == "sweep"
    assert what_is(str(sweep / "sweep.json")).kind == "sweep file"
    assert (what_is(str(run / "checkpoints")).kind, what_is(str(run / "checkpoints")).run) == ("checkpoints", run)
    assert (what_is(str(run / "checkpoints" / "last.pt")).kind, what_is(str(run / "summary.json")).run) == (
        "checkpoint",
        run,
    )
    assert what_is(str(run / "summary.json")).kind == "run file"
    assert what_is("runs").kind == what_is("runs/tiny").kind == "runs"
    Path("config.yaml").write_text("name: tiny\n")
    Path("empty").mkdir()
    assert [what_is(p).kind for p in ("config.yaml", "empty", "nothing/here")] == ["config", "folder", "missing"]


def test_status_tells_finished_stopped_and_failed_runs_apart(runs):
    states = {p.name: status_of(p)["status"] for p in (runs / "tiny").iterdir() if not p.name.startswith("sweep")}
    assert states == {
        "20260101-120000": "finished",
        "20260102-090000": "stopped: resumable",
        "20260103-080000": "failed",
    }
    assert sweep_status(runs / "tiny" / "sweep-20260104-070000") == "stopped: 1 of 2 trials finished"


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="processes are read from /proc (Linux)")
def test_a_run_a_trainer_process_is_writing_is_shown_as_running(runs):
    run = runs / "tiny" / "20260102-090000"
    # a stand-in for `python -m trainer config.yaml` at work in this folder
    code = "print('ready', flush=True); input()"
    trainer = subprocess.Popen([sys.executable, "-c", code, "trainer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert trainer.stdout.readline() == b"ready\n"  # started: its command line is readable now
        assert status_of(run)["status"] == "running?"
        err = error_of(run_folder, str(run), "resume", again("resume"), needs="last")
        assert "seems to be still running: it wrote a file 0 s ago, and a trainer process works here" in err.message
        assert err.fix.startswith("wait for it to end (or for 3 minutes without a write), or stop it with Ctrl-C")
        old = time.time() - 600  # ten minutes without a write: not training, whatever runs
        for path in run.rglob("*"):
            os.utime(path, (old, old))
        assert status_of(run)["status"] == "stopped: resumable"
    finally:
        trainer.communicate(b"\n", timeout=10)


def test_resume_of_the_folder_above_the_runs_names_the_runs_newest_first_and_the_resumable_one(runs):
    err = error_of(run_folder, "runs/tiny", "resume", again("resume"), needs="last")
    assert "'runs/tiny' is a folder of 3 runs and 1 sweep" in err.message
    lines = [line.split()[0] for line in err.message.splitlines()[1:]]
    assert lines[:2] == ["runs/tiny/sweep-20260104-070000/trial-001", "runs/tiny/sweep-20260104-070000/trial-000"]
    assert lines[2:] == ["runs/tiny/20260102-090000", "runs/tiny/20260101-120000"]  # the failed run cannot resume
    assert err.fix.endswith("resume runs/tiny/sweep-20260104-070000/trial-001")  # the newest stopped: resumable


def test_at_most_five_candidates_are_named_and_the_rest_counted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for day in range(1, 9):
        make_run(Path(f"runs/tiny/202601{day:02d}-120000"))
    err = error_of(checkpoint_file, "runs", "eval", again("eval"))
    shown = [line for line in err.message.splitlines() if line.startswith("    runs/")]
    assert [line.split()[0][-15:-7] for line in shown] == ["20260108", "20260107", "20260106", "20260105", "20260104"]
    assert "... and 3 more (python -m trainer runs)" in err.message


def test_a_file_of_a_run_stands_for_the_run_and_says_so(runs, capsys):
    run = runs / "tiny" / "20260102-090000"
    assert run_folder(str(run / "config.yaml"), "resume", again("resume"), needs="last") == run
    assert "config.yaml of the run runs/tiny/20260102-090000: resume uses that run" in capsys.readouterr().err
    assert checkpoint_file(str(run / "checkpoints"), "eval", again("eval")) == run / "checkpoints" / "last.pt"
    finished = runs / "tiny" / "20260101-120000"
    assert (
        checkpoint_file(str(finished / "summary.json"), "eval", again("eval")) == finished / "checkpoints" / "best.pt"
    )


def test_without_accept_a_file_of_a_run_is_refused_with_the_run_to_give(runs):
    path = runs / "tiny" / "20260102-090000" / "checkpoints" / "last.pt"
    err = error_of(run_folder, str(path), "resume", again("resume"), needs="last", accept=False)
    assert "not the run folder" in err.message and err.fix == "python -m trainer resume runs/tiny/20260102-090000"


def test_a_run_without_a_checkpoint_names_the_runs_beside_it_that_have_one(runs):
    err = error_of(checkpoint_file, "runs/tiny/20260103-080000", "eval", again("eval"))
    assert "has no checkpoint: the run failed before its first epoch ended" in err.message
    assert "runs/tiny/20260102-090000" in err.message and "runs/tiny/20260103-080000  " not in err.message
    assert err.fix == "python -m trainer eval runs/tiny/sweep-20260104-070000/trial-001"


def test_a_typo_anywhere_in_the_path_is_repaired_part_by_part(runs):
    assert close_paths(Path("rnus/tinny/20260101-12000"))[0] == Path("runs/tiny/20260101-120000")  # the closest first
    err = error_of(run_folder, "runs/tiny/20260102-09000", "resume", again("resume"), needs="last")
    assert "did you mean 'runs/tiny/20260102-090000'?" in err.message
    assert err.fix == "python -m trainer resume runs/tiny/20260102-090000"


def test_a_path_without_its_runs_prefix_is_found_below_this_folder(runs):
    err = error_of(run_folder, "tiny/20260101-120000", "diff", again("diff"))
    assert err.fix == "python -m trainer diff runs/tiny/20260101-120000"


def test_a_trial_or_a_file_of_a_sweep_stands_for_the_sweep(runs, capsys):
    sweep = runs / "tiny" / "sweep-20260104-070000"
    assert sweep_folder(str(sweep / "trial-000"), again("sweep --resume")) == sweep
    assert "trial-000 of the sweep" in capsys.readouterr().err
    assert sweep_folder(str(sweep / "sweep.json"), again("sweep --resume")) == sweep


def test_sweep_resume_of_a_folder_of_runs_names_its_sweeps(runs):
    err = error_of(sweep_folder, "runs", again("sweep --resume"))
    assert "runs/tiny/sweep-20260104-070000  stopped: 1 of 2 trials finished" in err.message
    assert err.fix == "python -m trainer sweep --resume runs/tiny/sweep-20260104-070000"


def test_a_config_where_a_run_is_meant_names_the_runs_it_trained_in_its_log_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my_config.yaml").write_text("name: digits\nlog: {dir: outputs}\n")
    err = error_of(checkpoint_file, "my_config.yaml", "eval", again("eval"))
    assert err.fix == "train it first: python -m trainer my_config.yaml"
    make_run(Path("outputs/digits/20260101-120000"))
    err = error_of(checkpoint_file, "my_config.yaml", "eval", again("eval"))
    assert "In outputs/digits, newest first" in err.message
    assert err.fix == "python -m trainer eval outputs/digits/20260101-120000"


def test_runs_lists_a_run_given_by_one_of_its_files_and_finds_runs_saved_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(Path("outputs/tiny/20260101-120000"))
    assert runs_folder("outputs/tiny/20260101-120000/summary.json", again("runs")) == Path(
        "outputs/tiny/20260101-120000"
    )
    err = error_of(runs_folder, "runs", again("runs"))
    assert "Runs are in: outputs" in err.message and err.fix == "python -m trainer runs outputs"


def test_the_search_skips_hidden_and_checkpoint_folders_and_stops_at_its_budget(tmp_path):
    make_run(tmp_path / ".cache" / "tiny" / "20260101-120000")
    for i in range(50):
        (tmp_path / "data" / f"class{i:02d}").mkdir(parents=True)
    make_run(tmp_path / "zz" / "tiny" / "20260101-120000")
    assert find_runs(tmp_path) == [tmp_path / "zz" / "tiny" / "20260101-120000"]
    started = time.perf_counter()
    assert find_runs(tmp_path, budget=20) == []  # the 50 class folders come first, breadth first
    assert time.perf_counter() - started < 1


def test_the_api_checks_refuse_what_the_command_line_would_accept(runs):
    from trainer.sweep import Plan

    sweep = runs / "tiny" / "sweep-20260104-070000"
    err = error_of(Plan.load, sweep / "trial-000")
    assert err.fix == f"python -m trainer sweep --resume {sweep}"
    assert len(Plan.load(sweep).trials) == 2


def test_a_checkpoint_the_run_does_not_have_names_the_ones_it_has(runs):
    run = runs / "tiny" / "20260101-120000"
    err = error_of(checkpoint_file, str(run / "checkpoints" / "last.ckpt"), "eval", again("eval"))
    assert f"did you mean '{run / 'checkpoints' / 'last.pt'}'?" in err.message and "checkpoint file" in err.message
    err = error_of(run_folder, str(run / "checkpoints" / "epoch3.pt"), "resume", again("resume"), needs="last")
    assert f"The run {run} is there (finished)" in err.message and err.fix == f"python -m trainer resume {run}"
    failed = runs / "tiny" / "20260103-080000"
    err = error_of(checkpoint_file, str(failed / "checkpoints" / "best.pt"), "eval", again("eval"))
    assert "is there, but it has no checkpoint: the run failed" in err.message and f"    {failed} " not in err.message


def test_a_wrong_path_is_refused_without_importing_torch(runs):
    code = (
        "import sys; from trainer.cli import main; "
        "codes = [main(['eval', 'runs']), main(['resume', 'runs/tiny']), main(['sweep', '--resume', 'runs'])]; "
        "print(codes, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[2, 2, 2] False", done.stderr


def test_train_resume_of_a_wrong_folder_gives_the_train_command_to_type(runs, capsys):
    from trainer.cli import main

    Path("c.yaml").write_text("name: tiny\n")
    trial = "runs/tiny/sweep-20260104-070000/trial-001"  # the newest run that can carry on
    for argv in (["train", "c.yaml", "--resume", "runs/tiny"], ["--resume", "runs/tiny", "train", "c.yaml"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"Try: python -m trainer train c.yaml --resume {trial}" in err, err
        assert "trainer resume" not in err


def test_a_refusal_reads_each_runs_status_once_and_names_the_record_it_cannot_read(runs, monkeypatch):
    import trainer.folders

    reads = []
    real = trainer.folders.status_of
    monkeypatch.setattr(trainer.folders, "status_of", lambda run: reads.append(run) or real(run))
    for typed in ("runs/tiny", "runs/tiny/20260103-080000"):  # the folder above the runs; a run with no last.pt
        reads.clear()
        error_of(run_folder, typed, "resume", again("resume"), needs="last")
        assert len(reads) >= 3 and len(reads) == len(set(reads)), reads  # several runs named, each read once
    stopped, finished = runs / "tiny" / "20260102-090000", runs / "tiny" / "20260101-120000"
    (stopped / "metrics.jsonl").write_text('{"epoch": 1}\n{"epo')
    (finished / "summary.json").write_text('{"status": "fini')
    err = error_of(run_folder, "runs/tiny/20260103-080000", "eval", again("eval"), needs="checkpoint")
    rows = {line.split()[0]: line.split()[1:3] for line in err.message.splitlines()[1:]}
    assert rows[str(stopped)] == ["unreadable", "metrics.jsonl"]
    assert rows[str(finished)] == ["unreadable", "summary.json"]
