"""Data sets held in memory as tensors on the training device, batched by index with no per-sample work."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer.config import SyntheticData, VisionData
from trainer.errors import UserError

# Mean and standard deviation of the training pixels (in [0, 1]), used to normalize the inputs.
PIXEL_STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}


@dataclass
class ImageInfo:
    """What predicting on new images needs to know about a data set, without loading it."""

    input_shape: tuple[int, int, int]
    class_names: list[str]
    mean: float
    std: float


def image_info(cfg: VisionData | SyntheticData) -> ImageInfo | None:
    if isinstance(cfg, SyntheticData):
        return None
    mean, std = PIXEL_STATS[cfg.dataset]
    return ImageInfo((1, 28, 28), CLASS_NAMES[cfg.dataset], mean, std)


class InMemoryLoader:
    """Yields (inputs, targets) batches from two tensors, reshuffled each epoch by a seeded generator."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0):
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.targets)
        if not self.shuffle:
            for start in range(0, n, self.batch_size):
                yield self.inputs[start : start + self.batch_size], self.targets[start : start + self.batch_size]
            return
        order = torch.randperm(n, generator=self.generator).to(self.targets.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.inputs[index], self.targets[index]

    @property
    def num_samples(self) -> int:
        return len(self.targets)


@dataclass
class DataSplits:
    train: InMemoryLoader
    val: InMemoryLoader | None
    test: InMemoryLoader | None
    input_shape: tuple[int, ...]
    num_classes: int
    description: str

    @property
    def task(self) -> str:
        """Class-index targets make a classification run; numbers to predict make a regression run."""
        return "classification" if not self.train.targets.is_floating_point() else "regression"


def build_data(cfg: VisionData | SyntheticData, device: torch.device, seed: int) -> DataSplits:
    if isinstance(cfg, SyntheticData):
        inputs, targets, test_inputs, test_targets = _synthetic(cfg, seed)
        num_classes = cfg.classes
    else:
        inputs, targets, test_inputs, test_targets = _torchvision(cfg)
        num_classes = 10
    inputs, targets = inputs.to(device), targets.to(device)
    test_inputs, test_targets = test_inputs.to(device), test_targets.to(device)

    # A seeded split, so the same seed always holds out the same validation samples.
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed)).to(device)
    n_val = int(len(targets) * cfg.val_split)
    val_index, train_index = order[:n_val], order[n_val:]
    train = InMemoryLoader(inputs[train_index], targets[train_index], cfg.batch_size, shuffle=True, seed=seed)
    val = InMemoryLoader(inputs[val_index], targets[val_index], cfg.batch_size * 4, shuffle=False) if n_val else None
    test = InMemoryLoader(test_inputs, test_targets, cfg.batch_size * 4, shuffle=False) if len(test_targets) else None
    description = (
        f"{cfg.dataset}: {train.num_samples} train / {val.num_samples if val else 0} val / "
        f"{test.num_samples if test else 0} test samples, in memory on {device.type}"
    )
    return DataSplits(train, val, test, tuple(inputs.shape[1:]), num_classes, description)


def _torchvision(cfg: VisionData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from torchvision import datasets

    dataset_class = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[cfg.dataset]
    splits = []
    for train in (True, False):
        try:
            dataset = dataset_class(cfg.root, train=train, download=False)
        except RuntimeError:
            dataset = _download(dataset_class, cfg, train)
        splits.append(dataset)
    mean, std = PIXEL_STATS[cfg.dataset]
    tensors = []
    for dataset in splits:
        pixels = dataset.data.unsqueeze(1).float().div_(255)
        tensors += [(pixels - mean) / std, dataset.targets.long()]
    return tensors[0], tensors[1], tensors[2], tensors[3]


def _download(dataset_class: type, cfg: VisionData, train: bool) -> object:
    raw = Path(cfg.root) / dataset_class.__name__ / "raw"
    files = ", ".join(Path(url).stem for url, _ in dataset_class.resources)
    where = f"Put the files {files} (uncompressed) in {raw}/"
    if not cfg.download:
        raise UserError(
            f"{cfg.dataset} is not in {raw}/ and data.download is false",
            fix=f"{where}, or set data.download: true, or point data.root at the folder that holds "
            f"{dataset_class.__name__}/raw",
            key="data.root",
        )
    try:
        return dataset_class(cfg.root, train=train, download=True)
    except Exception as err:  # no network, a proxy, a full disk: the message is the same
        mirrors = " or ".join(getattr(dataset_class, "mirrors", [])) or "the data set's web site"
        raise UserError(
            f"{cfg.dataset} is not in {raw}/ and the download failed ({type(err).__name__}: {err})",
            fix=f"{where}; they can be downloaded from {mirrors}. Or point data.root at the folder that holds "
            f"{dataset_class.__name__}/raw",
            key="data.root",
        ) from err


def _synthetic(cfg: SyntheticData, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    n = cfg.samples + cfg.test_samples
    targets = torch.randint(cfg.classes, (n,), generator=generator)
    if cfg.kind == "blobs":
        centers = torch.randn(cfg.classes, cfg.features, generator=generator) * 3
        inputs = centers[targets] + cfg.noise * torch.randn(n, cfg.features, generator=generator)
    else:
        radius = torch.rand(n, generator=generator)
        angle = 2 * math.pi * targets / cfg.classes + 3 * math.pi * radius
        angle = angle + 0.2 * cfg.noise * torch.randn(n, generator=generator)
        inputs = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return inputs[: cfg.samples], targets[: cfg.samples], inputs[cfg.samples :], targets[cfg.samples :]
