"""Every shipped config validates and trains (on tiny data), and the recipes run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torchvision

from tests.conftest import make_fake_mnist
from trainer.cli import load_config
from trainer.run import check_components

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def make_image_folder(root: Path, per_class: int = 12) -> Path:
    """root/<class>/*.png: red and blue squares."""
    from PIL import Image

    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (40, 30), colour).save(root / name / f"{i}.png")
    return root


def test_configs_are_shipped():
    shipped = {p.name for p in CONFIGS}
    assert {"mnist.yaml", "mnist_mlp.yaml", "fashion_mnist.yaml", "synthetic.yaml", "mnist_speedrun.yaml"} <= shipped
    assert {"cifar10.yaml", "moons.yaml", "blobs.yaml", "sine.yaml"} <= shipped
    assert {"image_folder.yaml", "iris.yaml", "diabetes.yaml"} <= shipped


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path):
    cfg, _ = load_config(str(path), [])
    check_components(cfg)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_trains_one_epoch_on_tiny_data(path, tmp_path, run_cli, request):
    cfg, _ = load_config(str(path), [])
    overrides = ["train.epochs=1"]
    if cfg.data.dataset in ("mnist", "fashion_mnist"):
        folder = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[cfg.data.dataset]
        overrides.append(f"data.root={make_fake_mnist(tmp_path / 'data', folder)}")
    elif cfg.data.dataset == "cifar10":
        overrides.append(f"data.root={request.getfixturevalue('fake_cifar')}")
    elif cfg.data.dataset == "image_folder":
        overrides.append(f"data.root={make_image_folder(tmp_path / 'images')}")
    elif cfg.data.dataset == "csv":
        overrides.append(f"data.path={ROOT / cfg.data.path}")  # the run starts in tmp_path, not the repository
    else:
        overrides += ["data.samples=300", "data.test_samples=50"]
    if getattr(cfg.model, "weights", None) is not None:  # weights this test saves (random ones): no download
        torch.save(torchvision.models.get_model(cfg.model.name).state_dict(), tmp_path / "weights.pth")
        overrides += [f"model.weights={tmp_path / 'weights.pth'}", "data.image_size=32"]
    if cfg.train.fine_tune is not None:  # one epoch of the new head alone, one of the whole model
        overrides += ["train.epochs=2", "train.fine_tune.head_epochs=1"]
    code, _, err = run_cli(path, *overrides)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / cfg.name).iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == (1 if cfg.train.fine_tune is None else 2)


def test_recipe_trains_a_custom_model_with_a_custom_loss(tmp_path):
    make_fake_mnist(tmp_path / "data", train=400)
    spec = importlib.util.spec_from_file_location("recipe", ROOT / "recipes" / "custom_model_and_loss.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    metrics = recipe.main(["--root", str(tmp_path / "data"), "--epochs", "3", "--runs", str(tmp_path / "runs")])
    assert metrics["test/accuracy"] > 0.5  # the fake digits are easy bars: far above 10% chance
    assert (tmp_path / "runs" / "recipe-focal").is_dir()
