"""The run's numbers for other tools, as callbacks: metrics.csv for a spreadsheet or pandas, and an MLflow
tracking store (`log.loggers: [csv, mlflow]`)."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from trainer.atomic import write_atomic
from trainer.errors import StoppedByUser, UserError
from trainer.run_files import RunFiles


def numbers(values: dict[str, Any]) -> dict[str, float | int]:
    """The values that are numbers: what a CSV column or an MLflow metric can hold."""
    return {k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


class CsvLogger:
    """metrics.csv in the run folder: one row per epoch (epoch, step, then each metric). The test metrics of the
    final model are the test/* columns of the last epoch's row. A metric first seen later gets its column then,
    empty in the rows before. The file is rewritten whole at each epoch, atomically: never half a row."""

    def __init__(self) -> None:
        self.columns: list[str] = ["epoch", "step"]
        self.rows: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Any) -> None:
        self.columns, self.rows = ["epoch", "step"], []
        if trainer.out_dir is None or trainer.state.step == 0:
            return
        path = RunFiles(trainer.out_dir).metrics_csv
        if path.exists():  # resumed: keep what was logged up to the checkpoint, drop the epochs to be redone
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
            self.columns = list(dict.fromkeys(["epoch", "step", *(reader.fieldnames or [])]))
            self.rows = [row for row in reader if _epoch_of(row) is not None and _epoch_of(row) <= trainer.state.epoch]
            self.write(trainer.out_dir)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        self.add({"epoch": epoch, "step": trainer.state.step, **numbers(metrics)})
        if trainer.out_dir is not None:
            self.write(trainer.out_dir)

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        test = {k: v for k, v in numbers(metrics).items() if k.startswith("test/")}
        if not test or trainer.out_dir is None:
            return
        if self.rows and _epoch_of(self.rows[-1]) == trainer.state.epoch:
            self.columns += [name for name in test if name not in self.columns]
            self.rows[-1].update(test)
        else:  # nothing trained in this fit (or no row for it): the test metrics get a row of their own
            self.add({"epoch": trainer.state.epoch, "step": trainer.state.step, **test})
        self.write(trainer.out_dir)

    def add(self, row: dict[str, Any]) -> None:
        self.columns += [name for name in row if name not in self.columns]
        self.rows.append(row)

    def write(self, out_dir: Path) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(RunFiles(out_dir).metrics_csv, text.getvalue())


def _epoch_of(row: dict[str, Any]) -> int | None:
    """A row's epoch; None for a row that is not one (a line edited by hand)."""
    try:
        return int(row["epoch"])
    except (KeyError, TypeError, ValueError):
        return None


# How long a call to an MLflow server may take before the logger gives up on it. MLflow's own defaults (7 retries
# with exponential backoff, 120 s per request) would hold training for minutes when the server is down. Values the
# user set in the environment win.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic")  # "Creating initial MLflow database tables..." each new store


def import_mlflow() -> Any:
    """MLflow, imported only when a run logs to it; missing, a message with the command that installs it."""
    try:
        import mlflow
        import mlflow.tracking
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != "mlflow":  # one of its own dependencies is missing
            raise UserError(
                f"log.loggers: mlflow is installed but could not be imported: {err}",
                fix='reinstall it: pip install --upgrade "leaptrain[mlflow]"',
                key="log.loggers",
            ) from err
        raise UserError(
            "log.loggers: mlflow needs the mlflow package, which is not installed",
            fix='pip install "leaptrain[mlflow]"  (or take mlflow out of log.loggers)',
            key="log.loggers",
        ) from err
    return mlflow


def default_uri(out_dir: Path | None) -> str:
    """Where runs go when no URI is given: MLFLOW_TRACKING_URI when set, else the local store of the log.dir that
    holds the run folder (log.dir/<name>/<time>/), or of the current folder for a run without one."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return local_store(out_dir.resolve().parent.parent if out_dir is not None else Path.cwd())


def local_store(log_dir: str | Path) -> str:
    """The SQLite file beside the runs: log.dir/mlflow.db (`mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`
    shows them). SQLite is MLflow's own default since 3.7: its file store (./mlruns) is in maintenance mode and
    refused unless MLFLOW_ALLOW_FILE_STORE=true."""
    return f"sqlite:///{Path(log_dir).resolve() / 'mlflow.db'}"


class MlflowLogger:
    """The run in an MLflow tracking store: the flattened config as params, train values at each log step, the
    epoch's other metrics at its last step, the test metrics at the end, the run folder as the tag
    `leaptrain.run_dir`. A resumed run carries on the same MLflow run (its id is kept in the checkpoint).

    A store that cannot be reached, or that fails later, is one warning: the logger turns itself off and training
    goes on. `uri`: any MLflow tracking URI (sqlite:///path.db, http://host:5000, ...); default: see default_uri.
    `experiment`: default the config's `name`, else "leaptrain"."""

    def __init__(self, uri: str | None = None, experiment: str | None = None):
        self.mlflow = import_mlflow()
        self.uri, self.experiment = uri, experiment
        self.client: Any = None
        self.run_id: str | None = None
        self.run_uri: str | None = None  # the store run_id is in, so a resume elsewhere starts a run of its own
        self.step_logged: set[str] = set()  # values logged per step; their epoch means would be a second curve
        self.off = False

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "uri": self.run_uri, "step_logged": sorted(self.step_logged)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id, self.run_uri = state.get("run_id"), state.get("uri")
        self.step_logged.update(state.get("step_logged", ()))

    def on_fit_start(self, trainer: Any) -> None:
        from trainer import distributed

        if not distributed.is_main():  # under torchrun, rank 0 speaks for the run
            self.off = True
            return
        uri = self.uri or default_uri(trainer.out_dir)
        self.guarded(trainer, f"start a run in the MLflow store {uri}", lambda: self.start(trainer, uri))

    def start(self, trainer: Any, uri: str) -> None:
        from mlflow.entities import Param, RunTag

        self.client = self.mlflow.tracking.MlflowClient(tracking_uri=uri)
        logged: dict[str, str] = {}
        run = None
        if self.run_id is not None and self.run_uri == uri and trainer.state.step > 0:
            with contextlib.suppress(self.mlflow.exceptions.MlflowException):  # gone (deleted): a new run
                run = self.client.get_run(self.run_id)
        if run is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            logged = run.data.params
        else:
            name = self.experiment or trainer.config.get("name") or "leaptrain"
            run_tags = {"leaptrain.run_dir": str(trainer.out_dir.resolve())} if trainer.out_dir is not None else {}
            if self.run_id is not None:  # resumed, but its run is not in this store (another URI, or deleted)
                run_tags["leaptrain.resumed_from"] = self.run_id
            run_name = trainer.out_dir.name if trainer.out_dir is not None else None
            run = self.client.create_run(self.experiment_id(name), run_name=run_name, tags=run_tags)
            self.run_id, self.run_uri, self.step_logged = run.info.run_id, uri, set()
        params = {name: value for name, value in self.params(trainer).items() if logged.get(name) != value}
        # MLflow refuses to change a param: a value changed on resume (train.epochs) is kept as a tag beside it.
        changed = {f"resumed.{name}": value for name, value in params.items() if name in logged}
        new = [Param(name, value) for name, value in params.items() if name not in logged]
        tags = [RunTag(name, value) for name, value in changed.items()]
        for at in range(0, max(len(new), len(tags)), BATCH):  # MLflow takes 100 params and tags a request
            self.client.log_batch(self.run_id, params=new[at : at + BATCH], tags=tags[at : at + BATCH])

    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(name)
        except self.mlflow.exceptions.MlflowException:  # made meanwhile by another trial of a sweep
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def params(self, trainer: Any) -> dict[str, str]:
        """The flattened config as MLflow params: names in the characters MLflow accepts, values as text cut to
        its length limits."""
        from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

        from trainer.yamlio import flatten

        flat = flatten(trainer.config) or {"lr": trainer.lr, "epochs": trainer.epochs}
        params = {}
        for key, value in flat.items():
            name = re.sub(r"[^/\w.\- ]", "_", key)[:MAX_ENTITY_KEY_LENGTH]
            text = str(value)
            params[name] = text if len(text) <= MAX_PARAM_VAL_LENGTH else text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
        return params

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        self.step_logged.update(values)
        self.log_metrics(trainer, numbers(values), step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        per_epoch = {k: v for k, v in numbers(metrics).items() if k not in self.step_logged}
        self.log_metrics(trainer, {**per_epoch, "epoch": epoch}, trainer.state.step)

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        test = {k: v for k, v in numbers(metrics).items() if k.startswith("test/")}
        self.log_metrics(trainer, test, trainer.state.step)
        self.end(trainer, "FINISHED")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.end(trainer, "KILLED" if isinstance(error, KeyboardInterrupt | StoppedByUser) else "FAILED")

    def log_metrics(self, trainer: Any, values: dict[str, float | int], step: int) -> None:
        if self.off or self.run_id is None or not values:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, float(value), now, step) for name, value in values.items()]
        self.guarded(trainer, f"log metrics to {self.run_uri}", lambda: self.client.log_batch(self.run_id, metrics))

    def end(self, trainer: Any, status: str) -> None:
        if self.off or self.run_id is None:
            return
        self.guarded(trainer, f"end the run in {self.run_uri}", lambda: self.client.set_terminated(self.run_id, status))
        self.off = True  # ended: nothing more goes to this run from this fit

    def guarded(self, trainer: Any, doing: str, action: Callable[[], Any]) -> None:
        """Run one exchange with the store; a failure is one warning and the logger's end, never the run's."""
        if self.off:
            return
        try:
            with http_limits(), quiet(QUIET_LOGGERS):
                action()
        except Exception as err:
            self.off = True
            first = (str(err).strip().splitlines() or [""])[0][:300]
            where = self.uri or "log.mlflow_uri"
            warn = getattr(trainer, "warn", print)
            warn(
                f"MLflow: could not {doing}: {type(err).__name__}: {first}. Nothing more of this run goes to MLflow; "
                f"training goes on, and the run folder is written as before. Try: check {where} (a server must be "
                "running: mlflow server --port 5000), or take mlflow out of log.loggers"
            )


BATCH = 100  # MLflow's limit on params and tags in one log_batch request (MAX_PARAMS_TAGS_PER_BATCH)


@contextlib.contextmanager
def http_limits() -> Iterator[None]:
    """MLflow reads its HTTP settings from the environment at each request: short ones for the logger's calls."""
    added = {name: value for name, value in HTTP_LIMITS.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Silence libraries' INFO lines (a new SQLite store's migrations) while the logger talks to the store."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
