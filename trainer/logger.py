"""What a run shows and keeps: tqdm bars and one line per epoch; TensorBoard, metrics.jsonl and summary.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm  # tqdm.write: a line printed above the bar

from trainer.atomic import file_in_the_way, write_atomic
from trainer.board import (
    chart_layout,
    config_text,
    diagnosis_text,
    experiment_summary,
    hparam_columns,
    hparam_row,
    result_metrics,
    sibling_configs,
)
from trainer.errors import UserError
from trainer.progress import progress_bar
from trainer.yamlio import flatten

Batch = TypeVar("Batch")
PICTURE_BUDGET = 0.01  # the most of the training time that drawing pictures for TensorBoard may take


def new_run_dir(log_dir: str | Path, name: str) -> Path:
    """runs/<name>/<YYYYmmdd-HHMMSS>/, with -2, -3... when a run started in the same second."""
    base = Path(log_dir) / name / datetime.now().strftime("%Y%m%d-%H%M%S")
    refuse_a_file_in_the_way(base, "run folder")
    run_dir, n = base, 1
    while True:
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            n += 1
            run_dir = base.with_name(f"{base.name}-{n}")


def refuse_a_file_in_the_way(folder: Path, what: str) -> None:
    """A folder cannot be made inside a file (log.dir=notes.txt/runs): the file in the way is named, with a log.dir
    that works, before mkdir would fail with 'Not a directory'."""
    in_a_file = file_in_the_way(folder)
    if in_a_file is None:
        return
    other = in_a_file.parent / ("runs" if in_a_file.name != "runs" else "my_runs")
    raise UserError(
        f"cannot make the {what} {folder}: {in_a_file} is a file, not a folder",
        fix=f"log.dir={other} (a folder, or a path not yet there), or move {in_a_file} away",
        key="log.dir",
    )


def format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for name, value in metrics.items():
        if name.endswith(("accuracy", "top5")):
            parts.append(f"{name} {value:.2%}")
        elif name == "lr":
            parts.append(f"lr {value:.2e}")
        else:
            parts.append(f"{name} {value:.4f}")
    return "  ".join(parts)


class ConsoleLogger:
    """A progress bar per epoch and one line when it ends; used alone by the Python API without out_dir.

    The bar shows in a terminal and in a notebook, as a widget or as a line redrawn in place (trainer/progress.py
    chooses). When the output goes to a file or a CI log there is no bar, whose redraws would fill the log: only
    the line per epoch. `progress=False` turns the bar off everywhere.
    """

    def __init__(self, progress: bool = True) -> None:
        self.bar: Any = None
        self.epoch_started = time.perf_counter()
        self.show_bar = progress

    def progress(self, loader: Iterable[Batch], description: str) -> Iterator[Batch]:
        self.epoch_started = time.perf_counter()
        self.bar = progress_bar(
            loader, desc=description, unit="batch", enabled=self.show_bar, leave=False, dynamic_ncols=True
        )
        try:
            yield from self.bar
        finally:  # also when training stops with an error: the message is not mixed with a half bar
            self.bar.close()

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(format_metrics(values), refresh=False)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        seconds = time.perf_counter() - self.epoch_started
        tqdm.write(f"epoch {epoch}/{trainer.epochs}  {format_metrics(metrics)}  ({seconds:.1f}s)")

    def info(self, text: str) -> None:
        tqdm.write(text)

    def log_graph(self, model: Any, inputs: Any) -> None:
        """Only a run folder keeps the graph."""

    def add_picture(self, tag: str, image: torch.Tensor, step: int) -> None:
        """A 3 x H x W uint8 image in TensorBoard's Images tab.

        What `SummaryWriter.add_image` does, at half the cost: it converts the pixels to floats and back and
        compresses harder, which for these flat-coloured pictures saves little space and takes most of the time.
        """
        import io

        from PIL import Image
        from torch.utils.tensorboard.summary import Summary

        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG", compress_level=1)
        picture = Summary.Image(height=image.shape[1], width=image.shape[2], colorspace=3)
        picture.encoded_image_string = buffer.getvalue()
        summary = Summary(value=[Summary.Value(tag=tag, image=picture)])
        self.tensorboard.file_writer.add_summary(summary, step)

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        table = trainer.final_table(metrics)
        if table:
            tqdm.write(table)
        else:
            tested = {k: v for k, v in metrics.items() if k.startswith("test/")}
            tqdm.write(f"test  {format_metrics(tested)}" if tested else "")
        tqdm.write(f"done in {trainer.summary['wall_seconds']:.1f}s")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """The run ended without on_fit_end (an error, Ctrl-C): release what is open."""


class SilentLogger(ConsoleLogger):
    """For the processes other than rank 0 under torchrun: they train, and rank 0 alone shows and saves."""

    def progress(self, loader: Iterable[Batch], description: str) -> Iterator[Batch]:
        yield from loader

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def info(self, text: str) -> None:
        pass

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        pass


class RunLogger(ConsoleLogger):
    """Also keeps the run folder: TensorBoard events, metrics.jsonl (one line per epoch) and summary.json."""

    def __init__(
        self,
        run_dir: str | Path,
        progress: bool = True,
        pictures: bool = True,
        histograms: int = 0,
        events: bool = True,
    ):
        super().__init__(progress)
        self.run_dir = Path(run_dir)
        self.events = events  # TensorBoard's event files; log.loggers without tensorboard leaves them out
        self.pictures, self.histograms = pictures, histograms
        self.writer: Any = None
        self.purge_step: int | None = None
        self.hparams: dict[str, Any] = {}  # this run's HParams row
        self.sibling_hparams: list[dict[str, Any]] = []  # the rows of the other runs in the folder above
        self.layout_written = False
        self.undrawn: Any = None  # the last validation's pictures, when the time budget skipped them
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.step_tags: set[str] = set()  # curves drawn per step; their epoch means stay out of TensorBoard
        self.warnings: list[str] = []
        self.picture_seconds = 0.05  # a first guess at the drawing time, measured once drawn
        self.pictures_drawn_at = time.perf_counter()

    def on_fit_start(self, trainer: Any) -> None:
        # The HParams row names the config's keys as overrides do; the Python API's run has no config to name.
        own = flatten(trainer.config) or {"optimizer.lr": trainer.lr, "train.epochs": trainer.epochs}
        siblings = sibling_configs(self.run_dir)
        columns = hparam_columns(own, siblings)
        self.hparams = hparam_row(own, columns)
        self.sibling_hparams = [hparam_row(config, columns) for config in siblings]
        if trainer.state.step > 0:
            self.resume_at(trainer.state.epoch, trainer.state.step)
        else:
            self.tensorboard.add_text("config", config_text(trainer.config), 0)

    def state_dict(self) -> dict[str, Any]:
        return {"step_tags": sorted(self.step_tags)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_tags.update(state.get("step_tags", ()))

    def resume_at(self, epoch: int, step: int, step_tags: Iterable[str] = ()) -> None:
        """Carry on an earlier run in its folder: forget what it logged after the checkpoint it resumes from.
        `step_tags`: the curves it drew per step until then, whose epoch means stay out of TensorBoard as before."""
        self.step, self.purge_step = step, step + 1  # what was logged at the checkpoint's own step stays
        self.step_tags.update(step_tags)
        path = self.run_dir / "metrics.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        self.history = [row for row in rows if row["epoch"] <= epoch]
        diagnosis = self.run_dir / "diagnosis.txt"
        if diagnosis.exists():
            self.warnings = [line[2:] for line in diagnosis.read_text().splitlines() if line.startswith("- ")]

    @property
    def tensorboard(self) -> Any:
        if not self.events:
            return NoTensorBoard()
        if self.writer is None:  # made on first use, so that a resumed run can drop the steps it will redo
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir), purge_step=self.purge_step)
        return self.writer

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        super().on_step_log(trainer, step, values)
        self.step = step
        self.step_tags.update(values)
        for name, value in values.items():
            self.tensorboard.add_scalar(name, value, step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        super().on_epoch_end(trainer, epoch, metrics)
        self.step = step = trainer.state.step
        for name, value in metrics.items():
            if name not in self.step_tags:
                self.tensorboard.add_scalar(name, value, self.step)
        self.tensorboard.add_scalar("epoch", epoch, self.step)
        if not self.layout_written and self.purge_step is None:  # a resumed run's first part wrote it already
            self.tensorboard.add_custom_scalars(chart_layout(metrics))
        self.layout_written = True
        self.tensorboard.flush()
        self.history.append({"epoch": epoch, "step": self.step, **metrics})
        write_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))
        evaluation = trainer.evaluation
        if self.pictures and evaluation is not None and evaluation.split == "val":
            drawn = self.log_evaluation(evaluation, step, trainer.class_names, epoch == trainer.epochs, trainer.predict)
            self.undrawn = None if drawn else (evaluation, step)
        if self.histograms and epoch % self.histograms == 0:
            self.log_histograms(trainer.raw_model, step)  # weights and their last gradients

    def log_histograms(self, model: Any, step: int) -> None:
        """Weights and their last gradients, one histogram per parameter tensor (TensorBoard's Histograms tab)."""
        for name, parameter in model.named_parameters():
            self.tensorboard.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)
            if parameter.grad is not None:
                self.tensorboard.add_histogram(f"gradients/{name}", parameter.grad.float().cpu(), step)

    def log_graph(self, model: Any, inputs: Any) -> None:
        """The model's graph for TensorBoard's Graphs tab; some models cannot be traced, and that is fine."""
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracing warns about Python control flow it cannot record
                self.tensorboard.add_graph(model, inputs)
        except Exception as err:
            self.info(f"(no graph in TensorBoard: tracing the model failed: {str(err).splitlines()[0][:100]})")

    def on_warning(self, trainer: Any, text: str) -> None:
        """Kept in diagnosis.txt and TensorBoard's Text tab."""
        self.warnings.append(text)
        write_atomic(self.run_dir / "diagnosis.txt", "".join(f"- {w}\n" for w in self.warnings))
        self.tensorboard.add_text("diagnosis", diagnosis_text(self.warnings), self.step)

    def log_evaluation(
        self,
        evaluation: Any,
        step: int,
        class_names: list[str] | None,
        last: bool = False,
        predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> bool:
        """Pictures of the last evaluation: the confusion matrix and sample inputs with their predictions; for
        problems with two input features the regions the model gives each class, with one feature its curve.

        Drawing them takes some 50 ms. When epochs are short they are drawn less often, so that they never take
        more than 1% of the training time; the last epoch always gets them. Returns whether they were drawn.
        """
        from trainer.visuals import confusion_matrix_image, fitted_curve_image, region_map_image, sample_grid_image

        started = time.perf_counter()
        if not last and self.picture_seconds > PICTURE_BUDGET * (started - self.pictures_drawn_at):
            return False

        matrix = evaluation.metrics.confusion_matrix()
        names = class_names if class_names and matrix is not None and len(class_names) == len(matrix) else None
        if matrix is not None:
            self.add_picture(f"{evaluation.split}/confusion_matrix", confusion_matrix_image(matrix, names), step)
        if evaluation.samples is not None and matrix is not None:
            inputs, outputs, targets = evaluation.samples
            total = int(matrix.sum())  # the heading counts the whole split, not the few samples kept to draw
            whole = (evaluation.split, total, total - int(matrix.trace()))
            grid = sample_grid_image(inputs, outputs, targets, names, split=whole)
            if grid is not None:
                self.add_picture(f"{evaluation.split}/samples (wrong first)", grid, step)
        if evaluation.points is not None and predict is not None:
            inputs, targets = evaluation.points
            if inputs.shape[1] == 2 and not targets.is_floating_point():
                self.add_picture(
                    f"{evaluation.split}/decision regions", region_map_image(predict, inputs, targets), step
                )
            elif inputs.shape[1] == 1 and targets.is_floating_point():
                self.add_picture(f"{evaluation.split}/fitted curve", fitted_curve_image(predict, inputs, targets), step)
        self.pictures_drawn_at = time.perf_counter()
        self.picture_seconds = self.pictures_drawn_at - started
        return True

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if self.undrawn is not None:  # the run stopped before its last epoch: its last pictures are drawn all the same
            evaluation, step = self.undrawn
            self.log_evaluation(evaluation, step, trainer.class_names, True, trainer.predict)
        for name, value in metrics.items():
            if name.startswith("test/"):
                self.tensorboard.add_scalar(name, value, self.step)
        if not self.warnings:  # the Text tab says so, rather than being empty
            self.tensorboard.add_text("diagnosis", diagnosis_text(self.warnings), self.step)
        self._write_hparams(metrics)
        self.tensorboard.close()
        write_atomic(self.run_dir / "summary.json", json.dumps(trainer.summary, indent=2) + "\n")
        super().on_fit_end(trainer, metrics)
        look = (
            f"see the curves: tensorboard --logdir {self.run_dir.parent}" if self.events else "metrics.jsonl has them"
        )
        tqdm.write(f"run saved in {self.run_dir}  ({look})")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        if self.writer is not None:  # flush the events written so far, and end the writer's thread
            self.writer.close()
            self.writer = None

    def _write_hparams(self, final: dict[str, float]) -> None:
        """The HParams dashboard's columns (the keys that matter or vary among the runs beside this one) and this
        run's row: its settings and its real final results."""
        from torch.utils.tensorboard.summary import hparams

        results = result_metrics(final)
        experiment = experiment_summary([*self.sibling_hparams, self.hparams], results)
        _, session_start, session_end = hparams(self.hparams, results)
        for summary in (experiment, session_start, session_end):  # the dashboard shows each metric's last scalar
            self.tensorboard.file_writer.add_summary(summary)


class NoTensorBoard:
    """A SummaryWriter that writes nothing, for a run whose log.loggers leave tensorboard out."""

    @property
    def file_writer(self) -> NoTensorBoard:
        return self

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
