"""One translator for exceptions raised while the learner's model, loss or data runs: what, where, what to try.

Every message names the innermost line of the learner's own code (and shows it), the layer that was running and
the shapes it got, what torch said in one line, and a fix. Known failures are recognized by the exception's class
and by the family of torch's wording (`RULES`); any other exception still gets the place and the likely fix for
its class (`LIKELY_FIX`). Importing this module does not import torch: the config checks run without it.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import linecache
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from trainer.errors import UserError

_LIBRARY_PARTS = ("site-packages", "dist-packages", f"{Path(sys.prefix).name}/lib")
_OWN_FOLDER = str(Path(__file__).parent)


def is_user_file(path: str) -> bool:
    """A file the learner wrote: not torch, not leaptrain, not the standard library, not `<string>`."""
    if path.startswith((_OWN_FOLDER, "<")) or any(part in path for part in _LIBRARY_PARTS):
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
        lines, start = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    return (path, start, lines) if is_user_file(path) else None


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


def explain(
    err: BaseException,
    layer: Layer | tuple[str, Any] | None = None,
    batch_size: int | None = None,
    during: str = "training",
    *,
    model: Any = None,
    loss_fn: Any = None,
    forward_place: Place | None = None,
    model_input: str = "",
) -> UserError:
    """A UserError naming the learner's line, the layer and the fix; any exception gets at least the place."""
    if isinstance(layer, tuple):
        layer = Layer(*layer)
    place = user_place(err.__traceback__)
    if layer is None and model is not None:
        layer = layer_at(model, place or forward_place)
    failure = Failure(err, place, layer, during, batch_size, model, forward_place, loss_fn, model_input)
    from trainer.torch_errors import RULES  # the message families; they use this module's Failure and Advice

    advice = None
    for classes, pattern, translate in RULES:
        if classes is not None and not isinstance(err, classes):
            continue
        match = pattern.search(failure.text)
        if match is None:
            continue
        try:
            advice = translate(failure, match)
        except Exception:  # a translator that fails must never hide the original error: fall back below
            advice = None
        if advice is not None:
            break
    if advice is None:
        advice = fallback(failure)
    return UserError(advice.what + details(failure), fix=advice.fix, key=advice.key)


def details(failure: Failure) -> str:
    """The lines under the message: the learner's line, the layer and its input, and torch's own words."""
    lines = []
    for label, place in (("", failure.place), ("made by ", failure.forward_place)):
        if place is not None and place.source:
            lines.append(f"{label}{place.where}: {place.source}")
    if failure.place is not None and (tensors := failure.place.tensors_on_line()):
        lines.append(f"on that line: {tensors}")
    if failure.during not in ("the forward pass", "the loss", "backward", "training", "a training step"):
        lines.append(f"during {failure.during}")
    if failure.layer is not None and failure.layer.inputs:
        weights = _weight_dtype(failure.layer.module)
        lines.append(f"{failure.layer.label} got {failure.layer.inputs}{weights}")
    said = "torch said" if raised_by_torch(failure.err) else "Python said"
    lines.append(f"{said}: {type(failure.err).__name__}: {failure.first_line}")
    return "".join(f"\n    {line}" for line in lines)


# Errors Python itself raises about the learner's code, whatever their wording.
PYTHON_ERRORS = (NameError, KeyError, ZeroDivisionError, RecursionError, AssertionError, ImportError, SyntaxError)
TORCH_WORDS = re.compile(r"[Tt]ensor|torch|dtype|device|grad|shape|size|dimension|kernel|CUDA|channels|mat1")


def raised_by_torch(err: BaseException) -> bool:
    """Did torch's own checks raise it (in its Python code or its C++ core), rather than Python itself?"""
    if isinstance(err, PYTHON_ERRORS) or re.search(r"positional argument|keyword argument", str(err)):
        return False
    frames = traceback.extract_tb(err.__traceback__)
    if frames and f"{Path('torch')}{'/'}" in frames[-1].filename.replace("\\", "/"):
        return True
    return bool(TORCH_WORDS.search(str(err)))


LIKELY_FIX = {
    "NameError": "define the name or import it at the top of your file",
    "AttributeError": "check the spelling of the attribute, and that it is set in __init__ (self.name = ...)",
    "TypeError": "compare the call on that line with what the function takes: the number and kind of arguments",
    "ValueError": "a value has the wrong size or kind for that call: print its shape just before that line",
    "IndexError": "an index is past the end: print the size of what is indexed and the index just before that line",
    "KeyError": "that key is not in the dict: print the dict's keys just before that line",
    "ZeroDivisionError": "a divisor is zero: guard it, or add a small number (x / (n + 1e-8))",
    "AssertionError": "an assert in your code failed: print the values it compares just before that line",
    "RecursionError": "a function calls itself without end: in forward, call the layers, not self(x) or self.forward",
    "NotImplementedError": "a method is missing: an nn.Module needs a `def forward(self, x)` (spelled exactly so)",
    "RuntimeError": "print the shapes and dtypes of the tensors on that line; `python -m trainer check CONFIG` "
    "shows the output shape of every layer",
}


def fallback(failure: Failure) -> Advice:
    """No rule knows this error: the place, the layer and torch's words still say where to look."""
    kind = type(failure.err).__name__
    where = f"in {failure.layer.label}" if failure.layer else f"during {failure.during}"
    fix = next((LIKELY_FIX[c.__name__] for c in type(failure.err).__mro__ if c.__name__ in LIKELY_FIX), "")
    fix = fix or LIKELY_FIX["RuntimeError"]
    own = _own_frame(failure.err) if failure.place is None else ""
    if own:  # not the learner's code at all: say so, rather than blame their model
        return Advice(
            f"{kind} inside leaptrain itself ({own}) {where}: {failure.first_line}",
            "`python -m trainer check CONFIG` shows whether the model's output and the data have the shapes the "
            "loss expects; if they do, this is a bug in leaptrain: run again with --debug and report the traceback",
            key="",
        )
    return Advice(f"{kind} {where}{failure.at}: {failure.first_line}", fix, key=key_of(failure))


def _own_frame(err: BaseException) -> str:
    """'trainer/components/tables.py:120' when the innermost frame outside torch is leaptrain's own, else ''."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "torch" not in Path(f.filename).parts]
    if frames and frames[-1].filename.startswith(_OWN_FOLDER):
        path = Path(frames[-1].filename)
        return f"{Path(_OWN_FOLDER).name}/{path.relative_to(_OWN_FOLDER)}:{frames[-1].lineno}"
    return ""


def _weight_dtype(module: Any) -> str:
    """'; its weights are float32' (to compare with what the layer got), or ''."""
    parameter = next(iter(module.parameters(recurse=False)), None) if hasattr(module, "parameters") else None
    return f"; its weights are {str(parameter.dtype).removeprefix('torch.')}" if parameter is not None else ""


def key_of(failure: Failure) -> str:
    """The config key to point at: the loss when the loss failed, else the model."""
    return "loss" if failure.during == "the loss" else "model"


# ---- rerunning a failed batch to learn the layer and the forward line ----------------------------------------


def explain_batch_failure(
    err: BaseException,
    model: Any,
    loss_fn: Any,
    inputs: Any,
    targets: Any,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> UserError:
    """Explain an exception raised while a batch went through model, loss and backward.

    The batch is run again with the layers watched (which layer was running, what it got) and, for a failure in
    backward, with autograd's anomaly mode, which records the forward line that made each operation. The run is
    stopping anyway; the random state is left as it was.
    """
    if "memory" in str(err).lower():  # running it again would only run out of memory again
        return explain(err, batch_size=len(targets), model=model)
    import torch

    during, layer, forward_place = "training", None, None
    # Anomaly mode must be on during the forward too: that is when it records the line that made each operation.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly():
                with LayerTracker(model) as tracker, autocast():
                    during = "the forward pass"
                    logits = model(inputs)
                    during = "the loss"
                    loss = loss_fn(logits, targets)
                during = "backward"
                loss.backward()
            during = "training"
        except Exception:
            layer = tracker.failing_layer if during == "the forward pass" else None
        finally:
            model.zero_grad(set_to_none=True)
    if during == "backward":
        for warning in caught:
            forward_place = forward_place or place_in_forward_trace(str(warning.message))
    return explain(
        err,
        layer,
        len(targets),
        during if during != "training" else "a training step",
        model=model,
        loss_fn=loss_fn,
        forward_place=forward_place,
        model_input=tracker.model_input if during == "the forward pass" else "",
    )


@contextlib.contextmanager
def explained_here(during: str, model: Any = None) -> Iterator[None]:
    """Turn any exception from the learner's code inside the block into a message (UserErrors pass through)."""
    try:
        yield
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise explain(err, during=during, model=model) from err
