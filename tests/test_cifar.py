"""CIFAR through torchvision's reading code on fake files, and the batch augmentation it trains with."""

from __future__ import annotations

import json

import torch

from trainer.components.augment import batch_augment, random_crop, random_flip
from trainer.components.data import build_data
from trainer.config import CifarData


def test_cifar_is_held_as_uint8_and_normalized_per_batch(fake_cifar):
    data = build_data(CifarData(dataset="cifar10", root=str(fake_cifar), download=False), torch.device("cpu"), 0)
    assert data.train.inputs.dtype == torch.uint8 and data.train.inputs.shape[1:] == (3, 32, 32)
    assert data.train.num_samples == 180 and data.val.num_samples == 20 and data.test.num_samples == 50
    assert data.class_names == [f"class{c}" for c in range(10)] and data.num_classes == 10
    inputs, _ = next(iter(data.test))
    assert inputs.dtype == torch.float32 and abs(inputs.mean().item()) < 1.5
    assert "in memory" in data.feeding and "augmented" in data.feeding


def test_missing_cifar_names_the_files_and_the_folder(tmp_path, write_config, run_cli):
    data = f"data: {{dataset: cifar10, root: {tmp_path}/nothing, download: false}}"
    config = write_config(f"{data}\nmodel: {{name: cnn}}")
    code, _, err = run_cli(config)
    assert code == 2
    assert "cifar-10-batches-py/ lacks data_batch_1" in err and "data.download is false" in err
    assert "Unpack cifar-10-python.tar.gz in" in err and "Traceback" not in err


def test_cifar_trains_from_the_cli_and_predict_names_the_classes(fake_cifar, write_config, run_cli, tmp_path):
    from PIL import Image

    config = write_config(
        f"data: {{dataset: cifar10, root: {fake_cifar}, batch_size: 32}}\n"
        "model: {name: cnn, channels: [8, 16], fc: 32}\noptimizer: {name: adamw, lr: 3e-3}\ntrain: {epochs: 3}\n"
    )
    code, out, err = run_cli(config)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"]["test/accuracy"] > 0.5
    picture = tmp_path / "one.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(picture)
    code, out, err = run_cli("predict", run_dir, picture)
    assert code == 0, err
    assert "class" in out and "one.png" in out


def test_random_crop_matches_cutting_each_padded_image_by_hand():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    offsets = torch.randint(0, 5, (6, 2), generator=torch.Generator().manual_seed(3))
    cropped = random_crop(images, 2, offsets)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):
        y, x = offsets[i].tolist()
        assert torch.equal(cropped[i], padded[i, :, y : y + 8, x : x + 8])


def test_flip_mirrors_the_images_it_is_told_to_and_keeps_the_others():
    images = torch.arange(64 * 2 * 2, dtype=torch.float32).reshape(64, 1, 2, 2)
    flips = torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.5
    flipped = random_flip(images, flips)
    for i in range(64):
        assert torch.equal(flipped[i], images[i].flip(2) if flips[i] else images[i])


def test_an_epochs_augmentation_is_drawn_once_and_replays_from_the_generator_state():
    augment = batch_augment(["random_crop", "horizontal_flip"], 4)
    assert augment is not None and batch_augment([], 4) is None
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    draws = augment.draw(16, generator)
    assert draws.shape == (16, 3) and draws[:, :2].max() <= 8 and set(draws[:, 2].tolist()) <= {0, 1}
    generator.set_state(state)
    assert torch.equal(augment.draw(16, generator), draws)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    # a batch of samples 3, 7 and 11 is augmented with those samples' rows: the same as each sample alone
    batch = augment(images[[3, 7, 11]], draws[[3, 7, 11]])
    assert torch.equal(batch[1], augment(images[[7]], draws[[7]])[0])


def test_an_augmented_run_resumes_with_the_same_losses(fake_cifar, write_config, run_cli, tmp_path):
    """The crops and flips come from the loader's generator, which the checkpoint keeps: a resumed run draws
    the same augmentation as one that never stopped."""
    path = write_config(
        f"data: {{dataset: cifar10, root: {fake_cifar}, batch_size: 32}}\n"
        "model: {name: cnn, channels: [8], fc: 16}\noptimizer: {name: adamw, lr: 3e-3}\n"
    )
    assert run_cli(path, "name=whole", "train.epochs=3")[0] == 0
    assert run_cli(path, "name=parts", "train.epochs=1")[0] == 0
    assert run_cli("resume", next((tmp_path / "runs" / "parts").iterdir()), "train.epochs=3")[0] == 0

    def losses(name: str) -> list[float]:
        (run_dir,) = (tmp_path / "runs" / name).iterdir()
        return [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert len(losses("whole")) == 3 and losses("parts") == losses("whole")
