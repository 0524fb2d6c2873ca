"""Loss functions: torch.nn losses by name (cross_entropy, mse, HuberLoss, ...) or the user's own by path.

Importing this module does not import torch: names and arguments can be checked against the catalog of torch's
signatures (trainer/components/catalog.py) first; torch is imported to check values and to build.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainer.components.resolve import (
    LOSS,
    Signature,
    check_arguments,
    check_reference,
    definition_in_file,
    find_by_name,
    is_path_reference,
    load_reference,
    signature_in_file,
    signature_of,
    unknown_name,
)
from trainer.config import LossConfig
from trainer.errors import Problem, UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

SHORT_NAMES = ["cross_entropy", "mse", "l1", "smooth_l1", "bce_with_logits", "nll", "huber"]


def loss_classes() -> dict[str, type[nn.Module]]:
    from torch import nn

    return {
        name: cls
        for name, cls in vars(nn).items()
        if isinstance(cls, type) and issubclass(cls, nn.Module) and name.endswith("Loss")
    }


def loss_signatures() -> dict[str, Signature]:
    """What each loss's constructor accepts, asked of torch (the catalog keeps these)."""
    return {name: signature_of(cls) for name, cls in loss_classes().items()}


def _find(cfg: LossConfig) -> Any:
    if is_path_reference(cfg.name):
        return load_reference(cfg.name, "loss.name", LOSS)  # refused unless a loss module or a function
    return find_by_name(cfg.name, loss_classes(), {}, suffix="Loss")


def check_loss_names(cfg: LossConfig, known: Mapping[str, Signature]) -> list[Problem]:
    """The name and the argument names, against `known` losses (the catalog's, or torch's own); of the user's
    own file only what can be told without running it."""
    if is_path_reference(cfg.name):
        problems = check_reference(cfg.name, "loss.name", LOSS)
        node = None if problems else definition_in_file(cfg.name)
        if node is None:
            return problems  # the arguments are checked once the file is imported
        inputs = [] if isinstance(node, ast.ClassDef) else _parameters(node)[:2]  # (logits, targets), as below
        return check_arguments(signature_in_file(node), cfg.args, "loss", filled=inputs)
    signature = find_by_name(cfg.name, dict(known), {}, suffix="Loss")
    if signature is None:
        return [Problem("loss.name", unknown_name(cfg.name, "loss", [*SHORT_NAMES, *known]))]
    return check_arguments(signature, cfg.args, "loss")


def check_loss(cfg: LossConfig, known: Mapping[str, Signature] | None = None) -> list[Problem]:
    """The names against `known` (the catalog's losses; torch's own when left out), then what needs torch: the
    values, and the user's own file, imported."""
    from torch import nn

    if not is_path_reference(cfg.name):
        problems = check_loss_names(cfg, loss_signatures() if known is None else known)
        if problems:
            return problems
    try:
        target = _find(cfg)
    except UserError as err:
        return [Problem("loss.name", f"{err.message}. Try: {err.fix}")]
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


def _parameters(function: ast.FunctionDef) -> list[str]:
    """A function's parameter names in the order inspect.signature lists them."""
    arguments = function.args
    starred = [arguments.vararg] if arguments.vararg else []
    keywords = [arguments.kwarg] if arguments.kwarg else []
    every = [*arguments.posonlyargs, *arguments.args, *starred, *arguments.kwonlyargs, *keywords]
    return [argument.arg for argument in every]


def build_loss(cfg: LossConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    target = _find(cfg)
    if isinstance(target, type):
        return target(**cfg.args)
    return functools.partial(target, **cfg.args) if cfg.args else target
