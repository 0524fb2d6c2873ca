"""Turn exceptions from inside torch into messages about the user's model, loss or data: what, where, what to try."""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from torch import nn

from trainer.errors import UserError

_LIBRARY_PARTS = ("site-packages", "dist-packages", f"{Path(sys.prefix).name}/lib")
_OWN_FOLDER = str(Path(__file__).parent)

# torch's own wording of the errors a learner meets most (checked against torch 2.x by tests/test_diagnostics.py)
LINEAR_SHAPES = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
CONV_CHANNELS = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels")
CONV_RANK = re.compile(
    r"Expected (\dD) \(unbatched\) or (\dD) \(batched\) input to (\w+), but got input of size: (\[[\d, ]+\])"
)


def user_location(tb: TracebackType | None) -> str:
    """'file.py:line' of the innermost frame in the user's own code (not torch, not leaptrain), or ''."""
    found = ""
    for frame in traceback.extract_tb(tb):
        path = frame.filename
        if path.startswith(_OWN_FOLDER) or path.startswith("<") or any(p in path for p in _LIBRARY_PARTS):
            continue
        if path.startswith(sys.base_prefix) or path.startswith(sys.prefix):
            continue
        found = f"{short_path(path)}:{frame.lineno}"
    return found


def short_path(path: str) -> str:
    """The path relative to the current folder when it is inside it (as the user would type it)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


class LayerTracker:
    """Knows which layer is running, so an error raised inside torch can be pinned on the layer that raised it.

    Used only around the preflight batch: hooks on every layer would slow training down.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.running: list[tuple[str, nn.Module]] = []
        self.handles: list[Any] = []

    def __enter__(self) -> LayerTracker:
        for name, module in self.model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def _enter(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            self.running.append((name or "(the model)", module))

        return hook

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.running:
            self.running.pop()

    @property
    def failing_layer(self) -> tuple[str, nn.Module] | None:
        return self.running[-1] if self.running else None


def explain(
    err: BaseException,
    layer: tuple[str, nn.Module] | None = None,
    batch_size: int | None = None,
    during: str = "training",
) -> UserError:
    """A UserError for a known failure inside torch; the original message (and a pointer) for any other."""
    text = str(err).strip()
    where = user_location(err.__traceback__)
    at = f" (at {where})" if where else ""
    layer_name = f"layer '{layer[0]}' ({type(layer[1]).__name__})" if layer else "a layer"

    if match := LINEAR_SHAPES.search(text):
        got, expected = int(match[2]), int(match[3])
        if expected == got * got or (expected % got == 0 and expected // got in (got, 3 * got)):
            return UserError(  # a Linear layer got an image row by row: the image was never flattened
                f"{layer_name} expects {expected} input features, but gets rows of {got}: the input was not "
                f"flattened{at}",
                fix="flatten before the first Linear layer: x = x.flatten(1) (or nn.Flatten() in a Sequential)",
                key="model",
            )
        return UserError(
            f"{layer_name} expects {expected} input features, but {got} arrive{at}",
            fix=f"in_features: {expected} -> {got} for that layer (or change the layers before it)",
            key="model",
        )
    if match := CONV_CHANNELS.search(text):
        expected, got = int(match[2]), int(match[3])
        return UserError(
            f"{layer_name} expects {expected} input channels, but the input has {got}{at}",
            fix=f"in_channels: {expected} -> {got} for that layer (grey images have 1 channel, colour 3)",
            key="model",
        )
    if match := CONV_RANK.search(text):
        return UserError(
            f"{layer_name} needs {match[2]} input (batch, channels, height, width), but got a tensor "
            f"of shape {match[4]}{at}",
            fix="keep images as (batch, channels, height, width) before conv layers; flatten only before Linear "
            "layers (or use model.name=mlp for flat vectors)",
            key="model",
        )
    if "Kernel size can't be greater than actual input size" in text or "Output size is too small" in text:
        return UserError(
            f"{layer_name}: the image has become too small for this layer (each pooling halves it){at}",
            fix="use fewer conv/pool blocks, a smaller kernel, or padding",
            key="model",
        )
    if "Expected more than 1 value per channel when training" in text:
        return UserError(
            f"{layer_name if layer else 'a batch norm layer'} got a batch of one sample, and cannot normalize "
            f"one sample{at}",
            fix="change data.batch_size so that the last batch is not a single sample",
            key="data.batch_size",
        )
    if match := re.search(r"Target (-?\d+) is out of bounds", text):
        return UserError(
            f"a target class is {match[1]}, but the model's output has fewer classes{at}",
            fix="make the last layer output as many scores as there are classes (targets must be 0 .. classes-1)",
            key="loss",
        )
    if "expected scalar type Long but found Float" in text or "Expected floating point type for target" in text:
        return UserError(
            f"the loss got targets of the wrong type: {text.splitlines()[0]}{at}",
            fix="cross_entropy/nll take class indices (int64) or class probabilities (float, same shape as the "
            "output); for numeric targets use loss: mse",
            key="loss",
        )
    if "does not require grad and does not have a grad_fn" in text:
        return UserError(
            f"the loss is cut off from the model, so no gradient can flow back{at}",
            fix="compute the loss from the model's output with torch operations only: no .item(), .detach(), "
            ".numpy(), argmax or torch.tensor(...) on the way",
            key="loss",
        )
    if "grad can be implicitly created only for scalar outputs" in text:
        return UserError(
            f"the loss is a tensor of many numbers, not one{at}",
            fix="end the loss with .mean() (or keep reduction: mean)",
            key="loss",
        )
    if "Expected all tensors to be on the same device" in text:
        return UserError(
            f"part of the model is not on the training device{at}",
            fix="keep sub-layers in nn.ModuleList / nn.Sequential (a plain Python list hides them from .to() and "
            "from the optimizer), and create tensors inside forward with device=x.device",
            key="model",
        )
    if type(err).__name__ == "OutOfMemoryError":
        size = f" at batch size {batch_size}" if batch_size else ""
        half = f"data.batch_size={max(1, batch_size // 2)}" if batch_size else "a smaller data.batch_size"
        return UserError(
            f"the GPU ran out of memory{size}{at}",
            fix=f"{half}, or precision bf16/fp16, or a smaller model",
            key="data.batch_size",
        )
    first_line = text.splitlines()[0] if text else type(err).__name__
    return UserError(
        f"{type(err).__name__} {'in ' + layer_name if layer else 'while ' + during}{at}: {first_line}",
        fix="run with --debug for the full traceback; `python -m trainer check CONFIG` runs one batch and names "
        "the layer",
        key="model" if layer else "",
    )
