"""CIFAR-10 and CIFAR-100, read with torchvision's own code and held in memory as uint8 images.

Kept as uint8 (a quarter of the memory of floats), they become normalized floats, and training images get their
random crop and flip, on the training device a whole batch at a time: no per-sample PIL work in the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trainer.components.augment import batch_augment, pixel_pipeline
from trainer.components.splits import DataSplits, in_memory_splits
from trainer.components.torchvision_data import download_or_explain
from trainer.config import CifarData

# Mean and standard deviation of each channel of the training pixels (in [0, 1]).
CHANNEL_STATS = {
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
    "cifar100": ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
}


def build_cifar(cfg: CifarData, device: torch.device, seed: int) -> DataSplits:
    train, test = (_read(cfg, train) for train in (True, False))
    mean, std = CHANNEL_STATS[cfg.dataset]
    train_transform, eval_transform = pixel_pipeline(mean, std, device, batch_augment(cfg.augment, cfg.crop_padding))
    info = {"task": "classification", "class_names": list(train.classes), "input_shape": [3, 32, 32]}
    info |= {"mean": mean, "std": std}
    return in_memory_splits(
        cfg,
        _as_tensors(train),
        _as_tensors(test),
        device,
        seed,
        info=info,
        train_transform=train_transform,
        eval_transform=eval_transform,
    )


def _as_tensors(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's N x H x W x C uint8 array as N x C x H x W uint8 tensor, and the labels as int64."""
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.long)


def _read(cfg: CifarData, train: bool) -> Any:
    from torchvision import datasets

    dataset_class = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[cfg.dataset]
    folder = Path(cfg.root) / dataset_class.base_folder
    try:
        return dataset_class(cfg.root, train=train, download=False)
    except RuntimeError:  # torchvision's "not found or corrupted"
        pass
    files = [name for name, _ in dataset_class.train_list + dataset_class.test_list] + [dataset_class.meta["filename"]]
    missing = [name for name in files if not (folder / name).is_file()]
    state = f"lacks {', '.join(missing)}" if missing else "holds files that do not match CIFAR's checksums"
    layout = f"Unpack {Path(dataset_class.url).name} in {cfg.root}/ (it holds {dataset_class.base_folder}/)"
    return download_or_explain(
        dataset_class,
        cfg,
        train,
        problem=f": {folder}/ {state},",
        put=layout,
        fetch=f"download {dataset_class.url} and {layout[0].lower()}{layout[1:]}",
        holder=dataset_class.base_folder,
    )
