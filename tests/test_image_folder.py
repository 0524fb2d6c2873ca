"""Your own photos (data.dataset: image_folder): folders of generated PNGs, cached in memory or read by workers."""

from __future__ import annotations

import json
import random
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from trainer.checkpoint import load_checkpoint
from trainer.components import image_folder
from trainer.components.data import build_data
from trainer.config import ImageFolderData
from trainer.errors import UserError

SHAPES = ("circle", "square", "triangle")
CONFIG = """
data: {{dataset: image_folder, root: {root}, image_size: 24, crop_padding: 2, batch_size: 16, {cache_and_workers}}}
model: {{name: cnn, channels: [8, 16], fc: 32}}
optimizer: {{name: adamw, lr: 3e-3}}
train: {{epochs: 3}}
log: {{every_n_steps: 5}}
"""


def make_shapes(root: Path, per_class: int = 20, size: int = 32, classes: tuple[str, ...] = SHAPES) -> Path:
    """root/<class>/NNN.png: filled circles, squares or triangles, each class brightest in its own colour channel."""
    rng = random.Random(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (size, size), tuple(rng.randrange(0, 60) for _ in range(3)))
            colour = [rng.randrange(60, 140) for _ in range(3)]
            colour[label % 3] = 255
            r = rng.randrange(size // 5, size // 3)
            x, y = rng.randrange(r, size - r), rng.randrange(r, size - r)
            draw = ImageDraw.Draw(image)
            if label % 3 == 0:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(colour))
            elif label % 3 == 1:
                draw.rectangle((x - r, y - r, x + r, y + r), fill=tuple(colour))
            else:
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=tuple(colour))
            image.save(root / name / f"{i:03}.png")
    return root


def add_corrupt_file(root: Path) -> Path:
    path = root / "circle" / "broken.png"
    path.write_bytes(random.Random(1).randbytes(300))  # random bytes under an image's name
    return path


def config(write_config, root: Path, cache: str = "memory", workers: int | str = 0) -> Path:
    return write_config(CONFIG.format(root=root, cache_and_workers=f"cache: {cache}, workers: {workers}"))


def only_run(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    return run_dir


def epoch_losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def build(root: Path, **settings) -> image_folder.DataSplits:
    settings = {"image_size": 24, "batch_size": 16, "cache": "memory", "workers": 0} | settings
    return build_data(ImageFolderData(dataset="image_folder", root=str(root), **settings), torch.device("cpu"), 0)


@pytest.mark.parametrize(
    ("cache", "workers", "feeding"),
    [
        ("memory", 0, "kept in memory (data.cache: memory)"),
        ("disk", 0, "read from disk (data.cache: disk): decoded, resized and augmented each epoch by this process"),
        ("disk", 2, "read from disk (data.cache: disk): decoded, resized and augmented each epoch by 2 DataLoader"),
    ],
)
def test_photos_train_and_the_loss_falls_whether_cached_or_read_from_disk(
    tmp_path, write_config, run_cli, cache, workers, feeding
):
    root = make_shapes(tmp_path / "shapes")
    add_corrupt_file(root)
    code, out, err = run_cli(config(write_config, root, cache, workers))
    assert code == 0, err
    assert "61 images of 3x24x24 take" in out and feeding in out
    assert "3 classes (circle, square, triangle), 54 train / 6 val / 0 test images" in out
    skipped = "skipped 1 of 61 image files that could not be read: circle/broken.png"
    assert f"warning: {skipped}" in out  # said by the run's logger, which keeps it in diagnosis.txt
    assert skipped in (only_run(tmp_path) / "diagnosis.txt").read_text()
    losses = epoch_losses(only_run(tmp_path))
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0]


def test_class_names_are_kept_in_the_checkpoint_and_predict_prints_them(tmp_path, write_config, run_cli):
    root = make_shapes(tmp_path / "shapes")
    assert run_cli(config(write_config, root))[0] == 0
    run_dir = only_run(tmp_path)
    data = load_checkpoint(run_dir / "checkpoints" / "best.pt")["data"]
    assert data["class_names"] == list(SHAPES) and data["input_shape"] == [3, 24, 24]
    assert len(data["mean"]) == len(data["std"]) == 3 and data["task"] == "classification"
    json.dumps(data)  # plain data only: a checkpoint must not need our classes to be read
    new = make_shapes(tmp_path / "new", per_class=2, size=48)  # other sizes are resized as in training
    code, out, err = run_cli("predict", run_dir, new, "--out", tmp_path / "predictions.csv")
    assert code == 0, err
    assert "square/000.png" in out and any(name in out for name in SHAPES)
    labels = [line.split(",")[1] for line in (tmp_path / "predictions.csv").read_text().splitlines()[1:]]
    assert len(labels) == 6 and set(labels) <= set(SHAPES)
    code, out, err = run_cli("eval", run_dir, "--split", "val")  # the folder is read again, as in training
    assert code == 0 and "val/accuracy" in out, err


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_a_resumed_run_has_the_same_losses_as_one_that_never_stopped(tmp_path, write_config, run_cli, cache):
    """The order (and, in memory or without workers, the augmentation) replays from the saved random states."""
    path = config(write_config, make_shapes(tmp_path / "shapes"), cache)
    assert run_cli(path, "name=whole", "train.epochs=3")[0] == 0
    assert run_cli(path, "name=parts", "train.epochs=1")[0] == 0
    assert run_cli("resume", next((tmp_path / "runs" / "parts").iterdir()), "train.epochs=3")[0] == 0
    whole, parts = (epoch_losses(next((tmp_path / "runs" / name).iterdir())) for name in ("whole", "parts"))
    assert len(whole) == 3 and parts == whole


def test_train_and_val_folders_are_used_as_given(tmp_path):
    root = tmp_path / "shapes"
    make_shapes(root / "train", per_class=10)
    make_shapes(root / "val", per_class=3)
    make_shapes(root / "test", per_class=2)
    data = build(root, val_split=0.5)  # ignored: val/ says which images validate
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (30, 9, 6)
    assert data.class_names == list(SHAPES)
    assert data.val.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_memory_and_disk_give_the_model_the_same_validation_pixels(tmp_path):
    root = make_shapes(tmp_path / "shapes")
    memory, disk = build(root, cache="memory"), build(root, cache="disk")
    # The statistics, computed here in one go from the training images kept in memory (raw uint8 pixels): under
    # 500 training images the disk path measures all of them too, so both must give these.
    pixels = memory.train.inputs
    assert pixels.dtype == torch.uint8 and len(pixels) == memory.train.num_samples
    values = pixels.double() / 255
    expected = {"mean": values.mean(dim=(0, 2, 3)).tolist(), "std": values.std(dim=(0, 2, 3), correction=0).tolist()}
    everything = torch.cat([pixels, memory.val.inputs]).double() / 255
    assert everything.mean(dim=(0, 2, 3)).tolist() != pytest.approx(expected["mean"], abs=1e-4)  # val would show
    for data in (memory, disk):
        assert data.info["mean"] == pytest.approx(expected["mean"], abs=1e-6)
        assert data.info["std"] == pytest.approx(expected["std"], abs=1e-6)
    assert {k: v for k, v in memory.info.items() if k not in expected} == {
        k: v for k, v in disk.info.items() if k not in expected
    }
    (memory_inputs, memory_targets), (disk_inputs, disk_targets) = next(iter(memory.val)), next(iter(disk.val))
    assert torch.equal(memory_targets, disk_targets)
    assert torch.allclose(memory_inputs, disk_inputs, atol=1e-5)
    assert memory_inputs.mean(dim=(0, 2, 3)).abs().max() < 1  # normalized with the training images' statistics


def test_the_validation_split_depends_only_on_the_seed(tmp_path):
    root = make_shapes(tmp_path / "shapes")
    files = image_folder.find_images(root).train
    first, again, other = (image_folder.split(files, 0.25, seed) for seed in (0, 0, 1))
    assert first == again and first[1] != other[1] and len(first[1]) == 15


def test_grayscale_rectangular_images_and_any_suffix_case(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=4)
    Image.new("RGB", (30, 20), (255, 0, 0)).save(root / "square" / "photo.BMP")  # torchvision cannot read bmp
    (root / "square" / "notes.txt").write_text("not an image: ignored")
    data = build(root, grayscale=True, image_size=(16, 20), val_split=0, augment=[])
    assert data.input_shape == (1, 16, 20) and data.train.num_samples == 13
    assert data.train.inputs.dtype == torch.uint8  # kept as bytes, normalized per batch
    inputs, _ = next(iter(data.train))
    assert inputs.shape[1:] == (1, 16, 20) and inputs.dtype == torch.float32


def test_torchvision_deprecation_warning_is_silenced(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cache in ("memory", "disk"):
            inputs, _ = next(iter(build(root, cache=cache, val_split=0).train))
            assert inputs.shape == (6, 3, 24, 24)


def test_png_is_decoded_by_torchvision_and_bmp_by_pil(tmp_path, monkeypatch):
    root = make_shapes(tmp_path / "shapes", per_class=1)
    Image.new("RGB", (10, 10), (255, 0, 0)).save(tmp_path / "red.bmp")

    def no_pil(path, grayscale):
        raise AssertionError("PIL was used")

    monkeypatch.setattr(image_folder, "_decode_pil", no_pil)
    assert image_folder.read_image(root / "circle" / "000.png", (8, 8), grayscale=True).shape == (1, 8, 8)
    monkeypatch.undo()
    assert image_folder.read_image(tmp_path / "red.bmp", (10, 10), grayscale=False)[:, 0, 0].tolist() == [255, 0, 0]


def test_decoding_on_many_threads_fills_the_cache_in_file_order(tmp_path, monkeypatch):
    root = make_shapes(tmp_path / "shapes", per_class=8)
    add_corrupt_file(root)
    parallel = build(root)
    monkeypatch.setattr(image_folder, "decode_threads", lambda: 1)
    alone = build(root)
    assert torch.equal(alone.train.inputs, parallel.train.inputs) and torch.equal(alone.val.inputs, parallel.val.inputs)
    assert "decoded once by 1 thread;" in alone.feeding


def test_auto_cache_reads_from_disk_when_memory_is_short(tmp_path, monkeypatch):
    root = make_shapes(tmp_path / "shapes", per_class=4)
    monkeypatch.setattr(image_folder, "_free_ram", lambda: (10_000, "of memory available"))
    data = build(root, cache="auto")
    assert "12 images of 3x24x24 take 20 KB as uint8, over a quarter of the 9.8 KB of memory available" in data.feeding
    assert isinstance(data.train.loader, torch.utils.data.DataLoader) and data.train.generator is not None
    assert next(iter(data.train.loader))[0].dtype == torch.uint8  # what crosses to the device: 1/4 of float32
    floats = next(iter(data.train))[0]
    assert floats.dtype == torch.float32 and abs(floats.mean()) < 1.5  # normalized on the device
    monkeypatch.undo()
    assert "kept in memory (under a quarter of the" in build(root, cache="auto").feeding


def test_workers_auto_is_zero_on_macos_and_windows_and_says_why(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    workers, why = image_folder.resolve_workers("auto")
    assert workers == 0 and "notebooks" in why
    monkeypatch.setattr(sys, "platform", "linux")
    assert 1 <= image_folder.resolve_workers("auto")[0] <= 8


def test_a_file_that_fails_mid_epoch_is_replaced_by_the_next(tmp_path, capsys):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    broken = add_corrupt_file(root)
    items = [(broken, 0), (root / "square" / "000.png", 1)]
    dataset = image_folder.ImageFiles(items, (8, 8), grayscale=False, transform=lambda pixels: pixels)
    pixels, label = dataset[0]
    assert pixels.shape == (3, 8, 8) and label == 1
    err = capsys.readouterr().err
    assert "could not read" in err and "broken.png" in err
    assert dataset[0][1] == 1 and capsys.readouterr().err == ""  # warned once per file


def remove_images(folder: Path) -> None:
    for path in list(folder.iterdir()):
        path.unlink()


def remove_folders(root: Path, names: list[str] | None = None) -> None:
    for folder in [root / name for name in names] if names else list(root.iterdir()):
        remove_images(folder)
        folder.rmdir()


def break_val_folder(root: Path) -> None:
    make_shapes(root / "train", per_class=2)
    make_shapes(root / "val", per_class=2, classes=("circle", "square", "star"))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: root.rename(root.with_name("elsewhere")), "image folder '{root}' does not exist"),
        (remove_folders, "no class folders in '{root}'"),
        (lambda root: remove_images(root / "square"), "class folder '{root}/square' holds no images"),
        (
            lambda root: remove_folders(root, ["square", "triangle"]),
            "'{root}' holds one class folder (circle): a classifier needs at least two classes",
        ),
        (
            break_val_folder,
            "the class folders of {root}/val (circle, square, star) differ from those of {root}/train "
            "(circle, square, triangle)",
        ),
    ],
    ids=["missing root", "no class folders", "empty class folder", "one class", "val classes differ"],
)
def test_folder_mistakes_say_what_is_wrong_and_show_the_layout(tmp_path, write_config, run_cli, breakage, message):
    root = tmp_path / "shapes"
    if breakage is break_val_folder:
        root.mkdir()
    else:
        make_shapes(root, per_class=2)
    breakage(root)
    with pytest.raises(UserError) as caught:
        build(root)
    assert caught.value.key == "data.root"
    assert message.format(root=root) in caught.value.message
    assert f"e.g. {root}" in caught.value.fix and "/cats/001.jpg" in caught.value.fix  # the layout, by example
    code, _, err = run_cli(config(write_config, root))
    assert code == 2
    assert f"config.yaml:1: data.root: {message.format(root=root)}" in err
    assert "Try: " in err and "/cats/001.jpg" in err
    assert "Traceback" not in err


def test_class_folders_one_level_too_deep_name_the_folder_to_use(tmp_path):
    make_shapes(tmp_path / "photos" / "train" / "train", per_class=2)
    with pytest.raises(UserError) as caught:
        build(tmp_path / "photos")
    deeper = tmp_path / "photos" / "train" / "train"
    assert f"'{tmp_path / 'photos' / 'train'}' holds one class folder (train)" in caught.value.message
    assert f"{deeper} holds circle (2 images), square (2 images), triangle (2 images)" in caught.value.message
    assert caught.value.fix.startswith(f"did you mean data.root: {deeper}?")


def test_a_class_folder_given_as_the_root_points_at_the_folder_above(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    with pytest.raises(UserError) as caught:
        build(root / "circle")
    assert "(it holds 2 images (000.png, 001.png) directly, but not in class folders)" in caught.value.message
    assert caught.value.fix.startswith(f"did you mean data.root: {root}?")


def test_split_folders_with_the_images_directly_in_them_are_not_taken_for_classes(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8)).save(tmp_path / "photos" / split / f"{i}.png")
    with pytest.raises(UserError) as caught:
        build(tmp_path / "photos")
    assert "holds test/ (3 images), train/ (3 images) with the images directly in them: these are splits" in (
        caught.value.message
    )


def test_a_folder_named_valid_is_the_validation_split(tmp_path, capsys):
    make_shapes(tmp_path / "shapes" / "train", per_class=4)
    make_shapes(tmp_path / "shapes" / "valid", per_class=2)
    data = build(tmp_path / "shapes")
    assert (data.train.num_samples, data.val.num_samples) == (12, 6)
    assert f"note: {tmp_path / 'shapes' / 'valid'} holds the val images (read as val/)" in capsys.readouterr().err


def test_every_empty_class_folder_is_named_with_what_it_holds(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    (root / "star").mkdir()
    (root / "wave").mkdir()
    (root / "wave" / "todo.txt").write_text("draw some waves")
    with pytest.raises(UserError) as caught:
        build(root)
    assert f"2 class folders hold no images (.jpg, .jpeg, .png, .bmp, .gif, .webp): '{root / 'star'}' (nothing); " in (
        caught.value.message
    )
    held = "(1 file, none an image read here: todo.txt (text: 'draw some waves'))"
    assert f"'{root / 'wave'}' {held}" in caught.value.message
    assert "put the images of star, wave in them, or remove those folders" in caught.value.fix


def test_files_are_judged_by_what_they_hold_not_by_their_names(tmp_path, capsys):
    root = make_shapes(tmp_path / "shapes", per_class=3)
    (root / "circle" / "000.png").rename(root / "circle" / "000.jfif")  # a png under another suffix is still read
    (root / "square" / "notes.txt").write_text("squares have four sides\n")
    (root / "square" / "page.jpg").write_text("<!DOCTYPE html><html>Not Found</html>")
    (root / "square" / "empty.png").write_bytes(b"")
    data = build(root, val_split=0)
    assert data.train.num_samples == 9
    err = capsys.readouterr().err
    assert (
        "note: 1 file with other suffixes than .jpg, .jpeg, .png, .bmp, .gif, .webp holds images, read as such: " in err
    )
    assert "circle/000.jfif" in err
    assert "note: left out 1 file that is not an image: square/notes.txt (text: 'squares have four sides')" in err
    (warning,) = data.warnings  # the run's logger says it and keeps it in diagnosis.txt
    assert warning.startswith(
        "skipped 2 of 11 image files that could not be read: square/empty.png (empty, 0 bytes), square/page.jpg (a "
    )


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"\x00\x00\x00\x18ftypheic", "a HEIC photo (an iPhone's format), which is not read here"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", "an SVG drawing, which is not read here"),
        (b"%PDF-1.4", "a PDF document"),
        (b"\x00\x01\x02\xfe", "not an image format"),
    ],
)
def test_what_a_file_holds_is_read_from_its_first_bytes(tmp_path, head, what):
    (tmp_path / "file.jpg").write_bytes(head)
    assert image_folder.what_file_is(tmp_path / "file.jpg") == what


def test_other_colour_modes_and_bit_depths_are_converted_and_said_in_one_line(tmp_path, capsys):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    Image.new("RGBA", (10, 10), (255, 0, 0, 128)).save(root / "circle" / "alpha.png")
    Image.new("RGB", (10, 10), (0, 255, 0)).convert("P").save(root / "circle" / "palette.png")
    Image.new("I;16", (10, 10), 40000).save(root / "square" / "deep.png")
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(root / "triangle" / "print.jpg")
    data = build(root, val_split=0, augment=[])
    assert data.train.inputs.shape == (10, 3, 24, 24) and data.train.inputs.dtype == torch.uint8
    err = capsys.readouterr().err
    assert "note: 4 of 10 images are not 8-bit RGB: 1 RGBA (transparency is dropped), e.g. circle/alpha.png; " in err
    assert "1 palette (P), e.g. circle/palette.png; 1 16-bit grey, e.g. square/deep.png; 1 CMYK" in err
    assert "Each is converted to 8-bit RGB as it is read" in err


def test_a_folder_of_grey_images_suggests_grayscale(tmp_path, capsys):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    for path in root.rglob("*.png"):
        Image.open(path).convert("L").save(path)
    build(root, val_split=0)
    assert "note: every image is grey (L): data.grayscale: true would give the model one channel" in (
        capsys.readouterr().err
    )
    build(root, val_split=0, grayscale=True)
    assert "grey" not in capsys.readouterr().err


def test_a_class_that_the_split_leaves_out_of_training_is_named(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=6)
    for path in sorted((root / "triangle").iterdir())[1:]:
        path.unlink()
    with pytest.raises(UserError) as caught:
        build(root, val_split=0.6)
    assert caught.value.message == (
        "class 'triangle' has 1 image (triangle/000.png), and the random split put it in val, none in training "
        "(data.val_split 0.6)"
    )
    assert caught.value.key == "data.val_split"
