"""MNIST and Fashion-MNIST read with torchvision's own code, normalized and held in memory; and what every
torchvision data set does when its files are missing (download, or say what to put where)."""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.components.splits import DataSplits, in_memory_splits
from trainer.config import CifarData, VisionData
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


def build_torchvision(cfg: VisionData, device: torch.device, seed: int) -> DataSplits:
    inputs, targets, test_inputs, test_targets = _torchvision(cfg)
    mean, std = PIXEL_STATS[cfg.dataset]
    info = {"task": "classification", "class_names": CLASS_NAMES[cfg.dataset], "input_shape": [1, 28, 28]}
    info |= {"mean": [mean], "std": [std], "invert_light_background": True}
    return in_memory_splits(cfg, (inputs, targets), (test_inputs, test_targets), device, seed, info=info)


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
    mirrors = " or ".join(getattr(dataset_class, "mirrors", [])) or "the data set's web site"
    put = f"Put the files {files} (uncompressed) in {raw}/"
    return download_or_explain(
        dataset_class,
        cfg,
        train,
        problem=f" is not in {raw}/",
        put=put,
        fetch=f"{put}; they can be downloaded from {mirrors}",
        holder=f"{dataset_class.__name__}/raw",
    )


def download_or_explain(
    dataset_class: type, cfg: VisionData | CifarData, train: bool, *, problem: str, put: str, fetch: str, holder: str
) -> object:
    """A torchvision data set whose files are missing: downloaded when data.download allows, else (or when the
    download fails) a message saying what is missing (`problem`), how to put the files in place (`put`, or after
    a failed download `fetch`) and which folder data.root must hold (`holder`)."""
    if not cfg.download:
        raise UserError(
            f"{cfg.dataset}{problem} and data.download is false",
            fix=f"{put}, or set data.download: true, or point data.root at the folder that holds {holder}",
            key="data.root",
        )
    try:
        return dataset_class(cfg.root, train=train, download=True)
    except Exception as err:  # no network, a proxy, a full disk: the message is the same
        raise UserError(
            f"{cfg.dataset}{problem} and the download failed ({type(err).__name__}: {err})",
            fix=f"{fetch}. Or point data.root at the folder that holds {holder}",
            key="data.root",
        ) from err
