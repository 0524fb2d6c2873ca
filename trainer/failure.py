"""What is known about a failure in the learner's code: where it is (their file, line and source, the tensors
that line names), which layer was running and what it got, and what their source says. `explain.py` turns these
facts into a message, with the message families of `torch_errors.py`. Importing this module does not import torch.
"""

from __future__ import annotations

import builtins
import inspect
import linecache
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

_LIBRARY_PARTS = ("site-packages", "dist-packages", f"{Path(sys.prefix).name}/lib")
OWN_FOLDER = str(Path(__file__).parent)


def is_user_file(path: str) -> bool:
    """A file the learner wrote: not torch, not leaptrain, not the standard library, not `<string>`."""
    if path.startswith((OWN_FOLDER, "<")) or any(part in path for part in _LIBRARY_PARTS):
        return False
    return not (path.startswith(sys.base_prefix) or path.startswith(sys.prefix))


def short_path(path: str) -> str:
    """The path relative to the current folder when it is inside it (as the user would type it)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


@dataclass
class Place:
    """A line of the learner's code: file, line, function, the source text, and the frame's names when known."""

    path: str
    line: int
    function: str
    names: dict[str, Any] = field(default_factory=dict)  # globals, builtins and locals of the frame
    local_names: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{short_path(self.path)}:{self.line}"

    @property
    def source(self) -> str:
        return linecache.getline(self.path, self.line).strip()

    def tensors_on_line(self, limit: int = 4) -> str:
        """'x: [32, 20, 4, 4] float32, y: ...' for the local tensors the line names: the shapes that met there."""
        import torch

        shown = []
        for name in dict.fromkeys(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", self.source)):
            value = self.local_names.get(name)
            if isinstance(value, torch.Tensor) or (
                isinstance(value, tuple | list) and any(isinstance(v, torch.Tensor) for v in value)
            ):
                shown.append(f"{name}: {describe(value)}")
        return ", ".join(shown[:limit])


def user_place(tb: TracebackType | None) -> Place | None:
    """The innermost frame of the traceback that is in the learner's own code."""
    found = None
    while tb is not None:
        frame: FrameType = tb.tb_frame
        if is_user_file(frame.f_code.co_filename):
            names = {**vars(builtins), **frame.f_globals, **frame.f_locals}
            found = Place(frame.f_code.co_filename, tb.tb_lineno, frame.f_code.co_name, names, dict(frame.f_locals))
        tb = tb.tb_next
    return found


def user_location(tb: TracebackType | None) -> str:
    """'file.py:line' of the innermost frame in the user's own code (not torch, not leaptrain), or ''."""
    place = user_place(tb)
    return place.where if place else ""


FRAME_LINE = re.compile(r'File "(.+?)", line (\d+), in (\S+)')


def place_in_forward_trace(text: str) -> Place | None:
    """The innermost learner's line in the forward trace autograd's anomaly mode prints for a failed backward."""
    found = None
    for path, line, function in FRAME_LINE.findall(text):
        if is_user_file(path):
            found = Place(path, int(line), function)
    return found


@dataclass
class Layer:
    """The layer that was running: its path in the model ('features.0'), the module, and what it was given."""

    path: str
    module: Any
    inputs: str = ""  # '[32, 1, 28, 28] float32'

    @property
    def label(self) -> str:
        return f"layer '{self.path}' ({type(self.module).__name__})"


def describe(value: Any) -> str:
    """'[32, 784] float32' for a tensor; the kinds inside a tuple, list or dict; the type for anything else."""
    import torch

    if isinstance(value, torch.Tensor):
        device = "" if value.device.type == "cpu" else f" on {value.device}"
        return f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}{device}"
    if isinstance(value, tuple | list) and len(value) <= 4:
        inner = ", ".join(describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "a dict of " + ", ".join(map(str, list(value)[:4]))
    return type(value).__name__


class LayerTracker:
    """Knows which layer is running and what it got, so an error raised inside torch can be pinned on that layer.

    Used only around one batch (the preflight, or the rerun of a failed step): hooks on every layer would slow
    training down.
    """

    def __init__(self, model: Any):
        self.model = model
        self.running: list[Layer] = []
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
        def hook(module: Any, args: Any) -> None:
            shown = describe(args[0]) if len(args) == 1 else describe(args)
            self.running.append(Layer(name or "(the model)", module, shown))

        return hook

    def _leave(self, module: Any, args: Any, output: Any) -> None:
        if self.running:
            self.running.pop()

    @property
    def failing_layer(self) -> Layer | None:
        return self.running[-1] if self.running else None

    @property
    def model_input(self) -> str:
        return self.running[0].inputs if self.running else ""


def layer_at(model: Any, place: Place | None) -> Layer | None:
    """The layer a line of the learner's code belongs to: `self.fc(x)` on a line of Net.forward is layer 'fc'."""
    if model is None or place is None:
        return None
    for path, module in model.named_modules():
        cls = type(module)
        try:
            if Path(inspect.getsourcefile(cls) or "").resolve() != Path(place.path).resolve():
                continue
            lines, start = inspect.getsourcelines(cls)
        except (OSError, TypeError):
            continue
        if start <= place.line < start + len(lines):
            called = re.search(r"self\.(\w+)\s*\(", place.source)
            if called and is_module(getattr(module, called[1], None)):
                child = f"{path}.{called[1]}" if path else called[1]
                return Layer(child, getattr(module, called[1]))
            return Layer(path or "(the model)", module)
    return None


def source_of(obj: Any) -> tuple[str, int, list[str]] | None:
    """(path, first line, lines) of the learner's own function or class; None for torch's or leaptrain's."""
    obj = getattr(obj, "func", obj)  # functools.partial
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, type)):
        obj = type(obj)
    try:
        path = inspect.getsourcefile(obj) or ""
        if not is_user_file(path):  # asked first: reading torch's own sources takes milliseconds a class
            return None
        lines, start = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    return path, start, lines


def lines_matching(obj: Any, patterns: dict[str, str], before: int | None = None) -> list[tuple[str, str]]:
    """[('net.py:13: x = x.detach()', why)] for each line of the learner's `obj` that matches one of `patterns`
    (comments left out); `before` keeps only the lines above that line number."""
    found = source_of(obj)
    if found is None:
        return []
    path, start, lines = found
    hits = []
    for number, text in enumerate(lines, start):
        code = text.split("#", 1)[0]
        if before is not None and number >= before:
            break
        for pattern, why in patterns.items():
            if re.search(pattern, code):
                hits.append((f"{short_path(path)}:{number}: {text.strip()}", why))
                break
    return hits


def forwards(model: Any) -> list[Any]:
    """The forward methods of the learner's own classes in the model (each class once)."""
    seen, found = set(), []
    for module in model.modules() if model is not None else ():
        cls = type(module)
        if cls not in seen and source_of(cls) is not None:
            seen.add(cls)
            found.append(cls.forward)
    return found


# Operations that cut the graph autograd follows, keyed on how they look in code.
GRAPH_CUTS = {
    r"\.detach\(\)": "detach() cuts the graph: nothing before it gets a gradient",
    r"\.item\(\)|\.tolist\(\)": ".item() and .tolist() give Python numbers, which carry no gradient",
    r"\.numpy\(\)|\bnp\.": "numpy arrays carry no gradient",
    r"torch\.(?:tensor|Tensor|as_tensor|from_numpy|FloatTensor|LongTensor)\(": "torch.tensor(...) makes a new tensor "
    "with no history: build it with torch.stack / torch.cat from the tensors you have",
    r"\.argmax\(|\.argmin\(|torch\.argmax\(|\.round\(\)|torch\.round\(": "argmax and round give whole numbers "
    "with no gradient: compute the loss from the scores themselves (e.g. F.cross_entropy(logits, targets))",
    r"torch\.no_grad\(\)|torch\.inference_mode\(\)": "nothing computed inside no_grad is recorded for backward",
    r"\.data\b": ".data bypasses autograd: use the tensor itself",
}
BACKWARD_CALLS = {r"\.backward\(": "the Trainer calls backward itself, once per step"}
LAYERS_MADE = {r"\bnn\.[A-Z]\w*\(": "a layer made here is new, with fresh random weights, on every call"}


def graph_cuts(*objects: Any) -> str:
    """' It is cut at loss.py:5: ... (argmax ...)': the first graph-cutting line in the learner's code."""
    for obj in objects:
        for line, why in lines_matching(obj, GRAPH_CUTS):
            return f"; it is cut at {line} ({why})"
    return ""


def is_module(obj: Any) -> bool:
    return any(cls.__name__ == "Module" and cls.__module__.startswith("torch.nn") for cls in type(obj).__mro__)


@dataclass
class Failure:
    """What is known about one failure: the exception, where it happened in the learner's code, which layer."""

    err: BaseException
    place: Place | None
    layer: Layer | None
    during: str  # 'the forward pass', 'the loss', 'backward', 'building the model', ...
    batch_size: int | None = None
    model: Any = None
    forward_place: Place | None = None  # for a failed backward: the forward line that made the failing operation
    loss_fn: Any = None
    model_input: str = ""  # what the whole model got: '[32, 1, 28, 28] float32'

    @property
    def text(self) -> str:
        return str(self.err).strip()

    @property
    def first_line(self) -> str:
        text = self.text
        if isinstance(self.err, KeyError) and len(self.err.args) == 1:
            text = f"key {self.err.args[0]!r} not found"
        line = (text.splitlines() or [type(self.err).__name__])[0]
        return line if len(line) <= 240 else line[:240] + " ..."

    @property
    def layer_name(self) -> str:
        return self.layer.label if self.layer else "a layer"

    @property
    def at(self) -> str:
        place = self.place or self.forward_place
        return f" (at {place.where})" if place else ""


@dataclass
class Advice:
    what: str
    fix: str
    key: str = "model"


def key_of(failure: Failure) -> str:
    """The config key to point at: the loss when the loss failed, else the model."""
    return "loss" if failure.during == "the loss" else "model"


# ---- rerunning a failed batch to learn the layer and the forward line ----------------------------------------
