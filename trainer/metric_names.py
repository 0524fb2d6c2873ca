"""The metrics a run can report, for which task, and which way each is better: plain names, so that a config is
checked without loading torch."""

from __future__ import annotations

from dataclasses import dataclass

from trainer.errors import did_you_mean, one_of

CLASSIFICATION = ("accuracy", "top5", "per_class_accuracy", "confusion_matrix")
REGRESSION = ("mae", "rmse", "r2")
METRICS = {"classification": CLASSIFICATION, "regression": REGRESSION}
HIGHER_IS_BETTER = ("accuracy", "top5", "r2")  # every other metric, and every loss, is better lower


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the metric `name` ('val/r2', 'train/loss', ...) is the better one."""
    return name.endswith(HIGHER_IS_BETTER)


@dataclass
class Monitor:
    """The metric best.pt and early stopping follow."""

    name: str = "val/loss"
    mode: str | None = None  # "min" when lower is better, "max" when higher is; by default from the name
    min_delta: float = 0.0  # a change smaller than this is no improvement

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = "max" if higher_is_better(self.name) else "min"

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


def default_metrics(task: str, num_classes: int | None) -> list[str]:
    """What a run reports when the config names no metrics. Top-5 only with more than 5 classes, where it can miss."""
    if _names_for(task) == REGRESSION:
        return list(REGRESSION)
    top5 = ["top5"] if num_classes is not None and num_classes > 5 else []
    return ["accuracy", *top5, "per_class_accuracy", "confusion_matrix"]


def check_metric_names(names: list[str], task: str) -> list[str]:
    """One sentence for each name that is not a metric of this task, with a suggestion; [] when all are fine."""
    valid = _names_for(task)
    other = REGRESSION if valid == CLASSIFICATION else CLASSIFICATION
    problems = []
    for name in names:
        if name in valid:
            continue
        if name in other:
            problems.append(f"'{name}' is not a {task} metric. Try one of: {one_of(valid)}")
        else:
            problems.append(f"unknown metric '{name}'{did_you_mean(name, valid)}. Try one of: {one_of(valid)}")
    return problems


def _names_for(task: str) -> tuple[str, ...]:
    if task not in METRICS:
        raise ValueError(f"task must be 'classification' or 'regression', got '{task}'{did_you_mean(task, METRICS)}")
    return METRICS[task]
