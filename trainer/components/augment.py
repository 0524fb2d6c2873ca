"""Augmentation of whole batches on the training device: no per-sample Python or PIL work.

Each sample still gets its own random crop and flip. The random numbers of a whole epoch are drawn when it starts,
on the device, from the loader's generator (which lives there): no copy and no wait per batch, and replaying an
epoch from the generator's saved state replays its augmentation exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class BatchAugment:
    """Random crops (pad by `crop_padding`, cut at a random place) and left-right flips, per sample."""

    def __init__(self, crop_padding: int, flip: bool) -> None:
        self.crop_padding, self.flip = crop_padding, flip

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The random numbers of an epoch of `n` samples, one row per sample: (row offset, column offset, flip),
        on the generator's device."""
        device = generator.device
        offsets = torch.randint(0, 2 * self.crop_padding + 1, (n, 2), generator=generator, device=device)
        flips = (torch.rand(n, generator=generator, device=device) < 0.5).long()[:, None]
        return torch.cat([offsets, flips], dim=1)

    def __call__(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """The batch augmented with its samples' rows of `draw`."""
        if self.crop_padding > 0:
            images = random_crop(images, self.crop_padding, draws[:, :2])
        if self.flip:
            images = random_flip(images, draws[:, 2].bool())
        return images


def batch_augment(augment: Sequence[str], crop_padding: int) -> BatchAugment | None:
    """The augmentation the config asks for, or None when it asks for none."""
    crop = "random_crop" in augment and crop_padding > 0
    flip = "horizontal_flip" in augment
    return BatchAugment(crop_padding if crop else 0, flip) if crop or flip else None


def random_crop(images: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Pad each image by `padding` zeros on every side, then cut an image of the original size at its offsets
    (N x 2: the first row and column kept, 0 to 2 * padding)."""
    n, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # N x H: the rows each sample keeps
    columns = offsets[:, 1, None] + torch.arange(width, device=images.device)  # N x W
    samples = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing on dims 0, 2 and 3 at once gives N x H x W x C; one gather for the whole batch.
    cropped = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)
    return cropped.contiguous()  # the gather leaves channels last; a learner's x.view(x.size(0), -1) needs rows


def random_flip(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry of `flips` (N booleans) is true."""
    return torch.where(flips[:, None, None, None], images.flip(3), images)


class Pixels:
    """A loader's batch transform of uint8 images: augmented first when `augment` is given (training), then
    floats with each channel at mean 0 and standard deviation 1, laid out in `memory_format` (the Trainer's:
    channels_last with train.channels_last), so that no batch is copied again for its layout."""

    def __init__(self, mean: list[float], std: list[float], device: torch.device, augment: BatchAugment | None):
        self.scale = torch.tensor([255.0 * s for s in std], device=device)[:, None, None]
        self.shift = torch.tensor([255.0 * m for m in mean], device=device)[:, None, None]
        self.device, self.augment = device, augment
        self.memory_format = torch.contiguous_format

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """The epoch's random numbers, or None when nothing is random."""
        return None if self.augment is None else self.augment.draw(n, generator)

    def __call__(self, images: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor:
        if self.augment is not None and draws is not None:
            images = self.augment(images, draws)
        floats = images.to(torch.float32, memory_format=self.memory_format)  # the layout in the same copy
        return floats.sub_(self.shift).div_(self.scale)


def pixel_pipeline(
    mean: list[float], std: list[float], device: torch.device, augment: BatchAugment | None
) -> tuple[Pixels, Pixels]:
    """The (train, eval) batch transforms of uint8 images: train augments first; both normalize."""
    return Pixels(mean, std, device, augment), Pixels(mean, std, device, None)
