"""torchrun: two CPU processes (gloo) train as one, write one run folder, resume, and refuse mismatched configs."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
name: ddp
seed: 0
data: {dataset: synthetic, samples: 2000, test_samples: 400, classes: 3, batch_size: 64}
model: {name: mlp, hidden: [32]}
optimizer: {name: sgd, lr: 0.1}
train: {epochs: 3}
log: {every_n_steps: 10, graph: false}
"""
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer"]
    return subprocess.run([*command, *args], cwd=cwd, env=ONE_THREAD, capture_output=True, text=True, timeout=300)


def epochs(run_dir: Path) -> list[float]:
    """train/loss and val/loss of each epoch, one after the other."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row[name] for row in rows for name in ("train/loss", "val/loss")]


def test_two_processes_train_like_one_with_the_same_global_batch(write_config, run_cli, tmp_path):
    config = write_config(CONFIG)
    assert run_cli(config, "name=one")[0] == 0
    two = torchrun([str(config), "name=two"], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("epoch 1/3") == 1  # rank 0 alone prints
    assert "torchrun: 2 processes on cpu; data.batch_size 64 is the global batch" in two.stdout
    (one,) = (tmp_path / "runs" / "one").iterdir()
    (run,) = (tmp_path / "runs" / "two").iterdir()  # one run folder, written by rank 0
    # The two halves of each batch on two processes give the gradient of the whole batch on one: the same losses,
    # up to the order in which float sums are added.
    assert epochs(run) == pytest.approx(epochs(one), rel=1e-5)
    summary = json.loads((run / "summary.json").read_text())["metrics"]
    assert summary["test/accuracy"] == json.loads((one / "summary.json").read_text())["metrics"]["test/accuracy"]


def test_accumulating_gradients_on_two_processes_matches_one_process(write_config, run_cli, tmp_path):
    config = write_config(CONFIG)
    assert run_cli(config, "name=one", "train.accumulate=2", "train.epochs=2")[0] == 0
    two = torchrun([str(config), "name=two", "train.accumulate=2", "train.epochs=2"], tmp_path)
    assert two.returncode == 0, two.stderr
    (one,) = (tmp_path / "runs" / "one").iterdir()
    (run,) = (tmp_path / "runs" / "two").iterdir()
    assert epochs(run) == pytest.approx(epochs(one), rel=1e-5)


def test_a_two_process_run_resumes_as_two_and_its_checkpoint_loads_in_one(write_config, run_cli, tmp_path):
    config = write_config(CONFIG)
    whole = torchrun([str(config), "name=whole"], tmp_path)
    part = torchrun([str(config), "name=part", "train.epochs=1"], tmp_path)
    assert whole.returncode == 0 and part.returncode == 0, part.stderr
    (run,) = (tmp_path / "runs" / "part").iterdir()
    resumed = torchrun(["resume", str(run), "train.epochs=3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    (reference,) = (tmp_path / "runs" / "whole").iterdir()
    assert epochs(run) == epochs(reference)  # the same processes, the same sums: exactly
    code, out, err = run_cli("eval", run)  # a DDP checkpoint in a single process: no "module." prefixes
    assert code == 0, err
    assert "test/accuracy" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_processes_started_with_different_configs_stop_with_a_message(write_config, tmp_path):
    config = write_config(CONFIG)
    port = free_port()
    processes = []
    for rank, lr in ((0, "0.1"), (1, "0.2")):
        env = {**ONE_THREAD, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        command = [sys.executable, "-m", "trainer", str(config), f"optimizer.lr={lr}"]
        processes.append(
            subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2
        assert "rank 1 was started with another config than rank 0 (they differ in optimizer.lr)" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_two_processes_count_every_validation_image_once(write_config, run_cli, tmp_path, cache):
    """An odd number of validation images on two processes: no padded repeats (disk, a sampler) and no dropped
    last few (memory, cut by index). The run's val metrics are those of a one-process eval of its checkpoint."""
    from tests.test_image_folder import make_shapes

    root = make_shapes(tmp_path / "shapes", per_class=11)  # 33 images, 9 held out: evaluated in batches of 8 and 1
    config = write_config(
        f"name: images\ndata: {{dataset: image_folder, root: {root}, image_size: 16, val_split: 0.3, batch_size: 2, "
        f"cache: {cache}, workers: 0}}\nmodel: {{name: cnn, channels: [4], fc: 8}}\ntrain: {{epochs: 1}}\n"
        "log: {graph: false}\n"
    )
    two = torchrun([str(config)], tmp_path)
    assert two.returncode == 0, two.stderr
    (run,) = (tmp_path / "runs" / "images").iterdir()
    (row,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    code, _, err = run_cli("eval", run / "checkpoints" / "last.pt", "--split", "val")
    assert code == 0, err
    alone = json.loads((run / "eval-val.json").read_text())
    assert row["val/loss"] == pytest.approx(alone["val/loss"], rel=1e-6)
    assert row["val/accuracy"] == alone["val/accuracy"]


NAN_ON_RANK_1 = """
import os

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.fc = nn.Linear(2, num_classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.fc(x)
        if self.training and os.environ.get("RANK") == "1" and self.calls >= 4:
            out = out * float("nan")  # from the 4th call on, only in this process
        return out
"""


def test_a_nan_on_one_process_stops_every_process_at_that_step(write_config, tmp_path):
    (tmp_path / "nan_net.py").write_text(NAN_ON_RANK_1)
    config = write_config(CONFIG.replace("model: {name: mlp, hidden: [32]}", "model: nan_net.py:Net"))
    two = torchrun([str(config), "train.preflight=false"], tmp_path)  # the preflight runs the model once more
    assert two.returncode != 0, two.stderr  # both stopped, each with its message: no timeout, no hang
    at = re.search(r"the loss became nan at (step (\d+) \(epoch 1, batch \d+\)): (.*)", two.stderr)  # rank 1
    assert at and "the first NaN/inf appears in the output of the model's own forward code (Net)" in at[3], two.stderr
    assert (
        f"the loss or the gradients of another process became NaN/inf at {at[1]}" in two.stderr
    )  # rank 0, at the same step
    (run,) = (tmp_path / "runs" / "ddp").iterdir()
    assert (run / "checkpoints" / f"nonfinite-step{at[2]}.pt").is_file()


def test_sync_batchnorm_on_cpus_is_refused_with_the_fix_and_one_process_ignores_it(write_config, run_cli, tmp_path):
    config = write_config(CONFIG.replace("train: {epochs: 3}", "train: {epochs: 1, sync_batchnorm: true}"))
    assert run_cli(config, "name=alone")[0] == 0  # one process: every batch norm sees the whole batch anyway
    two = torchrun([str(config)], tmp_path)
    assert two.returncode != 0
    assert "train.sync_batchnorm needs CUDA GPUs" in two.stderr and "train.sync_batchnorm=false" in two.stderr
