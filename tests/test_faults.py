"""Faults from outside the learner's code: SIGTERM from a cluster, a full disk, a damaged checkpoint, a killed sweep."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import SYNTHETIC
from trainer import atomic, sweep
from trainer.checkpoint import load_checkpoint
from trainer.errors import UserError
from trainer.loop import ctrl_c_finishes_the_step

LONGER = ["data.samples=2000", "data.batch_size=16", "model.dropout=0.2", "log.every_n_steps=20", "seed=3"]


def only_run(tmp_path: Path, name: str) -> Path:
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return run_dir


def epochs(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


@pytest.mark.slow
def test_sigterm_saves_mid_epoch_exits_143_and_the_resumed_run_ends_as_an_uninterrupted_one(
    write_config, run_cli, tmp_path
):
    config = write_config(SYNTHETIC)
    assert run_cli(config, "name=whole", "train.epochs=6", *LONGER)[0] == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", str(config), "name=stopped", "train.epochs=6", *LONGER],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert any(line.startswith("epoch 1/6") for line in process.stdout)  # training has started: send it now
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "SIGTERM: finishing this step and saving" in out
    run_dir = only_run(tmp_path, "stopped")
    assert (
        "stopped by SIGTERM after step" in err
        and f"Resume with: python -m trainer resume {run_dir.relative_to(tmp_path)}" in err
    )
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]
    assert state["batch"] > 0 and state["epoch"] < 6  # saved in the middle of an epoch
    code, _, err = run_cli("resume", run_dir)
    assert code == 0, err
    whole = only_run(tmp_path, "whole")
    assert final_metrics(run_dir) == final_metrics(whole)
    assert [row["train/loss"] for row in epochs(run_dir)] == [row["train/loss"] for row in epochs(whole)]


def test_the_first_sigterm_asks_to_stop_and_a_second_one_stops_at_once():
    said: list[str] = []
    trainer = SimpleNamespace(stop_requested=False, stop_signal=signal.SIGINT, logger=SimpleNamespace(info=said.append))
    before = signal.getsignal(signal.SIGTERM)
    with ctrl_c_finishes_the_step(trainer):  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGTERM) is not before
        signal.raise_signal(signal.SIGTERM)
        assert trainer.stop_requested and trainer.stop_signal == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is before  # the next SIGTERM does what it did before: end the process
    assert said == ["SIGTERM: finishing this step and saving (send it again to stop at once)"]


def test_a_failed_save_stops_training_at_once_naming_the_file_and_the_free_space(
    write_config, run_cli, tmp_path, monkeypatch
):
    real = atomic.replace_file
    saves = []

    def disk_full_after_the_first_epoch(path, write):
        if Path(path).name != "last.pt":
            return real(path, write)
        saves.append(path)
        if len(saves) == 1:
            return real(path, write)

        def write_then_run_out_of_space(file):  # part of the file is written, as on a disk that fills up
            write(file)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(path, write_then_run_out_of_space)

    monkeypatch.setattr(atomic, "replace_file", disk_full_after_the_first_epoch)
    code, _, err = run_cli(write_config(SYNTHETIC), "train.epochs=6", *LONGER)
    assert code == 2
    run_dir = only_run(tmp_path, "tiny")
    last = run_dir.relative_to(tmp_path) / "checkpoints" / "last.pt"
    assert f"could not save {last}: No space left on device" in err
    assert "free on that disk" in err and f"python -m trainer resume {run_dir.relative_to(tmp_path)}" in err
    assert len(epochs(run_dir)) == 2  # stopped in the epoch after the failed save, not an epoch later
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]["epoch"] == 1  # the save before is intact
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # no half-written file left beside it


# Run in a process of its own: the second save of one checkpoint file finds the disk all but full. The limit on a
# file's size (RLIMIT_FSIZE) is the operating system's: the write stops halfway through the checkpoint's bytes and
# fails with EFBIG, however leaptrain writes the file.
FILLS_THE_DISK = """
import resource, signal, sys
from pathlib import Path

from trainer import checkpoint
from trainer.cli import main

target = sys.argv[1]
real, saves = checkpoint.write_atomic, []


def disk_full_at_the_second_save(path, data):
    if Path(path).name != target:
        return real(path, data)
    saves.append(path)
    if len(saves) != 2:
        return real(path, data)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) // 2, hard))  # room for half of it
    try:
        return real(path, data)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing
checkpoint.write_atomic = disk_full_at_the_second_save
sys.exit(main(sys.argv[2:]))
"""
# Big enough that the other files a run writes meanwhile (TensorBoard's, metrics.jsonl) stay under half a checkpoint.
# The second save is the last epoch's: what is on disk when it fails is all a resume has.
BIG = ["train.epochs=2", "model.hidden=[256]", "optimizer.lr=1e-3", "model.dropout=0.2", "log.pictures=false"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and EFBIG as Linux has them")
@pytest.mark.parametrize("target", ["last.pt", "best.pt"])
def test_a_save_that_fails_halfway_keeps_the_checkpoint_before_it_and_resume_carries_on_from_it(
    target, write_config, run_cli, tmp_path
):
    """Guards against a checkpoint written straight to its final path, or made by deleting the old file first:
    either way a save cut short leaves no checkpoint to resume from. And against last.pt saved ahead of best.pt:
    after best.pt's save fails, last.pt would name a best epoch that best.pt does not hold."""
    config = write_config(SYNTHETIC)
    assert run_cli(config, "name=whole", *BIG)[0] == 0
    whole = only_run(tmp_path, "whole")
    assert epochs(whole)[1]["val/loss"] < epochs(whole)[0]["val/loss"]  # so epoch 2 saves best.pt too
    done = subprocess.run(
        [sys.executable, "-c", FILLS_THE_DISK, target, str(config), "name=full", *BIG],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_dir = only_run(tmp_path, "full")
    failed = run_dir.relative_to(tmp_path) / "checkpoints" / target
    assert done.returncode == 2, done.stderr
    assert f"could not save {failed}: File too large" in done.stderr
    assert f"the {target} already there, from the save before, is intact" in done.stderr
    assert "ulimit -f" in done.stderr and f"python -m trainer resume {run_dir.relative_to(tmp_path)}" in done.stderr
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))  # the half-written file is gone
    # Both load. best.pt is saved first: when it fails, last.pt is not saved either; when last.pt fails, best.pt
    # holds the new best epoch, which the resume trains again to the same numbers.
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert (last["state"]["epoch"], best["state"]["epoch"]) == ((1, 2) if target == "last.pt" else (1, 1))

    code, _, err = run_cli("resume", run_dir)
    assert code == 0, err
    assert final_metrics(run_dir) == final_metrics(whole)
    assert epochs(run_dir) == epochs(whole)
    best_epoch = json.loads((run_dir / "summary.json").read_text())["best_epoch"]
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["state"]["epoch"] == best_epoch == 2


def flip_tensor_bytes(path: Path) -> None:
    """Damage the first tensor's bytes in place, as a failing disk does: the zip still opens, torch still loads it."""
    with zipfile.ZipFile(path) as archive:
        member = next(m for m in archive.infolist() if m.filename.endswith("/data/0"))
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26 : member.header_offset + 30])
    start = member.header_offset + 30 + name_length + extra_length
    for i in range(start, start + member.file_size):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_named_and_the_other_one_offered(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=2")[0] == 0
    run_dir = only_run(tmp_path, "tiny")
    last, best = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    assert not os.path.samefile(last, best)  # its own file: damage to one leaves the other
    flip_tensor_bytes(last)
    with pytest.raises(UserError, match=r"last\.pt is damaged"):
        load_checkpoint(last)
    load_checkpoint(best)
    code, _, err = run_cli("resume", run_dir)
    assert code == 2
    assert f"{last.relative_to(tmp_path)} is damaged" in err and f"{best.relative_to(tmp_path)} (after epoch" in err
    assert re.search(
        rf"cp \S*{best.relative_to(tmp_path)} \S*{last.relative_to(tmp_path)} && python -m trainer resume", err
    )
    code, _, err = run_cli("eval", last)
    assert code == 2 and "is damaged" in err and "evaluate or predict with it instead" in err
    shutil.copy(best, last)  # the command offered, then resume
    assert run_cli("resume", run_dir)[0] == 0


def test_a_sweep_folder_being_trained_refuses_a_second_resume_naming_who_holds_it(write_config, run_cli, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    assert run_cli("sweep", write_config(SYNTHETIC), "optimizer.lr=1e-3,1e-2", "train.epochs=1")[0] == 0
    (folder,) = (tmp_path / "runs" / "tiny").glob("sweep-*")
    (folder / "trial-001" / "summary.json").unlink()  # as if it were still training
    with sweep.sweep_lock(folder):
        code, _, err = run_cli("sweep", "--resume", folder)
        assert code == 2
        assert f"is being trained by pid {os.getpid()} on " in err and f"kill {os.getpid()}" in err
    assert not (folder / "trial-001" / "summary.json").exists()  # nothing was trained twice
    with open(folder / sweep.WORKERS_LOCK) as workers:  # as a worker of a killed sweep process holds it
        fcntl.flock(workers, fcntl.LOCK_SH)
        code, _, err = run_cli("sweep", "--resume", folder)
        assert code == 2 and "worker processes of an earlier run of this sweep are still training" in err
    code, _, err = run_cli("sweep", "--resume", folder)
    assert code == 0, err
    assert (folder / "trial-001" / "summary.json").is_file()


FOREVER = ["train.epochs=100000"]  # trials that would train for hours if their workers outlived the sweep


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def has_ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie has ended; only its exit status waits to be collected


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sweep_workers_end_when_the_sweep_process_is_killed(write_config, tmp_path):
    config = write_config(SYNTHETIC)
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", "sweep", str(config), "optimizer.lr=1e-3,1e-2", "--jobs=2", *FOREVER],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        logs = []
        while len(logs) < 2 and time.monotonic() < deadline:  # each worker writes its trial's log.txt once set up
            logs = list((tmp_path / "runs" / "tiny").glob("sweep-*/trial-*/log.txt"))
            time.sleep(0.05)
        assert len(logs) == 2, "the workers did not start their trials"
        workers = children_of(process.pid)
        assert len(workers) >= 2
        process.kill()
        process.wait()
        deadline = time.monotonic() + 30
        while not all(has_ended(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(has_ended(pid) for pid in workers), "workers outlived the sweep process"
    finally:
        process.kill()
        for pid in workers:
            if not has_ended(pid):
                os.kill(pid, signal.SIGKILL)
