"""The Trainer: fit a model with autograd, then evaluate it. `fit` is the whole training loop; read it top to bottom."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer import distributed
from trainer.callbacks import call_hook, check_hooks
from trainer.checkpoint import (
    CheckpointWriter,
    TrainState,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from trainer.diagnostics import check_one_batch, first_batch, takes_class_indices
from trainer.errors import StoppedByUser, UserError, did_you_mean
from trainer.explain import explain_batch_failure
from trainer.logger import ConsoleLogger, RunLogger, SilentLogger
from trainer.metric_names import Monitor
from trainer.metrics import Metrics, format_table
from trainer.pictures import Histograms, Pictures
from trainer.run_files import BEST, CHECKPOINTS, RunFiles
from trainer.speed import gpu_defaults
from trainer.step_guard import OVERFLOW_PATIENCE, Bad, StepGuard
from trainer.watchdog import Watchdog, diagnose_nonfinite

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes


@dataclass
class Options:
    """The Trainer's less often changed settings, checked when made (the YAML path fills them from the config).

    `accumulate` adds up the gradients of that many batches before each step; `grad_clip` caps the gradients'
    total norm; `config` and `data_info` are kept in checkpoints (what `resume` and `predict` need to know).
    """

    accumulate: int = 1
    grad_clip: float | None = None
    scheduler_every_batch: bool = False  # a schedule planned in steps (one_cycle), not in epochs
    compile: bool | str = False  # True, or torch.compile's mode: "default", "reduce-overhead", "max-autotune"
    channels_last: bool = False
    sync_batchnorm: bool = False  # torchrun on GPUs: SyncBatchNorm, statistics over the global batch
    preflight: bool = True  # one batch through model, loss and backward before training
    progress: bool = True
    pictures: bool = True  # TensorBoard's confusion matrix and samples (a run folder only)
    histograms: int = 0  # weights and gradients every N epochs (0: none)
    tensorboard: bool = True  # TensorBoard's event files in the run folder
    metrics: list[str] | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    config: dict[str, Any] | None = None
    data_info: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.accumulate < 1:
            raise ValueError(f"Options(accumulate={self.accumulate}): batches added up per step. Try: 1 or more")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"Options(grad_clip={self.grad_clip}): the largest gradient norm. Try: 1.0, or None")
        if self.histograms < 0:
            raise ValueError(f"Options(histograms={self.histograms}): every N epochs. Try: 0 (none) or more")
        if isinstance(self.compile, str) and self.compile not in COMPILE_MODES:
            raise ValueError(
                f"Options(compile={self.compile!r}): torch.compile's mode. Try: {', '.join(COMPILE_MODES)}"
            )


class Trainer:
    """Trains `model` by minimizing `loss_fn(model(inputs), targets)` with `optimizer` (None: evaluation only).

    `out_dir` (optional) receives checkpoints, TensorBoard events, metrics.jsonl and summary.json.
    `task` is "classification" (reports accuracy) or "regression"; by default it follows the loss: cross entropy
    and NLL (as modules or as F.cross_entropy and F.nll_loss) mean classification, anything else regression.
    `monitor` is the metric best.pt follows. `callbacks` observe the run at the hooks `fit` calls (see
    trainer/callbacks.py): early stopping, loggers, your own. `options`: the rest (see Options).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        scheduler: Any = None,
        epochs: int = 3,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        task: str | None = None,
        out_dir: str | Path | None = None,
        log_every: int = 50,
        monitor: Monitor | None = None,
        callbacks: Iterable[Any] = (),
        options: Options | None = None,
    ):
        options = options or Options()
        self.options = options
        self.device = resolve_device(device)
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        self.raw_model = model.to(self.device, memory_format=self.memory_format)  # what checkpoints hold
        self.model = self.raw_model
        if distributed.world_size() > 1 and options.sync_batchnorm:
            self.raw_model = distributed.sync_batchnorm(self.raw_model, self.device)  # the same weight tensors
            self.model = self.raw_model
        if distributed.world_size() > 1:  # under torchrun: DDP averages the gradients of all processes
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        if options.compile:  # one graph per input shape (the last, smaller batch gets its own), none recompiled
            mode = options.compile if isinstance(options.compile, str) else None
            self.model = torch.compile(self.model, mode=mode, dynamic=False)
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.scheduler, self.scheduler_every_batch = scheduler, options.scheduler_every_batch
        self.epochs, self.log_every = epochs, log_every
        self.accumulate, self.grad_clip = options.accumulate, options.grad_clip
        self.metric_names, self.class_names = options.metrics, options.class_names
        self.evaluation: Evaluation | None = None  # the last evaluation, for pictures and the final table
        self.classification = (task or default_task(loss_fn)) == "classification"
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA GPU; use precision 'bf16' (or 'fp32') on this device")
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.guard = StepGuard(optimizer, self.device, fp16=self.scaler is not None)  # NaN/inf, seen on the device
        self.parameters = list(self.raw_model.parameters())  # listed once: walking the modules each step costs
        self.stop_votes = 0.0  # under torchrun: the processes that asked to stop, as of the last step log
        self.config = options.config or {}
        self.data_info = options.data_info or {}  # what predict needs to know about the inputs, kept in checkpoints
        # Under torchrun only rank 0 writes the run folder; the other processes train and keep nothing.
        self.out_dir = Path(out_dir) if out_dir is not None and distributed.is_main() else None
        self.monitor = monitor or Monitor()
        self.stop_reason = ""
        self.state = TrainState()
        self.resumed_metrics: dict[str, float] = {}  # the last epoch's, when carrying on from a checkpoint
        self.preflight, self.num_classes = options.preflight, options.num_classes
        self.stop_requested = False  # by Ctrl-C or SIGTERM (stop_signal says which), or by a failed save
        self.stop_signal = signal.SIGINT
        # A save that fails stops training at the next step: the error is then raised with the path and free space.
        self.checkpoints = CheckpointWriter(on_failure=lambda: setattr(self, "stop_requested", True))
        self.diagnosis: list[str] = []  # the warnings of this run, kept with it by the loggers
        self.summary: dict[str, Any] = {}  # what summary.json holds, made before on_fit_end
        self.logger: ConsoleLogger = ConsoleLogger(options.progress) if distributed.is_main() else SilentLogger()
        drawing: list[Any] = []  # TensorBoard's pictures and histograms, drawn before the logger flushes its events
        if self.out_dir is not None:
            self.logger = RunLogger(self.out_dir, options.progress, options.tensorboard)
            if options.tensorboard and options.pictures:
                drawing.append(Pictures(self.logger))
            if options.tensorboard and options.histograms:
                drawing.append(Histograms(self.logger, options.histograms))
        self.pictures = any(isinstance(callback, Pictures) for callback in drawing)  # evaluation keeps samples then
        # The observers, in the order they are called: the pictures, the console and run files, the watchdog, yours.
        self.callbacks = [*drawing, self.logger, Watchdog(self.lr if optimizer is not None else 0.0), *callbacks]
        for callback in self.callbacks:
            check_hooks(callback)

    def hook(self, name: str, *arguments: Any) -> list[Any]:
        """Call the hook `name` of every callback that has it, in order; what each returned."""
        return [call_hook(callback, name, self, *arguments) for callback in self.callbacks]

    def warn(self, text: str) -> None:
        """A diagnosis: said now, and kept with the run (diagnosis.txt, TensorBoard's Text tab)."""
        self.logger.info(f"warning: {text}")
        self.record(text)

    def record(self, text: str) -> None:
        """A diagnosis kept with the run but not printed (the error that stops it is printed by its catcher)."""
        self.diagnosis.append(text)
        self.hook("on_warning", text)

    def fit(
        self,
        train_loader: Iterable[Batch],
        val_loader: Iterable[Batch] | None = None,
        test_loader: Iterable[Batch] | None = None,
    ) -> dict[str, float]:
        """Train for the remaining epochs; evaluate on `test_loader` at the end. Returns the final metrics.

        Each loader is any iterable of (inputs, targets) batches: a DataLoader, a list, an IterableDataset's loader;
        a generator, which can be read only once, serves one epoch."""
        if self.optimizer is None:
            raise ValueError("fit needs an optimizer: Trainer(model, loss_fn, optimizer); without one, evaluate")
        started, metrics = time.perf_counter(), dict(self.resumed_metrics)
        train_loader, n_batches = self.batches_per_epoch(train_loader)  # n_batches: None when it has no len
        self.check_read_once(val_loader, "val_loader")  # read every epoch; test_loader is read once
        if self.preflight and self.state.step == 0:
            for warning in self.preflight_warnings(first_batch(train_loader)):
                self.warn(warning)
        if said := gpu_defaults(self.device):  # TF32, cudnn.benchmark: what a careful hand-written loop sets
            self.logger.info(said)
        if val_loader is None and self.monitor == Monitor():
            self.monitor = Monitor("train/loss")  # no validation split: the default follows the training loss
        with ctrl_c_finishes_the_step(self), self.run_files_complete_at_the_end():
            self.hook("on_fit_start")
            for epoch in range(self.state.epoch + 1, self.epochs + 1):
                self.model.train()
                totals, batches = self.epoch_batches(train_loader, epoch)
                for batch, (inputs, targets) in batches:
                    inputs, targets = self.to_device(inputs, targets)
                    with (
                        self.failure_explained(inputs, targets),  # an error in the model or loss: named, with its layer
                        self.gradients_shared_at_step(batch, n_batches),  # torchrun: once per step
                    ):
                        with self.autocast():
                            logits = self.model(inputs)
                            batch_loss = self.loss_fn(logits, targets)
                        self.guard.watch(batch_loss, inputs, targets, epoch, batch, self.state.step + 1)
                        loss = self.share_of_accumulated(batch_loss, batch, n_batches)
                        if batch % self.accumulate == 0:
                            self.optimizer.zero_grad(set_to_none=True)  # start a new sum of gradients
                        if self.scaler is None:
                            loss.backward()  # autograd: the gradient of the loss for every parameter, in param.grad
                        else:  # fp16: scale the loss up so that small gradients do not round to zero
                            self.scaler.scale(loss).backward()
                    totals.add(batch_loss.detach(), logits.detach(), targets)
                    self.state.batch = batch + 1
                    if self.state.batch % self.accumulate and self.state.batch != n_batches:
                        continue  # keep adding gradients up
                    lr = self.lr  # the step's own: a schedule stepped every batch moves it on in optimizer_step
                    self.optimizer_step()  # clip, then each parameter moves against its gradient (never a NaN)
                    if self.state.step % self.log_every == 0:
                        values = self.values_at_log_step(totals, lr)  # the steps since the last log were finite
                        self.hook("on_step_log", self.state.step, values)  # the bar, TensorBoard, the watchdog
                    if self.stop_is_agreed():
                        return self.save_and_stop(totals)

                self.stop_if_nonfinite(before_update=False)  # the steps since the last log
                metrics = totals.compute("train")
                if val_loader is not None:
                    metrics |= self.evaluate(val_loader, "val")
                metrics["lr"] = self.lr
                if self.scheduler is not None and not self.scheduler_every_batch:
                    step_epoch_scheduler(self.scheduler, metrics)
                self.end_epoch(epoch, train_loader, metrics)  # counters, the best metric
                # The epoch line, TensorBoard, the watchdog's advice, early stopping: any callback may stop the run.
                reasons = [reason for reason in self.hook("on_epoch_end", epoch, metrics) if reason]
                if reasons and not self.state.stopped_early:
                    self.state.stopped_early, self.stop_reason = True, reasons[0]
                self.save_checkpoints(metrics)
                if self.state.stopped_early:
                    self.logger.info(self.stop_reason)
                    break

        if test_loader is not None:
            metrics |= self.evaluate(test_loader, "test")
        with self.run_files_complete_at_the_end():
            self.summary = self.summary_of(metrics, time.perf_counter() - started)
            self.hook("on_fit_end", metrics)  # summary.json, the final table, the loggers' last values
        return metrics

    def batches_per_epoch(self, loader: Iterable[Batch]) -> tuple[Iterable[Batch], int | None]:
        """The loader to read each epoch and its number of batches. Any iterable of batches will do; one without a
        len (a generator, a DataLoader over an IterableDataset) trains with a progress bar that has no total."""
        if isinstance(loader, Iterator):  # a generator gives its batches only once
            self.check_read_once(loader, "train_loader")
            loader = OnePass(loader)
        try:
            n_batches: int | None = len(loader)  # type: ignore[arg-type]
        except TypeError:  # no __len__, or a DataLoader over an IterableDataset
            n_batches = None
        if n_batches == 0 or (isinstance(loader, OnePass) and loader.first is None):
            raise ValueError(
                "train_loader gives no batches. Try: check what it reads (an empty list or Dataset, or a DataLoader "
                "with drop_last=True and a batch_size larger than the data)"
            )
        if n_batches is None and self.accumulate > 1:
            raise ValueError(
                f"accumulate={self.accumulate} steps after the last batch of an epoch too, but train_loader has no "
                "len to say which batch is the last (a generator or an IterableDataset). Try: a list of batches or "
                "a DataLoader over a Dataset with __len__, or accumulate=1"
            )
        return loader, n_batches

    def check_read_once(self, loader: Iterable[Batch] | None, name: str) -> None:
        """A generator (an iterator) can be read only once: for one epoch left, not for more."""
        if isinstance(loader, Iterator) and self.epochs - self.state.epoch > 1:
            raise ValueError(
                f"{name} is a generator (an iterator): its batches can be read only once, but epochs={self.epochs} "
                f"reads them {self.epochs - self.state.epoch} times. Try: a list of batches, a DataLoader, or an "
                "object whose __iter__ makes a new generator each time; or epochs=1"
            )

    def share_of_accumulated(self, loss: torch.Tensor, batch: int, batches: int | None) -> torch.Tensor:
        """Accumulating k batches: dividing each loss by k makes their summed gradients the gradient of their mean."""
        if self.accumulate == 1:
            return loss  # no division: it would add an operation to every step for nothing
        assert batches is not None  # accumulating needs a len: batches_per_epoch refuses a loader without one
        return loss / min(self.accumulate, batches - batch + batch % self.accumulate)  # the last group may be short

    def gradients_shared_at_step(self, batch: int, batches: int | None) -> contextlib.AbstractContextManager[Any]:
        """Under DDP, the processes add up their gradients only for the last batch before a step, not for every
        batch accumulated (DDP's no_sync); alone, a process has nothing to share."""
        last_before_step = (batch + 1) % self.accumulate == 0 or batch + 1 == batches
        if last_before_step or not isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def values_at_log_step(self, totals: MetricTotals, lr: float) -> dict[str, float]:
        """The training means since the last step log, once the NaN guard has read the flags of those steps.
        Under torchrun one all-reduce brings every process's sums, flags and Ctrl-C vote: they stop or log together."""
        vote = torch.tensor([float(self.stop_requested)], device=self.device)
        means, (flags, votes) = totals.since_last_log("train", also=[self.guard.unread(), vote])
        self.stop_votes = float(votes.sum())
        self.stop_if_nonfinite(before_update=False, flags=flags)
        return {**means, "lr": lr}

    def stop_is_agreed(self) -> bool:
        """Ctrl-C was pressed. Under torchrun the processes agree at each step log, so that all stop at one step."""
        if distributed.world_size() == 1:
            return self.stop_requested
        return self.state.step % self.log_every == 0 and self.stop_votes > 0

    def failure_explained(self, inputs: torch.Tensor, targets: torch.Tensor) -> FailureExplained:
        """Around a step: an exception from the model or the loss becomes a message naming the learner's line,
        the layer and the fix."""
        return FailureExplained(self.raw_model, self.loss_fn, inputs, targets, self.autocast)

    @contextlib.contextmanager
    def run_files_complete_at_the_end(self) -> Iterator[None]:
        """Checkpoints are written in the background; whatever ends `fit` waits until they are on disk. A run that
        fails also closes its TensorBoard file, so that what it logged is kept."""
        try:
            yield
        except BaseException as err:
            for callback in self.callbacks:  # each closes what it has open; one that fails does not hide the error
                with contextlib.suppress(Exception):
                    call_hook(callback, "on_exception", self, err)
            raise
        finally:
            self.checkpoints.wait()

    def optimizer_step(self) -> None:
        """Clip the gradients if asked, then move every parameter against its gradient; a step whose loss or
        gradients hold NaN/inf is never taken (trainer/step_guard.py), and the run stops at it."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip (and check) the true gradients, not the scaled ones
        found = self.guard.check(self.parameters)  # on the device: no wait for the GPU
        if self.guard.must_read_now():
            self.stop_if_nonfinite(before_update=True)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        with self.guard.update_skipped_if_flagged(self.optimizer, found):  # fused optimizers skip on the device
            if self.scaler is None:
                self.optimizer.step()
            else:
                self.scaler.step(self.optimizer)  # skips the step when fp16 gradients overflowed
                self.scaler.update()
        if self.scheduler is not None and self.scheduler_every_batch:
            self.scheduler.step()
        self.state.step += 1

    def epoch_batches(self, loader: Iterable[Batch], epoch: int) -> tuple[MetricTotals, Iterator[tuple[int, Batch]]]:
        """The epoch's numbered batches and its running totals; after a Ctrl-C resume, the rest of the epoch."""
        totals = MetricTotals(self.classification)
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler under torchrun: a new order every epoch
            sampler.set_epoch(epoch)
        generator = getattr(loader, "generator", None)
        if generator is not None:
            if self.state.loader_rng is not None:  # replay the order this epoch began with
                generator.set_state(self.state.loader_rng)
            self.state.loader_rng = generator.get_state()
        if self.state.totals is not None:  # the sums of the steps done before Ctrl-C, and where the last log was
            for name, value in self.state.totals.items():
                setattr(totals, name, value)
        batches = enumerate(self.logger.progress(loader, f"epoch {epoch}/{self.epochs}"))
        return totals, itertools.islice(batches, self.state.batch, None)

    def end_epoch(self, epoch: int, loader: Iterable[Batch], metrics: dict[str, float]) -> None:
        self.state.epoch, self.state.batch, self.state.totals = epoch, 0, None
        if said := self.guard.overflow_news():
            self.logger.info(said)
        generator = getattr(loader, "generator", None)
        self.state.loader_rng = generator.get_state() if generator is not None else None
        if self.monitor.name not in metrics:  # a config's monitor is checked before training; the Python API's here
            raise ValueError(
                f"monitor {self.monitor.name!r} is not a metric of this run{did_you_mean(self.monitor.name, metrics)}. "
                f"Try one of: {', '.join(metrics)}"
            )
        value = metrics[self.monitor.name]
        if self.monitor.improved(value, self.state.best_metric):
            self.state.best_metric, self.state.best_epoch, self.state.bad_epochs = value, epoch, 0
        else:
            self.state.bad_epochs += 1

    def to_device(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = inputs.to(self.device, non_blocking=True)
        if inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        return inputs, targets.to(self.device, non_blocking=True)

    def save_and_stop(self, totals: MetricTotals) -> dict[str, float]:
        """After Ctrl-C or SIGTERM: keep the epoch in progress in last.pt, so `resume` carries on from this very step.
        After a failed save: raise its error (with the path and the free space) instead."""
        self.stop_if_nonfinite(before_update=False)  # what last.pt keeps has no NaN/inf step in it
        self.checkpoints.wait()
        self.state.totals = {name: getattr(totals, name) for name in ("sums", "count", "logged", "logged_count")}
        if self.out_dir is not None:
            self.checkpoints.save(RunFiles(self.out_dir).last, self.checkpoint({}))
            self.checkpoints.wait()  # on disk before the resume command is printed
        by = STOP_SIGNALS[self.stop_signal]
        saved = "" if self.out_dir is None else " saved."
        raise StoppedBySignal(
            f"stopped by {by} after step {self.state.step};{saved}{self.how_to_resume()}", self.stop_signal
        )

    def how_to_resume(self) -> str:
        """The command that carries on: `resume` for a run folder made from a config; from the Python API (a folder
        without config.yaml, which `resume` could not rebuild) the two lines of Python that do it."""
        if self.out_dir is None:
            return " (no out_dir: nothing was saved to resume from)"
        if RunFiles(self.out_dir).config.exists():
            return f" Resume with: python -m trainer resume {self.out_dir}"
        last = RunFiles(self.out_dir).last
        return (
            f" Carry on in Python: trainer.load(trainer.checkpoint_file('{last}')), then trainer.fit(...) with the "
            "same loaders"
        )

    @staticmethod
    def checkpoint_file(path: str | Path) -> dict[str, Any]:
        """A checkpoint read back (weights_only, its checksum checked), for `load`."""
        return load_checkpoint(path)

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Batch], split: str = "val") -> dict[str, float]:
        """Loss and metrics of the model on `loader`, as {"<split>/loss": ..., "<split>/accuracy": ...}."""
        model = self.evaluated_model()
        model.eval()
        task = "classification" if self.classification else "regression"
        evaluation = Evaluation(split, Metrics(task, None, self.metric_names))
        # The loss here; accuracy too only when the chosen metrics leave it out (they count it otherwise).
        totals = MetricTotals(self.classification and "accuracy" not in evaluation.metrics.names)
        for inputs, targets in loader:
            inputs, targets = self.to_device(inputs, targets)
            with self.autocast():
                logits = model(inputs)
                loss = self.loss_fn(logits, targets)
            totals.add(loss, logits, targets)
            evaluation.metrics.update(logits.float(), targets)
            if self.pictures:  # what TensorBoard's pictures show: sample images, or the points of a 2-D problem
                if self.classification:
                    evaluation.keep_samples(inputs, logits, targets)
                evaluation.keep_points(inputs, targets)
        self.evaluation = evaluation
        evaluation.metrics.sum_across_processes()  # under torchrun: the metrics of the whole split
        return totals.compute(split) | evaluation.metrics.compute(split)

    def evaluated_model(self) -> nn.Module:
        """The model to evaluate: under torchrun the plain one, whose forward needs no other process, with rank 0's
        buffers (batch norm's running statistics: each process's last batch moved its own), the checkpoint's."""
        if distributed.world_size() == 1:
            return self.model
        distributed.buffers_of_rank_0(self.raw_model)
        return self.raw_model

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's outputs for `inputs` (any device), in evaluation mode, as float32 on the CPU."""
        model = self.evaluated_model()
        model.eval()
        return model(inputs.to(self.device)).float().cpu()

    def evaluation_details(self) -> dict[str, Any]:
        """Per-class accuracy and the confusion matrix of the last evaluation, for summary.json."""
        if self.evaluation is None:
            return {}
        per_class = self.evaluation.metrics.per_class_accuracy()
        matrix = self.evaluation.metrics.confusion_matrix()
        details: dict[str, Any] = {"evaluated_split": self.evaluation.split}
        if per_class is not None:
            details["per_class_accuracy"] = [None if math.isnan(v) else v for v in per_class]
        if matrix is not None:
            details["confusion_matrix"] = matrix.tolist()
        return details

    def final_table(self, final: dict[str, float]) -> str:
        """The last evaluated split as a table, with the accuracy of each class."""
        if self.evaluation is None:
            return ""
        values = {name: value for name, value in final.items() if name.startswith(f"{self.evaluation.split}/")}
        per_class = self.evaluation.metrics.per_class_accuracy()
        names = self.class_names if per_class and self.class_names and len(self.class_names) == len(per_class) else None
        return format_table(values, per_class, names)

    def preflight_warnings(self, batch: tuple[torch.Tensor, torch.Tensor]) -> list[str]:
        """The fast preflight, for every run of a config and of the Python API: one batch through model, loss and
        backward, as training will run it (device, memory format, autocast). Stops on what would fail; returns
        the warnings. `batch`: the first of the training data (first_batch)."""
        batch = self.to_device(*batch)
        with self.autocast():
            return check_one_batch(self.model, self.loss_fn, batch, self.device, self.num_classes)

    def stop_if_nonfinite(self, before_update: bool, flags: torch.Tensor | None = None) -> None:
        """Read the NaN guard's flags of the steps since the last read (under torchrun summed over the processes, so
        that all stop at one step) and stop at the first step whose loss or gradients held NaN/inf."""
        if flags is None:
            if not self.guard.flags:  # the same on every process: they step together
                return
            flags = distributed.sum_across([self.guard.unread()])[0]
        bad = self.guard.read(flags, before_update)
        if bad is not None:
            self.stop_on_nonfinite(bad)

    def stop_on_nonfinite(self, bad: Bad) -> None:
        """Save the weights (no NaN/inf reached them), find where the NaN/inf comes from, and stop."""
        kept, saved = bad.kept, ""
        if self.out_dir is not None:
            path = self.out_dir / CHECKPOINTS / f"nonfinite-step{kept.step}.pt"
            save_checkpoint(path, {"model": self.raw_model.state_dict(), "state": vars(self.state).copy()})
            saved = f" The weights before this step are in {path}."
            if bad.skipped_on_device:  # read at a log step: the steps after it went on
                saved = f" Its update was skipped; the weights (of step {self.state.step}, finite) are in {path}."
        where = f"at step {kept.step} (epoch {kept.epoch}, batch {kept.batch + 1})"
        if self.guard.fp16:
            where += f", the last of {OVERFLOW_PATIENCE} fp16 steps in a row that overflowed however GradScaler scaled"
        loss = bad.loss
        if math.isfinite(loss) and distributed.world_size() > 1:  # another process's part of the batch made it
            cause = "the process whose part of the batch made them names the cause in its own output"
            message = f"the loss or the gradients of another process became NaN/inf {where}: {cause}.{saved}"
        else:
            # Under torchrun a copy: DDP's hooks on the model's weights would share the diagnosis's gradients with
            # processes that have stopped.
            model = self.raw_model if distributed.world_size() == 1 else copy.deepcopy(self.raw_model)
            cause = diagnose_nonfinite(model, self.loss_fn, kept.inputs, kept.targets, self.autocast)
            what = f"the loss became {loss}" if not math.isfinite(loss) else "the gradients became NaN/inf"
            message = f"{what} {where}: {cause}.{saved}"
        self.record(message)  # the error itself is printed by whoever catches it
        raise UserError(
            message,
            fix=f"optimizer.lr={self.lr / 10:g} (10x lower), gradient clipping, precision fp32 instead of fp16, "
            "and check the inputs for NaN",
            key="optimizer.lr",
        )

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def save_checkpoints(self, metrics: dict[str, float]) -> None:
        """last.pt every epoch; best.pt when the monitored metric improves."""
        if self.out_dir is None:
            return
        last = RunFiles(self.out_dir).last
        best = last.with_name(BEST) if self.state.best_epoch == self.state.epoch else None
        self.checkpoints.save(last, self.checkpoint(metrics), also_as=best)

    def checkpoint(self, metrics: dict[str, float]) -> dict[str, Any]:
        """Everything `resume` needs, as tensors and plain data."""
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "state": vars(self.state).copy(),
            "metrics": metrics,
            "config": self.config,
            "data": self.data_info,
            "rng": rng_states(),
            "callbacks": self.callback_states(),  # what callbacks keep to resume exactly (the curves drawn per step)
            "threads": torch.get_num_threads(),  # a resume takes as many: another number rounds otherwise
        }

    def load(self, checkpoint: dict[str, Any]) -> None:
        """Carry on from a checkpoint: weights, optimizer, schedule, counters and every random generator."""
        self.raw_model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint["scheduler"] is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.scaler is not None and checkpoint["scaler"] is not None:
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainState(**checkpoint["state"])
        self.resumed_metrics = checkpoint["metrics"]
        set_rng_states(checkpoint["rng"])
        # Checkpoints of earlier versions kept the run logger's curves drawn per step as "step_tags".
        states = checkpoint.get("callbacks") or {"RunLogger": {"step_tags": checkpoint.get("step_tags", [])}}
        for callback in self.callbacks:
            if hasattr(callback, "load_state_dict") and type(callback).__name__ in states:
                callback.load_state_dict(states[type(callback).__name__])

    def callback_states(self) -> dict[str, Any]:
        """Each callback's `state_dict()`, by its class name, for checkpoints."""
        return {type(c).__name__: c.state_dict() for c in self.callbacks if hasattr(c, "state_dict")}

    def summary_of(self, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
        import torchvision

        return {
            "status": "stopped early" if self.state.stopped_early else "finished",
            "metrics": metrics,
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "best_epoch": self.state.best_epoch,
            "monitor": self.monitor.name,
            "best_metric": self.state.best_metric,
            "wall_seconds": round(seconds, 3),
            **({"fp16_overflowed_steps": self.guard.overflowed} if self.guard.fp16 else {}),
            **self.evaluation_details(),
            "device": str(self.device),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
            },
        }


class OnePass:
    """The batches of a generator, which can be read only once. The first is kept, so that the preflight can look
    at it and training still begins with it."""

    def __init__(self, batches: Iterator[Batch]):
        self.batches = batches
        self.first = next(batches, None)

    def __iter__(self) -> Iterator[Batch]:
        if self.first is not None:
            yield self.first
        yield from self.batches


class FailureExplained:
    """A context for one step (a class, not a generator: it is entered every step). An exception from the model
    or the loss is explained by running the batch again with the layers watched; ours and the disk's pass as
    they are."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, autocast: Any):
        self.model, self.loss_fn, self.inputs, self.targets, self.autocast = model, loss_fn, inputs, targets, autocast

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> None:
        if isinstance(err, Exception) and not isinstance(err, UserError | OSError):
            batch = (self.model, self.loss_fn, self.inputs, self.targets)
            raise explain_batch_failure(err, *batch, autocast=self.autocast) from err


SAMPLE_BATCHES = 8  # the evaluation batches in which samples to draw are looked for


@dataclass
class Evaluation:
    """One pass over a split: its metrics, and a batch of (inputs, outputs, targets) to look at."""

    split: str
    metrics: Metrics
    samples: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    points: tuple[torch.Tensor, torch.Tensor] | None = None  # (inputs, targets) of problems with 1 or 2 inputs
    sample_batches: int = 0  # the batches keep_samples has looked at

    def keep_points(self, inputs: torch.Tensor, targets: torch.Tensor, limit: int = 1000) -> None:
        """Keep up to `limit` samples of a problem with one or two input features, to draw with the model's answer."""
        if inputs.dim() != 2 or inputs.shape[1] > 2 or (self.points is not None and len(self.points[0]) >= limit):
            return
        batch = (inputs[:limit].float(), targets[:limit])  # on the device: copied once, when drawn
        if self.points is not None:
            batch = (torch.cat([self.points[0], batch[0]])[:limit], torch.cat([self.points[1], batch[1]])[:limit])
        self.points = batch

    def keep_samples(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, limit: int = 64) -> None:
        """Keep up to `limit` samples to look at, the misclassified ones of every batch first, from the first
        SAMPLE_BATCHES batches (thousands of samples: enough to find the mistakes a picture shows, and the rest of
        the split costs nothing). Chosen on the device (no copy, no wait per batch); the pictures copy them to the
        CPU once, when they are drawn."""
        if logits.dim() != 2 or targets.dim() != 1 or self.sample_batches >= SAMPLE_BATCHES:
            return
        self.sample_batches += 1
        wrong_first = torch.argsort((logits.argmax(dim=1) == targets).to(torch.int8), stable=True)[:limit]
        batch = (inputs[wrong_first].float(), logits[wrong_first].float(), targets[wrong_first])
        if self.samples is not None:
            batch = tuple(torch.cat([kept, new]) for kept, new in zip(self.samples, batch, strict=True))
        right_last = torch.argsort((batch[1].argmax(dim=1) == batch[2]).to(torch.int8), stable=True)[:limit]
        self.samples = (batch[0][right_last], batch[1][right_last], batch[2][right_last])


class MetricTotals:
    """Running sums of loss and correct predictions, kept as tensors so the loop never waits for the device."""

    def __init__(self, classification: bool):
        self.classification = classification
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.logged: dict[str, float] = {}  # the sums at the last step log, to report the mean since then
        self.logged_count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        n = len(targets)
        if not self.sums:  # made once and added to in place: two small operations per step
            self.sums["loss"] = torch.zeros((), dtype=torch.float64, device=loss.device)
            if self.classification:
                self.sums["accuracy"] = torch.zeros((), dtype=torch.int64, device=loss.device)
                self.sums["labelled"] = torch.zeros((), dtype=torch.int64, device=loss.device)
        self.sums["loss"].add_(loss, alpha=n)
        if self.classification:
            # A negative target is the loss's ignore_index (-100 by default: an unlabelled sample): the loss leaves
            # it out, so it counts neither as right nor as wrong.
            labelled = targets >= 0
            self.sums["accuracy"].add_(((logits.argmax(dim=1) == targets) & labelled).sum())
            self.sums["labelled"].add_(labelled.sum())
        self.count += n

    def global_totals(self, also: Sequence[torch.Tensor] = ()) -> tuple[dict[str, float], int, list[torch.Tensor]]:
        """The sums and the count, over every process under torchrun, read from the device once; `also`: other
        tensors to sum over the processes in the same all-reduce."""
        summed, count = distributed.sum_with_count([*self.sums.values(), *also], self.count)
        sums = summed[: len(self.sums)]
        return {name: value.item() for name, value in zip(self.sums, sums, strict=True)}, count, summed[len(sums) :]

    def compute(self, split: str) -> dict[str, float]:
        sums, count, _ = self.global_totals()
        return _means(split, sums, count)

    def since_last_log(
        self, split: str, also: Sequence[torch.Tensor] = ()
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        """The means since the last log, and the tensors `also` summed over the processes with them."""
        sums, count, summed = self.global_totals(also)
        since = {name: value - self.logged.get(name, 0.0) for name, value in sums.items()}
        means = _means(split, since, count - self.logged_count)
        self.logged, self.logged_count = sums, count
        return means, summed


def _means(split: str, sums: dict[str, float], count: int) -> dict[str, float]:
    """The mean loss per sample, and the accuracy among the samples that have a label."""
    means = {f"{split}/loss": sums["loss"] / max(count, 1)}
    if "accuracy" in sums:
        means[f"{split}/accuracy"] = sums["accuracy"] / sums["labelled"] if sums["labelled"] else math.nan
    return means


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StoppedBySignal(StoppedByUser):
    """The run stopped after a step and was saved; the exit code says which signal asked (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def ctrl_c_finishes_the_step(trainer: Trainer) -> Iterator[None]:
    """The first Ctrl-C, or SIGTERM (what SLURM, Kubernetes and `timeout` send before they kill a job), asks the
    loop to stop after the current step and save, so the job resumes exactly; a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_to_stop(signum: int, frame: Any) -> None:
        trainer.stop_requested, trainer.stop_signal = True, signal.Signals(signum)
        again = "press Ctrl-C" if signum == signal.SIGINT else "send it"
        trainer.logger.info(f"{STOP_SIGNALS[signum]}: finishing this step and saving ({again} again to stop at once)")
        restore()

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    previous = {signum: signal.signal(signum, ask_to_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        restore()


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' is CUDA when there is a GPU, then Apple's MPS, else the CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_task(loss_fn: LossFn) -> str:
    """Class-index losses (cross entropy, NLL; as modules or as torch's functions) make a classification run;
    anything else is regression."""
    return "classification" if takes_class_indices(loss_fn) else "regression"


def step_epoch_scheduler(scheduler: Any, metrics: dict[str, float]) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metrics.get("val/loss", metrics["train/loss"]))
    else:
        scheduler.step()
