"""Shared test helpers: tiny data in torchvision's MNIST layout, configs written to tmp_path, the CLI run in-process."""

from __future__ import annotations

import struct
import textwrap
from pathlib import Path

import pytest
import torch

from trainer.cli import main


def write_idx(path: Path, tensor: torch.Tensor) -> None:
    """An IDX file as MNIST ships it: magic (0, 0, type 0x08 = ubyte, number of dims), big-endian sizes, bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    path.write_bytes(header + tensor.to(torch.uint8).numpy().tobytes())


def make_fake_mnist(root: Path, folder: str = "MNIST", train: int = 256, test: int = 64) -> Path:
    """Learnable digits: each class is a bright bar at its own row, plus noise."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = torch.arange(n) % 10
        images = torch.randint(0, 60, (n, 28, 28), generator=generator)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    return make_fake_mnist(tmp_path / "data")


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


SYNTHETIC = """
name: tiny
data: {dataset: synthetic, samples: 400, test_samples: 100, classes: 3, batch_size: 32}
model: {name: mlp, hidden: [16]}
optimizer: {name: adamw, lr: 1e-2}
train: {epochs: 2}
log: {every_n_steps: 5}
"""


@pytest.fixture
def run_cli(capsys, monkeypatch, tmp_path):
    """Run `python -m trainer ARGS` in this process from tmp_path; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.chdir(tmp_path)
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
