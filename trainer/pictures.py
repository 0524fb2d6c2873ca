"""TensorBoard's Images and Histograms tabs, as two callbacks of a run with a run folder: after each validation the
confusion matrix and sample predictions (or a toy problem's regions or curve), and every few epochs the weights and
their gradients. Both write through the run logger's TensorBoard writer (trainer/logger.py)."""

from __future__ import annotations

import io
import time
from typing import Any

import torch

PICTURE_BUDGET = 0.01  # the most of the training time that drawing pictures for TensorBoard may take


def add_picture(writer: Any, tag: str, image: torch.Tensor, step: int) -> None:
    """A 3 x H x W uint8 image in TensorBoard's Images tab.

    What `SummaryWriter.add_image` does, at half the cost: it converts the pixels to floats and back and
    compresses harder, which for these flat-coloured pictures saves little space and takes most of the time.
    """
    from PIL import Image
    from torch.utils.tensorboard.summary import Summary

    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG", compress_level=1)
    picture = Summary.Image(height=image.shape[1], width=image.shape[2], colorspace=3)
    picture.encoded_image_string = buffer.getvalue()
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)


class Pictures:
    """Pictures of each validation: the confusion matrix and sample inputs with their predictions; for problems
    with two input features the regions the model gives each class, with one feature its curve.

    Drawing them takes some 50 ms. When epochs are short they are drawn less often, so that they never take more
    than 1% of the training time; the last epoch always gets them, and so does the last validation of a run that
    stops early. Called before the run logger, which flushes and closes the writer after it.
    """

    def __init__(self, board: Any) -> None:
        self.board = board  # the RunLogger, whose `tensorboard` writer is made on first use
        self.undrawn: tuple[Any, int] | None = None  # the last validation and its step, when the budget skipped it
        self.seconds = 0.05  # a first guess at the drawing time, measured once drawn
        self.drawn_at = time.perf_counter()

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        evaluation = trainer.evaluation
        if evaluation is not None and evaluation.split == "val":
            drawn = self.draw(trainer, evaluation, trainer.state.step, last=epoch == trainer.epochs)
            self.undrawn = None if drawn else (evaluation, trainer.state.step)

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if self.undrawn is not None:  # the run stopped before its last epoch: its last pictures are drawn all the same
            evaluation, step = self.undrawn
            self.draw(trainer, evaluation, step, last=True)

    def draw(self, trainer: Any, evaluation: Any, step: int, last: bool) -> bool:
        """Draw the pictures of `evaluation` unless the time budget says to wait; returns whether they were drawn."""
        from trainer.visuals import confusion_matrix_image, fitted_curve_image, region_map_image, sample_grid_image

        started = time.perf_counter()
        if not last and self.seconds > PICTURE_BUDGET * (started - self.drawn_at):
            return False
        writer, split, predict = self.board.tensorboard, evaluation.split, trainer.predict
        matrix = evaluation.metrics.confusion_matrix()
        names = trainer.class_names
        names = names if names and matrix is not None and len(names) == len(matrix) else None
        if matrix is not None:
            add_picture(writer, f"{split}/confusion_matrix", confusion_matrix_image(matrix, names), step)
        if evaluation.samples is not None and matrix is not None:
            inputs, outputs, targets = (kept.cpu() for kept in evaluation.samples)  # the one copy of the epoch
            total = int(matrix.sum())  # the heading counts the whole split, not the few samples kept to draw
            grid = sample_grid_image(inputs, outputs, targets, names, split=(split, total, total - int(matrix.trace())))
            if grid is not None:
                add_picture(writer, f"{split}/samples (wrong first)", grid, step)
        if evaluation.points is not None:
            inputs, targets = (kept.cpu() for kept in evaluation.points)
            if inputs.shape[1] == 2 and not targets.is_floating_point():
                add_picture(writer, f"{split}/decision regions", region_map_image(predict, inputs, targets), step)
            elif inputs.shape[1] == 1 and targets.is_floating_point():
                add_picture(writer, f"{split}/fitted curve", fitted_curve_image(predict, inputs, targets), step)
        self.drawn_at = time.perf_counter()
        self.seconds = self.drawn_at - started
        return True


class Histograms:
    """Every `every` epochs, the weights and their last gradients: one histogram per parameter tensor."""

    def __init__(self, board: Any, every: int) -> None:
        self.board, self.every = board, every

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if epoch % self.every:
            return
        writer, step = self.board.tensorboard, trainer.state.step
        for name, parameter in trainer.raw_model.named_parameters():
            writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)
            if parameter.grad is not None:
                writer.add_histogram(f"gradients/{name}", parameter.grad.float().cpu(), step)
