"""Every number of a config checked against its job, by the name it is given: a learning rate, a probability, a
momentum, a count of epochs or steps ... A value that cannot work is an error; one that will not work well is a
warning printed before training. The same table serves leaptrain's own keys and the arguments of torch's classes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError, core_schema

from trainer.errors import ConfigError, Problem, fold

if TYPE_CHECKING:
    from pydantic import BaseModel

    from trainer.config import Config


@dataclass(frozen=True)
class Finding:
    """A number that makes no sense for its job: the key as typed, why, and a value to try."""

    key: str
    value: Any
    message: str  # reads after the value: "9 is not a momentum: ..."
    fix: Any  # the value to try instead
    error: bool  # True: it cannot work; False: it will not work well

    def text(self, with_key: bool = True) -> str:
        try_ = f"{self.key}={_shown(self.fix)}" if with_key else _shown(self.fix)
        return f"{_shown(self.value)} {self.message}. Try: {try_}"

    def problem(self) -> Problem:
        return Problem(self.key, self.text())

    def warning(self) -> str:
        return f"{self.key}: {self.text()}"


@dataclass(frozen=True)
class Context:
    """What a number's job depends on: the optimizer, the schedule, the run's length and, once built, the data."""

    optimizer: str = ""  # the optimizer's name as typed (AdamW, sgd, ...)
    lr: float = 1e-3
    scheduler: str = ""  # folded, without a trailing 'lr': steplr -> step, one_cycle -> onecycle
    scheduler_args: dict[str, Any] | None = None
    epochs: int | None = None
    samples: int | None = None  # training samples
    batches: int | None = None  # batches per epoch
    accumulate: int = 1
    decoupled: bool = False  # the optimizer's weight_decay shrinks the weights directly (AdamW), not the gradient

    @property
    def steps(self) -> int | None:
        """Optimizer steps of the whole run, once the data is known."""
        if self.batches is None or self.epochs is None:
            return None
        return math.ceil(self.batches / self.accumulate) * self.epochs


Check = Callable[[str, Any, Context | None], "Finding | None"]


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _name(key: str) -> str:
    return key.rpartition(".")[2]


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


# The lr each optimizer usually trains with: far above or below it, a run diverges or stands still.
TYPICAL_LR = {
    "adam": 1e-3,
    "adamw": 1e-3,
    "nadam": 2e-3,
    "radam": 1e-3,
    "adamax": 2e-3,
    "sparseadam": 1e-3,
    "rmsprop": 1e-3,
    "adagrad": 1e-2,
    "adadelta": 1.0,
    "lbfgs": 1.0,
    "rprop": 1e-2,
    "sgd": 1e-2,
    "asgd": 1e-2,
}
# Optimizers whose weight_decay shrinks the weights directly (decoupled), rather than adding to the gradient.
DECOUPLED = ("adamw",)


def _learning_rate(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not _number(value):
        return None
    optimizer = fold(ctx.optimizer) if ctx else ""
    typical = TYPICAL_LR.get(optimizer, 1e-3)
    if not math.isfinite(value) or value <= 0:
        why = "0 never moves the weights" if value == 0 else "it must be a positive number"
        return Finding(key, value, f"is not a learning rate: {why}", typical, True)
    if ctx is None or optimizer not in TYPICAL_LR:  # a learner's own optimizer: its usual lr is not known here
        return None
    name = ctx.optimizer or "the optimizer"
    if value > 100 * typical:
        return Finding(
            key,
            value,
            f"is a very high learning rate for {name} (about {typical:g} is usual): each step throws the weights "
            "far past the minimum, and the loss turns nan or stops falling",
            typical,
            False,
        )
    if value < typical / 10_000:
        return Finding(
            key,
            value,
            f"is a very low learning rate for {name} (about {typical:g} is usual): the weights barely move, and "
            "the loss looks stuck",
            typical,
            False,
        )
    return None


def _lr_floor(key: str, value: Any, ctx: Context | None) -> Finding | None:
    """eta_min, min_lr: the lowest lr a schedule goes down to."""
    if not _number(value):
        return None
    if value < 0:
        return Finding(key, value, "is a learning rate the schedule falls to, and cannot be negative", 0, True)
    if ctx and value >= ctx.lr:
        return Finding(
            key,
            value,
            f"is the lowest lr of the schedule, but the optimizer starts at lr {ctx.lr:g}: the lr never falls",
            0,
            False,
        )
    return None


# What each probability or fraction is the share of, in the words a learner would use.
SHARE_OF = {
    "dropout": "the share of units zeroed at each step",
    "p": "the share of units zeroed at each step",
    "label_smoothing": "the share of each target spread over the other classes",
    "val_split": "the share of the training set held out for validation",
    "test_split": "the share of the rows held out for the test split",
    "pct_start": "the share of the run spent raising the lr",
}
USUAL_SHARE = {"label_smoothing": 0.1, "val_split": 0.1, "test_split": 0.2, "pct_start": 0.3}


def _probability(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not _number(value):
        return None
    name = _name(key)
    share = SHARE_OF.get(name, "a probability")
    usual = USUAL_SHARE.get(name, 0.1)
    allow_one = name in ("label_smoothing", "pct_start")
    upper = "1" if allow_one else "below 1"
    if 1 < value <= 100:
        message = f"reads as a percent, but {name} is {share}, from 0 to {upper}"
        return Finding(key, value, message, value / 100, True)
    if value < 0 or value > 1 or (value == 1 and not allow_one):
        why = " (1 would zero every unit)" if value == 1 else ""
        return Finding(key, value, f"is outside 0 to {upper}{why}: {name} is {share}", usual, True)
    if ctx is None:
        return None
    if name in ("val_split", "test_split") and value > 0.5:
        return Finding(
            key, value, f"holds out {value:.0%} of the data: only {1 - value:.0%} is left to train", usual, False
        )
    if (name.endswith("dropout") or name in ("p", "drop_rate")) and value >= 0.8:
        return Finding(
            key, value, f"zeroes {value:.0%} of the units at every step: the network can hardly learn", 0.2, False
        )
    if name == "label_smoothing" and value > 0.4:
        return Finding(
            key, value, f"moves {value:.0%} of every target onto the other classes (0.05-0.2 is usual)", 0.1, False
        )
    return None


def _momentum(key: str, value: Any, ctx: Context | None, usual: float = 0.9) -> Finding | None:
    """momentum, betas, rho, alpha: the share of the running average kept at each step, in [0, 1)."""
    if not _number(value):
        return None
    if 0 <= value < 1:
        return None
    if value > 1:
        fix = value
        while fix >= 1:
            fix /= 10  # 9 -> 0.9, 99 -> 0.99, 9.99 -> 0.999: the digits were meant after the point
        fix = float(f"{fix:.6g}")
        return Finding(
            key,
            value,
            f"is not {_a(_name(key))}: it is the share of the running average kept at each step, from 0 to below 1, "
            "and above 1 the average runs away and the steps turn huge or nan",
            fix if fix >= 0.5 else usual,  # 1.5 -> 0.15 was not meant: offer the usual value
            True,
        )
    why = "it cannot be negative" if value < 0 else "1 keeps every past step forever, and the steps grow without end"
    return Finding(key, value, f"is not {_a(_name(key))} from 0 to below 1: {why}", usual, True)


def _betas(key: str, value: Any, ctx: Context | None) -> Finding | None:
    name = ctx.optimizer if ctx and ctx.optimizer else "Adam"
    if _number(value):
        first = value if 0 <= value < 1 else 0.9
        return Finding(
            key,
            value,
            f"is one number, but {name}'s betas are a pair: the decay of its average gradient and of its average "
            "squared gradient",
            [first, 0.999],
            True,
        )
    if isinstance(value, str):
        return Finding(
            key, value, f"is text, but {name}'s betas are a pair of numbers, written as a list", [0.9, 0.999], True
        )
    if isinstance(value, list | tuple):
        if len(value) != 2:
            return Finding(key, value, f"has {len(value)} numbers, but {name}'s betas are a pair", [0.9, 0.999], True)
        for index, beta in enumerate(value):
            found = _momentum(f"{key}.{index}", beta, ctx, usual=(0.9, 0.999)[index])
            if found:
                fixed = list(value)
                fixed[index] = found.fix
                why = "a negative one" if beta < 0 else f"{_shown(beta)}"
                return Finding(
                    key,
                    value,
                    f"holds {why} as beta{index + 1}: each beta is the share of a running average kept at each step, "
                    "from 0 to below 1",
                    fixed,
                    True,
                )
    return None


def _epsilon(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not _number(value):
        return None
    if value < 0:
        return Finding(
            key, value, "is not an epsilon: it is a tiny positive number that keeps a division safe", 1e-8, True
        )
    if ctx and value >= 1:
        return Finding(
            key,
            value,
            "is a large epsilon: it is added to the root of the average squared gradient before dividing, so at this "
            "size it takes over and the steps shrink to almost nothing (1e-8 is usual)",
            1e-8,
            False,
        )
    return None


def _weight_decay(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not _number(value):
        return None
    if value < 0:
        return Finding(key, value, "is not a weight decay: a negative one pushes the weights away from 0", 0.01, True)
    if ctx is None or fold(ctx.optimizer) not in TYPICAL_LR:
        return None
    name = ctx.optimizer
    if ctx.decoupled and value > 1:
        return Finding(
            key,
            value,
            f"is a very strong weight decay: {name} shrinks every weight by lr x weight_decay at each step, and "
            "at this size the weights melt towards 0 faster than the loss can move them (0.01 to 0.1 is usual)",
            0.01,
            False,
        )
    if not ctx.decoupled and value > 0.05:
        return Finding(
            key,
            value,
            f"is a very strong weight decay: {name} adds weight_decay x weight to every gradient, and at this size "
            "that pull to 0 outweighs the loss (1e-4 to 5e-4 is usual)",
            5e-4,
            False,
        )
    return None


def _grad_clip(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not _number(value):
        return None
    if value <= 0:
        return Finding(
            key, value, "is not a gradient norm to clip at: it must be above 0 (or leave the key out)", 1.0, True
        )
    if ctx and value < 1e-3:
        return Finding(
            key,
            value,
            "caps the gradient norm so low that every step is scaled down to almost nothing (0.5 to 5 is usual)",
            1.0,
            False,
        )
    return None


def _decay(key: str, value: Any, ctx: Context | None) -> Finding | None:
    """scheduler.gamma and scheduler.factor: what the lr is multiplied by at each decay."""
    if not _number(value):
        return None
    usual = 0.95 if ctx and ctx.scheduler == "exponential" else 0.1
    if value <= 0:
        return Finding(key, value, "multiplies the lr at each decay: at 0 or below the lr is gone", usual, True)
    if _name(key) == "factor" and value >= 1:
        return Finding(
            key, value, "multiplies the lr when the metric stalls: at 1 or more it never lowers it", 0.1, True
        )
    if ctx is None or ctx.epochs is None:
        return None
    if value > 1:
        return Finding(
            key, value, "multiplies the lr at each decay: above 1 the lr grows instead of falling", usual, False
        )
    if value == 1:
        return Finding(key, value, "multiplies the lr at each decay: at 1 the lr never changes", usual, False)
    decays = _decays(ctx)
    if decays and ctx.lr * value**decays < ctx.lr * 1e-6:
        return Finding(
            key,
            value,
            f"decays the lr {decays} times in this run of {ctx.epochs} epochs, down to "
            f"{ctx.lr * value**decays:.1e}: most of the run cannot learn any more",
            round(max(value, 1e-6 ** (1 / decays)), 2),
            False,
        )
    return None


def _decays(ctx: Context) -> int:
    """How often a step-wise schedule multiplies the lr by gamma in the run (it steps once an epoch)."""
    args, epochs = ctx.scheduler_args or {}, ctx.epochs or 0
    if ctx.scheduler == "step":
        step_size = args.get("step_size", 1)
        return epochs // step_size if _number(step_size) and step_size > 0 else 0
    if ctx.scheduler == "exponential":
        return epochs
    if ctx.scheduler == "multistep" and isinstance(args.get("milestones"), list):
        return sum(1 for m in args["milestones"] if _number(m) and m < epochs)
    return 0


def _count(key: str, value: Any, ctx: Context | None, lowest: int = 1) -> Finding | None:
    """Epochs, steps, patience, sizes: whole numbers, at least 1 (at least 0 for the role count0)."""
    name = _name(key)
    if not _number(value):
        return None
    if not math.isfinite(value) or value != int(value) or value < lowest:
        whole = math.isfinite(value) and round(value) >= lowest
        fix = round(value) if whole else USUAL_COUNT.get(name, lowest)
        what = "a whole number" if math.isfinite(value) and value != int(value) else f"a count of at least {lowest}"
        return Finding(key, value, f"is not {what}: {name} counts {UNITS.get(name, 'things')}", fix, True)
    if ctx is None:
        return None
    return _count_in_context(key, int(value), ctx)


def _count0(key: str, value: Any, ctx: Context | None) -> Finding | None:
    """Counts where 0 means none: histograms every 0 epochs, a cooldown of 0 epochs, 0 test samples."""
    return _count(key, value, ctx, lowest=0)


# What to offer instead of a count that cannot be one (0 or negative).
USUAL_COUNT = {"batch_size": 32, "epochs": 10, "patience": 3, "every_n_steps": 50, "samples": 2000, "accumulate": 1}
UNITS = {
    "epochs": "passes over the training set",
    "batch_size": "samples per step",
    "patience": "epochs",
    "step_size": "epochs",
    "T_max": "epochs",
    "T_0": "epochs",
    "total_iters": "epochs",
    "total_steps": "optimizer steps",
    "steps_per_epoch": "optimizer steps",
    "every_n_steps": "optimizer steps",
    "histograms": "epochs",
    "accumulate": "batches",
    "samples": "samples",
}


def _count_in_context(key: str, value: int, ctx: Context) -> Finding | None:
    name, epochs, steps = _name(key), ctx.epochs or 0, ctx.steps
    section = key.partition(".")[0]
    if key == "train.epochs" and ctx.samples and value * ctx.samples > 5e7:
        return Finding(
            key,
            value,
            f"epochs of {ctx.samples:,} samples put {value * ctx.samples:,} samples through the model: data sets "
            "of this size are learned in 3 to 50 epochs, and this run would take days",
            20,
            False,
        )
    if name == "batch_size" and ctx.samples and value > ctx.samples:
        fix = max(1, 2 ** int(math.log2(max(1, ctx.samples // 8))))
        return Finding(
            key,
            value,
            f"is larger than the {ctx.samples:,} training samples: each epoch is one step, with every sample in it",
            fix,
            False,
        )
    if name == "patience" and epochs and value >= epochs:
        what = "early stopping can never stop the run" if section == "train" else "the lr is never lowered"
        return Finding(
            key,
            value,
            f"epochs without improvement are waited for, and the run has {epochs} epochs: {what}",
            max(1, epochs // 4),
            False,
        )
    longer = value > epochs if name == "total_iters" else value >= epochs  # a decay may end with the run
    if section == "scheduler" and name in ("step_size", "T_0", "total_iters") and epochs and longer:
        change = {"step_size": "the lr is never decayed", "T_0": "the schedule never restarts"}
        return Finding(
            key,
            value,
            f"epochs, and the run has {epochs}: {change.get(name, 'the change is never finished')}",
            max(1, epochs // 3),
            False,
        )
    if section == "scheduler" and name == "T_max" and epochs and (value < epochs or value > 2 * epochs):
        why = (
            "the cosine is periodic, so the lr climbs back up after it"
            if value < epochs
            else "the run ends long before the lr has fallen"
        )
        return Finding(key, value, f"epochs of annealing in a run of {epochs} epochs: {why}", epochs, False)
    if section == "scheduler" and name == "total_steps" and steps:
        return _one_cycle_length(key, value, steps, "optimizer steps")
    if section == "scheduler" and name == "epochs" and epochs:
        return _one_cycle_length(key, value, epochs, "epochs")
    if section == "scheduler" and name == "steps_per_epoch" and ctx.batches:
        return _one_cycle_length(key, value, math.ceil(ctx.batches / ctx.accumulate), "optimizer steps an epoch")
    if name == "every_n_steps" and steps and value > steps:
        return Finding(
            key,
            value,
            f"steps between two logged training losses, and the whole run has {steps} steps: nothing is logged",
            max(1, steps // 20),
            False,
        )
    if name == "histograms" and epochs and value > epochs:
        return Finding(key, value, f"epochs between histograms in a run of {epochs} epochs: none is written", 1, False)
    if name == "accumulate" and ctx.batches and value > ctx.batches:
        return Finding(
            key,
            value,
            f"batches are added up before each step, and an epoch has only {ctx.batches}: one step per epoch",
            max(1, ctx.batches // 4),
            False,
        )
    return None


def _one_cycle_length(key: str, value: int, real: int, unit: str) -> Finding | None:
    if value < real:
        return Finding(
            key,
            value,
            f"{unit} planned for the schedule, but the run takes {real}: torch stops the run with an error when it "
            "steps past the plan (leave the key out: leaptrain fills in the run's length)",
            real,
            True,
        )
    if value > 2 * real:
        return Finding(
            key,
            value,
            f"{unit} planned for the schedule, and the run takes {real}: it ends before the lr comes down",
            real,
            False,
        )
    return None


def _milestones(key: str, value: Any, ctx: Context | None) -> Finding | None:
    if not isinstance(value, list) or not value or not all(_number(m) for m in value):
        return None
    if ctx and ctx.epochs and min(value) >= ctx.epochs:
        fix = [max(1, ctx.epochs // 2), max(2, 3 * ctx.epochs // 4)]
        return Finding(key, value, f"are epochs, and the run has {ctx.epochs}: the lr is never decayed", fix, False)
    return None


CHECKS: dict[str, Check] = {
    "lr": _learning_rate,
    "lr_floor": _lr_floor,
    "probability": _probability,
    "momentum": _momentum,
    "betas": _betas,
    "epsilon": _epsilon,
    "weight_decay": _weight_decay,
    "grad_clip": _grad_clip,
    "decay": _decay,
    "count": _count,
    "count0": _count0,
    "milestones": _milestones,
}
# The job of a number by its name, whatever the class it goes to; `section.name` where one name has two jobs
# (a loss's `p` is the degree of a norm, a model's `p` is a dropout probability). The one place a job is said:
# leaptrain's own keys marked Role() in trainer/config.py look theirs up here too.
ROLES = {
    "lr": "lr",
    "max_lr": "lr",
    "base_lr": "lr",
    "eta_min": "lr_floor",
    "min_lr": "lr_floor",
    "dropout": "probability",
    "attention_dropout": "probability",
    "drop_rate": "probability",
    "drop_path_rate": "probability",
    "stochastic_depth_prob": "probability",
    "model.p": "probability",
    "label_smoothing": "probability",
    "val_split": "probability",
    "test_split": "probability",
    "pct_start": "probability",
    "momentum": "momentum",
    "rho": "momentum",
    "optimizer.alpha": "momentum",
    "betas": "betas",
    "eps": "epsilon",
    "weight_decay": "weight_decay",
    "grad_clip": "grad_clip",
    "scheduler.gamma": "decay",
    "scheduler.factor": "decay",
    "milestones": "milestones",
    **dict.fromkeys(UNITS, "count"),
    "histograms": "count0",
    "cooldown": "count0",
    "test_samples": "count0",
}


def role_of(key: str) -> str | None:
    section, name = key.partition(".")[0], _name(key)
    return ROLES.get(f"{section}.{name}") or ROLES.get(name)


# What an editor learns of each role's values from the JSON Schema.
BOUNDS = {
    "lr": {"exclusiveMinimum": 0},
    "probability": {"minimum": 0, "exclusiveMaximum": 1},
    "grad_clip": {"exclusiveMinimum": 0},
    "count": {"minimum": 1},
    "count0": {"minimum": 0},
}


ROLE = "leaptrain_role"  # the key under which a field's role waits in its core schema for its JSON Schema


class Role:
    """Marks a config field as a number with a job (`Annotated[float, Role()]`), the job found by the field's name
    in ROLES: pydantic then refuses a value that cannot do that job with the reason and a value to try, and the
    JSON Schema gets the bounds for editors."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        role = role_of(handler.field_name or "")
        if role is None:
            raise TypeError(f"config field {handler.field_name!r} is marked Role(), but numbers.ROLES gives it no job")
        check = CHECKS[role]

        def validate(value: Any, info: core_schema.ValidationInfo) -> Any:
            found = check(info.field_name or "", value, None)
            if found and found.error:
                raise PydanticCustomError("number_role", found.text(with_key=False))
            return value

        return core_schema.with_info_after_validator_function(validate, handler(source), metadata={ROLE: role})

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {**handler(schema), **BOUNDS.get(schema.get("metadata", {}).get(ROLE), {})}


def findings(cfg: Config, samples: int | None = None, batches: int | None = None) -> list[Finding]:
    """Every number of `cfg` checked against its job; with the data's size once it is built."""
    scheduler = fold(cfg.scheduler.name).removesuffix("lr")
    aliases = {"cosine": "cosineannealing", "plateau": "reducelronplateau"}
    ctx = Context(
        optimizer=cfg.optimizer.name,
        lr=cfg.optimizer.lr,
        scheduler=aliases.get(scheduler, scheduler),
        scheduler_args=cfg.scheduler.args,
        epochs=cfg.train.epochs,
        samples=samples,
        batches=batches,
        accumulate=cfg.train.accumulate,
        decoupled=fold(cfg.optimizer.name) in DECOUPLED or cfg.optimizer.args.get("decoupled_weight_decay") is True,
    )
    found = []
    typed = dict(typed_numbers(cfg))
    for key, value in typed.items():
        role = role_of(key)
        if role and (finding := CHECKS[role](key, value, ctx)):
            found.append(finding)
    for low, high in RANGES:
        below, above = typed.get(low), typed.get(high)
        if _number(below) and _number(above) and below >= above:
            message = f"is the low end of a range whose high end, {high}, is {_shown(above)}: the range is upside down"
            found.append(Finding(low, below, message, above / 10, False))
    return found


# Arguments that name the two ends of one range: the first must lie below the second.
RANGES = (("scheduler.base_lr", "scheduler.max_lr"),)


def typed_numbers(cfg: Config) -> list[tuple[str, Any]]:
    """(dotted key, value) of every key the config sets itself: defaults are not the learner's to explain."""
    pairs: list[tuple[str, Any]] = []
    _collect(cfg, "", pairs)
    stopping = cfg.train.early_stopping
    if stopping is not None and "patience" not in stopping.model_fields_set:  # asked for, with the default patience
        pairs.append(("train.early_stopping.patience", stopping.patience))
    return pairs


def _collect(model: BaseModel, prefix: str, pairs: list[tuple[str, Any]]) -> None:
    from pydantic import BaseModel

    for name in sorted(model.model_fields_set & set(type(model).model_fields)):  # extras come below
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _collect(value, f"{prefix}{name}.", pairs)
        else:
            pairs.append((f"{prefix}{name}", value))
    for name, value in (model.model_extra or {}).items():
        pairs.append((f"{prefix}{name}", value))


def check_numbers(cfg: Config, problems: list[Problem]) -> list[Problem]:
    """The config's problems with the errors of its numbers added (before anything is built). Where a number's
    own message explains a section's arguments, torch's terser refusal of the same section is left out."""
    found = [f.problem() for f in findings(cfg) if f.error]
    explained = {p.key.partition(".")[0] for p in found}
    kept = [p for p in problems if not (p.key in explained and p.message.startswith("torch rejects"))]
    return kept + found


def number_warnings(cfg: Config, data: Any) -> list[str]:
    """With the data built: the errors only its size shows (raised), and every warning as a line to print."""
    train = data.train
    samples = getattr(train, "num_samples", None) or len(getattr(train, "dataset", []))
    found = findings(cfg, samples=samples or None, batches=len(train))
    errors = [f.problem() for f in found if f.error]
    if errors:
        raise ConfigError(errors)
    return [f.warning() for f in found]
