"""Optimizers and learning-rate schedulers from torch, chosen by name.

Importing this module does not import torch: names and arguments can be checked against the catalog of torch's
signatures (trainer/components/catalog.py) first; torch is imported to check values and to build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from trainer.components.resolve import Signature, check_arguments, find_by_name, signature_of, unknown_name
from trainer.config import OptimizerConfig, SchedulerConfig
from trainer.errors import Problem

if TYPE_CHECKING:
    import torch

OPTIMIZER_SHORT_NAMES = ["sgd", "adam", "adamw", "rmsprop"]
SCHEDULER_SHORT_NAMES = ["none", "step", "cosine", "one_cycle", "plateau"]
SCHEDULER_ALIASES = {"cosine": "CosineAnnealingLR", "plateau": "ReduceLROnPlateau", "step": "StepLR"}
# What the short name `step` means when the config says no more (the pytorch/examples MNIST choice).
STEP_DEFAULTS = {"step_size": 1, "gamma": 0.7}
# Schedulers whose length is counted in batches, so they step after every batch.
PER_BATCH = ("OneCycleLR", "CyclicLR")


def optimizer_classes() -> dict[str, type[torch.optim.Optimizer]]:
    import torch

    return {
        name: cls
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
    }


def scheduler_classes() -> dict[str, type]:
    from torch.optim import lr_scheduler

    base = lr_scheduler.LRScheduler
    return {
        name: cls
        for name, cls in vars(lr_scheduler).items()
        if isinstance(cls, type)
        and (issubclass(cls, base) or cls is lr_scheduler.ReduceLROnPlateau)
        and cls is not base
        and not name.startswith("_")
        and name not in ("LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "LRScheduler")
    }


def optimizer_signatures() -> dict[str, Signature]:
    """What each optimizer's constructor accepts, asked of torch (the catalog keeps these)."""
    return {name: signature_of(cls) for name, cls in optimizer_classes().items()}


def scheduler_signatures() -> dict[str, Signature]:
    """What each scheduler's constructor accepts, asked of torch (the catalog keeps these)."""
    return {name: signature_of(cls) for name, cls in scheduler_classes().items()}


def _optimizer_class(cfg: OptimizerConfig) -> type[torch.optim.Optimizer] | None:
    return find_by_name(cfg.name, optimizer_classes(), {})


def check_optimizer_names(cfg: OptimizerConfig, known: Mapping[str, Signature]) -> list[Problem]:
    """The name and the argument names, against `known` optimizers (the catalog's, or torch's own)."""
    signature = find_by_name(cfg.name, dict(known), {})
    if signature is None:
        return [Problem("optimizer.name", unknown_name(cfg.name, "optimizer", [*OPTIMIZER_SHORT_NAMES, *known]))]
    return check_arguments(signature, {"lr": cfg.lr, **cfg.args}, "optimizer", filled=["params"])


def check_optimizer(cfg: OptimizerConfig, known: Mapping[str, Signature] | None = None) -> list[Problem]:
    """The names against `known` (the catalog's optimizers; torch's own when left out), then the values, which
    only torch can judge."""
    import torch

    problems = check_optimizer_names(cfg, optimizer_signatures() if known is None else known)
    if not problems:  # torch checks values (betas in [0, 1), ...) when it builds; try it on a dummy parameter
        cls = _optimizer_class(cfg)
        assert cls is not None
        problems = _try_build("optimizer", lambda: cls([torch.zeros(1, requires_grad=True)], lr=cfg.lr, **cfg.args))
    return problems


def build_optimizer(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    """The config's optimizer over `params` (parameters, or groups of them as dicts, each maybe with its own lr);
    on CUDA the fused kernel of Adam, AdamW and SGD (trainer/speed.py)."""
    from trainer.speed import optimizer_arguments

    cls = _optimizer_class(cfg)
    assert cls is not None, "check_optimizer runs first"
    params = list(params)
    first = [p for group in params for p in group["params"]] if params and isinstance(params[0], dict) else params
    device = first[0].device if first else torch.device("cpu")
    return cls(params, lr=cfg.lr, **optimizer_arguments(cls, cfg.args, device))


def _filled_args(cfg: SchedulerConfig, class_name: str, lr: float, total_steps: int) -> dict[str, Any]:
    """The config's arguments, with the lengths leaptrain knows filled in when the config leaves them out."""
    args = dict(cfg.args)
    if cfg.name == "step":
        args = {**STEP_DEFAULTS, **args}
    if class_name == "OneCycleLR":
        args.setdefault("max_lr", lr)
        if "epochs" not in args and "steps_per_epoch" not in args:
            args.setdefault("total_steps", total_steps)
    if class_name == "CosineAnnealingLR":
        args.setdefault("T_max", total_steps)
    return args


def _scheduler_args(cfg: SchedulerConfig, lr: float, total_steps: int) -> tuple[type | None, dict[str, Any]]:
    """The class and its arguments, with the lengths leaptrain knows filled in when the config leaves them out."""
    if cfg.name.lower() == "none":
        return None, {}
    cls = find_by_name(cfg.name, scheduler_classes(), SCHEDULER_ALIASES, suffix="LR")
    if cls is None:
        return None, {}
    return cls, _filled_args(cfg, cls.__name__, lr, total_steps)


def steps_every_batch(cfg: SchedulerConfig) -> bool:
    """One-cycle and cosine (with the length leaptrain fills in) count batches; the rest count epochs."""
    cls, _ = _scheduler_args(cfg, 1.0, 1)
    name = cls.__name__ if cls else ""
    return name in PER_BATCH or (name == "CosineAnnealingLR" and "T_max" not in cfg.args)


def check_scheduler_names(cfg: SchedulerConfig, known: Mapping[str, Signature]) -> list[Problem]:
    """The name and the argument names, against `known` schedulers (the catalog's, or torch's own)."""
    if cfg.name.lower() == "none":
        return [Problem("scheduler", f"'none' takes no arguments, got {list(cfg.args)}")] if cfg.args else []
    signature = find_by_name(cfg.name, dict(known), SCHEDULER_ALIASES, suffix="LR")
    if signature is None:
        return [Problem("scheduler.name", unknown_name(cfg.name, "scheduler", [*SCHEDULER_SHORT_NAMES, *known]))]
    args = _filled_args(cfg, signature.name, 1e-3, 100)
    return check_arguments(signature, args, "scheduler", filled=["optimizer"])


def check_scheduler(cfg: SchedulerConfig, known: Mapping[str, Signature] | None = None) -> list[Problem]:
    """The names against `known` (the catalog's schedulers; torch's own when left out), then the values, which
    only torch can judge."""
    import torch

    problems = check_scheduler_names(cfg, scheduler_signatures() if known is None else known)
    cls, args = _scheduler_args(cfg, 1e-3, 100)
    if not problems and cls is not None:
        dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
        problems = _try_build("scheduler", lambda: cls(dummy, **args))
    return problems


def build_scheduler(
    cfg: SchedulerConfig,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps_per_epoch: int,
    resumed: Mapping[str, Any] | None = None,
) -> Any | None:
    """The config's scheduler over `epochs`. Carrying on a run (`resumed`: the scheduler state its checkpoint
    holds) whose planned schedule was shorter, the steps it planned run as planned and the added ones get a new
    schedule of the same kind (see Restarts)."""
    lr = optimizer.param_groups[0]["lr"]
    if cfg.name in ("one_cycle", "OneCycleLR") and len(optimizer.param_groups) > 1 and "max_lr" not in cfg.args:
        cfg = cfg.model_copy(update={"max_lr": [group["lr"] for group in optimizer.param_groups]})  # each its own
    total_steps = epochs * steps_per_epoch if steps_every_batch(cfg) else epochs
    cls, args = _scheduler_args(cfg, lr, total_steps)
    if cls is None:
        return None
    lengths = planned_lengths(resumed) if resumed is not None and planned_schedule(cfg) else [total_steps]
    if sum(lengths) > total_steps:
        raise ValueError(f"the schedule was planned for {sum(lengths)} steps; it cannot be cut to {total_steps}")
    lengths += [total_steps - sum(lengths)] if sum(lengths) < total_steps else []
    if len(lengths) == 1:
        return cls(optimizer, **args)  # the run's own schedule, as planned
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    def make(steps: int) -> Any:
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = group["initial_lr"] = base  # a restart begins from the config's lr, not where the last ended
        return cls(optimizer, **_scheduler_args(cfg, lr, steps)[1])

    return Restarts(make, lengths)


def planned_schedule(cfg: SchedulerConfig) -> str:
    """The torch class name of a one-cycle or cosine schedule whose length leaptrain fills in from train.epochs
    (the config gives none); '' for every other schedule."""
    cls, _ = _scheduler_args(cfg, 1.0, 1)
    name = cls.__name__ if cls else ""
    if name == "OneCycleLR" and not {"total_steps", "epochs", "steps_per_epoch"} & set(cfg.args):
        return name
    return name if name == "CosineAnnealingLR" and "T_max" not in cfg.args else ""


def planned_lengths(state: Mapping[str, Any]) -> list[int]:
    """The steps of each segment a saved schedule was planned for: a Restarts' own list, or one torch schedule's."""
    if "lengths" in state:
        return list(state["lengths"])
    return [int(state["total_steps"] if "total_steps" in state else state["T_max"])]


class Restarts:
    """A schedule planned for a run's length (one-cycle, cosine), lengthened when the run is resumed with more
    epochs: each segment is a fresh schedule of the same kind over its own steps, starting again from the config's
    lr, a warm restart (as SGDR does, or fastai's fit_one_cycle called a second time). The steps planned before
    keep their learning rates, so the epochs already trained, or planned, are the same as without the restart."""

    def __init__(self, make: Any, lengths: list[int]):
        self.make, self.lengths, self.index = make, lengths, 0
        self.scheduler = make(lengths[0])

    def step(self) -> None:
        self.scheduler.step()
        self.restart_when_due()

    def restart_when_due(self) -> None:
        if self.scheduler.last_epoch >= self.lengths[self.index] and self.index + 1 < len(self.lengths):
            self.index += 1
            self.scheduler = self.make(self.lengths[self.index])

    def get_last_lr(self) -> list[float]:
        return self.scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return {"lengths": self.lengths, "index": self.index, "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """A Restarts' state, or the plain torch schedule of a run that had one segment so far."""
        self.index = state.get("index", 0) if "lengths" in state else 0
        self.scheduler.load_state_dict(state["scheduler"] if "lengths" in state else state)
        self.restart_when_due()  # a run that ended at its planned length starts its new segment at once


def _try_build(section: str, build: Any) -> list[Problem]:
    try:
        build()
    except (ValueError, TypeError, KeyError) as err:
        return [Problem(section, f"torch rejects these arguments: {err}")]
    return []
