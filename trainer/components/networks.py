"""The built-in networks: mlp (fully connected), cnn (conv blocks) and a small resnet, all plain nn.Modules."""

from __future__ import annotations

import torch
from torch import nn

from trainer.config import CNNModel, ResNetModel

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Sequential):
    """Flatten, then Linear -> activation -> dropout for each hidden size, then a Linear to the outputs."""

    def __init__(self, in_features: int, num_outputs: int, hidden: list[int], activation: str, dropout: float):
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            in_features = width
        layers.append(nn.Linear(in_features, num_outputs))
        super().__init__(*layers)


class CNN(nn.Module):
    """Conv blocks that halve the image each time, then a small fully connected head."""

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, cfg: CNNModel):
        super().__init__()
        in_channels, height, width = input_shape
        blocks: list[nn.Module] = []
        for out_channels in cfg.channels:
            blocks += [
                nn.Conv2d(
                    in_channels, out_channels, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=not cfg.batch_norm
                ),
                nn.BatchNorm2d(out_channels) if cfg.batch_norm else nn.Identity(),
                ACTIVATIONS[cfg.activation](),
                nn.MaxPool2d(2),
            ]
            in_channels, height, width = out_channels, height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * height * width, cfg.fc),
            ACTIVATIONS[cfg.activation](),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


class Residual(nn.Module):
    """x + f(x): the block learns a correction to its input, which keeps gradients flowing through deep nets."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Sequential):
    """Stem conv; per stage conv, 2x2 max-pool and a residual block; global max-pool; one linear layer."""

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, cfg: ResNetModel):
        layers: list[nn.Module] = [conv_bn_relu(input_shape[0], cfg.stem)]
        width = cfg.stem
        for channels in cfg.channels:
            layers += [conv_bn_relu(width, channels), nn.MaxPool2d(2), Residual(channels)]
            width = channels
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(width, num_outputs)]
        super().__init__(*layers)
