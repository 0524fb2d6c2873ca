"""Loss functions: torch.nn losses by name (cross_entropy, mse, HuberLoss, ...) or the user's own by path."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainer.components.resolve import check_arguments, find_by_name, is_path_reference, load_reference, unknown_name
from trainer.config import LossConfig
from trainer.errors import Problem, UserError

SHORT_NAMES = ["cross_entropy", "mse", "l1", "smooth_l1", "bce_with_logits", "nll", "huber"]


def loss_classes() -> dict[str, type[nn.Module]]:
    return {
        name: cls
        for name, cls in vars(nn).items()
        if isinstance(cls, type) and issubclass(cls, nn.Module) and name.endswith("Loss")
    }


def _find(cfg: LossConfig) -> Any:
    if is_path_reference(cfg.name):
        return load_reference(cfg.name, "loss.name")
    return find_by_name(cfg.name, loss_classes(), {}, suffix="Loss")


def check_loss(cfg: LossConfig) -> list[Problem]:
    try:
        target = _find(cfg)
    except UserError as err:
        return [Problem("loss.name", f"{err.message}. Try: {err.fix}")]
    if target is None:
        return [Problem("loss.name", unknown_name(cfg.name, "loss", [*SHORT_NAMES, *loss_classes()]))]
    if isinstance(target, type):
        problems = check_arguments(target, cfg.args, "loss")
        if not problems and issubclass(target, nn.Module):
            try:
                target(**cfg.args)
            except (ValueError, TypeError) as err:
                problems.append(Problem("loss", f"torch rejects these arguments: {err}"))
        return problems
    if callable(target):
        inputs = list(inspect.signature(target).parameters)[:2]  # (logits, targets) come from the loop
        return check_arguments(target, cfg.args, "loss", filled=inputs)
    return [Problem("loss.name", f"'{cfg.name}' is not a function or class")]


def build_loss(cfg: LossConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    target = _find(cfg)
    if isinstance(target, type):
        return target(**cfg.args)
    return functools.partial(target, **cfg.args) if cfg.args else target
