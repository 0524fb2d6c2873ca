"""The NaN/inf guard of the training step, kept on the device so that the loop does not wait for a GPU every step.

After backward, one fused check over the step's losses and gradients (GradScaler's own kernel) sets a flag on the
device. A fused optimizer (Adam, AdamW and SGD on CUDA, leaptrain's default there) reads that flag itself and skips
its update, so no NaN reaches the weights while the CPU runs ahead. The flags are then read at log steps, all at once,
and the batches since the last read are kept to diagnose the first bad one. Where the optimizer cannot skip on the
device (any unfused one; on the CPU, where reading costs nothing, leaptrain does not fuse), the flag is read every
step, before the update.

Under fp16, GradScaler skips the steps whose gradients overflow and lowers its scale; now and then that is normal.
Those steps are counted, and the run stops only when OVERFLOW_PATIENCE of them come in a row.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from trainer import distributed

KEEP_BYTES = 256 * 2**20  # the kept batches' size at which the flags are read before the next log step
OVERFLOW_PATIENCE = 10  # fp16 steps in a row that overflow: GradScaler's scale fell 1000x, a real NaN/inf


@dataclass
class KeptBatch:
    """One batch of a step whose flag has not been read yet: what the diagnosis reruns."""

    inputs: torch.Tensor
    targets: torch.Tensor
    loss: torch.Tensor  # detached
    epoch: int
    batch: int  # in the epoch, from 0
    step: int  # the optimizer step it belongs to, from 1


@dataclass
class Bad:
    """The step the run stops at: the batch to diagnose, and whether its update was skipped on the device (later
    steps then went on until the read) or the read came before it."""

    kept: KeptBatch
    skipped_on_device: bool

    @property
    def loss(self) -> float:
        return self.kept.loss.item()


class StepGuard:
    """Flags each step whose loss or gradients hold NaN/inf; `read` says which step to stop at, if any."""

    def __init__(self, optimizer: torch.optim.Optimizer | None, device: torch.device, fp16: bool):
        self.fp16 = fp16
        # Fused optimizers take GradScaler's `found_inf` and skip their update on the device when it is set.
        self.skips_on_device = bool(getattr(optimizer, "_step_supports_amp_scaling", False))
        self.reads_every_step = not self.skips_on_device  # on the CPU leaptrain's optimizers are not fused: free
        self.kept: list[KeptBatch] = []
        self.flags: list[torch.Tensor] = []  # one per step since the last read: 1.0 where it held NaN/inf
        self.steps: list[int] = []  # the steps of those flags
        self.steps_kept_at_most: int | None = None  # set by the first batch's size (KEEP_BYTES)
        self.overflowed = 0  # fp16: the steps GradScaler skipped, this run
        self.overflowed_in_a_row = 0
        self.overflowed_said = 0
        self.one = torch.ones((), device=device)  # 0-dim, as GradScaler's: fused Adam subtracts it from its steps

    def watch(self, loss: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, epoch: int, batch: int,
              step: int) -> None:  # fmt: skip
        """Keep a batch of this step (every batch accumulated into it) until its flag is read."""
        if self.steps_kept_at_most is None:
            self.steps_kept_at_most = max(1, KEEP_BYTES // max(1, inputs.nbytes + targets.nbytes))
        self.kept.append(KeptBatch(inputs, targets, loss.detach(), epoch, batch, step))

    def check(self, parameters: Iterable[torch.Tensor]) -> torch.Tensor:
        """After backward (and GradScaler's unscale_), before the update: this step's flag, on the device."""
        found = torch.zeros((), device=self.one.device)
        step = self.kept[-1].step
        of_step = itertools.takewhile(lambda kept: kept.step == step, reversed(self.kept))  # the step's batches
        losses = [kept.loss.reshape(1) for kept in of_step]
        grads = [p.grad for p in parameters if p.grad is not None]
        dense = [grad for grad in grads if not grad.is_sparse]
        # One kernel over the losses and the gradients, GradScaler's: it sets `found` on any NaN/inf (and scales
        # them by 1, which leaves them as they are).
        torch._amp_foreach_non_finite_check_and_unscale_([*losses, *dense], found, self.one)
        if len(dense) < len(grads):  # embeddings with sparse=True: rare, checked one by one
            for grad in grads:
                if grad.is_sparse and not torch.isfinite(grad.coalesce().values()).all():
                    found.fill_(1.0)
        self.flags.append(found)
        self.steps.append(step)
        return found

    def must_read_now(self) -> bool:
        """Read before this step's update: always where the update cannot be skipped on the device, else once the
        kept batches would pass KEEP_BYTES (the log steps read too). Under torchrun only at log steps: every
        process must read at the same steps, and their batches' sizes may differ by a sample."""
        if self.reads_every_step:
            return True
        return distributed.world_size() == 1 and len(self.flags) >= (self.steps_kept_at_most or 1)

    @contextlib.contextmanager
    def update_skipped_if_flagged(self, optimizer: torch.optim.Optimizer, found: torch.Tensor) -> Iterator[None]:
        """Around optimizer.step(): a fused optimizer skips its update where the flag is set. Under fp16,
        GradScaler passes its own flag (of the gradients it unscaled) and skips the same way."""
        if not self.skips_on_device or self.fp16:
            yield
            return
        optimizer.found_inf = found  # type: ignore[attr-defined]
        try:
            yield
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]

    def unread(self) -> torch.Tensor:
        """The flags of the steps since the last read, on the device (for an all-reduce under torchrun)."""
        return torch.stack(self.flags) if self.flags else self.one.new_zeros(0)

    def read(self, flags: torch.Tensor, before_update: bool) -> Bad | None:
        """Copy `flags` (the unread ones, summed over processes under torchrun) to the CPU: the step to stop at.
        fp16 steps that overflowed are counted; the run stops only at OVERFLOW_PATIENCE in a row.
        `before_update`: read in the step, before its update (else after it, at a log step or an epoch's end)."""
        kept, steps = self.kept, self.steps
        self.kept, self.flags, self.steps = [], [], []
        for step, flag in zip(steps, flags.tolist(), strict=True):
            if not flag:
                self.overflowed_in_a_row = 0
                continue
            if self.fp16:
                self.overflowed += 1
                self.overflowed_in_a_row += 1
                if self.overflowed_in_a_row < OVERFLOW_PATIENCE:
                    continue
            batches = [batch for batch in kept if batch.step == step]
            nonfinite = [batch for batch in batches if not torch.isfinite(batch.loss)]
            skipped = not (before_update and step == steps[-1])  # its update not taken yet: the weights are before it
            return Bad((nonfinite or batches)[0], skipped_on_device=skipped)
        return None

    def overflow_news(self) -> str:
        """fp16: the steps GradScaler skipped since this was last asked (at an epoch's end), in words; else ''."""
        new, self.overflowed_said = self.overflowed - self.overflowed_said, self.overflowed
        if not new:
            return ""
        return (
            f"fp16: GradScaler skipped {new} step{'s' if new > 1 else ''} whose gradients overflowed and lowered its "
            "scale (now and then this is normal; the run stops if it happens "
            f"{OVERFLOW_PATIENCE} steps in a row)"
        )
