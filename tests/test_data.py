"""MNIST read with torchvision's own code from tiny IDX files, held in memory, split by seed."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tests.conftest import make_fake_mnist
from trainer.components.data import build_data
from trainer.components.splits import InMemoryLoader, check_split_classes
from trainer.config import SyntheticData, VisionData
from trainer.errors import UserError


def test_fake_idx_files_read_as_normalized_tensors(fake_mnist):
    data = build_data(VisionData(dataset="mnist", root=str(fake_mnist), download=False), torch.device("cpu"), 0)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (231, 25, 64)
    assert data.train.inputs.dtype == torch.float32
    assert data.train.inputs.max() > 2  # the bright bars, normalized with MNIST's mean and std


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    root = make_fake_mnist(tmp_path, folder="FashionMNIST")
    data = build_data(VisionData(dataset="fashion_mnist", root=str(root), download=False), torch.device("cpu"), 0)
    assert data.test.num_samples == 64


def test_validation_split_depends_only_on_the_seed(fake_mnist):
    cfg = VisionData(dataset="mnist", root=str(fake_mnist), download=False)
    first, again, other = (build_data(cfg, torch.device("cpu"), seed) for seed in (0, 0, 1))
    assert torch.equal(first.val.targets, again.val.targets)
    assert not torch.equal(first.val.inputs, other.val.inputs)


def test_missing_files_say_which_files_to_put_where(tmp_path):
    cfg = VisionData(dataset="mnist", root=str(tmp_path / "data"), download=False)
    with pytest.raises(UserError) as caught:
        build_data(cfg, torch.device("cpu"), 0)
    assert caught.value.key == "data.root"
    assert (
        "train-images-idx3-ubyte" in caught.value.fix and str(tmp_path / "data" / "MNIST" / "raw") in caught.value.fix
    )


def test_failed_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    from torchvision.datasets import mnist

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    cfg = VisionData(dataset="mnist", root=str(tmp_path), download=True)
    with pytest.raises(UserError) as caught:
        build_data(cfg, torch.device("cpu"), 0)
    assert "the download failed" in caught.value.message and "network is unreachable" in caught.value.message
    assert "t10k-labels-idx1-ubyte" in caught.value.fix and "https://" in caught.value.fix


def test_missing_mnist_through_the_cli_points_at_data_root(write_config, run_cli):
    path = write_config("data:\n  dataset: mnist\n  root: nowhere\n  download: false\nmodel: cnn\n")
    code, _, err = run_cli(path)
    assert code == 2
    assert "config.yaml:3: data.root: mnist is not in nowhere/MNIST/raw/" in err
    assert "Try: Put the files train-images-idx3-ubyte" in err


def test_mnist_trains_end_to_end_on_fake_files(fake_mnist, write_config, run_cli):
    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {{name: cnn, channels: [8]}}\n"
    code, out, _ = run_cli(write_config(text), "train.epochs=2")
    assert code == 0
    assert "test/accuracy" in out


def test_synthetic_spirals_and_blobs_have_the_asked_shape():
    spirals = build_data(SyntheticData(dataset="synthetic", kind="spirals", classes=4), torch.device("cpu"), 0)
    blobs = build_data(SyntheticData(dataset="synthetic", features=7), torch.device("cpu"), 0)
    assert spirals.input_shape == (2,) and spirals.num_classes == 4
    assert blobs.input_shape == (7,) and blobs.test.num_samples == 500


def test_loader_covers_every_sample_once_per_epoch_in_a_new_order():
    loader = InMemoryLoader(torch.arange(10).float(), torch.arange(10), batch_size=4, shuffle=True)
    first = torch.cat([targets for _, targets in loader])
    second = torch.cat([targets for _, targets in loader])
    assert len(loader) == 3
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert not torch.equal(first, second)


def test_a_class_missing_from_a_split_big_enough_to_hold_it_is_a_warning():
    names = ["cat", "dog", "fox"]
    train = Counter(cat=10, dog=10, fox=2)
    counts = {"train": train, "val": Counter(cat=3, dog=3), "test": Counter(cat=2, dog=1)}  # test: too few to say
    warnings = check_split_classes(names, counts, "image", lambda untrained: UserError(f"{untrained}"))
    assert warnings == [
        "1 of 3 classes have no image in the val split (fox; 2 images in all): val metrics say nothing about them"
    ]
    counts["test"] = Counter(cat=6)
    assert len(check_split_classes(names, counts, "row", lambda untrained: UserError(f"{untrained}"))) == 2


def test_a_class_with_no_training_example_is_the_callers_error():
    counts = {"train": Counter(cat=5), "val": Counter(dog=2, fox=1), "test": Counter()}
    with pytest.raises(UserError, match=r"no training rows: \['dog', 'fox'\]"):
        check_split_classes(["cat", "dog", "fox"], counts, "row", lambda names: UserError(f"no training rows: {names}"))


BUILDERS = ["splits", "torchvision_data", "cifar", "image_folder", "tables", "toy", "augment"]


def test_no_data_set_builder_imports_the_dispatcher():
    """data.py imports the builders (build_data); a builder importing data.py back would make an import circle."""
    import ast
    from pathlib import Path

    import trainer.components

    folder = Path(trainer.components.__file__).parent
    for name in BUILDERS:
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "trainer.components.data" not in imported, f"{name}.py imports trainer.components.data"


@pytest.mark.parametrize("first", BUILDERS)
def test_each_builder_imports_first_in_a_fresh_interpreter(first):
    import subprocess
    import sys

    modules = [first] + [name for name in BUILDERS if name != first] + ["data"]
    code = "; ".join(f"import trainer.components.{name}" for name in modules)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
