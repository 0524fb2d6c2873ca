"""The Trainer: fit a model with autograd, then evaluate it. `fit` is the whole training loop; read it top to bottom."""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.checkpoint import TrainState, link_atomic, rng_states, save_checkpoint
from trainer.diagnostics import check_one_batch
from trainer.errors import UserError
from trainer.logger import ConsoleLogger, RunLogger
from trainer.watchdog import Watchdog, diagnose_nonfinite

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Trainer:
    """Trains `model` by minimizing `loss_fn(model(inputs), targets)` with `optimizer`.

    `out_dir` (optional) receives checkpoints, TensorBoard events, metrics.jsonl and summary.json.
    `task` is "classification" (reports accuracy) or "regression"; by default it follows the loss.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: Any = None,
        scheduler_every_batch: bool = False,
        epochs: int = 3,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        task: str | None = None,
        out_dir: str | Path | None = None,
        log_every: int = 50,
        config: dict[str, Any] | None = None,
        preflight: bool = True,
        num_classes: int | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.scheduler, self.scheduler_every_batch = scheduler, scheduler_every_batch
        self.epochs, self.log_every = epochs, log_every
        self.classification = (task or default_task(loss_fn)) == "classification"
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA GPU; use precision 'bf16' (or 'fp32') on this device")
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.config = config or {}
        self.out_dir = Path(out_dir) if out_dir is not None else None
        hparams = flatten(self.config) or {"lr": optimizer.param_groups[0]["lr"], "epochs": epochs}
        self.logger = RunLogger(self.out_dir, hparams) if self.out_dir else ConsoleLogger()
        self.state = TrainState()
        self.preflight, self.num_classes = preflight, num_classes
        self.watchdog = Watchdog(optimizer.param_groups[0]["lr"])

    def fit(
        self,
        train_loader: Iterable[Batch],
        val_loader: Iterable[Batch] | None = None,
        test_loader: Iterable[Batch] | None = None,
    ) -> dict[str, float]:
        """Train for the remaining epochs; evaluate on `test_loader` at the end. Returns the final metrics."""
        started, metrics = time.perf_counter(), {}
        if self.preflight and self.state.epoch == 0:
            self.check_one_batch(train_loader)
        for epoch in range(self.state.epoch + 1, self.epochs + 1):
            self.model.train()
            totals = MetricTotals(self.classification)
            batches = self.logger.progress(train_loader, f"epoch {epoch}/{self.epochs}")
            for batch, (inputs, targets) in enumerate(batches):
                inputs, targets = inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
                with self.autocast():
                    logits = self.model(inputs)
                    loss = self.loss_fn(logits, targets)
                if not torch.isfinite(loss):  # stop before a NaN reaches the weights
                    self.stop_on_nonfinite(loss, inputs, targets, epoch, batch)
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is None:
                    loss.backward()  # autograd: the gradient of the loss for every parameter, in param.grad
                    self.optimizer.step()  # each parameter moves against its gradient
                else:  # fp16: scale the loss up so that small gradients do not round to zero
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                if self.scheduler is not None and self.scheduler_every_batch:
                    self.scheduler.step()
                self.state.step += 1
                totals.add(loss.detach(), logits.detach(), targets)
                if self.state.step % self.log_every == 0:
                    values = {**totals.since_last_log("train"), "lr": self.lr}
                    self.logger.log_step(self.state.step, values)
                    self.watchdog.on_step_log(values)

            metrics = totals.compute("train")
            if val_loader is not None:
                metrics |= self.evaluate(val_loader, "val")
            metrics["lr"] = self.lr
            if self.scheduler is not None and not self.scheduler_every_batch:
                step_epoch_scheduler(self.scheduler, metrics)
            self.state.epoch = epoch
            self.logger.log_epoch(epoch, self.epochs, metrics, self.state.step)
            for advice in self.watchdog.epoch_advice(metrics):
                self.logger.warn(advice)
            self.save_checkpoints(metrics)

        if test_loader is not None:
            metrics |= self.evaluate(test_loader, "test")
        self.logger.finish(metrics, self.summary(metrics, time.perf_counter() - started))
        return metrics

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Batch], split: str = "val") -> dict[str, float]:
        """Mean loss (and accuracy) of the model on `loader`, as {"<split>/loss": ..., ...}."""
        self.model.eval()
        totals = MetricTotals(self.classification)
        for inputs, targets in loader:
            inputs, targets = inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
            with self.autocast():
                logits = self.model(inputs)
                loss = self.loss_fn(logits, targets)
            totals.add(loss, logits, targets)
        return totals.compute(split)

    def check_one_batch(self, loader: Iterable[Batch]) -> None:
        """The fast preflight: one batch through model, loss and backward; stops on what would fail."""
        for warning in check_one_batch(self.model, self.loss_fn, loader, self.device, self.num_classes):
            self.logger.warn(warning)

    def stop_on_nonfinite(
        self, loss: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, epoch: int, batch: int
    ) -> None:
        """Save the weights as they are before this step, find where the NaN/inf comes from, and stop."""
        saved = ""
        if self.out_dir is not None:
            path = self.out_dir / "checkpoints" / f"nonfinite-step{self.state.step + 1}.pt"
            save_checkpoint(path, {"model": self.model.state_dict(), "state": vars(self.state).copy()})
            saved = f" The weights before this step are in {path}."
        cause = diagnose_nonfinite(self.model, self.loss_fn, inputs, targets)
        message = (
            f"the loss became {loss.item()} at step {self.state.step + 1} (epoch {epoch}, batch {batch + 1}): "
            f"{cause}.{saved}"
        )
        self.logger.record(message)  # the error itself is printed by whoever catches it
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
        """last.pt every epoch; best.pt when the monitored metric (val/loss, else train/loss) improves."""
        if self.out_dir is None:
            return
        self.state.monitor = "val/loss" if "val/loss" in metrics else "train/loss"
        value = metrics[self.state.monitor]
        improved = self.state.best_metric is None or value < self.state.best_metric
        if improved:
            self.state.best_metric, self.state.best_epoch = value, self.state.epoch
        checkpoint = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "state": vars(self.state).copy(),
            "metrics": metrics,
            "config": self.config,
            "rng": rng_states(),
        }
        last = self.out_dir / "checkpoints" / "last.pt"
        save_checkpoint(last, checkpoint)
        if improved:
            link_atomic(last, last.with_name("best.pt"))

    def summary(self, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
        import torchvision

        return {
            "status": "finished",
            "metrics": metrics,
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "best_epoch": self.state.best_epoch,
            "monitor": self.state.monitor,
            "best_metric": self.state.best_metric,
            "wall_seconds": round(seconds, 3),
            "device": str(self.device),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
            },
        }


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
        batch = {"loss": loss * n}
        if self.classification:
            batch["accuracy"] = (logits.argmax(dim=1) == targets).sum()
        for name, value in batch.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += n

    def compute(self, split: str) -> dict[str, float]:
        return {f"{split}/{name}": value.item() / max(self.count, 1) for name, value in self.sums.items()}

    def since_last_log(self, split: str) -> dict[str, float]:
        sums = {name: value.item() for name, value in self.sums.items()}
        n = max(self.count - self.logged_count, 1)
        means = {f"{split}/{name}": (value - self.logged.get(name, 0.0)) / n for name, value in sums.items()}
        self.logged, self.logged_count = sums, self.count
        return means


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
    """Class-index losses (cross entropy, NLL) make a classification run; anything else is regression."""
    return "classification" if type(loss_fn).__name__ in ("CrossEntropyLoss", "NLLLoss") else "regression"


def step_epoch_scheduler(scheduler: Any, metrics: dict[str, float]) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metrics.get("val/loss", metrics["train/loss"]))
    else:
        scheduler.step()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}, for the HParams dashboard."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat
