"""Every recipe in recipes/ runs with --quick and does what its docstring says."""

from __future__ import annotations

import importlib.util
import urllib.error
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.conftest import make_fake_mnist

ROOT = Path(__file__).resolve().parents[1]


def load_recipe(name: str) -> ModuleType:
    """recipes/ is not a package: import a recipe from its path, as a learner's `python recipes/x.py` would run it."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def test_chain_rule_gradients_agree_with_autograd_and_the_tiny_network_trains(tmp_path, capsys):
    metrics = load_recipe("autograd_vs_chain_rule").main(["--quick", "--runs", str(tmp_path / "runs")])
    assert metrics["grad/max_difference"] < 1e-12
    assert metrics["test/loss"] < metrics["test/loss_before"] / 5
    assert "largest difference" in capsys.readouterr().out


def test_chain_rule_check_catches_a_wrong_derivative(monkeypatch):
    recipe = load_recipe("autograd_vs_chain_rule")
    monkeypatch.setattr(recipe.torch, "tanh", torch.sigmoid)  # the hand-written 1 - h^2 is now the wrong derivative
    with pytest.raises(AssertionError, match="disagree"):
        recipe.check_gradients()


def test_custom_model_learns_synthetic_digits(tmp_path):
    metrics = load_recipe("custom_model").main(["--quick", "--runs", str(tmp_path / "runs")])
    assert metrics["test/accuracy"] > 0.5  # 10 classes: chance is 10%
    assert (tmp_path / "runs" / "recipe-custom-model").is_dir()


def test_custom_model_reads_mnist_from_root(tmp_path):
    make_fake_mnist(tmp_path / "data", train=400)
    metrics = load_recipe("custom_model").main(
        ["--quick", "--root", str(tmp_path / "data"), "--runs", str(tmp_path / "runs")]
    )
    assert metrics["test/accuracy"] > 0.3


def test_custom_model_and_focal_loss_train_together_and_focal_loss_without_focus_is_cross_entropy(tmp_path):
    recipe = load_recipe("custom_model_and_loss")
    logits, targets = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.allclose(
        recipe.focal_loss(logits, targets, gamma=0.0), torch.nn.functional.cross_entropy(logits, targets)
    )
    assert recipe.focal_loss(logits, targets) < torch.nn.functional.cross_entropy(
        logits, targets
    )  # easy ones count less
    make_fake_mnist(tmp_path / "data", train=1200)
    metrics = recipe.main(["--quick", "--root", str(tmp_path / "data"), "--runs", str(tmp_path / "runs")])
    assert metrics["test/accuracy"] > 0.3  # 10 classes: chance is 10%
    assert (tmp_path / "runs" / "recipe-focal").is_dir()


def test_custom_loss_matches_torch_label_smoothing_and_trains(tmp_path, capsys):
    recipe = load_recipe("custom_loss")
    logits, targets = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    expected = torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.2)
    assert torch.allclose(recipe.label_smoothing_cross_entropy(logits, targets, 0.2), expected)
    metrics = recipe.main(["--quick", "--runs", str(tmp_path / "runs")])
    assert metrics["test/accuracy"] > 0.6  # three spirals: chance is 33%
    assert metrics["cross_entropy/test/accuracy"] > 0.6
    assert "vs built-in cross entropy" in capsys.readouterr().out


def test_transfer_learning_trains_only_the_new_head(tmp_path):
    recipe = load_recipe("transfer_learning")
    metrics = recipe.main(["--quick", "--runs", str(tmp_path / "runs")])
    assert 0 <= metrics["val/accuracy"] <= 1
    from torchvision.models import resnet18

    model = recipe.FrozenBackbone(resnet18(), num_classes=3)
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    assert trainable == ["resnet.fc.weight", "resnet.fc.bias"]
    model.train()
    assert not model.resnet.bn1.training  # the pretrained statistics stay as they are


def test_transfer_learning_offline_says_where_weights_go_and_carries_on(tmp_path, monkeypatch, capsys):
    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty cache: torchvision must download
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    metrics = load_recipe("transfer_learning").main(["--quick", "--pretrained", "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert "could not download ResNet-18's ImageNet weights" in err
    assert "Temporary failure in name resolution" in err
    assert str(tmp_path / "torch_home") in err  # where torchvision caches them
    assert "--weights PATH/resnet18-" in err
    assert "val/accuracy" in metrics  # it carried on from random weights


def test_transfer_learning_loads_weights_from_a_local_file(tmp_path, capsys):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), weights)
    load_recipe("transfer_learning").main(["--quick", "--weights", str(weights), "--runs", str(tmp_path / "runs")])
    assert f"weights: {weights}" in capsys.readouterr().out


def test_regression_on_diabetes_explains_a_third_of_the_spread_like_least_squares(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe finds the CSV from its own place, not from the current folder
    metrics = load_recipe("regression_csv").main(["--quick", "--runs", str(tmp_path / "runs")])
    assert metrics["test/r2"] > 0.3
    assert metrics["least_squares/test/r2"] > 0.3
    assert metrics["test/mae"] < 70  # progression points; predicting the mean is off by about 65


def test_autoencoder_error_falls_and_its_images_are_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = load_recipe("autoencoder").main(["--quick", "--runs", str(tmp_path / "runs")])
    assert metrics["test/error_after"] < metrics["test/error_before"] / 3
    (run_dir,) = (tmp_path / "runs" / "recipe-autoencoder").iterdir()
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images("reconstructions/originals_above")
    assert image.width > 8 * 28 and image.height > 2 * 28  # eight originals above eight reconstructions
