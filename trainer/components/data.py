"""build_data: the data set a config names, built by its own module (splits.py holds what they share)."""

from __future__ import annotations

import torch

from trainer.components.splits import DataSplits
from trainer.config import CifarData, Config, CsvData, DataConfig, ImageFolderData, SyntheticData


def data_section(cfg: Config) -> DataConfig:
    """The data section as the data are built: with pretrained weights, an image folder takes the size and the
    normalization the weights were trained with (where the config does not set them)."""
    from trainer.components.pretrained import data_for_weights

    return data_for_weights(cfg.model, cfg.data)


def build_data(cfg: DataConfig, device: torch.device, seed: int) -> DataSplits:
    """The data set a config names, split into train / val / test loaders."""
    if isinstance(cfg, SyntheticData):
        from trainer.components.toy import build_toy

        return build_toy(cfg, device, seed)
    if isinstance(cfg, CsvData):
        from trainer.components.tables import build_table

        return build_table(cfg, device, seed)
    if isinstance(cfg, ImageFolderData):
        from trainer.components.image_folder import build_image_folder

        return build_image_folder(cfg, device, seed)
    if isinstance(cfg, CifarData):
        from trainer.components.cifar import build_cifar

        return build_cifar(cfg, device, seed)
    from trainer.components.torchvision_data import build_torchvision

    return build_torchvision(cfg, device, seed)
