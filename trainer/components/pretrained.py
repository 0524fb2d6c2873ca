"""Pretrained torchvision models: weights by name (torchvision's own download) or from a file, the head replaced
for the data's classes, the backbone frozen or not, and the input size and normalization the weights expect.

A network trained on ImageNet has learned edges, textures and parts of objects; a few hundred photos of your own are
enough to train a new last layer (the head) on top of those features. Its batch norm layers keep the statistics they
learned while the backbone is frozen: a few hundred images would otherwise overwrite them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.errors import UserError, did_you_mean

WEIGHTS_KEY = "model.weights"


class Pretrained(nn.Module):
    """A pretrained model `net` whose last layer, `net.<head>`, was replaced. While `frozen`, only the head trains:
    the backbone's weights get no gradients and its batch norm layers keep their running statistics."""

    def __init__(self, net: nn.Module, head: str, frozen: bool):
        super().__init__()
        self.net, self.head = net, head
        self.set_frozen(frozen)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.net.get_submodule(self.head).parameters())

    def body_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.net.parameters() if id(p) not in head]

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        for parameter in self.body_parameters():
            parameter.requires_grad_(not frozen)  # no gradient: the optimizer leaves the weight as it is
        self.train(self.training)

    def train(self, mode: bool = True) -> Pretrained:
        super().train(mode)
        if self.frozen:
            head = self.net.get_submodule(self.head)
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and module is not head:
                    module.eval()  # in training mode they would move their running mean and variance
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def weights_of(name: str, value: str) -> Any:
    """The torchvision weights `value` names for the builder `name` (DEFAULT, IMAGENET1K_V1, or the full
    ResNet18_Weights.IMAGENET1K_V1), or a Path when `value` is a file. Nothing is downloaded here."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (KeyError, ValueError):
        enum = None
    short = value.rsplit(".", 1)[-1] if enum is not None and value.startswith(f"{enum.__name__}.") else value
    if enum is not None and short in enum.__members__:
        return enum[short]
    if looks_like_a_path(value):
        return Path(value).expanduser()
    if enum is None:
        raise UserError(
            f"torchvision has no named weights for {name}",
            fix="model.weights=path/to/weights.pth (a state dict saved with torch.save), or leave model.weights out",
            key=WEIGHTS_KEY,
        )
    names = list(enum.__members__)
    raise UserError(
        f"{value!r} is neither a weights name of {name} nor a file{did_you_mean(short, names)}",
        fix=f"one of {', '.join(names)} (DEFAULT is the best torchvision has), or path/to/weights.pth",
        key=WEIGHTS_KEY,
    )


def looks_like_a_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.endswith((".pth", ".pt", ".bin", ".safetensors"))


def preprocessing(name: str, value: str) -> tuple[int, list[float], list[float]]:
    """(image size, mean, std) that the weights were trained with, from their meta; for a file, those of the
    architecture's DEFAULT weights (a file of ImageNet weights expects ImageNet's)."""
    import torchvision

    weights = weights_of(name, value)
    if isinstance(weights, Path):
        try:
            weights = torchvision.models.get_model_weights(name).DEFAULT
        except (KeyError, ValueError):
            return 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet's
    transform = weights.transforms()
    size = transform.crop_size[0] if isinstance(transform.crop_size, list | tuple) else transform.crop_size
    return int(size), list(transform.mean), list(transform.std)


def build_pretrained(
    name: str, value: str | None, frozen: bool, num_classes: int, input_shape: tuple[int, ...], args: dict[str, Any]
) -> Pretrained:
    """The torchvision model `name` with the weights `value`, its head replaced by one with `num_classes` outputs.
    `value` None: the same model without reading weights (a checkpoint's are loaded into it next)."""
    import torchvision

    if len(input_shape) != 3 or input_shape[0] != 3:
        shape = "x".join(map(str, input_shape))
        raise UserError(
            f"pretrained weights take colour (RGB) images, but this data gives {shape} inputs",
            fix="data.grayscale=false for an image folder; for grey digits, train a model from scratch "
            "(model.name=cnn) instead",
            key=WEIGHTS_KEY,
        )
    weights = weights_of(name, value) if value is not None else None
    net = torchvision.models.get_model(name, weights=None, **args)
    head = head_of(net, name)
    if isinstance(weights, Path):
        load_weights(net, read_weights_file(weights), head, name, weights)
    elif weights is not None:
        net.load_state_dict(download(weights, name))
    replace_head(net, head, num_classes)
    return Pretrained(net, head, frozen)


def head_of(net: nn.Module, name: str) -> str:
    """The last layer, which gives the class scores: the last Linear (or SqueezeNet's 1x1 Conv2d) in the model."""
    last = None
    for module_name, module in net.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)):
            last = module_name
    if last is None:
        raise UserError(
            f"{name} has no last Linear layer to replace with one for your classes",
            fix="a classification model of torchvision (resnet18, efficientnet_b0, mobilenet_v3_small, ...)",
            key="model.name",
        )
    return last


def replace_head(net: nn.Module, head: str, num_classes: int) -> None:
    old = net.get_submodule(head)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        assert isinstance(old, nn.Conv2d)
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
    net.set_submodule(head, new)


def download(weights: Any, name: str) -> dict[str, torch.Tensor]:
    """torchvision's own download (once, into its cache); offline, a message with the file to put where."""
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # no network (URLError is an OSError), a proxy, a broken download, a full disk
        file_name = weights.url.rsplit("/", 1)[-1]
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise UserError(
            f"could not download the weights {weights} of {name} ({type(err).__name__}: {err}). torchvision "
            f"fetches {weights.url} once and keeps it as {cache / file_name} (set TORCH_HOME to move it)",
            fix=f"download {file_name} on a machine with internet and put it at {cache / file_name}; or put it "
            f"anywhere and use model.weights=path/to/{file_name}",
            key=WEIGHTS_KEY,
        ) from err


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from `path`, read with weights_only=True (no code in the file runs). A checkpoint holding one
    under "model" or "state_dict" (leaptrain's, Lightning's) gives that one."""
    if not path.is_file():
        where = "a folder, not a file" if path.is_dir() else "not there"
        raise UserError(
            f"the weights file {path} is {where}",
            fix="the path of a .pth file, relative to where you run",
            key=WEIGHTS_KEY,
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(
            f"{path} could not be read as PyTorch weights ({type(err).__name__}: {str(err).splitlines()[0]})",
            fix="a file saved with torch.save(model.state_dict(), path), or a torchvision .pth download",
            key=WEIGHTS_KEY,
        ) from err
    for inner in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(inner), dict):
            state = state[inner]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(
            f"{path} holds a {type(state).__name__}, not a state dict of tensors",
            fix="save the weights with torch.save(model.state_dict(), path)",
            key=WEIGHTS_KEY,
        )
    for prefix in ("module.", "net.", "_orig_mod."):  # DDP, leaptrain's Pretrained, torch.compile
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def load_weights(net: nn.Module, state: dict[str, torch.Tensor], head: str, name: str, path: Path) -> None:
    """Load every weight but the head's; weights of another architecture are named with the model they fit."""
    own = net.state_dict()
    body = {key: value for key, value in state.items() if not key.startswith(f"{head}.")}
    missing = [key for key in own if not key.startswith(f"{head}.") and key not in body]
    wrong = [key for key, value in body.items() if key not in own or own[key].shape != value.shape]
    if missing or wrong:
        closest = closest_architecture(body)
        looks = f"; they look like {closest}'s" if closest and closest != name else ""
        example = (missing or wrong)[0]
        raise UserError(
            f"the weights in {path} do not fit {name}: {len(missing)} of its weights are not in the file and "
            f"{len(wrong)} of the file's do not fit it (e.g. {example}){looks}",
            fix=f"model.name={closest}" if closest and closest != name else f"the file of {name}'s own weights",
            key=WEIGHTS_KEY,
        )
    net.load_state_dict(body, strict=False)


def closest_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """The torchvision classification model whose weights (names and shapes) the file's fit best."""
    import torchvision

    shapes = {key: tuple(value.shape) for key, value in state.items()}
    best, best_score = None, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some builders warn about their default initialization
        for candidate in torchvision.models.list_models(module=torchvision.models):
            try:
                with torch.device("meta"):  # no memory, no initialization: only the names and shapes
                    own = torchvision.models.get_model(candidate, weights=None).state_dict()
            except Exception:
                continue
            fits = sum(1 for key, value in own.items() if shapes.get(key) == tuple(value.shape))
            score = fits / max(len(own), len(shapes))
            if score > best_score:
                best, best_score = candidate, score
    return best if best_score > 0.5 else None


def data_for_weights(model: Any, data: Any) -> Any:
    """The data config with the image size, mean and std the model's pretrained weights expect, where the config
    leaves them to leaptrain (an image folder's image_size not given, mean and std not given)."""
    from trainer.config import ImageFolderData

    if getattr(model, "weights", None) is None or not isinstance(data, ImageFolderData):
        return data
    size, mean, std = preprocessing(model.name, model.weights)
    changes: dict[str, Any] = {}
    if "image_size" not in data.model_fields_set:
        changes["image_size"] = size
    if data.mean is None and data.std is None:
        changes |= {"mean": mean, "std": std}
    return data.model_copy(update=changes)


def pretrained_line(cfg: Any, input_shape: tuple[int, ...], model: Pretrained) -> str:
    """What the run starts from, in one line: the weights, the image size, and what trains."""
    trains = (
        f"the backbone is frozen, only the new last layer ({model.head}) trains"
        if model.frozen
        else "every layer trains"
    )
    return f"{cfg.weights} for {cfg.name}, images {input_shape[1]}x{input_shape[2]}; {trains}"
