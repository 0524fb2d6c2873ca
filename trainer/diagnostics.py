"""Preflight: push one batch through the model, the loss and backward before training, and say what looks wrong."""

from __future__ import annotations

import copy
import inspect
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from trainer.errors import UserError
from trainer.explain import explain, explain_batch_failure
from trainer.failure import (
    LAYERS_MADE,
    LayerTracker,
    forwards,
    graph_cuts,
    is_user_file,
    lines_matching,
    short_path,
    source_of,
)
from trainer.torch_errors import KIND_HINTS, batch_mixing

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# The losses that take class indices as targets: a run with one of them is a classification run.
CLASS_INDEX_LOSSES = ("CrossEntropyLoss", "NLLLoss")
CLASS_INDEX_FUNCTIONS = ("cross_entropy", "nll_loss")  # the same losses as torch.nn.functional's functions


def takes_class_indices(loss_fn: Any) -> bool:
    """True for cross entropy and NLL losses: torch's modules, classes of that name, or torch's functions."""
    import torch.nn.functional as functional

    cls = loss_fn if isinstance(loss_fn, type) else type(loss_fn)
    if any(base.__name__ in CLASS_INDEX_LOSSES for base in cls.__mro__):
        return True
    return any(loss_fn is getattr(functional, name) for name in CLASS_INDEX_FUNCTIONS)


SAME_SHAPE_LOSSES = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCEWithLogitsLoss", "BCELoss")


@dataclass
class Check:
    status: Literal["pass", "warn", "fail"]
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" Try: {self.fix}" if self.fix and self.status != "pass" else ""
        return f"[{self.status.upper():4}] {self.name}: {self.detail}.{fix}"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    layers: list[tuple[str, str, str, int]] = field(default_factory=list)  # name, type, output shape, parameters
    initial_loss: float | None = None

    def add(self, status: Literal["pass", "warn", "fail"], name: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(status, name, detail, fix))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def layer_table(self) -> str:
        rows = [("layer", "type", "output shape", "parameters")]
        rows += [(name, kind, shape, f"{count:,}") for name, kind, shape, count in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def layer_summary(model: nn.Module, inputs: torch.Tensor) -> str:
    """The layer table (name, type, output shape, parameters) for a few inputs, and the totals."""
    report = Report()
    handles = _record_shapes(model, report)
    was_training = model.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]), LayerTracker(model) as tracker:
            model.eval()
            model(inputs)
    except Exception as err:
        during = f"the forward pass in evaluation mode (model.eval(), {len(inputs)} samples)"
        raise explain(err, tracker.failing_layer, len(inputs), during, model=model) from err
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{report.layer_table()}\n{total:,} parameters ({trainable:,} trainable)"


def first_batch(loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch, taken without disturbing the shuffling the training run will see."""
    generator = getattr(loader, "generator", None)
    saved = generator.get_state() if generator is not None else None
    with torch.random.fork_rng(devices=[]):
        inputs, targets = next(iter(loader))
    if generator is not None:
        generator.set_state(saved)
    return inputs, targets


def preflight(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    num_classes: int | None = None,
    full: bool = False,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    loader: Iterable[Any] | None = None,
) -> Report:
    """Checks on one batch; the model, its gradients and the random state are left exactly as they were.

    `full` adds the layer-by-layer shapes, an attempt to overfit the batch (needs `make_optimizer`) and a
    comparison of data loading with step time (needs `loader`): the `check` command.
    """
    report = Report()
    saved_state = copy.deepcopy(model.state_dict())
    with torch.random.fork_rng(devices=[]):
        try:
            _one_step(model, loss_fn, batch, num_classes, report, full)
        finally:
            model.load_state_dict(saved_state)
            model.zero_grad(set_to_none=True)
        if full and make_optimizer is not None and not report.failures:
            _overfit_one_batch(model, loss_fn, batch, make_optimizer, report)
        if full and loader is not None and make_optimizer is not None and not report.failures:
            _data_vs_step_time(model, loss_fn, loader, make_optimizer, report)
    return report


def _one_step(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int | None,
    report: Report,
    full: bool,
) -> None:
    """One forward, loss and backward with checks on the way; an exception from the learner's code is explained."""
    try:
        _checked_step(model, loss_fn, batch, num_classes, report, full)
    except UserError:
        raise
    except Exception as err:
        raise explain_batch_failure(err, model, loss_fn, *batch) from err


def _checked_step(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int | None,
    report: Report,
    full: bool,
) -> None:
    inputs, targets = batch
    model.train()
    _check_hidden_layers(model, report)
    if inputs.is_floating_point() and not torch.isfinite(inputs).all():
        report.add(
            "fail",
            "inputs",
            f"the batch holds {int((~torch.isfinite(inputs)).sum())} NaN/inf values",
            "clean the data set (look for empty cells or divisions by zero)",
        )
        return
    shapes = _record_shapes(model, report) if full else []
    try:
        logits = model(inputs)
    finally:
        for handle in shapes:
            handle.remove()
    if not isinstance(logits, torch.Tensor):
        report.add(
            "fail",
            "model output",
            f"the model returns a {type(logits).__name__}, not a tensor{_forward_where(model)}",
            KIND_HINTS.get(type(logits).__name__, "return one tensor of scores from forward (`return self.head(x)`)"),
        )
        return
    if logits.shape[0] != len(targets) and (mixed := batch_mixing(model, logits.shape[0], len(targets))):
        report.add("fail", "model output", mixed[0], mixed[1])
        return
    if logits.shape[0] != len(targets):
        report.add(
            "fail",
            "model output",
            f"the output has {logits.shape[0]} rows for a batch of {len(targets)}{_forward_where(model)}",
            "the batch is dimension 1 of the output: an RNN's hidden state is (layers, batch, hidden): use h[-1] or "
            "out[:, -1]"
            if logits.dim() >= 2 and logits.shape[1] == len(targets)
            else "keep the batch dimension first: flatten with x.flatten(1), not x.view(-1)",
        )
        return
    report.add("pass", "forward", f"input {list(inputs.shape)} -> output {list(logits.shape)}")
    if not _loss_contract(loss_fn, logits, targets, num_classes, report):
        return
    loss = loss_fn(logits, targets)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        report.add(
            "fail",
            "loss",
            f"the loss is {shape}, not one number{_where(loss_fn)}",
            "end the loss with .mean() (or keep reduction: mean)",
        )
        return
    if not loss.requires_grad:
        report.add(
            "fail",
            "loss",
            f"the loss is cut off from the model: no gradient can flow back{_where(loss_fn)}"
            f"{graph_cuts(loss_fn, *forwards(model))}",
            "compute the loss from the model's output with torch operations only: no .item(), .detach(), "
            ".numpy(), argmax or torch.tensor(...) on the way",
        )
        return
    report.initial_loss = loss.item()
    if not math.isfinite(report.initial_loss):
        report.add(
            "fail",
            "loss",
            f"the first loss is {report.initial_loss}",
            "check the inputs for NaN and the loss for log(0) or division by zero",
        )
        return
    if not _squashed_scores(model, loss_fn, logits, report):
        _initial_loss_check(model, loss_fn, logits, report)
    _layers_made_in_forward(model, report)
    loss.backward()
    _gradient_audit(model, report)


def _forward_where(model: nn.Module) -> str:
    """' (forward at net.py:12)' for a model class of the learner's; '' for torch's and leaptrain's own."""
    forward = type(model).forward
    try:
        path = inspect.getsourcefile(forward) or ""
        line = inspect.getsourcelines(forward)[1]
    except (TypeError, OSError):
        return ""
    return f" (forward at {short_path(path)}:{line})" if is_user_file(path) else ""


def _where(loss_fn: LossFn) -> str:
    """' (loss defined at my_loss.py:4)' for a loss of the learner's; '' for torch's own (a partial of one too)."""
    target = loss_fn.func if hasattr(loss_fn, "func") else loss_fn  # functools.partial
    try:
        source = inspect.getsourcefile(target if inspect.isfunction(target) else type(target))
        line = inspect.getsourcelines(target if inspect.isfunction(target) else type(target))[1]
    except (TypeError, OSError):
        return ""
    return f" (loss defined at {short_path(source)}:{line})" if source and is_user_file(source) else ""


def _check_hidden_layers(model: nn.Module, report: Report) -> None:
    """Layers kept in a plain list, tuple or dict, and weights kept as plain tensors, are invisible to torch: not
    trained, not moved to the GPU."""
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            where = f"{name}.{attr}" if name else attr
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else []
            if attr.startswith("_"):
                continue
            if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], nn.Module):
                made = _assignment(module, attr)
                used = lines_matching(type(module).forward, {rf"self\.{attr}\(": ""})
                report.add(
                    "fail",
                    "hidden layers",
                    f"`{where}` is a tuple holding one layer: a trailing comma{' at ' + made if made else ''} made it "
                    f"one{', and it is called at ' + used[0][0] if used else ''}",
                    "remove the comma at the end of that line",
                )
            elif any(isinstance(item, nn.Module) for item in items):
                kind = "nn.ModuleDict" if isinstance(value, dict) else "nn.ModuleList"
                report.add(
                    "fail",
                    "hidden layers",
                    f"`{where}` is a plain Python {type(value).__name__} of layers: "
                    "their weights are not part of the model and would never be trained",
                    f"wrap it: self.{attr} = {kind}(...)",
                )
            elif isinstance(value, torch.Tensor) and value.requires_grad:
                made = _assignment(module, attr)
                report.add(
                    "fail",
                    "hidden weights",
                    f"`{where}`{' (' + made + ')' if made else ''} is a plain tensor, not a weight of the model: the "
                    "optimizer never sees it, so it is never trained",
                    f"self.{attr} = nn.Parameter(...) registers it as a weight (or use a layer such as nn.Linear)",
                )


def _assignment(module: nn.Module, attr: str) -> str:
    """'net.py:7: self.fc1 = nn.Linear(784, 64),': where the learner's class sets the attribute."""
    found = lines_matching(type(module), {rf"self\.{attr}\s*=[^=]": ""})
    return found[0][0] if found else ""


def _record_shapes(model: nn.Module, report: Report) -> list[Any]:
    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            shape = _batch_shape(output) if isinstance(output, torch.Tensor) else type(output).__name__
            count = sum(p.numel() for p in module.parameters(recurse=False))
            report.layers.append((name, type(module).__name__, shape, count))

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    return [module.register_forward_hook(record(name)) for name, module in leaves]


def _batch_shape(tensor: torch.Tensor) -> str:
    """'[B, 32, 14, 14]': B stands for the batch size, which any batch may have."""
    return "[" + ", ".join(["B", *map(str, tensor.shape[1:])]) + "]"


def _loss_contract(
    loss_fn: LossFn, logits: torch.Tensor, targets: torch.Tensor, num_classes: int | None, report: Report
) -> bool:
    """Do the model's output and the targets fit the loss? True when training can go on."""
    kind = type(loss_fn).__name__
    integer_targets = not targets.is_floating_point()
    if kind in CLASS_INDEX_LOSSES:
        if logits.dim() < 2:
            report.add(
                "fail",
                "loss vs targets",
                f"{kind} needs one score per class, but the output is {list(logits.shape)}",
                "make the last layer output one score per class",
            )
            return False
        classes = logits.shape[1]
        if classes == 1 and not integer_targets:
            report.add(
                "fail",
                "loss vs targets",
                f"{kind} over a single output is always 0 (the softmax of one score is 1), and the targets are "
                f"numbers {list(targets.shape)}: nothing would be learned",
                "loss: mse (or l1, huber) to predict numbers; for classes, one output per class and integer labels",
            )
            return False
        if integer_targets and targets.dim() == logits.dim() - 1:
            # Targets equal to the loss's ignore_index (-100 by default: padding) count for nothing, so they are fine.
            ignored = getattr(loss_fn, "ignore_index", None)
            labels = targets if ignored is None else targets[targets != ignored]
            low, high = (int(labels.min()), int(labels.max())) if len(labels) else (0, 0)
            if low < 0:
                if set(labels.unique().tolist()) == {-1, 1}:  # -1 is a class here, not a mark for 'leave out'
                    fix = (
                        "labels -1 and +1 (as an SVM takes them) are two classes: make them 0 and 1, (labels + 1) // 2"
                    )
                else:
                    fix = (
                        "number the classes from 0 (labels 1..K: subtract 1); to leave samples out, give them the "
                        f"label {-100 if ignored is None else ignored} (the loss's ignore_index) or drop them"
                    )
                report.add(
                    "fail",
                    "loss vs targets",
                    f"the targets go from {low} to {high}, but class labels are 0..{classes - 1} for the "
                    f"{classes} scores the model outputs: a negative label has no score",
                    fix,
                )
                return False
            if high >= classes:
                # Labels 1..K (no 0 among them) for K outputs: the classes were numbered from 1, as in MATLAB, R or a
                # spreadsheet; one more output would train a class that never occurs.
                from_one = low >= 1 and high == classes and num_classes in (None, classes)
                report.add(
                    "fail",
                    "loss vs targets",
                    f"the targets go from {low} to {high}, but the model outputs "
                    f"{classes} scores (classes 0..{classes - 1})"
                    + (": the labels look numbered from 1" if from_one else ""),
                    f"subtract 1 from the labels so they run 0..{classes - 1} (or make the last layer output "
                    f"{high + 1} scores and leave score 0 unused)"
                    if from_one
                    else f"make the last layer output {high + 1} scores",
                )
                return False
        elif targets.shape != logits.shape:
            report.add(
                "fail",
                "loss vs targets",
                f"{kind} takes class indices (int64, shape {[logits.shape[0]]}) "
                f"or class probabilities (float, shape {list(logits.shape)}), but the targets are "
                f"{targets.dtype} {list(targets.shape)}",
                "for numbers to predict use loss: mse; for class labels give int64 targets",
            )
            return False
        if num_classes is not None and classes != num_classes:
            report.add(
                "warn",
                "loss vs targets",
                f"the model outputs {classes} scores but the data has {num_classes} classes",
                f"make the last layer output {num_classes} scores",
            )
            return True  # the check has its line: a warning, not a pass beside it
        left_out = ""
        if integer_targets and targets.dim() == logits.dim() - 1 and labels.numel() < targets.numel():
            skipped = targets.numel() - labels.numel()
            left_out = f" ({skipped} of {targets.numel()} at the ignore_index {ignored}: left out)"
        report.add("pass", "loss vs targets", f"{classes} class scores, targets within 0..{classes - 1}{left_out}")
        return True
    if kind in SAME_SHAPE_LOSSES and logits.shape != targets.shape:
        if integer_targets and logits.dim() == 2 and targets.dim() == 1 and logits.shape[1] > 1:
            fix = "loss: cross_entropy (the targets are class labels)"
        else:
            fix = f"make the model output {list(targets.shape)} (e.g. .squeeze(1) for one number per sample)"
        report.add(
            "fail",
            "loss vs targets",
            f"{kind} compares output and targets element by element, but the "
            f"output is {list(logits.shape)} and the targets {list(targets.shape)} (torch would broadcast "
            "them and learn the wrong thing)",
            fix,
        )
        return False
    if kind in ("BCEWithLogitsLoss", "BCELoss") and integer_targets:
        report.add(
            "fail",
            "loss vs targets",
            f"{kind} needs float targets (0.0 or 1.0), got {targets.dtype}",
            "convert the targets with .float(), or use loss: cross_entropy for class labels",
        )
        return False
    report.add("pass", "loss vs targets", f"output {list(logits.shape)}, targets {list(targets.shape)}")
    return True


# Losses that apply their own softmax or sigmoid, so they want raw scores (any real number) from the model.
RAW_SCORE_LOSSES = ("CrossEntropyLoss", "BCEWithLogitsLoss", "MultiLabelSoftMarginLoss")
# Operations that squash scores into a range, by the name of their autograd node (SigmoidBackward0 -> Sigmoid).
SQUASHING = {
    "Sigmoid": "a sigmoid (scores in 0..1)",
    "Softmax": "a softmax (probabilities)",
    "Tanh": "a tanh (scores in -1..1)",
    "Relu": "a ReLU (no negative scores)",
    "Hardtanh": "a hardtanh (scores in -1..1)",
    "Hardsigmoid": "a hard sigmoid (scores in 0..1)",
}
SHAPE_ONLY = ("View", "Reshape", "Squeeze", "Unsqueeze", "Clone", "Alias", "Permute", "T", "Transpose", "Flatten")


def last_operation(output: torch.Tensor) -> str:
    """The operation that made the model's output ('Sigmoid'), looking through reshapes: autograd's own record."""
    node = output.grad_fn
    while node is not None:
        name = re.sub(r"Backward\d*$", "", type(node).__name__)
        if name not in SHAPE_ONLY or not node.next_functions:
            return name
        node = node.next_functions[0][0]
    return ""


def _squashed_scores(model: nn.Module, loss_fn: LossFn, logits: torch.Tensor, report: Report) -> bool:
    """A sigmoid, softmax, tanh or ReLU at the end of the model squashes the scores a raw-score loss needs: it
    learns slowly or not at all, and nothing fails. (A log_softmax before cross entropy is `_initial_loss_check`'s.)"""
    kind = loss_kind(loss_fn)
    operation = last_operation(logits)
    if kind == "CrossEntropyLoss" and operation == "Softmax":
        return False  # probabilities: `_initial_loss_check` says so, and why
    if kind in RAW_SCORE_LOSSES and operation in SQUASHING:
        report.add(
            "warn",
            "output range",
            f"the model's output comes out of {SQUASHING[operation]}{_where_made(model, operation)}, but "
            f"{_loss_label(loss_fn, kind)} "
            "applies its own softmax or sigmoid and wants raw scores, so the model learns slowly or not at all",
            "remove the final activation from forward (return the last Linear layer's output)",
        )
        return True
    return False


# A loss function the learner wrote is judged by the torch loss it calls (unless it makes its own probabilities).
FUNCTIONAL_LOSSES = {
    r"binary_cross_entropy_with_logits\(": "BCEWithLogitsLoss",
    r"(?<!\w)cross_entropy\(": "CrossEntropyLoss",
    r"(?<!\w)nll_loss\(": "NLLLoss",
}


def loss_kind(loss_fn: LossFn) -> str:
    """'CrossEntropyLoss' for nn.CrossEntropyLoss, and for a function of the learner's that calls F.cross_entropy."""
    kind = type(loss_fn).__name__
    if kind.endswith("Loss") or (found := source_of(loss_fn)) is None:
        return kind
    code = "".join(line.split("#", 1)[0] for line in found[2])
    if re.search(r"log_softmax\(|softmax\(|sigmoid\(", code):
        return ""  # it turns the scores into probabilities itself
    return next((name for pattern, name in FUNCTIONAL_LOSSES.items() if re.search(pattern, code)), "")


def _loss_label(loss_fn: LossFn, kind: str) -> str:
    """'CrossEntropyLoss', or for the learner's function 'binary_cross_entropy_with_logits (in loss.py:4)'."""
    if type(loss_fn).__name__ == kind:
        return kind
    called = next((p for p, name in FUNCTIONAL_LOSSES.items() if name == kind), "")
    functional = re.sub(r"[\\()?<!]|\\w", "", called) or kind
    return f"{functional}{_where(loss_fn).replace(' (loss defined at', ' (in your loss,')}"


def _where_made(model: nn.Module, operation: str) -> str:
    """' (layer 'layers.4', Softmax)' or ' (at net.py:11: return torch.sigmoid(x))': where the output was squashed."""
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    if leaves and type(leaves[-1][1]).__name__.lower() == operation.lower():
        return f" (layer '{leaves[-1][0]}', {type(leaves[-1][1]).__name__})"
    for forward in forwards(model):
        for line, _ in lines_matching(forward, {rf"{operation.lower()}\w*\(": ""}):
            return f" (at {line})"
    return ""


# Layer classes without weights: making one inside forward costs nothing and loses nothing.
WEIGHTLESS = ("activation", "pooling", "dropout", "flatten", "padding", "pixelshuffle", "upsampling", "distance")


def _layers_made_in_forward(model: nn.Module, report: Report) -> None:
    """`nn.Linear(...)` inside forward makes a new layer with fresh weights at every call: it never learns, and the
    optimizer never sees it. Found in the source of the learner's forward methods."""
    for forward in forwards(model):
        for line, why in lines_matching(forward, LAYERS_MADE):
            name = re.search(r"nn\.([A-Z]\w*)\(", line)
            cls = getattr(nn, name[1], None) if name else None
            weightless = isinstance(cls, type) and cls.__module__.rsplit(".", 1)[-1] in WEIGHTLESS
            if cls is None or (weightless and name[1] not in ("PReLU", "MultiheadAttention")):
                continue
            report.add(
                "warn",
                "layers made in forward",
                f"{line}: {why}, so it is never trained (the optimizer only knows the layers made in __init__)",
                f"make it once in __init__ (self.{name[1].lower()} = nn.{name[1]}(...)) and call it in forward",
            )


def _initial_loss_check(model: nn.Module, loss_fn: LossFn, logits: torch.Tensor, report: Report) -> None:
    """A fresh classifier is unsure: cross entropy starts near ln(C). Far off means something is wrong."""
    kind = loss_kind(loss_fn)
    if kind not in CLASS_INDEX_LOSSES or logits.dim() != 2:
        return
    with torch.no_grad():
        probabilities_already = bool((logits >= 0).all() and torch.allclose(logits.sum(1), torch.ones(1), atol=1e-3))
        log_probabilities = bool((logits <= 0).all() and torch.allclose(logits.exp().sum(1), torch.ones(1), atol=1e-3))
    expected = math.log(logits.shape[1])
    loss = report.initial_loss or 0.0
    if kind == "CrossEntropyLoss" and (probabilities_already or log_probabilities):
        what = "softmax" if probabilities_already else "log_softmax"
        report.add(
            "warn",
            "initial loss",
            f"the model's output already ends in {what}{_where_made(model, what.replace('_', ''))}; cross_entropy "
            "applies log-softmax itself, so learning is slow",
            f"remove the final {what} from the model",
        )
    elif kind == "NLLLoss" and not log_probabilities:  # the loss would fall to -inf while nothing is learned
        certain = type(loss_fn).__name__ == kind  # torch's own NLLLoss; a function of the learner's is read from source
        report.add(
            "fail" if certain else "warn",
            "initial loss",
            f"nll expects log-probabilities (all <= 0), but the model outputs raw scores{_where(loss_fn)}: nll_loss "
            "would go negative without end while nothing is learned",
            "end the model with F.log_softmax(x, dim=1), or use cross_entropy, which does both",
        )
    elif loss > 3 * expected:
        report.add(
            "warn",
            "initial loss",
            f"{loss:.2f}, far above ln({logits.shape[1]}) = {expected:.2f} that an "
            "unsure fresh model gives: its outputs start very large",
            "normalize the inputs (mean 0, std 1) or use a smaller weight init",
        )
    else:
        report.add(
            "pass",
            "initial loss",
            f"{loss:.3f} (a fresh {logits.shape[1]}-class model gives about ln({logits.shape[1]}) = {expected:.3f})",
        )


def _gradient_audit(model: nn.Module, report: Report) -> None:
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        report.add(
            "fail",
            "gradients",
            "the model has no trainable parameters",
            "check that layers are attributes of the model (self.layer = ...) and not frozen",
        )
        return
    unused = [n for n, p in trainable if p.grad is None]
    zero = [n for n, p in trainable if p.grad is not None and not p.grad.any()]
    if unused:
        report.add(
            "warn",
            "gradients",
            f"{_names(unused)} get no gradient: the layer is never used in forward, or the output is detached from it"
            f"{graph_cuts(*forwards(model))}",
            "call the layer in forward, or remove it",
        )
    if zero:
        report.add(
            "warn",
            "gradients",
            f"{_names(zero)} get a gradient of exactly zero (a dead ReLU, a multiplication by zero, or rounding)",
            "check the forward pass around these layers",
        )
    if not unused and not zero:
        report.add("pass", "gradients", f"all {len(trainable)} parameter tensors get a gradient")


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _overfit_one_batch(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    make_optimizer: Callable[..., torch.optim.Optimizer],
    report: Report,
    steps: int = 60,
) -> None:
    """A model that cannot learn 16 examples by heart cannot learn the data set: the quickest test there is."""
    inputs, targets = batch[0][:16], batch[1][:16]
    trial = copy.deepcopy(model).train()
    optimizer = make_optimizer(trial.parameters())
    losses = []
    for _ in range(steps):
        loss = loss_fn(trial(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if not math.isfinite(losses[-1]):
        report.add(
            "fail",
            "overfit one batch",
            f"the loss became {losses[-1]} while learning 16 examples",
            "lower optimizer.lr by 10x",
        )
    elif losses[-1] < 0.2 * losses[0]:
        report.add(
            "pass",
            "overfit one batch",
            f"16 examples learned in {steps} steps: loss {losses[0]:.3f} -> {losses[-1]:.4f}",
        )
    else:
        report.add(
            "warn",
            "overfit one batch",
            f"could not learn 16 examples in {steps} steps: loss {losses[0]:.3f} -> {losses[-1]:.3f}",
            "the model, the loss or the learning rate is off: try optimizer.lr 10x higher and lower, "
            "and check that the loss compares the right things",
        )


def _data_vs_step_time(
    model: nn.Module,
    loss_fn: LossFn,
    loader: Iterable[Any],
    make_optimizer: Callable[..., torch.optim.Optimizer],
    report: Report,
    batches: int = 10,
) -> None:
    """Is the input pipeline or the model the bottleneck?"""
    started = time.perf_counter()
    fetched = []
    for i, batch in enumerate(loader):
        fetched.append(batch)
        if i + 1 == batches:
            break
    data_seconds = (time.perf_counter() - started) / len(fetched)
    trial = copy.deepcopy(model).train()
    optimizer = make_optimizer(trial.parameters())
    started = time.perf_counter()
    for inputs, targets in fetched:
        loss = loss_fn(trial(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step_seconds = (time.perf_counter() - started) / len(fetched)
    detail = f"loading a batch takes {data_seconds * 1000:.1f} ms, a training step {step_seconds * 1000:.1f} ms"
    if data_seconds > 0.5 * step_seconds:
        report.add(
            "warn",
            "data loading",
            detail + ": the model waits for data",
            "use more DataLoader workers, or keep the data in memory",
        )
    else:
        report.add("pass", "data loading", detail)


def check_one_batch(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    num_classes: int | None = None,
) -> list[str]:
    """The fast preflight that runs before every training run: stops on what would fail, returns the warnings."""
    inputs, targets = batch
    report = preflight(model, loss_fn, (inputs.to(device), targets.to(device)), num_classes=num_classes)
    raise_on_failures(report)
    return [check.line() for check in report.warnings]


# The config section each check is about, so that a failure points at its line in the config.
CHECK_KEYS = {"loss": "loss", "loss vs targets": "loss", "initial loss": "loss", "inputs": "data"}


def raise_on_failures(report: Report) -> None:
    if report.failures:
        lines = "\n  ".join(check.line() for check in report.failures)
        keys = {CHECK_KEYS.get(check.name, "model") for check in report.failures}
        raise UserError(
            f"checking one batch before training found what would go wrong:\n  {lines}",
            fix="`python -m trainer check CONFIG` prints the whole checklist and the model's layers",
            key=keys.pop() if len(keys) == 1 else "",
        )


def check_model_structure(model: nn.Module) -> None:
    """Before an optimizer is built: layers hidden in Python lists, or no trainable parameters at all."""
    report = Report()
    _check_hidden_layers(model, report)
    if not any(p.requires_grad for p in model.parameters()) and not report.failures:
        report.add(
            "fail",
            "parameters",
            "the model has no trainable parameters",
            "make each layer an attribute of the model (self.layer = nn.Linear(...)) inside __init__",
        )
    raise_on_failures(report)
