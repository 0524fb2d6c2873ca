"""Shared test helpers: tiny data in torchvision's MNIST layout, configs written to tmp_path, the CLI run in-process."""

from __future__ import annotations

import hashlib
import pickle
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


def make_fake_cifar(root: Path, dataset: str = "cifar10", train: int = 200, test: int = 50) -> dict[str, str]:
    """Learnable images in CIFAR's own pickle layout: each class has its own colour, plus noise.

    Returns {file name: md5}: torchvision checks the files against CIFAR's published checksums, so a test
    hands it these instead (see `fake_cifar`); everything else is torchvision's real reading code.
    """
    from torchvision import datasets

    dataset_class = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dataset]
    classes = 10 if dataset == "cifar10" else 100
    label_key = "labels" if dataset == "cifar10" else "fine_labels"
    folder = root / dataset_class.base_folder
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    colours = torch.randint(0, 256, (classes, 3, 1, 1), generator=generator)
    files = dataset_class.train_list + dataset_class.test_list
    sizes = [train // len(dataset_class.train_list)] * len(dataset_class.train_list) + [test]
    checksums = {}
    for (name, _), n in zip(files, sizes, strict=True):
        labels = torch.arange(n) % classes
        noise = torch.randint(-40, 40, (n, 3, 32, 32), generator=generator)
        images = (colours[labels] + noise).clamp(0, 255).to(torch.uint8)
        entry = {"data": images.reshape(n, -1).numpy(), label_key: labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {dataset_class.meta["key"]: [f"class{c}" for c in range(classes)]}
    (folder / dataset_class.meta["filename"]).write_bytes(pickle.dumps(meta))
    for path in folder.iterdir():
        checksums[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return checksums


@pytest.fixture
def fake_cifar(tmp_path: Path, monkeypatch) -> Path:
    """Fake CIFAR-10 files under tmp_path/data, with torchvision told their checksums."""
    from torchvision import datasets

    root = tmp_path / "data"
    checksums = make_fake_cifar(root)
    cls = datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[name, checksums[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, checksums[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": checksums[cls.meta["filename"]]})
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


# A small valid config written as a learner writes one: tests change a line of it to make one mistake.
SMALL_CONFIG = """
name: t
data:
  dataset: synthetic
  batch_size: 32
model:
  name: mlp
  hidden: [16]
optimizer:
  name: adamw
  lr: 1e-3
"""

SYNTHETIC = """
name: tiny
data: {dataset: synthetic, samples: 400, test_samples: 100, classes: 3, batch_size: 32}
model: {name: mlp, hidden: [16]}
optimizer: {name: adamw, lr: 1e-2}
train: {epochs: 2}
log: {every_n_steps: 5}
"""


@pytest.fixture
def run_cli(capfd, monkeypatch, tmp_path):
    """Run `python -m trainer ARGS` in this process from tmp_path; returns (exit code, stdout, stderr). The output is
    read at the file descriptors, so whatever reaches the real stdout and stderr (a traceback too) is seen."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.chdir(tmp_path)
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


def patch_cifar_checksums(monkeypatch, dataset: str, checksums: dict[str, str]) -> None:
    """Tell torchvision the checksums of fake CIFAR files (it checks them against CIFAR's published ones)."""
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dataset]
    monkeypatch.setattr(cls, "train_list", [[name, checksums[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, checksums[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": checksums[cls.meta["filename"]]})


def write_fake_data(dataset: str, root: Path, monkeypatch) -> Path:
    """Small stand-in files for a built-in data set (mnist, fashion_mnist, cifar10, cifar100) under root."""
    if dataset in ("mnist", "fashion_mnist"):
        return make_fake_mnist(root, folder="MNIST" if dataset == "mnist" else "FashionMNIST")
    if dataset in ("cifar10", "cifar100"):
        patch_cifar_checksums(monkeypatch, dataset, make_fake_cifar(root, dataset))
        return root
    raise ValueError(f"no fake data for {dataset!r}: choose mnist, fashion_mnist, cifar10 or cifar100")


@pytest.fixture(autouse=True, scope="session")
def catalog_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests keep leaptrain's catalog of torch's signatures (trainer/components/catalog.py) out of ~/.cache:
    one folder for the whole session, so it is made once; child processes inherit the variable."""
    folder = tmp_path_factory.mktemp("leaptrain-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEAPTRAIN_CACHE_DIR", str(folder))
        yield folder
