"""Fine-tuning a pretrained torchvision model from the config: model.weights (a name or a file), model.freeze and
train.fine_tune. The tests save the weights files they use; nothing is downloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from trainer.checkpoint import load_checkpoint
from trainer.components.pretrained import data_for_weights
from trainer.config import ImageFolderData, OtherModel

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
name: ft
data: {{dataset: image_folder, root: shapes, image_size: 32, batch_size: 27, augment: []}}
model: {{name: resnet18, weights: {weights}, freeze: backbone}}
optimizer: {{name: adamw, lr: 0.01}}
train: {{epochs: {epochs}{train}}}
log: {{dir: runs, pictures: false}}
"""


def make_shape_images(root: Path, per_class: int) -> None:
    """root/<colour>/*.png: noisy pictures of three colours, 40x40."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for name, colour in (("red", (200, 40, 40)), ("green", (40, 200, 40)), ("blue", (40, 40, 200))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            noise = torch.randint(-40, 41, (40, 40, 3), generator=generator)
            pixels = (torch.tensor(colour) + noise).clamp(0, 255).to(torch.uint8)
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")


@pytest.fixture
def shapes_and_weights(tmp_path: Path) -> Path:
    make_shape_images(tmp_path / "shapes", per_class=30)  # 81 train / 9 val images
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    return tmp_path / "resnet18.pth"


def only_run(tmp_path: Path) -> Path:
    (run,) = (tmp_path / "runs" / "ft").iterdir()
    return run


def test_a_frozen_backbone_from_a_weights_file_stays_bit_exact_while_the_new_head_learns(
    shapes_and_weights, write_config, run_cli, tmp_path
):
    code, out, err = run_cli(write_config(CONFIG.format(weights="resnet18.pth", epochs=3, train="")))
    assert code == 0, err
    assert "weights: resnet18.pth for resnet18, images 32x32; the backbone is frozen, only the new last layer" in out
    run = only_run(tmp_path)
    trained = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    original = torch.load(shapes_and_weights, weights_only=True)
    body = [key for key in original if not key.startswith("fc.")]
    assert len(body) > 100  # the weights and the batch norm statistics, all of them
    for key in body:
        assert torch.equal(trained[f"net.{key}"], original[key]), key
    assert trained["net.fc.weight"].shape == (3, 512)  # a new head for the 3 classes
    losses = [json.loads(line)["train/loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]


def test_fine_tune_unfreezes_the_backbone_after_its_head_epochs_at_the_lower_lr(
    shapes_and_weights, write_config, run_cli, tmp_path
):
    train = ", fine_tune: {head_epochs: 1, body_lr_factor: 0.2}"
    code, out, err = run_cli(write_config(CONFIG.format(weights="resnet18.pth", epochs=2, train=train)))
    assert code == 0, err
    assert "fine-tuning: epochs 1-1 train only the new last layer (fc)" in out
    assert "fine-tuning: the backbone is unfrozen; from epoch 2 it trains at lr 0.002" in out
    checkpoint = load_checkpoint(only_run(tmp_path) / "checkpoints" / "last.pt")
    assert [group["lr"] for group in checkpoint["optimizer"]["param_groups"]] == pytest.approx([0.01, 0.002])
    original = torch.load(shapes_and_weights, weights_only=True)
    assert not torch.equal(checkpoint["model"]["net.conv1.weight"], original["conv1.weight"])  # it trained


def test_weights_of_another_model_are_named_with_the_model_they_fit(
    shapes_and_weights, write_config, run_cli, tmp_path
):
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "phone.pth")
    code, _, err = run_cli(write_config(CONFIG.format(weights="phone.pth", epochs=1, train="")))
    assert code == 2
    assert "model.weights: the weights in phone.pth do not fit resnet18" in err
    assert "they look like mobilenet_v3_small's" in err and "Try: model.name=mobilenet_v3_small" in err
    assert "Traceback" not in err


def test_named_weights_offline_say_which_file_to_put_where(shapes_and_weights, write_config, tmp_path):
    """torchvision's own download, through a proxy that refuses every connection: offline, as on a plane. In a
    process of its own: urllib keeps the first proxy it sees for the rest of a process."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in ("no_proxy", "https_proxy")}
    env |= {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    env |= {"TORCH_HOME": str(tmp_path / "torch-home"), "PYTHONPATH": str(ROOT)}
    config = write_config(CONFIG.format(weights="DEFAULT", epochs=1, train=""))
    done = subprocess.run(
        [sys.executable, "-m", "trainer", str(config)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    err = done.stderr
    assert done.returncode == 2, err
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert "could not download the weights ResNet18_Weights.IMAGENET1K_V1 of resnet18" in err
    assert f"put it at {cached}" in " ".join(err.split())
    assert "model.weights=path/to/resnet18-f37072fd.pth" in err and "Traceback" not in err
    assert not cached.exists()


@pytest.mark.parametrize(
    ("weights", "said"),
    [
        ("DEFUALT", "'DEFUALT' is neither a weights name of resnet18 nor a file (did you mean 'DEFAULT'?)"),
        ("missing.pth", "the weights file missing.pth is not there"),
    ],
)
def test_a_weights_name_or_file_that_is_not_there_is_said_with_the_choices(
    weights, said, shapes_and_weights, write_config, run_cli
):
    code, _, err = run_cli(write_config(CONFIG.format(weights=weights, epochs=1, train="")))
    assert code == 2 and said in " ".join(err.split()), err


@pytest.mark.parametrize(
    ("model", "train", "said"),
    [
        ("{name: resnet18}", ", fine_tune: {head_epochs: 1}", "fine-tuning starts from a pretrained model"),
        (
            "{name: resnet18, weights: r.pth}",
            ", fine_tune: {head_epochs: 2}",
            "Try: train.fine_tune.head_epochs=1, or train.epochs=4",
        ),
        ("{name: resnet18, freeze: none}", "", "freezing keeps trained weights as they are"),
    ],
)
def test_fine_tuning_settings_that_cannot_work_are_refused_before_training(model, train, said, write_config, run_cli):
    config = CONFIG.format(weights="x", epochs=2, train=train).replace("{name: resnet18, weights: x, freeze: backbone}",
                                                                         model)  # fmt: skip
    code, _, err = run_cli(write_config(config))
    assert code == 2 and said in err, err


def test_the_data_take_the_size_and_normalization_the_named_weights_were_trained_with():
    model = OtherModel(name="efficientnet_b0", weights="DEFAULT")  # only the weights' meta: no download
    data = data_for_weights(model, ImageFolderData(dataset="image_folder", root="photos"))
    assert data.image_size == 224 and data.mean == [0.485, 0.456, 0.406] and data.std == [0.229, 0.224, 0.225]
    kept = data_for_weights(model, ImageFolderData(dataset="image_folder", root="photos", image_size=96))
    assert kept.image_size == 96  # the learner's own choice stays


def test_predict_on_a_fine_tuned_run_needs_no_weights_file(shapes_and_weights, write_config, run_cli, tmp_path):
    assert run_cli(write_config(CONFIG.format(weights="resnet18.pth", epochs=1, train="")))[0] == 0
    shapes_and_weights.unlink()  # the run's checkpoint holds every weight
    image = next((tmp_path / "shapes" / "red").iterdir())
    code, out, err = run_cli("predict", only_run(tmp_path), image)
    assert code == 0, err
    assert image.name in out
