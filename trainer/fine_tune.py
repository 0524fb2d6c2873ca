"""Fine-tuning in two phases (train.fine_tune): the new last layer alone while the pretrained backbone is frozen,
then every layer, the backbone at a lower learning rate so that a few steps do not wreck what it learned.

A callback: at the start it freezes the backbone (or, resuming past the first phase, leaves it free); at the end of
the last head-only epoch it unfreezes it. The optimizer was made with the two groups and their learning rates
(`parameter_groups`), so unfreezing is only letting the backbone's weights have gradients again.
"""

from __future__ import annotations

from typing import Any

from trainer import distributed
from trainer.components.pretrained import Pretrained
from trainer.errors import UserError


def parameter_groups(model: Pretrained, lr: float, body_lr_factor: float) -> list[dict[str, Any]]:
    """The optimizer's groups: the head at the config's lr, the backbone at `body_lr_factor` times it."""
    return [{"params": model.head_parameters()}, {"params": model.body_parameters(), "lr": lr * body_lr_factor}]


class FineTune:
    """Trains the head alone for `head_epochs` epochs, then the whole model (see the module's docstring)."""

    def __init__(self, model: Pretrained, head_epochs: int) -> None:
        self.model, self.head_epochs = model, head_epochs

    def on_fit_start(self, trainer: Any) -> None:
        if distributed.world_size() > 1:  # DDP leaves out of its gradient sharing what is frozen when it starts
            raise UserError(
                "train.fine_tune unfreezes the backbone during the run, which DistributedDataParallel cannot follow",
                fix="run the two phases one after the other: first with model.freeze=backbone, then with "
                "model.freeze=none and model.weights=<the first run>/checkpoints/best.pt",
                key="train.fine_tune",
            )
        frozen = trainer.state.epoch < self.head_epochs
        self.model.set_frozen(frozen)
        if frozen:
            body, head = trainer.optimizer.param_groups[1]["lr"], trainer.optimizer.param_groups[0]["lr"]
            trainer.logger.info(
                f"fine-tuning: epochs 1-{self.head_epochs} train only the new last layer ({self.model.head}); then "
                f"the backbone unfreezes and trains at lr {body:g} ({body / head:g} x the head's)"
            )

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if epoch == self.head_epochs and epoch < trainer.epochs:
            self.model.set_frozen(False)
            lr = trainer.optimizer.param_groups[1]["lr"]
            trainer.logger.info(f"fine-tuning: the backbone is unfrozen; from epoch {epoch + 1} it trains at lr {lr:g}")
