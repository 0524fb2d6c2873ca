"""What a run shows and keeps: tqdm bars and one line per epoch; TensorBoard, metrics.jsonl and summary.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm  # tqdm.write: a line printed above the bar

from trainer.atomic import file_in_the_way, write_atomic
from trainer.board import (
    SPLITS,
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
from trainer.metrics import format_value
from trainer.progress import progress_bar
from trainer.run_files import RunFiles
from trainer.yamlio import flatten

Batch = TypeVar("Batch")


def new_run_dir(log_dir: str | Path, name: str) -> Path:
    """runs/<name>/<YYYYmmdd-HHMMSS>/, made now, with -2, -3... when a run started in the same second."""
    run_dir = free_run_dir(log_dir, name)
    make_run_dir(run_dir, new=True)
    return run_dir


def free_run_dir(log_dir: str | Path, name: str) -> Path:
    """The folder a run started now will have, runs/<name>/<YYYYmmdd-HHMMSS>/ (-2, -3... when a run started in
    the same second), not made yet: the run's checks come first, so that a run that fails them leaves nothing."""
    base = Path(log_dir) / name / datetime.now().strftime("%Y%m%d-%H%M%S")
    refuse_a_file_in_the_way(base, "run folder")
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def make_run_dir(run_dir: Path, new: bool) -> None:
    """Make the run folder; a new run's must not be there yet: a run started in the same second took its name."""
    refuse_a_file_in_the_way(run_dir, "run folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=not new)
    except FileExistsError:
        raise UserError(
            f"the run folder {run_dir} was made by another run started in the same second",
            fix="start this run again: it gets a folder of its own",
        ) from None


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
    """'val/loss 0.1234  val/accuracy 96.50%  lr 1.00e-03': the metrics on one line."""
    return "  ".join(f"{name} {format_value(name, value)}" for name, value in metrics.items())


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

    def __init__(self, run_dir: str | Path, progress: bool = True, events: bool = True):
        super().__init__(progress)
        self.run_dir = Path(run_dir)
        self.events = events  # TensorBoard's event files; log.loggers without tensorboard leaves them out
        self.writers: dict[str, Any] = {}  # by sub-run: "" the run itself, "train" and "val"; made on first use
        self.purge_step: int | None = None
        self.hparams: dict[str, Any] = {}  # this run's HParams row
        self.sibling_hparams: list[dict[str, Any]] = []  # the rows of the other runs in the folder above
        self.layout_written = False
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.step_tags: set[str] = set()  # curves drawn per step; their epoch means stay out of TensorBoard
        self.warnings: list[str] = []

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
        after_the_event_files_there(self.run_dir)
        self.step_tags.update(step_tags)
        path = RunFiles(self.run_dir).metrics
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        self.history = [row for row in rows if row["epoch"] <= epoch]
        diagnosis = RunFiles(self.run_dir).diagnosis
        if diagnosis.exists():
            self.warnings = [line[2:] for line in diagnosis.read_text().splitlines() if line.startswith("- ")]

    @property
    def tensorboard(self) -> Any:
        """The run's TensorBoard writer: every curve under its own tag, the pictures, HParams and texts."""
        return self.board("")

    @property
    def writer(self) -> Any:
        """The run's own writer while it is open, else None."""
        return self.writers.get("")

    def board(self, sub_run: str) -> Any:
        """The writer of the run ("") or of its sub-run `train/` or `val/`, which hold each epoch's metrics under
        plain tags (`loss`), as Keras writes them, so that one chart draws a run's train and val curves in two
        colours. Made on first use, so that a resumed run can drop the steps it will redo (purge_step)."""
        if not self.events:
            return NoTensorBoard()
        if sub_run not in self.writers:
            from torch.utils.tensorboard import SummaryWriter

            self.writers[sub_run] = SummaryWriter(str(self.run_dir / sub_run), purge_step=self.purge_step)
        return self.writers[sub_run]

    def close_writers(self) -> None:
        """Flush the events written so far, and end the writers' threads."""
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        super().on_step_log(trainer, step, values)
        self.step = step
        self.step_tags.update(values)
        for name, value in values.items():
            self.tensorboard.add_scalar(name, value, step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        super().on_epoch_end(trainer, epoch, metrics)
        self.step = trainer.state.step
        for name, value in metrics.items():
            if name not in self.step_tags:
                self.tensorboard.add_scalar(name, value, self.step)
        self.tensorboard.add_scalar("epoch", epoch, self.step)
        for name, value in metrics.items():
            split, _, metric = name.partition("/")
            if split in SPLITS and metric:
                self.board(split).add_scalar(metric, value, self.step)
        if not self.layout_written and self.purge_step is None:  # a resumed run's first part wrote it already
            self.tensorboard.add_custom_scalars(chart_layout(metrics))
        self.layout_written = True
        for writer in self.writers.values():
            writer.flush()
        self.history.append({"epoch": epoch, "step": self.step, **metrics})
        write_atomic(RunFiles(self.run_dir).metrics, "".join(json.dumps(row) + "\n" for row in self.history))

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
        write_atomic(RunFiles(self.run_dir).diagnosis, "".join(f"- {w}\n" for w in self.warnings))
        self.tensorboard.add_text("diagnosis", diagnosis_text(self.warnings), self.step)

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name.startswith("test/"):
                self.tensorboard.add_scalar(name, value, self.step)
        if not self.warnings:  # the Text tab says so, rather than being empty
            self.tensorboard.add_text("diagnosis", diagnosis_text(self.warnings), self.step)
        self._write_hparams(metrics)
        self.close_writers()
        write_atomic(RunFiles(self.run_dir).summary, json.dumps(trainer.summary, indent=2) + "\n")
        super().on_fit_end(trainer, metrics)
        look = (
            f"see the curves: tensorboard --logdir {self.run_dir.parent}; train and val: its Custom Scalars tab"
            if self.events
            else "metrics.jsonl has them"
        )
        tqdm.write(f"run saved in {self.run_dir}  ({look})")
        tqdm.write(f"one page of it to open or send: python -m trainer report {self.run_dir}")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.close_writers()

    def _write_hparams(self, final: dict[str, float]) -> None:
        """The HParams dashboard's columns (the keys that matter or vary among the runs beside this one) and this
        run's row: its settings and its real final results."""
        from torch.utils.tensorboard.summary import hparams

        results = result_metrics(final)
        experiment = experiment_summary([*self.sibling_hparams, self.hparams], results)
        _, session_start, session_end = hparams(self.hparams, results)
        for summary in (experiment, session_start, session_end):  # the dashboard shows each metric's last scalar
            self.tensorboard.file_writer.add_summary(summary)


def after_the_event_files_there(run_dir: Path) -> None:
    """Wait, at most a second, until the clock is past the second in the names of the run's event files.

    TensorBoard reads a folder's event files in the order of their names: the second they were made, then a
    counter of the writers this process made, unpadded (9 sorts after 10). A resumed run's files must sort after
    the first part's, or its purge of the steps it redoes is read first and the old steps come back."""
    stamps = [
        int(p.name.split(".")[3]) for p in run_dir.rglob("events.out.tfevents.*") if p.name.split(".")[3].isdigit()
    ]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)


class NoTensorBoard:
    """A SummaryWriter that writes nothing, for a run whose log.loggers leave tensorboard out."""

    @property
    def file_writer(self) -> NoTensorBoard:
        return self

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
