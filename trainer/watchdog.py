"""Watch a run as it trains: stop on a NaN/inf loss with a diagnosis, and give advice on curves that look wrong."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Watchdog:
    """A callback: reads the loss as it is logged and the metrics of each epoch; gives each piece of advice once."""

    def __init__(self, lr: float):
        self.lr = lr
        self.windows: list[float] = []  # train/loss means between step logs, this epoch
        self.epochs: list[dict[str, float]] = []
        self.given: set[str] = set()

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        if "train/loss" in values:
            self.windows.append(values["train/loss"])

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        for advice in self.epoch_advice(metrics):
            trainer.warn(advice)

    def epoch_advice(self, metrics: dict[str, float]) -> list[str]:
        self.epochs.append(metrics)
        advice = []
        windows, self.windows = self.windows, []
        if len(windows) >= 4:
            start, end = sum(windows[:2]) / 2, sum(windows[-2:]) / 2
            # Only the first epoch: later, a loss that has settled is what training is for.
            if len(self.epochs) == 1 and abs(end - start) <= 0.01 * abs(start):
                advice.append(
                    self._once(
                        "flat",
                        f"train/loss has not moved this epoch ({start:.4f} -> {end:.4f}). "
                        f"Try: optimizer.lr={self.lr * 10:g} (10x higher), and check that the loss is computed "
                        "from the model's output",
                    )
                )
            elif end > 1.5 * start:
                advice.append(
                    self._once(
                        "rising",
                        f"train/loss rose during the epoch ({start:.4f} -> {end:.4f}): "
                        f"the learning rate is likely too high. Try: optimizer.lr={self.lr / 10:g}, or "
                        "`python -m trainer lr-find CONFIG`",
                    )
                )
        if len(self.epochs) >= 3 and all("val/loss" in e for e in self.epochs[-3:]):
            val = [e["val/loss"] for e in self.epochs[-3:]]
            train = [e["train/loss"] for e in self.epochs[-3:]]
            if val[0] < val[1] < val[2] and train[0] > train[1] > train[2]:
                advice.append(
                    self._once(
                        "overfit",
                        f"val/loss has risen for 2 epochs ({val[0]:.4f} -> {val[2]:.4f}) "
                        "while train/loss falls: the model is memorizing the training set (overfitting). "
                        "Try: fewer epochs, more dropout, optimizer.weight_decay, or more data",
                    )
                )
        return [a for a in advice if a]

    def _once(self, kind: str, text: str) -> str:
        if kind in self.given:
            return ""
        self.given.add(kind)
        return text


def diagnose_nonfinite(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> str:
    """Where the first NaN/inf of a step comes from: the inputs, the weights, a layer, or the loss itself.
    `autocast`: the step's own (bf16, fp16), so that the batch overflows where training made it overflow."""
    if inputs.is_floating_point() and not torch.isfinite(inputs).all():
        return f"the inputs of this batch hold {int((~torch.isfinite(inputs)).sum())} NaN/inf values"
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        return (
            f"the weights already hold NaN/inf ({', '.join(broken[:3])}): the previous update was too large "
            "or its gradients were infinite"
        )
    first: list[str] = []

    def hook(name: str) -> Any:
        def check(module: nn.Module, args: Any, output: Any) -> None:
            if not first and isinstance(output, torch.Tensor) and not torch.isfinite(output).all():
                first.append(f"the first NaN/inf appears in the output of {name} ({type(module).__name__})")

        return check

    # Inner layers finish first, so the first non-finite output seen is the earliest one; the model itself
    # comes last and catches NaNs made by its own code between layers.
    handles = [
        module.register_forward_hook(hook(f"layer '{name}'" if name else "the model's own forward code"))
        for name, module in model.named_modules()
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # anomaly mode warns that it is slow: we know, it runs once
            with torch.autograd.detect_anomaly(check_nan=True):
                with autocast():
                    loss = loss_fn(model(inputs), targets)
                if first:
                    return first[0]
                if not torch.isfinite(loss):
                    return "the model's output is finite, so the loss function itself produced it (a log of 0?)"
                loss.backward()
    except RuntimeError as err:  # anomaly mode names the backward function that produced the NaN
        return f"autograd's anomaly detection says: {str(err).splitlines()[0]}"
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
    return "it did not happen again when the step was repeated (a random effect, such as dropout)"
