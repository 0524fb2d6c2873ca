"""Augmentation of whole batches on the training device: no per-sample Python or PIL work.

Each sample still gets its own random crop and flip; the random numbers come from the loader's CPU generator
(a few per sample), so replaying an epoch from the generator's saved state replays its augmentation exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

BatchAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def batch_augment(augment: Sequence[str], crop_padding: int) -> BatchAugment | None:
    """A function that augments an N x C x H x W batch (any dtype) as configured; None when nothing is asked."""
    crop = "random_crop" in augment and crop_padding > 0
    flip = "horizontal_flip" in augment
    if not crop and not flip:
        return None

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if crop:
            images = random_crop(images, crop_padding, generator)
        if flip:
            images = random_flip(images, generator)
        return images

    return apply


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image by `padding` zeros on every side, then cut an image of the original size at a random place."""
    n, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # N x H: the rows each sample keeps
    columns = offsets[1, :, None] + torch.arange(width, device=images.device)  # N x W
    samples = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing on dims 0, 2 and 3 at once gives N x H x W x C; one gather for the whole batch.
    cropped = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)
    return cropped.contiguous()  # the gather leaves channels last; a learner's x.view(x.size(0), -1) needs rows


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=generator).to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def normalize(mean: list[float], std: list[float], device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 pixels (0..255) -> floats with each channel at mean 0 and standard deviation 1."""
    scale = torch.tensor([255.0 * s for s in std], device=device)[:, None, None]
    shift = torch.tensor([255.0 * m for m in mean], device=device)[:, None, None]
    return lambda images: (images.float() - shift) / scale


def pixel_pipeline(
    mean: list[float], std: list[float], device: torch.device, augment: BatchAugment | None
) -> tuple[BatchAugment, BatchAugment]:
    """The (train, eval) batch transforms of uint8 images: train augments first; both normalize."""
    to_floats = normalize(mean, std, device)

    def train(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return to_floats(images if augment is None else augment(images, generator))

    def evaluate(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return to_floats(images)

    return train, evaluate
