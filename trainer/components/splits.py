"""Data sets held in memory as tensors on the training device, batched by index with no per-sample work: the
loaders, the splits of a run and the checks every data set builder shares."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from trainer import distributed
from trainer.config import DataCommon
from trainer.errors import UserError, one_of


class BatchTransform(Protocol):
    """A batch of stored inputs -> what the model takes, with the batch's rows of the epoch's random numbers."""

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """The random numbers of an epoch of `n` samples (one row each, on the device), or None."""

    def __call__(self, inputs: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor: ...


class InMemoryLoader:
    """Yields (inputs, targets) batches from two tensors, reshuffled each epoch by a seeded generator.

    `transform`, when given, turns each batch of inputs into what the model takes (e.g. uint8 pixels into
    normalized, augmented floats) on the tensors' own device. The order and the epoch's random numbers are drawn
    on that device too, from `generator`, when the epoch starts, so that replaying an epoch from the generator's
    state replays its augmentation too.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        transform: BatchTransform | None = None,
    ):
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.transform = batch_size, shuffle, transform
        self.generator = torch.Generator(targets.device).manual_seed(seed)  # the order: no copy to the GPU

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.targets)
        order = torch.randperm(n, generator=self.generator, device=self.targets.device) if self.shuffle else None
        draws = self.transform.draw(n, self.generator) if self.transform is not None else None  # one row per sample
        world = distributed.world_size()
        for start in range(0, n, self.batch_size):
            end = min(start + self.batch_size, n)
            batch = slice(start, end) if order is None else order[start:end]  # a view, or the shuffled samples
            if world > 1:  # under torchrun: this process's part of the batch, the other processes take the rest
                if end - start < world and self.shuffle:
                    continue  # training: too few samples to give every process one (DDP steps all together)
                whole = torch.arange(start, end, device=self.targets.device) if order is None else batch
                batch = distributed.shard_of(whole)
                if len(batch) == 0:
                    continue  # evaluation: the last few samples went to the other processes; each counts once
            inputs, targets = self.inputs[batch], self.targets[batch]
            if self.transform is not None:
                inputs = self.transform(inputs, None if draws is None else draws[batch])
            yield inputs, targets

    @property
    def num_samples(self) -> int:
        return len(self.targets)


class DeviceBatches:
    """A DataLoader of uint8 images whose batches cross to the device as uint8 (a quarter of float32's bytes) and
    become the model's floats there (`transform`). It keeps the DataLoader's face: len, dataset, sampler, generator
    (the Trainer reshuffles and replays epochs through them)."""

    def __init__(self, loader: DataLoader, transform: BatchTransform, device: torch.device):
        self.loader, self.transform, self.device = loader, transform, device
        self.dataset, self.sampler, self.generator = loader.dataset, loader.sampler, loader.generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, targets in self.loader:
            pixels = inputs.to(self.device, non_blocking=True)  # pinned by the DataLoader: alongside the compute
            yield self.transform(pixels, None), targets.to(self.device, non_blocking=True)


Loader = InMemoryLoader | DeviceBatches | DataLoader


@dataclass
class DataSplits:
    """The loaders of a run, and what the rest of the run needs to know about its data.

    `feeding` is one line saying how batches reach the model and why. `info` is kept in every checkpoint: what
    `predict` needs to treat new inputs as the training data were treated (class names, image size and
    normalization, a table's columns and statistics), as plain data. `warnings` are what is wrong with the data
    but need not stop a run (a class missing from the val split, files that could not be read): the run's logger
    says them, so that the run's diagnosis.txt keeps them, and `check` prints them.
    """

    train: Loader
    val: Loader | None
    test: Loader | None
    input_shape: tuple[int, ...]
    num_classes: int  # outputs of the model: classes, or values to predict for regression
    description: str
    feeding: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        """Class-index targets make a classification run; numbers to predict make a regression run."""
        return self.info.get("task") or (
            "regression" if _dataset(self.train).targets.is_floating_point() else "classification"
        )

    @property
    def class_names(self) -> list[str] | None:
        return self.info.get("class_names")

    def deliver_in(self, memory_format: torch.memory_format) -> None:
        """Make image batches in the Trainer's memory format as they become floats (no second copy per batch)."""
        for loader in (self.train, self.val, self.test):
            transform = getattr(loader, "transform", None)
            if hasattr(transform, "memory_format"):
                transform.memory_format = memory_format  # type: ignore[union-attr]


def _dataset(loader: Loader) -> Any:
    return loader if isinstance(loader, InMemoryLoader) else loader.dataset


def in_memory_splits(
    cfg: DataCommon,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
    seed: int,
    *,
    info: dict[str, Any],
    train_transform: BatchTransform | None = None,
    eval_transform: BatchTransform | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> DataSplits:
    """Loaders over tensors held on `device`; the validation split is cut from `train` (seeded) unless given."""
    inputs, targets = train[0].to(device), train[1].to(device)
    if val is None:
        # A seeded split, so the same seed always holds out the same validation samples.
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed)).to(device)
        n_val = int(len(targets) * cfg.val_split)
        val_index, train_index = order[:n_val], order[n_val:]
        val = (inputs[val_index], targets[val_index]) if n_val else None
        inputs, targets = inputs[train_index], targets[train_index]
    eval_size = cfg.batch_size * 4  # no gradients kept: bigger batches fit and run faster
    train_loader = InMemoryLoader(inputs, targets, cfg.batch_size, shuffle=True, seed=seed, transform=train_transform)

    def loader(split: tuple[torch.Tensor, torch.Tensor] | None) -> InMemoryLoader | None:
        if split is None or len(split[1]) == 0:
            return None
        return InMemoryLoader(
            split[0].to(device), split[1].to(device), eval_size, shuffle=False, transform=eval_transform
        )

    val_loader, test_loader = loader(val), loader(test)
    splits = {"train": train_loader, "val": val_loader, "test": test_loader}
    counts = " / ".join(f"{0 if split is None else split.num_samples:,} {name}" for name, split in splits.items())
    held = sum(s.inputs.nbytes + s.targets.nbytes for s in splits.values() if s is not None)
    feeding = (
        f"in memory on {device.type} ({size_text(held)}): batches are cut from the tensors by index, so no "
        "DataLoader workers are needed"
    )
    if train_transform is not None:
        feeding += "; augmented and normalized a whole batch at a time on the device"
    shape = tuple(inputs.shape[1:])
    return DataSplits(
        *splits.values(), shape, _outputs(targets, info), f"{cfg.dataset}: {counts} samples", feeding, info
    )


def check_split_classes(
    class_names: list[str], counts: dict[str, Counter[str]], what: str, untrained: Callable[[list[str]], UserError]
) -> list[str]:
    """Every class needs training examples: else the error `untrained` makes for the classes that have none. A class
    missing from val or test is a warning, as its metrics will say nothing about it.

    `counts` holds the examples of each split ("train", "val", "test") by class name; `what` names one ("row").
    """
    missing = [name for name in class_names if not counts["train"][name]]
    if missing:
        raise untrained(missing)
    total = counts["train"] + counts["val"] + counts["test"]
    warnings = []
    for split in ("val", "test"):
        if counts[split].total() < 2 * len(class_names):
            continue  # a split too small to hold every class: its size is the problem, not any class
        absent = [name for name in class_names if not counts[split][name]]
        if absent:
            warnings.append(
                f"{len(absent)} of {len(class_names)} classes have no {what} in the {split} split "
                f"({one_of(absent, 5)}; {sum(total[name] for name in absent)} {what}s in all): {split} metrics say "
                "nothing about them"
            )
    return warnings


def size_text(nbytes: float) -> str:
    """A number of bytes as people read it: 512 bytes, 14 KB, 210 MB, 1.5 GB."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:,.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(nbytes)} bytes"


def _outputs(targets: torch.Tensor, info: dict[str, Any]) -> int:
    if "class_names" in info:
        return len(info["class_names"])
    return 1 if targets.dim() == 1 else targets.shape[1]
