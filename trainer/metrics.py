"""Evaluation metrics (accuracy, top-5, per-class accuracy, confusion matrix; MAE, RMSE, R²) summed on the device
batch by batch, so that evaluating never waits for the device until `compute` reads the totals once at the end."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from trainer import distributed
from trainer.metric_names import check_metric_names, default_metrics


class Metrics:
    """Running totals of one split's metrics: call `update` for each batch and `compute` once at the end.

    Classification: `logits` (N, C) and class-index `targets` (N,). Regression: outputs and targets of the same
    number of values, in any shape; all are flattened together, so R² compares with the mean of every target value.
    With `num_classes` None the number of classes is taken from the logits of the first batch.
    """

    def __init__(self, task: str, num_classes: int | None, names: list[str] | None = None):
        problems = check_metric_names(names, task) if names is not None else []
        if problems:
            raise ValueError("; ".join(problems))
        self.task, self.num_classes = task, num_classes
        self.default_names = names is None  # then the list is chosen again once the number of classes is known
        self.names = list(names) if names is not None else default_metrics(task, num_classes)
        self.count = 0  # a Python int: the batch sizes are known on the host without asking the device
        self.sums: dict[str, Tensor] = {}
        self.confusion: Tensor | None = None  # (C * C,) counts, index true * C + predicted
        self.class_hits: Tensor | None = None  # (C * 2,) counts, index true * 2 + (1 if right else 0)
        self.shift: Tensor | None = None

    @torch.no_grad()
    def update(self, logits: Tensor, targets: Tensor) -> None:
        """Add one batch to the totals, on the device the tensors are on."""
        if self.task == "classification":
            self._update_classification(logits, targets)
        else:
            self._update_regression(logits, targets)

    def _update_classification(self, logits: Tensor, targets: Tensor) -> None:
        if logits.dim() < 2:
            raise ValueError(f"classification metrics need logits of shape (N, C), got {list(logits.shape)}")
        if targets.is_floating_point() and targets.shape == logits.shape:
            targets = targets.argmax(dim=1)  # class probabilities (label smoothing, mixup): their likeliest class
        classes = logits.shape[1]
        if self.num_classes is None:
            self.num_classes = classes
            if self.default_names:
                self.names = default_metrics(self.task, classes)
        if classes != self.num_classes:
            raise ValueError(f"the model outputs {classes} scores, but the metrics count {self.num_classes} classes")
        # Segmentation-style logits (N, C, H, W) count every position as one sample.
        logits, targets = logits.movedim(1, -1).reshape(-1, classes), targets.reshape(-1).long()
        if targets.numel() == 0:
            return
        predictions = logits.argmax(dim=1)
        # A target outside 0..C-1 is the loss's ignore_index (-100 by default: padding, unlabelled samples): the
        # loss leaves it out, and so do the metrics (counted on the device: no wait for a mask's size).
        labelled = (targets >= 0) & (targets < classes)
        right = (predictions == targets) & labelled
        self._add("correct", right.sum())
        self._add("ignored", (~labelled).sum())
        if "top5" in self.names:
            top = logits.topk(min(5, classes), dim=1).indices
            self._add("top5", (top == targets[:, None]).any(dim=1).sum())
        if "confusion_matrix" in self.names:
            index = torch.where(labelled, targets * classes + predictions, 0)
            self.confusion = _count(index, classes * classes, self.confusion, labelled)
        if "per_class_accuracy" in self.names:
            index = torch.where(labelled, targets * 2 + right.long(), 0)
            self.class_hits = _count(index, classes * 2, self.class_hits, labelled)
        self.count += targets.numel()

    def _update_regression(self, outputs: Tensor, targets: Tensor) -> None:
        if outputs.numel() != targets.numel():
            raise ValueError(
                f"regression metrics compare outputs and targets value by value, but the outputs are "
                f"{list(outputs.shape)} and the targets {list(targets.shape)}"
            )
        if targets.numel() == 0:
            return
        # float64: sums over a whole split in float32 would lose digits, and bf16 outputs more so.
        outputs, targets = outputs.reshape(-1).double(), targets.reshape(-1).double()
        if self.shift is None:
            # R² needs the sum of (y - mean)²; summing y and y² and subtracting cancels digits when the targets lie
            # far from 0 (around 1e6, say). Sums of y - shift, for a shift near the data, keep them. An actual target
            # as the shift makes SS_tot exactly 0 when all targets are equal.
            self.shift = targets[0].clone()
        errors = outputs - targets
        centred = targets - self.shift
        self._add("abs_error", errors.abs().sum())
        self._add("squared_error", errors.square().sum())
        self._add("y", centred.sum())
        self._add("y2", centred.square().sum())
        self.count += targets.numel()

    def _add(self, name: str, value: Tensor) -> None:
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def sum_across_processes(self) -> None:
        """Under torchrun, add up every process's totals, so that compute() gives the metrics of the whole split."""
        if distributed.world_size() == 1:
            return
        if self.shift is not None:  # each process centred its targets on its own first one: centre on rank 0's
            first = distributed.sum_across([self.shift * (distributed.rank() == 0)])[0]
            gap, n = self.shift - first, self.count
            self.sums["y2"] = self.sums["y2"] + 2 * gap * self.sums["y"] + n * gap**2
            self.sums["y"] = self.sums["y"] + n * gap
            self.shift = first
        names = list(self.sums)
        counts = [t for t in (self.confusion, self.class_hits) if t is not None]
        summed, self.count = distributed.sum_with_count([*self.sums.values(), *counts], self.count)
        self.sums = dict(zip(names, summed[: len(names)], strict=True))
        rest = summed[len(names) :]
        if self.confusion is not None:
            self.confusion, rest = rest[0], rest[1:]
        if self.class_hits is not None:
            self.class_hits = rest[0]

    def compute(self, split: str) -> dict[str, float]:
        """The scalar metrics as {"<split>/accuracy": ..., ...}; nan when no samples were seen."""
        n = self.count
        sums = {name: value.item() for name, value in self.sums.items()}  # the one wait for the device
        if n == 0:
            values = dict.fromkeys(("accuracy", "top5", "mae", "rmse", "r2"), math.nan)
        elif self.task == "classification":
            n -= int(sums.get("ignored", 0))  # samples of the loss's ignore_index count for nothing
            values = dict.fromkeys(("accuracy", "top5"), math.nan)
            if n:
                values = {"accuracy": sums["correct"] / n, "top5": sums.get("top5", math.nan) / n}
        else:
            ss_res = sums["squared_error"]
            ss_tot = sums["y2"] - sums["y"] ** 2 / n  # the sum of (y - mean)², from the sums of y and y²
            r2 = _r_squared(ss_res, ss_tot)
            values = {"mae": sums["abs_error"] / n, "rmse": math.sqrt(ss_res / n), "r2": r2}
        return {f"{split}/{name}": values[name] for name in self.names if name in values}

    def confusion_matrix(self) -> torch.Tensor | None:
        """C x C int64 counts on the CPU, rows the true class and columns the predicted one; None if not kept."""
        if "confusion_matrix" not in self.names or self.num_classes is None:
            return None
        if self.confusion is None:  # no samples yet
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return self.confusion.view(self.num_classes, self.num_classes).cpu()

    def per_class_accuracy(self) -> list[float] | None:
        """Each class's share of samples predicted right (its recall); nan for a class with no samples."""
        if "per_class_accuracy" not in self.names or self.num_classes is None:
            return None
        if self.class_hits is None:
            return [math.nan] * self.num_classes
        wrong_right = self.class_hits.view(self.num_classes, 2).tolist()
        return [right / (wrong + right) if wrong + right else math.nan for wrong, right in wrong_right]


def _r_squared(ss_res: float, ss_tot: float) -> float:
    """1 - SS_res / SS_tot. With all targets equal SS_tot is 0 and R² undefined: like scikit-learn, give 1 for a
    perfect fit, else 0, rather than nan or inf, so that best.pt and early stopping can still compare runs."""
    if ss_tot <= 0:  # <= : rounding can leave a tiny negative
        return 1.0 if ss_res == 0 else 0.0
    return 1 - ss_res / ss_tot


def _count(index: Tensor, size: int, counts: Tensor | None, keep: Tensor | None = None) -> Tensor:
    """`counts` plus how often each of 0..size-1 occurs in `index`: torch.bincount, without its wait.

    torch.bincount reads the smallest and largest index back to the host to size its output, which stalls the
    loop on a GPU every batch; adding ones into a tensor of known size counts on the device alone.
    """
    if counts is None:
        counts = torch.zeros(size, dtype=torch.int64, device=index.device)
    return counts.scatter_add_(0, index, torch.ones_like(index) if keep is None else keep.long())


def format_table(
    metrics: dict[str, float], per_class: list[float] | None = None, class_names: list[str] | None = None
) -> str:
    """The final metrics as an aligned text table for the console, then one row per class when given."""
    lines = _aligned([("metric", "value"), *((name, format_value(name, value)) for name, value in metrics.items())])
    if per_class is not None:
        if class_names is not None and len(class_names) != len(per_class):
            raise ValueError(f"{len(class_names)} class names for {len(per_class)} classes")
        names = class_names if class_names is not None else [str(i) for i in range(len(per_class))]
        rows = [
            (name, "no samples" if math.isnan(value) else f"{value:.2%}")
            for name, value in zip(names, per_class, strict=True)
        ]
        lines += ["", *_aligned([("class", "accuracy"), *rows])]
    return "\n".join(lines)


def format_value(name: str, value: float) -> str:
    """A metric's value as every table and epoch line shows it: shares as percentages, the lr in e-notation."""
    if name.endswith(("accuracy", "top5")):
        return f"{value:.2%}"
    if name == "lr":
        return f"{value:.2e}"
    return f"{value:.4f}"


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    """Names left-aligned, values right-aligned, a rule under the header row."""
    left = max(len(name) for name, _ in rows)
    right = max(len(value) for _, value in rows)
    lines = [f"{name:<{left}}  {value:>{right}}" for name, value in rows]
    lines.insert(1, f"{'-' * left}  {'-' * right}")
    return lines
