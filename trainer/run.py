"""Build everything a config names and train it: the YAML path to the Trainer."""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer import cores, distributed
from trainer.atomic import write_atomic
from trainer.callbacks import EarlyStopping, callbacks_from_config
from trainer.components.catalog import load_catalog
from trainer.components.data import build_data, data_section
from trainer.components.losses import build_loss, check_loss
from trainer.components.models import build_model, check_model
from trainer.components.optim import (
    build_optimizer,
    build_scheduler,
    check_optimizer,
    check_scheduler,
    planned_schedule,
    steps_every_batch,
)
from trainer.components.pretrained import Pretrained, pretrained_line
from trainer.components.splits import DataSplits
from trainer.config import Config
from trainer.diagnostics import Report, check_model_structure, first_batch, layer_summary, preflight
from trainer.errors import ConfigError, Problem, UserError, did_you_mean
from trainer.explain import explain
from trainer.fine_tune import FineTune, parameter_groups
from trainer.inference import read_checkpoint
from trainer.logger import free_run_dir, make_run_dir, new_run_dir, refuse_a_file_in_the_way
from trainer.loop import Options, Trainer, resolve_device
from trainer.lr_find import LRFindResult, log_to_tensorboard, lr_find, save_plot_png
from trainer.metric_names import Monitor, check_metric_names, default_metrics
from trainer.numbers import check_numbers, number_warnings
from trainer.run_files import RunFiles
from trainer.yamlio import dump_yaml, flatten


def check_components(cfg: Config) -> list[Any]:
    """Every component name and argument, and the values torch checks when it builds (on a dummy parameter), and
    the user's own files, imported: all before anything is built, all problems at once. Returns the objects of
    `callbacks:`, which are made to be checked, so that the run uses them rather than making them again."""
    catalog = load_catalog()  # torch is imported by now: made here if missing, for a later config's quick check
    callbacks, callback_problems = _made_callbacks(cfg)
    problems = [
        *check_model(cfg.model, catalog.models),
        *check_loss(cfg.loss, catalog.losses),
        *check_optimizer(cfg.optimizer, catalog.optimizers),
        *check_scheduler(cfg.scheduler, catalog.schedulers),
        *_check_device(cfg),
        *_check_fine_tune(cfg),
        *callback_problems,
    ]
    problems = check_numbers(cfg, problems)  # each number against its job (a few ms: the CLI checked them first too)
    if problems:
        raise ConfigError(problems)
    return callbacks


def _made_callbacks(cfg: Config) -> tuple[list[Any], list[Problem]]:
    """The learner's callbacks, imported and made here so that a misspelled argument or hook is said with the other
    problems, before any data is read: (the objects, []) or ([], the problems)."""
    try:
        return callbacks_from_config(cfg.callbacks), []
    except ConfigError as err:
        return [], err.problems


def _check_device(cfg: Config) -> list[Problem]:
    wanted = cfg.train.device
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        return [Problem("train.device", f"'{wanted}' asked for, but this machine has no CUDA GPU. Try: auto or cpu")]
    if wanted == "mps" and not torch.backends.mps.is_available():
        return [Problem("train.device", "'mps' asked for, but Apple's MPS is not available here. Try: auto or cpu")]
    if cfg.train.precision == "fp16" and resolve_device(wanted).type != "cuda":
        return [Problem("train.precision", "fp16 needs a CUDA GPU. Try: bf16 (or fp32) on this machine")]
    return []


def _check_fine_tune(cfg: Config) -> list[Problem]:
    plan = cfg.train.fine_tune
    if plan is None:
        return []
    if getattr(cfg.model, "weights", None) is None:
        return [
            Problem(
                "train.fine_tune",
                "fine-tuning starts from a pretrained model. Try: model.weights=DEFAULT (with a torchvision model "
                "such as model.name=resnet18), or remove train.fine_tune",
            )
        ]
    if plan.head_epochs >= cfg.train.epochs:
        fewer = f"train.fine_tune.head_epochs={cfg.train.epochs - 1}, or " if cfg.train.epochs > 1 else ""
        return [
            Problem(
                "train.fine_tune.head_epochs",
                f"{plan.head_epochs} head-only epochs leave none of the {cfg.train.epochs} epochs for the whole model. "
                f"Try: {fewer}train.epochs={plan.head_epochs + 2}, or no train.fine_tune (the backbone then stays "
                "frozen)",
            )
        ]
    return []


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass


@dataclass
class Built:
    """Everything a config names, built and ready to train."""

    data: DataSplits
    model: torch.nn.Module
    loss_fn: Any
    optimizer: torch.optim.Optimizer
    device: torch.device
    callbacks: list[Any]  # the objects of `callbacks:`, made when the config was checked


def build(cfg: Config, data: DataSplits | None = None, device: torch.device | None = None) -> Built:
    """The data (unless given: a sweep loads it once for many trials), model, loss and optimizer."""
    callbacks = check_components(cfg)
    seed_everything(cfg.seed)
    device = device or resolve_device(cfg.train.device)
    data = data or build_data(data_section(cfg), device, cfg.seed)
    data.deliver_in(torch.channels_last if cfg.train.channels_last else torch.contiguous_format)
    try:
        model = build_model(cfg.model, data.input_shape, data.num_classes, data_info=data.info).to(device)
    except UserError:
        raise
    except Exception as err:  # the user's own model class failed while it was being built
        raise explain(err, during="building the model") from err
    check_model_structure(model)
    params: Iterable[Any] = model.parameters()
    if cfg.train.fine_tune is not None and isinstance(model, Pretrained):  # the backbone at its own, lower lr
        params = parameter_groups(model, cfg.optimizer.lr, cfg.train.fine_tune.body_lr_factor)
    optimizer = build_optimizer(cfg.optimizer, params)
    return Built(data, model, build_loss(cfg.loss), optimizer, device, callbacks)


def callbacks_of(cfg: Config, learners: list[Any]) -> list[Any]:
    """The observers a config asks for: early stopping, the loggers of log.loggers, then `learners`, the objects
    of `callbacks:` (made by check_components)."""
    made: list[Any] = []
    if cfg.train.early_stopping is not None:
        made.append(EarlyStopping(cfg.train.early_stopping.patience))
    if "csv" in cfg.log.loggers:
        from trainer.tracking import CsvLogger

        made.append(CsvLogger())
    if "mlflow" in cfg.log.loggers:
        from trainer.tracking import MlflowLogger, local_store

        # A sweep's trials lie deeper in log.dir than a run: the store is named from log.dir, not from the run folder.
        uri = cfg.log.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or local_store(Path(cfg.log.dir))
        made.append(MlflowLogger(uri))
    return [*made, *learners]


def monitor_of(cfg: Config) -> Monitor:
    stopping = cfg.train.early_stopping
    if stopping is None:
        return Monitor()
    return Monitor(stopping.monitor, stopping.mode, stopping.min_delta)


def check_metric_settings(cfg: Config, data: DataSplits) -> None:
    """log.metrics must suit the task, and the monitored name must be a metric this run will produce: checked
    before training, not after an hour."""
    problems = [Problem("log.metrics", p) for p in check_metric_names(cfg.log.metrics or [], data.task)]
    if problems:
        raise ConfigError(problems)
    if cfg.train.early_stopping is None:
        return
    names = ["train/loss", "lr"]
    names += [f"{split}/{metric}" for split in ("train", "val") for metric in ("loss", "accuracy")]
    chosen = cfg.log.metrics or default_metrics(data.task, data.num_classes)
    names += [f"val/{n}" for n in chosen if n not in ("per_class_accuracy", "confusion_matrix")]  # scalars only
    if data.task != "classification":
        names = [n for n in names if not n.endswith("accuracy")]
    if data.val is None:
        names = [n for n in names if not n.startswith("val/")]
    names = list(dict.fromkeys(names))
    wanted = cfg.train.early_stopping.monitor
    if wanted not in names:
        no_val = wanted.startswith("val/") and data.val is None
        hint = " (this run has no validation split: data.val_split is 0)" if no_val else ""
        raise ConfigError(
            [
                Problem(
                    "train.early_stopping.monitor",
                    f"'{wanted}' is not a metric of this run{hint}"
                    f"{did_you_mean(wanted, names)}. Choose one of: {', '.join(names)}",
                )
            ]
        )


# Keys a resumed run may change: they do not change what was learned so far.
CHANGEABLE_ON_RESUME = (
    "train.epochs",
    "train.preflight",
    "train.device",
    "train.early_stopping.patience",
    "data.root",
    "data.download",
    "log.dir",
    "log.every_n_steps",
    "log.histograms",
    "log.graph",
    "log.pictures",
)


def check_resumable(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """The run's last checkpoint, after checking that `cfg` differs from the run's config only where it may.

    A folder that is no run to carry on is refused (the command line has found the folder with its own Try line
    before; this check is for the Python API)."""
    from trainer.folders import run_folder

    run_folder(str(run_dir), "resume", lambda path: f"python -m trainer resume {path}", needs="last", accept=False)
    checkpoint = read_checkpoint(RunFiles(run_dir).last)
    before, now = flatten(checkpoint["config"]), flatten(cfg.model_dump(mode="json"))
    changed = [key for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]
    refused = [key for key in changed if key not in CHANGEABLE_ON_RESUME]
    if refused:
        raise ConfigError(
            [
                Problem(
                    key,
                    f"was {before.get(key)!r} in {run_dir}, now {now.get(key)!r}: a resumed "
                    "run keeps its model, data and optimizer. Try: start a new run instead",
                )
                for key in refused
            ]
        )
    state = checkpoint["state"]
    finished = RunFiles(run_dir).summary.exists()  # else it stopped while testing: resuming finishes that
    stopped_early = state["stopped_early"] and "train.early_stopping.patience" not in changed
    if finished and (state["epoch"] >= cfg.train.epochs or stopped_early):
        why = "stopped early" if state["stopped_early"] else f"trained {state['epoch']} epochs"
        patience = cfg.train.early_stopping.patience if cfg.train.early_stopping else 0
        more = f"train.early_stopping.patience={2 * patience}" if state["stopped_early"] else ""
        more = more or f"train.epochs={state['epoch'] + 5}"
        raise NothingToDo(
            f"{run_dir} has {why}: nothing to resume. To train longer: python -m trainer resume {run_dir} {more}"
        )
    notes = {key: "" for key in changed}
    if "train.epochs" in changed:
        notes["train.epochs"] = schedule_on_resume(cfg, before["train.epochs"], run_dir)
    for key in changed:
        print(f"resuming with {key} changed: {before.get(key)!r} -> {now.get(key)!r}{notes[key]}")
    return checkpoint


def schedule_on_resume(cfg: Config, planned: int, run_dir: Path) -> str:
    """What a new train.epochs does to a schedule planned for the run's length (one-cycle, cosine), said on the
    resume line: longer adds a warm restart over the added epochs (components/optim.py Restarts); shorter, or
    past a length the config fixes, is refused."""
    name, epochs = cfg.scheduler.name, cfg.train.epochs
    if planned_schedule(cfg.scheduler):
        if epochs < planned:
            raise ConfigError(
                [
                    Problem(
                        "train.epochs",
                        f"the {name} schedule was planned for {planned} epochs: it can be lengthened, not cut "
                        f"short (its lr would stop before it has come down). Try: python -m trainer resume {run_dir}",
                    )
                ]
            )
        peak = cfg.scheduler.args.get("max_lr", cfg.optimizer.lr)
        one_cycle = planned_schedule(cfg.scheduler) == "OneCycleLR"
        shape = f"climbs to {peak} again" if one_cycle else f"starts again at {peak}"
        done, added = span(1, planned), span(planned + 1, epochs)
        return (
            f": the {name} schedule of {done} keeps its steps; {added} {'get' if epochs > planned + 1 else 'gets'} "
            f"a new {name} of {'their' if epochs > planned + 1 else 'its'} own "
            f"(a warm restart: the lr {shape}, then falls by epoch {epochs})"
        )
    fixed = [key for key in ("total_steps", "epochs", "steps_per_epoch") if key in cfg.scheduler.args]
    if fixed and epochs > planned and name.lower().replace("_", "") in ("onecycle", "onecyclelr"):
        raise ConfigError(
            [
                Problem(
                    "train.epochs",
                    f"scheduler.{fixed[0]} fixes the length of the {name} schedule: a resumed run cannot train "
                    f"past it. Try: a new run with a longer schedule, from {run_dir / 'config.yaml'}",
                )
            ]
        )
    return ""


def span(first: int, last: int) -> str:
    return f"epochs {first}-{last}" if last > first else f"epoch {first}"


class NothingToDo(Exception):
    """A resume that has nothing left to train: said plainly, with exit code 0."""


def train_from_config(
    cfg: Config,
    resume: Path | None = None,
    *,
    run_dir: Path | None = None,
    data: DataSplits | None = None,
    callbacks: Iterable[Any] = (),
) -> Path:
    """Train the run a validated config describes (or carry on the run in `resume`); returns its run folder.

    A sweep passes its trial's `run_dir`, the `data` it already loaded, and `callbacks` (its pruning).
    Started by torchrun, each process joins the process group and trains its share; rank 0 alone shows and saves.
    """
    if not distributed.launched_by_torchrun():
        return train_in_this_process(cfg, resume, run_dir=run_dir, data=data, callbacks=callbacks)
    device = distributed.start(cfg.train.device)
    try:
        distributed.check_same_config(flatten(cfg.model_dump(mode="json")))
        world, size = distributed.world_size(), cfg.data.batch_size
        with contextlib.ExitStack() as stack:
            if not distributed.is_main():  # the other processes train in silence: rank 0 speaks for all
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            print(
                f"torchrun: {world} processes on {device.type}; data.batch_size {size} is the global batch, "
                f"about {size // world} samples per process per step"
            )
            return train_in_this_process(cfg, resume, run_dir=run_dir, data=data, callbacks=callbacks, device=device)
    finally:
        distributed.stop()


def train_in_this_process(
    cfg: Config,
    resume: Path | None = None,
    *,
    run_dir: Path | None = None,
    data: DataSplits | None = None,
    callbacks: Iterable[Any] = (),
    device: torch.device | None = None,
) -> Path:
    """Build, check one batch, make the run folder and train: the work of one process (of one rank)."""
    checkpoint = check_resumable(cfg, resume) if resume is not None else None
    built = build(cfg, data, device)
    data, model = built.data, built.model
    check_metric_settings(cfg, data)
    observers = callbacks_of(cfg, built.callbacks)
    if cfg.train.fine_tune is not None and isinstance(model, Pretrained):
        observers.insert(0, FineTune(model, cfg.train.fine_tune.head_epochs))
    steps_per_epoch = math.ceil(len(data.train) / cfg.train.accumulate)  # optimizer steps, not batches
    saved = checkpoint["scheduler"] if checkpoint else None  # a planned schedule resumed longer: a restart is added
    scheduler = build_scheduler(cfg.scheduler, built.optimizer, cfg.train.epochs, steps_per_epoch, saved)
    resolved = cfg.model_dump(mode="json")
    fresh = resume is None and run_dir is None and distributed.is_main()  # under torchrun the others write nothing
    run_dir = resume or run_dir or (free_run_dir(cfg.log.dir, cfg.name or "run") if fresh else Path(cfg.log.dir))
    trainer = Trainer(
        model,
        built.loss_fn,
        built.optimizer,
        scheduler=scheduler,
        epochs=cfg.train.epochs,
        device=built.device,
        precision=cfg.train.precision,
        task=data.task,
        out_dir=run_dir,
        log_every=cfg.log.every_n_steps,
        monitor=monitor_of(cfg),
        callbacks=[*observers, *callbacks],
        options=Options(
            accumulate=cfg.train.accumulate,
            grad_clip=cfg.train.grad_clip,
            scheduler_every_batch=steps_every_batch(cfg.scheduler),
            compile=cfg.train.compile,
            channels_last=cfg.train.channels_last,
            sync_batchnorm=cfg.train.sync_batchnorm,
            preflight=False,  # checked below, before the run folder is made
            progress=cfg.log.progress,
            pictures=cfg.log.pictures,
            histograms=cfg.log.histograms,
            tensorboard="tensorboard" in cfg.log.loggers,
            metrics=cfg.log.metrics,
            num_classes=data.num_classes,
            class_names=data.class_names,
            config=resolved,
            data_info=data.info,
        ),
    )
    batch = first_batch(data.train)
    warnings = []
    if cfg.train.preflight and checkpoint is None:  # before the run folder exists: a failed check leaves nothing
        warnings = trainer.preflight_warnings(batch)
    warnings += data.warnings  # about the data itself: a class missing from the val split, unreadable files, ...
    warnings += number_warnings(cfg, data)  # numbers that make no sense for this data: batch_size, epochs, ...

    example = batch[0][:2]
    summary = layer_summary(model, example)
    if distributed.is_main():
        make_run_dir(run_dir, new=fresh)
        write_atomic(RunFiles(run_dir).config, dump_yaml(resolved))  # rerun this file to repeat the run
        write_atomic(RunFiles(run_dir).model, summary + "\n")
    print(f"data: {data.description}")
    print(f"feeding: {data.feeding}")
    print(summary if summary.count("\n") <= 25 else summary.splitlines()[-1] + f" (layers: {run_dir / 'model.txt'})")
    print(f"model: {cfg.model.name} on {built.device}; run folder {run_dir}")
    if isinstance(model, Pretrained):
        print(f"weights: {pretrained_line(cfg.model, data.input_shape, model)}")
    if cfg.log.graph and checkpoint is None:
        trainer.logger.log_graph(model, example)
    for warning in warnings:
        trainer.warn(warning)
    if checkpoint is not None:
        trainer.load(checkpoint)
        print(f"resuming {run_dir} after epoch {trainer.state.epoch}, step {trainer.state.step}")
    resumed_with = checkpoint.get("threads") if checkpoint is not None else None
    with cores.shared_cores(resumed_with=resumed_with):  # torch's threads: this run's share of the cores
        trainer.fit(data.train, data.val, data.test)
    return run_dir


def check_from_config(cfg: Config) -> Report:
    """The full preflight of the `check` command: shapes, loss contract, gradients, overfitting, data speed."""
    built = build(cfg)
    print(f"data: {built.data.description}")
    print(f"feeding: {built.data.feeding}")
    warnings = [*built.data.warnings, *number_warnings(cfg, built.data)]
    print("".join(f"warning: {line}\n" for line in warnings), end="")
    batch = first_batch(built.data.train)
    return preflight(
        built.model,
        built.loss_fn,
        batch,
        num_classes=built.data.num_classes,
        full=True,
        make_optimizer=lambda params: build_optimizer(cfg.optimizer, params),
        loader=built.data.train,
    )


def lr_find_from_config(cfg: Config, steps: int, start_lr: float, end_lr: float) -> tuple[LRFindResult, Path]:
    """The learning-rate range test on the config's model and data; the curve goes to a folder of its own."""
    from torch.utils.tensorboard import SummaryWriter

    from trainer.progress import progress_bar

    refuse_a_file_in_the_way(Path(cfg.log.dir), "run folder")  # said now, not after the whole search
    built = build(cfg)
    with torch.random.fork_rng(devices=[]), progress_bar(total=steps, desc="lr-find", unit="step", leave=False) as bar:
        batches = _Counting(built.data.train, bar)
        result = lr_find(
            built.model,
            built.loss_fn,
            built.optimizer,
            batches,
            start_lr=start_lr,
            end_lr=end_lr,
            steps=steps,
            device=built.device,
        )
    out_dir = new_run_dir(cfg.log.dir, f"{cfg.name or 'run'}-lr-find")
    save_plot_png(result, out_dir / "lr_find.png")
    writer = SummaryWriter(str(out_dir))
    log_to_tensorboard(result, writer)
    writer.close()
    return result, out_dir


class _Counting:
    """A loader that moves a progress bar along as its batches are taken."""

    def __init__(self, loader: Any, bar: Any):
        self.loader, self.bar = loader, bar

    def __iter__(self) -> Any:
        for batch in self.loader:
            self.bar.update()
            yield batch
