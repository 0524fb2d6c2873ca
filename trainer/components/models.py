"""Models: the built-in mlp and cnn, any torchvision.models builder, or the user's own class by path."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from trainer.components.resolve import check_arguments, is_path_reference, load_reference, unknown_name
from trainer.config import CNNModel, MLPModel, OtherModel, ResNetModel
from trainer.errors import Problem, UserError

ModelConfig = MLPModel | CNNModel | ResNetModel | OtherModel

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


def torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def _reference_args(target: Any, cfg: OtherModel, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """The user's arguments plus what the model can learn from the data (num_classes, in_channels, ...)."""
    known = {"num_classes": num_classes, "in_channels": input_shape[0], "input_shape": tuple(input_shape)}
    try:
        accepted = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return dict(cfg.args)
    return {**{k: v for k, v in known.items() if k in accepted}, **cfg.args}


def check_model(cfg: ModelConfig) -> list[Problem]:
    if not isinstance(cfg, OtherModel):
        return []  # the schema already checked every key of the built-in models
    if is_path_reference(cfg.name):
        try:
            target = load_reference(cfg.name, "model.name")
        except UserError as err:
            return [Problem("model.name", f"{err.message}. Try: {err.fix}")]
        return check_arguments(target, _reference_args(target, cfg, (1, 1, 1), 1), "model")
    if cfg.name not in torchvision_names():
        return [Problem("model.name", unknown_name(cfg.name, "model", ["mlp", "cnn", "resnet", *torchvision_names()]))]
    if "weights" in cfg.args or "pretrained" in cfg.args:
        return [
            Problem(
                "model.weights",
                "pretrained weights are not supported (they need a download). "
                "Try: remove this key; the model starts from random weights",
            )
        ]
    import torchvision

    builder = torchvision.models.get_model_builder(cfg.name)
    with torch.device("meta"):  # build without memory to learn the model class and its arguments
        model_class = type(builder(weights=None))
    filled = ["num_classes", "weights", "progress"]
    problems = check_arguments(model_class, cfg.args, "model", filled=filled)
    return [p for p in problems if "needs the argument" not in p.message]


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model for this data: `num_classes` outputs, first layer fitted to the input shape."""
    if isinstance(cfg, MLPModel):
        in_features = int(torch.tensor(input_shape).prod())
        return MLP(in_features, num_classes, cfg.hidden, cfg.activation, cfg.dropout)
    if isinstance(cfg, CNNModel | ResNetModel):
        if len(input_shape) != 3:
            raise UserError(
                f"{cfg.name} needs images, but the data gives vectors of {input_shape[0]} features",
                fix="use model.name=mlp for this data",
                key="model.name",
            )
        smallest = min(input_shape[1:]) // 2 ** len(cfg.channels)
        if smallest < 1:
            raise UserError(
                f"{len(cfg.channels)} conv blocks each halve the image, so "
                f"{input_shape[1]}x{input_shape[2]} shrinks to nothing",
                fix=f"use at most {max(1, min(input_shape[1:]).bit_length() - 1)} entries in model.channels",
                key="model.channels",
            )
        return (
            CNN(input_shape, num_classes, cfg) if isinstance(cfg, CNNModel) else ResNet(input_shape, num_classes, cfg)
        )
    if is_path_reference(cfg.name):
        target = load_reference(cfg.name, "model.name")
        return target(**_reference_args(target, cfg, input_shape, num_classes))
    import torchvision

    model = torchvision.models.get_model(cfg.name, weights=None, num_classes=num_classes, **cfg.args)
    if input_shape[0] != 3:
        _fit_first_conv(model, input_shape[0])
    return model


def _fit_first_conv(model: nn.Module, in_channels: int) -> None:
    """Replace the first conv layer (made for 3-channel RGB) with one that takes `in_channels`."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(
                parent,
                attr,
                nn.Conv2d(
                    in_channels,
                    module.out_channels,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    module.groups,
                    module.bias is not None,
                ),
            )
            return
