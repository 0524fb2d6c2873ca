"""A run gives torch the cores it may really use (affinity, cgroup quota), shared with other leaptrain runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.conftest import SYNTHETIC
from trainer import cores


def fake_process(proc: Path, pid: int, argv: list[str], parent: int = 1, started: int = 1000) -> None:
    """/proc/PID/stat and cmdline as Linux writes them: starttime is the 22nd field of stat."""
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    fields = ["S", str(parent), *["0"] * 17, str(started), "0", "0"]
    (folder / "stat").write_text(f"{pid} (py thon) " + " ".join(fields) + "\n")
    (folder / "cmdline").write_text("\0".join(argv) + "\0")


def registered(folder: Path, pid: int, started: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(pid)).write_text(str(started))
    return folder / str(pid)


def test_cgroup_v2_quota_is_read_from_cpu_max(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cores.cpu_quota(tmp_path, membership="0::/\n") == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cores.cpu_quota(tmp_path, membership="0::/\n") is None


def test_the_smallest_quota_from_this_cgroup_up_to_the_root_counts(tmp_path):
    (tmp_path / "user.slice" / "job").mkdir(parents=True)
    (tmp_path / "user.slice" / "job" / "cpu.max").write_text("400000 100000\n")
    (tmp_path / "user.slice" / "cpu.max").write_text("200000 100000\n")
    assert cores.cpu_quota(tmp_path, membership="0::/user.slice/job\n") == 2.0


def test_cgroup_v1_quota_is_read_from_cfs_files(tmp_path):
    (tmp_path / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    (tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    membership = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"
    assert cores.cpu_quota(tmp_path, membership=membership) == 3.0


def test_cgroup_v1_without_a_quota_and_no_cgroup_files_mean_no_limit(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cores.cpu_quota(tmp_path, membership="1:cpu:/\n") is None
    assert cores.cpu_quota(tmp_path / "absent", membership="") is None


def test_usable_cores_are_the_affinity_cut_by_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert cores.usable_cores(tmp_path, membership="0::/\n") == 6
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert cores.usable_cores(tmp_path, membership="0::/\n") == 2  # 2.5 cores of time: 2 threads never wait
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert cores.usable_cores(tmp_path, membership="0::/\n") == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    (tmp_path / "cpu.max").write_text("800000 100000\n")
    assert cores.usable_cores(tmp_path, membership="0::/\n") == 1  # pinned to one core: never more


def test_live_runs_are_counted_and_the_dead_are_cleaned(tmp_path):
    proc, folder = tmp_path / "proc", tmp_path / "training"
    fake_process(proc, 101, ["python", "x.py"], started=5)
    fake_process(proc, 102, ["python", "x.py"], started=7)
    live = registered(folder, 101, started=5)
    dead = registered(folder, 103)  # killed with kill -9: no process left
    reused = registered(folder, 102, started=6)  # the id now belongs to a process started later
    assert cores.other_runs(folder, proc) == {101}
    assert live.exists() and not dead.exists() and not reused.exists()


def test_runs_started_side_by_side_see_each_other_before_they_register(tmp_path):
    proc = tmp_path / "proc"
    fake_process(proc, 201, ["python", "-m", "trainer", "configs/a.yaml", "optimizer.lr=0.1"])
    fake_process(proc, 202, ["/venv/bin/python3", "/venv/bin/trainer", "resume", "runs/a/1"])
    fake_process(proc, 203, ["python", "-m", "trainer", "check", "configs/a.yaml"])  # does not train
    fake_process(proc, 204, ["python", "-m", "trainer", "sweep", "configs/a.yaml"])  # its workers register
    fake_process(proc, 205, ["python", "-m", "trainer", "configs/a.yaml"], parent=201)  # 201's DataLoader worker
    fake_process(proc, 206, ["python", "-m", "pytest", "configs/a.yaml"])
    assert cores.other_runs(tmp_path / "training", proc) == {201, 202}


def test_each_run_takes_its_share_and_names_how_to_choose():
    assert cores.choose_threads(0, 8, None) == (8, "")  # alone: every core, and nothing to say
    threads, line = cores.choose_threads(3, 2, None)
    assert threads == 1  # at least one thread, even for more runs than cores
    assert "3 other leaptrain runs are training" in line and "OMP_NUM_THREADS=2" in line
    threads, line = cores.choose_threads(1, 8, "")
    assert threads == 4 and "takes 4 of the 8 CPU cores" in line
    threads, line = cores.choose_threads(1, 8, "3")  # the user's own number wins
    assert threads == 3 and "OMP_NUM_THREADS says" in line
    assert cores.choose_threads(0, 8, "3") == (3, "")
    assert cores.fair_share(4, 16) == 4 and cores.fair_share(5, 2) == 1


def test_a_sweep_splits_the_cores_with_the_same_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(cores, "usable_cores", lambda *args: 8)
    proc, folder = tmp_path / "proc", tmp_path / "training"
    assert cores.threads_for(2, folder, proc) == 4
    fake_process(proc, 301, ["python", "x.py"])
    registered(folder, 301)
    assert cores.threads_for(2, folder, proc) == 2  # 2 workers beside one run training: 8 // 3


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine of 4 cores seen through a fake /proc, with leaptrain's cache in tmp_path."""
    proc = tmp_path / "proc"
    fake_process(proc, os.getpid(), ["python", "-m", "pytest"], started=42)
    monkeypatch.setattr(cores, "PROC", proc)
    monkeypatch.setattr(cores, "CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("LEAPTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return proc


def test_a_run_beside_another_says_so_and_trains_on_its_share(machine, write_config, run_cli, monkeypatch):
    fake_process(machine, 401, ["python", "-m", "trainer", "other.yaml"])
    calls = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), set_threads(n)))
    before = torch.get_num_threads()
    code, out, _ = run_cli(write_config(SYNTHETIC), "train.epochs=1")
    assert code == 0
    assert "threads: 1 other leaptrain run is training on this machine, so this one takes 2 of the 4" in out
    assert "OMP_NUM_THREADS=4" in out
    assert calls == [2, before]  # its share while it trains, and the process's own number back afterwards
    assert list(cores.registry().iterdir()) == []  # it no longer counts once it has finished


def test_a_run_alone_says_nothing_and_uses_every_core(machine, write_config, run_cli, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    code, out, _ = run_cli(write_config(SYNTHETIC), "train.epochs=1")
    assert code == 0 and "threads:" not in out
    assert calls[0] == 4


def test_a_resumed_run_takes_the_threads_it_had_so_that_its_numbers_stay_the_same(
    machine, write_config, run_cli, monkeypatch
):
    fake_process(machine, 401, ["python", "-m", "trainer", "other.yaml"])  # it began beside another run: 2 threads
    code, out, _ = run_cli(write_config(SYNTHETIC), "train.epochs=1")
    assert code == 0 and "this one takes 2 of the 4" in out
    (machine / "401").rename(machine / "gone")  # that run has ended: alone, a new run would take 4
    (run_dir,) = (machine.parent / "runs" / "tiny").iterdir()
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    code, out, _ = run_cli("resume", run_dir, "train.epochs=2")
    assert code == 0
    assert "threads: 2, as the run had before, so that it carries on with the same numbers" in out
    assert calls[0] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # said outright, it wins
    calls.clear()
    assert run_cli("resume", run_dir, "train.epochs=3")[0] == 0
    assert calls[0] == 3
