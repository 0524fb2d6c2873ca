"""Generated toy problems for learning: classes of 2-D points (blobs, spirals, moons, circles) and a curve to fit
(sine). Each is made from the run's seed, so the same seed gives the same points."""

from __future__ import annotations

import math

import torch

from trainer.components.splits import DataSplits, in_memory_splits
from trainer.config import SyntheticData


def build_toy(cfg: SyntheticData, device: torch.device, seed: int) -> DataSplits:
    generator = torch.Generator().manual_seed(seed)
    n = cfg.samples + cfg.test_samples
    inputs, targets = MAKERS[cfg.kind](cfg, n, generator)
    if cfg.kind == "sine":
        info = {"task": "regression", "input_shape": [1]}
    else:
        classes = 2 if cfg.kind in ("moons", "circles") else cfg.classes
        info = {"task": "classification", "class_names": [str(c) for c in range(classes)]}
        info["input_shape"] = [inputs.shape[1]]
    train, test = (inputs[: cfg.samples], targets[: cfg.samples]), (inputs[cfg.samples :], targets[cfg.samples :])
    return in_memory_splits(cfg, train, test, device, seed, info=info)


def _blobs(cfg: SyntheticData, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clouds around random centres, one per class."""
    targets = torch.randint(cfg.classes, (n,), generator=generator)
    centers = torch.randn(cfg.classes, cfg.features, generator=generator) * 3
    return centers[targets] + cfg.noise * torch.randn(n, cfg.features, generator=generator), targets


def _spirals(cfg: SyntheticData, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Arms winding out from the centre, one per class: no straight line separates them."""
    targets = torch.randint(cfg.classes, (n,), generator=generator)
    radius = torch.rand(n, generator=generator)
    angle = 2 * math.pi * targets / cfg.classes + 3 * math.pi * radius
    angle = angle + 0.2 * cfg.noise * torch.randn(n, generator=generator)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1), targets


def _moons(cfg: SyntheticData, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles."""
    targets = torch.randint(2, (n,), generator=generator)
    angle = math.pi * torch.rand(n, generator=generator)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    points = torch.where(targets[:, None] == 0, upper, lower)
    return points + 0.2 * cfg.noise * torch.randn(n, 2, generator=generator), targets


def _circles(cfg: SyntheticData, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A ring around a disc: class 1 inside, class 0 outside."""
    targets = torch.randint(2, (n,), generator=generator)
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    radius = torch.where(targets == 1, 0.5, 1.0)
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return points + 0.1 * cfg.noise * torch.randn(n, 2, generator=generator), targets


def _sine(cfg: SyntheticData, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sin(x) for x in [-3, 3], with Gaussian noise on y: a curve for a small network to fit."""
    x = 6 * torch.rand(n, 1, generator=generator) - 3
    return x, torch.sin(x) + 0.2 * cfg.noise * torch.randn(n, 1, generator=generator)


MAKERS = {"blobs": _blobs, "spirals": _spirals, "moons": _moons, "circles": _circles, "sine": _sine}
