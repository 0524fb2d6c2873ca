"""How fast do your own photos reach the model? Our image_folder loaders against torchvision's ImageFolder.

Writes PNGs to a temporary folder, then times epochs of each way of feeding them, with the same worker count and
the same augmentation (random crop with padding, horizontal flip) and normalization:

- ours, memory cache: every image decoded once (the cache build counts in epoch 1), then batches cut from a uint8
  tensor and augmented a whole batch at a time;
- ours, from disk: our DataLoader path (decode, resize, augment per sample in workers);
- torchvision ImageFolder + DataLoader: PIL decoding and v2 transforms per sample in workers.

Epoch 1 includes building the loaders (cache, worker start); epoch 2 is the steady state. Data feeding alone
(batches iterated, nothing done with them), then with a small CNN's training step on each batch. Each figure
is the best of --repeats rounds.

    python bench/image_folder.py [--images 2000] [--size 64] [--workers auto] [--repeats 3] [--no-model]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from trainer.components.image_folder import build_image_folder, resolve_workers
from trainer.config import ImageFolderData

BATCH_SIZE = 128
PADDING = 4


def make_images(root: Path, count: int, size: int, classes: int = 10) -> None:
    """PNGs with noise and a shape in a class colour: about as costly to decode as small photos."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    noise = torch.randint(0, 256, (count, size, size, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    for i in range(count):
        label = i % classes
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((noise[i] // 2).numpy())
        r = rng.randrange(size // 6, size // 3)
        x, y = rng.randrange(r, size - r), rng.randrange(r, size - r)
        colour = (25 * label, 255 - 20 * label, rng.randrange(256))
        ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=colour)
        image.save(folder / f"{i:05}.png")


def ours(root: Path, size: int, workers: int, cache: str) -> Iterable:
    cfg = ImageFolderData(
        dataset="image_folder",
        root=str(root),
        image_size=size,
        cache=cache,  # type: ignore[arg-type]
        workers=workers,
        batch_size=BATCH_SIZE,
        val_split=0,
        crop_padding=PADDING,
    )
    return build_image_folder(cfg, torch.device("cpu"), seed=0).train


def image_folder(root: Path, size: int, workers: int) -> Iterable:
    """The usual torchvision recipe, with the same augmentation; its mean and std are given, not measured."""
    from torchvision import datasets
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize((size, size), antialias=True),
            v2.RandomCrop(size, padding=PADDING),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ]
    )
    dataset = datasets.ImageFolder(str(root), transform=transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )


def small_cnn_step(classes: int = 10) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """A training step of a small CNN (two conv blocks), to see how much of an epoch feeding still costs."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 16, classes),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def two_epochs(
    build: Callable[[], Iterable], step: Callable[[torch.Tensor, torch.Tensor], None] | None
) -> tuple[float, float, int]:
    """Seconds of epoch 1 (building the loader included) and epoch 2, and the images an epoch holds."""
    started = time.perf_counter()
    loader = build()
    times, count = [], 0
    for _ in range(2):
        count = 0
        for inputs, targets in loader:
            count += len(targets)
            if step is not None:
                step(inputs, targets)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
    del loader
    gc.collect()  # ends the loader's worker processes now, not during the next contender's epochs
    return times[0], times[1], count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64, help="the images' side in pixels (no resizing needed)")
    parser.add_argument("--workers", default="auto", help="DataLoader workers for every contender")
    parser.add_argument("--no-model", action="store_true", help="time data feeding only")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each figure is the best of them")
    args = parser.parse_args()
    workers = resolve_workers(args.workers if args.workers == "auto" else int(args.workers))[0]
    torch.manual_seed(0)
    # Every contender needs these; importing them (about a second) is no part of feeding data.
    import torchvision.datasets
    import torchvision.io
    import torchvision.transforms.v2  # noqa: F401

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        make_images(root, args.images, args.size)
        print(f"wrote {args.images:,} PNGs of {args.size}x{args.size} in {time.perf_counter() - started:.1f} s")
        print(
            f"batch {BATCH_SIZE}, {workers} workers each, random crop (padding {PADDING}) and flip, "
            f"{torch.get_num_threads()} torch threads"
        )
        contenders = {
            "ours, memory cache": lambda: ours(root, args.size, workers, "memory"),
            "ours, from disk": lambda: ours(root, args.size, workers, "disk"),
            "torchvision ImageFolder": lambda: image_folder(root, args.size, workers),
        }
        runs = [("data feeding only", None)] + ([] if args.no_model else [("with a small CNN step", small_cnn_step)])
        for title, make_step in runs:
            # Best of a few rounds, contenders taking turns: other work on a shared machine only ever slows a run.
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeats):
                for name, build in contenders.items():
                    first, second, count = two_epochs(build, None if make_step is None else make_step())
                    old = best.get(name, (first, second))
                    best[name] = (min(first, old[0]), min(second, old[1]))
            print(f"\n{title:26} {'epoch 1 (s)':>11} {'images/s':>9} {'epoch 2 (s)':>11} {'images/s':>9}")
            for name, (first, second) in best.items():
                print(f"{name:26} {first:11.2f} {count / first:9,.0f} {second:11.2f} {count / second:9,.0f}")
            cached, reference = best["ours, memory cache"], best["torchvision ImageFolder"]
            print(
                f"memory cache vs ImageFolder: epoch 1 {reference[0] / cached[0]:.2f}x as fast, "
                f"epoch 2 {reference[1] / cached[1]:.1f}x as fast"
            )


if __name__ == "__main__":
    main()
