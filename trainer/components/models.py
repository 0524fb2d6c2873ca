"""Models: the built-in mlp, cnn and resnet, any torchvision.models builder, or the user's own class by path.

Importing this module does not import torch: names and arguments can be checked against the catalog of torch's
signatures (trainer/components/catalog.py) first; torch is imported to build (the networks: networks.py).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from trainer.components.resolve import (
    MODEL,
    Signature,
    check_arguments,
    check_reference,
    definition_in_file,
    is_path_reference,
    load_reference,
    signature_in_file,
    signature_of,
    unknown_name,
)
from trainer.config import CNNModel, MLPModel, OtherModel, ResNetModel
from trainer.errors import Problem, UserError

if TYPE_CHECKING:
    from torch import nn

ModelConfig = MLPModel | CNNModel | ResNetModel | OtherModel
# The arguments a torchvision builder is given by leaptrain, not by the config.
BUILDER_FILLS = ["num_classes", "weights", "progress"]
# The arguments the user's own model is given from the data when its constructor takes them.
DATA_FILLS = ["num_classes", "in_channels", "input_shape"]


def torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def model_class(name: str) -> type:
    """The class the torchvision.models builder `name` returns (its arguments are the ones a config may give)."""
    import torch
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    returns = inspect.signature(builder).return_annotation  # `def resnet18(...) -> ResNet`
    if not isinstance(returns, type):
        with torch.device("meta"), warnings.catch_warnings():  # build without memory to see what comes out
            warnings.simplefilter("ignore")
            returns = type(builder(weights=None))
    return returns


def model_signatures() -> dict[str, Signature]:
    """What each torchvision builder's model accepts, asked of torchvision (the catalog keeps these)."""
    return {name: signature_of(model_class(name)) for name in torchvision_names()}


class _TorchvisionModels(Mapping[str, Signature]):
    """torchvision's builders by name, a builder's signature worked out only when it is looked up: checking one
    model's arguments without the catalog builds no other model."""

    def __init__(self) -> None:
        self.names = torchvision_names()

    def __getitem__(self, name: str) -> Signature:
        if name not in self.names:
            raise KeyError(name)
        return signature_of(model_class(name))

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _reference_args(target: Any, cfg: OtherModel, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """The user's arguments plus what the model can learn from the data (num_classes, in_channels, ...)."""
    known = dict(zip(DATA_FILLS, [num_classes, input_shape[0], tuple(input_shape)], strict=True))
    try:
        accepted = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return dict(cfg.args)
    return {**{k: v for k, v in known.items() if k in accepted}, **cfg.args}


def check_model_names(cfg: ModelConfig, known: Mapping[str, Signature]) -> list[Problem]:
    """The name and the argument names, against `known` torchvision models (the catalog's, or torchvision's own);
    of the user's own file only what can be told without running it."""
    if not isinstance(cfg, OtherModel):
        return []  # the schema already checked every key of the built-in models
    if is_path_reference(cfg.name) and (cfg.weights is not None or cfg.freeze is not None):
        key = "model.weights" if cfg.weights is not None else "model.freeze"
        return [
            Problem(
                key,
                f"{key} is for torchvision's models; your own class loads its weights itself. Try: remove it, or "
                "model.name=resnet18 (or another torchvision model) with model.weights=DEFAULT",
            )
        ]
    if is_path_reference(cfg.name):
        problems = check_reference(cfg.name, "model.name", MODEL)
        node = None if problems else definition_in_file(cfg.name)
        if node is None:
            return problems  # the arguments are checked once the file is imported
        signature = signature_in_file(node)
        given = {name: None for name in DATA_FILLS if name in signature.args}
        return check_arguments(signature, {**given, **cfg.args}, "model")
    if cfg.name not in known:
        return [Problem("model.name", unknown_name(cfg.name, "model", ["mlp", "cnn", "resnet", *known]))]
    if "pretrained" in cfg.args:
        return [Problem("model.pretrained", "torchvision's old `pretrained` flag. Try: model.weights=DEFAULT")]
    if cfg.weights is None and cfg.freeze is not None:
        return [Problem("model.freeze", "freezing keeps trained weights as they are. Try: model.weights=DEFAULT too")]
    if cfg.weights is not None:
        from trainer.components.pretrained import weights_of

        try:
            weights_of(cfg.name, cfg.weights)  # a name torchvision knows, or something that looks like a file
        except UserError as err:
            return [Problem("model.weights", f"{err.message}. Try: {err.fix}")]
    problems = check_arguments(known[cfg.name], cfg.args, "model", filled=BUILDER_FILLS)
    return [p for p in problems if "needs the argument" not in p.message]  # the builder gives those


def check_model(cfg: ModelConfig, known: Mapping[str, Signature] | None = None) -> list[Problem]:
    """The names against `known` (the catalog's models; torchvision's own when left out), and the user's own file,
    imported."""
    if isinstance(cfg, OtherModel) and is_path_reference(cfg.name):
        try:
            target = load_reference(cfg.name, "model.name", MODEL)  # refused unless an nn.Module subclass
        except UserError as err:
            return [Problem("model.name", f"{err.message}. Try: {err.fix}")]
        return check_arguments(target, _reference_args(target, cfg, (1, 1, 1), 1), "model")
    if known is None:
        known = _TorchvisionModels() if isinstance(cfg, OtherModel) else {}
    return check_model_names(cfg, known)


def build_model(
    cfg: ModelConfig,
    input_shape: tuple[int, ...],
    num_classes: int,
    load_weights: bool = True,
    data_info: dict[str, Any] | None = None,
) -> nn.Module:
    """The model for this data: `num_classes` outputs, first layer fitted to the input shape. `load_weights`:
    False where a checkpoint's weights are loaded next (predict, eval), so pretrained ones are not read again.
    `data_info` is what the data set says of its inputs: a table's text columns put word embeddings before the MLP."""
    import torch

    from trainer.components.networks import CNN, MLP, ResNet

    if isinstance(cfg, MLPModel):
        if data_info and data_info.get("text"):
            from torch import nn

            from trainer.components.text import word_bags_for

            bags = word_bags_for(data_info, cfg.embedding_dim)
            return nn.Sequential(bags, MLP(bags.out_features, num_classes, cfg.hidden, cfg.activation, cfg.dropout))
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
        target = load_reference(cfg.name, "model.name", MODEL)
        return target(**_reference_args(target, cfg, input_shape, num_classes))
    if cfg.weights is not None:
        from trainer.components.pretrained import build_pretrained

        frozen = cfg.freeze != "none"  # backbone, the default with weights
        weights = cfg.weights if load_weights else None
        return build_pretrained(cfg.name, weights, frozen, num_classes, input_shape, cfg.args)
    import torchvision

    model = torchvision.models.get_model(cfg.name, weights=None, num_classes=num_classes, **cfg.args)
    if input_shape[0] != 3:
        _fit_first_conv(model, input_shape[0])
    return model


def _fit_first_conv(model: nn.Module, in_channels: int) -> None:
    """Replace the first conv layer (made for 3-channel RGB) with one that takes `in_channels`."""
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            model.set_submodule(
                name,
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
