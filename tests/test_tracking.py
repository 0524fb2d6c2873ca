"""The CSV and MLflow loggers, driven as the Trainer drives its callbacks, read back as a user would: the CSV file,
and MLflow's own client reading the store."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trainer.callbacks import call_hook, check_hooks
from trainer.checkpoint import TrainState
from trainer.errors import StoppedByUser, UserError
from trainer.tracking import CsvLogger, MlflowLogger

CONFIG = {"name": "digits", "optimizer": {"name": "adamw", "lr": 0.01}, "train": {"epochs": 3, "batch_size": 32}}
STEPS_PER_EPOCH = 2


def fake_trainer(out_dir: Path | None, config: dict[str, Any] | None = None) -> SimpleNamespace:
    warnings: list[str] = []
    return SimpleNamespace(
        out_dir=out_dir,
        config=config or CONFIG,
        state=TrainState(),
        lr=0.01,
        epochs=3,
        warn=warnings.append,
        warnings=warnings,
    )


def train_loss(step: int) -> float:
    return 1.0 / step


def val_metrics(epoch: int) -> dict[str, float]:
    return {"val/loss": 2.0 / epoch, "val/accuracy": 0.5 + epoch / 10}


def fit(trainer: SimpleNamespace, callbacks: list[Any], epochs: int, crash_in: int | None = None) -> None:
    """The hooks in the order Trainer.fit calls them; `crash_in`: an epoch that fails after its first step."""

    def hook(name: str, *arguments: Any) -> None:
        for callback in callbacks:
            call_hook(callback, name, trainer, *arguments)

    hook("on_fit_start")
    try:
        for epoch in range(trainer.state.epoch + 1, epochs + 1):
            for _ in range(STEPS_PER_EPOCH):
                trainer.state.step += 1
                hook("on_step_log", trainer.state.step, {"train/loss": train_loss(trainer.state.step)})
                if epoch == crash_in:
                    raise RuntimeError("CUDA out of memory")
            trainer.state.epoch = epoch
            metrics = {"train/loss": train_loss(trainer.state.step), **val_metrics(epoch), "lr": 0.01}
            hook("on_epoch_end", epoch, metrics)
    except BaseException as err:
        hook("on_exception", err)
        raise
    hook("on_fit_end", {**metrics, "test/loss": 0.25, "test/accuracy": 0.9})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_csv_has_one_row_per_epoch_and_the_test_metrics_on_the_last(tmp_path):
    trainer = fake_trainer(tmp_path)
    fit(trainer, [CsvLogger()], epochs=3)
    rows = read_csv(tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == (
        "epoch,step,train/loss,val/loss,val/accuracy,lr,test/loss,test/accuracy"
    )
    assert [(row["epoch"], row["step"]) for row in rows] == [("1", "2"), ("2", "4"), ("3", "6")]
    assert float(rows[1]["val/loss"]) == 1.0 and float(rows[2]["train/loss"]) == train_loss(6)
    assert [row["test/accuracy"] for row in rows] == ["", "", "0.9"]


def test_csv_gives_a_metric_that_appears_later_its_own_column(tmp_path):
    trainer, logger = fake_trainer(tmp_path), CsvLogger()
    logger.on_fit_start(trainer)
    trainer.state.step = 10
    logger.on_epoch_end(trainer, 1, {"train/loss": 0.5})
    trainer.state.step = 20
    logger.on_epoch_end(trainer, 2, {"train/loss": 0.4, "val/loss": 0.6})
    assert (tmp_path / "metrics.csv").read_text() == "epoch,step,train/loss,val/loss\n1,10,0.5,\n2,20,0.4,0.6\n"


def test_csv_on_resume_keeps_the_rows_up_to_the_checkpoint(tmp_path):
    trainer = fake_trainer(tmp_path)
    fit(trainer, [CsvLogger()], epochs=3)
    resumed = fake_trainer(tmp_path)
    resumed.state = TrainState(epoch=1, step=2)  # the checkpoint of epoch 1: epochs 2 and 3 are trained again
    logger = CsvLogger()
    logger.on_fit_start(resumed)
    assert [row["epoch"] for row in read_csv(tmp_path / "metrics.csv")] == ["1"]
    fit(resumed, [logger], epochs=4)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]
    assert [row["test/loss"] for row in rows] == ["", "", "", "0.25"]


def test_csv_without_a_run_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit(fake_trainer(None), [CsvLogger()], epochs=2)
    assert list(tmp_path.iterdir()) == []


def test_missing_mlflow_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees when it is not installed
    with pytest.raises(UserError) as caught:
        MlflowLogger()
    assert 'pip install "leaptrain[mlflow]"' in caught.value.fix
    assert caught.value.key == "log.loggers"
    assert "mlflow" in caught.value.message


try:
    from mlflow.tracking import MlflowClient
except ImportError:
    MlflowClient = None
needs_mlflow = pytest.mark.skipif(
    MlflowClient is None, reason='MLflow is an optional extra: pip install "leaptrain[mlflow]"'
)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An SQLite store with MLflow's tables made once (its migrations take a second); each test copies it."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store) -> str:
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def only_run(uri: str, experiment: str = "digits") -> Any:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return runs[0]


def history(uri: str, run_id: str, name: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, name)]


@needs_mlflow
def test_mlflow_client_reads_back_params_curves_tag_and_status(tmp_path, store):
    run_dir = tmp_path / "runs" / "digits" / "20260101-000000"
    trainer = fake_trainer(run_dir)
    fit(trainer, [MlflowLogger(store)], epochs=3)
    run = only_run(store)
    assert run.info.status == "FINISHED" and run.info.run_name == "20260101-000000"
    assert run.data.params == {
        "name": "digits",
        "optimizer.name": "adamw",
        "optimizer.lr": "0.01",
        "train.epochs": "3",
        "train.batch_size": "32",
    }
    assert run.data.tags["leaptrain.run_dir"] == str(run_dir.resolve())
    assert history(store, run.info.run_id, "train/loss") == [(s, train_loss(s)) for s in range(1, 7)]  # per step
    assert history(store, run.info.run_id, "val/loss") == [(2, 2.0), (4, 1.0), (6, 2.0 / 3)]  # per epoch, its last step
    assert history(store, run.info.run_id, "epoch") == [(2, 1.0), (4, 2.0), (6, 3.0)]
    assert history(store, run.info.run_id, "test/accuracy") == [(6, 0.9)]
    assert trainer.warnings == []


@needs_mlflow
def test_mlflow_default_store_is_sqlite_in_the_log_dir(tmp_path, empty_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "runs").mkdir()
    shutil.copy(empty_store, tmp_path / "runs" / "mlflow.db")
    fit(fake_trainer(tmp_path / "runs" / "digits" / "20260101-000000"), [MlflowLogger()], epochs=1)
    run = only_run(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    assert run.info.status == "FINISHED" and run.data.metrics["val/accuracy"] == pytest.approx(0.6)


@needs_mlflow
def test_mlflow_resume_carries_on_the_same_run(tmp_path, store):
    trainer, logger = fake_trainer(tmp_path / "run"), MlflowLogger(store)
    checkpoint = {}

    class Checkpoint:  # what Trainer.save_checkpoints keeps at the end of each epoch
        def on_epoch_end(self, trainer, epoch, metrics):
            checkpoint.update(state=TrainState(epoch=epoch, step=trainer.state.step), logger=logger.state_dict())

    with pytest.raises(RuntimeError):
        fit(trainer, [logger, Checkpoint()], epochs=3, crash_in=3)
    assert only_run(store).info.status == "FAILED"

    longer = {**CONFIG, "train": {**CONFIG["train"], "epochs": 4}}  # resume ... train.epochs=4
    resumed, again = fake_trainer(tmp_path / "run", longer), MlflowLogger(store)
    resumed.state = checkpoint["state"]
    again.load_state_dict(checkpoint["logger"])
    fit(resumed, [again], epochs=4)
    run = only_run(store)
    assert run.info.status == "FINISHED" and run.info.run_id == checkpoint["logger"]["run_id"]
    assert run.data.params["train.epochs"] == "3" and run.data.tags["resumed.train.epochs"] == "4"
    assert [step for step, _ in history(store, run.info.run_id, "val/loss")] == [2, 4, 6, 8]
    # the crashed attempt's step 5 stays in MLflow (it cannot delete points): the curve has it twice, same value
    assert [step for step, _ in history(store, run.info.run_id, "train/loss")] == [1, 2, 3, 4, 5, 5, 6, 7, 8]


@needs_mlflow
def test_mlflow_run_stopped_by_ctrl_c_is_killed(tmp_path, store):
    trainer, logger = fake_trainer(tmp_path / "run"), MlflowLogger(store)
    logger.on_fit_start(trainer)
    logger.on_exception(trainer, StoppedByUser("stopped by Ctrl-C after step 3"))
    assert only_run(store).info.status == "KILLED"


@needs_mlflow
def test_mlflow_cuts_a_param_longer_than_mlflow_takes(tmp_path, store):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    config = {"name": "digits", "data": {"columns": ["feature"] * 2000}}
    fit(fake_trainer(tmp_path / "run", config), [MlflowLogger(store)], epochs=1)
    value = only_run(store).data.params["data.columns"]
    assert len(value) == MAX_PARAM_VAL_LENGTH and value.startswith("['feature', ") and value.endswith("...")


@needs_mlflow
def test_unreachable_mlflow_server_is_one_warning_and_training_goes_on(tmp_path):
    trainer = fake_trainer(tmp_path / "run")
    started = time.perf_counter()
    fit(trainer, [MlflowLogger("http://127.0.0.1:9"), CsvLogger()], epochs=2)  # port 9: nothing listens
    assert time.perf_counter() - started < 10
    assert len(trainer.warnings) == 1
    assert "http://127.0.0.1:9" in trainer.warnings[0] and "training goes on" in trainer.warnings[0]
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == 2  # the other loggers carry on


@needs_mlflow
def test_store_that_fails_during_the_run_is_one_warning(tmp_path, store):
    trainer, logger = fake_trainer(tmp_path / "run"), MlflowLogger(store)
    logger.on_fit_start(trainer)
    (tmp_path / "mlflow.db").write_bytes(b"not a database")  # the store breaks mid-run
    for step in (1, 2):
        logger.on_step_log(trainer, step, {"train/loss": train_loss(step)})
    logger.on_epoch_end(trainer, 1, val_metrics(1))
    logger.on_fit_end(trainer, {"test/loss": 0.25})
    assert len(trainer.warnings) == 1 and "MLflow: could not log metrics" in trainer.warnings[0]


@needs_mlflow
def test_trainer_calls_both_loggers_and_keeps_the_mlflow_run_in_its_checkpoint(tmp_path, store):
    import torch

    from trainer.loop import Trainer

    torch.manual_seed(0)
    inputs = torch.randn(32, 4)
    batches = [(inputs[i : i + 8], (inputs[i : i + 8, 0] > 0).long()) for i in range(0, 32, 8)]
    model = torch.nn.Linear(4, 2)
    run_dir = tmp_path / "runs" / "toy" / "1"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    callbacks = [CsvLogger(), MlflowLogger(store, experiment="toy")]
    for callback in callbacks:
        check_hooks(callback)  # what the Trainer refuses: a method named almost like a hook
    final = Trainer(model, torch.nn.CrossEntropyLoss(), optimizer, epochs=2, out_dir=run_dir, callbacks=callbacks).fit(
        batches, batches, batches
    )
    rows = read_csv(run_dir / "metrics.csv")
    assert [row["step"] for row in rows] == ["4", "8"]
    assert float(rows[-1]["test/accuracy"]) == pytest.approx(final["test/accuracy"])
    run = only_run(store, "toy")
    assert run.info.status == "FINISHED" and run.data.metrics["val/loss"] == pytest.approx(final["val/loss"])
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["callbacks"]["MlflowLogger"]
    assert saved["run_id"] == run.info.run_id


@needs_mlflow
def test_mlflow_tracking_uri_in_the_environment_is_the_default(tmp_path, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    fit(fake_trainer(tmp_path / "runs" / "digits" / "1"), [MlflowLogger()], epochs=1)
    assert only_run(store).info.status == "FINISHED"
    assert not (tmp_path / "runs" / "mlflow.db").exists()


@needs_mlflow
def test_a_config_naming_csv_and_mlflow_writes_metrics_csv_and_a_run_mlflows_client_reads(
    write_config, run_cli, tmp_path, store
):
    from tests.conftest import SYNTHETIC

    text = SYNTHETIC.replace(
        "log: {every_n_steps: 5}",
        f"log: {{every_n_steps: 5, loggers: [tensorboard, csv, mlflow], mlflow_uri: '{store}'}}",
    )
    code, _, err = run_cli(write_config(text))
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    rows = read_csv(run_dir / "metrics.csv")
    kept = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [float(row["val/loss"]) for row in rows] == pytest.approx([row["val/loss"] for row in kept])
    run = only_run(store, "tiny")
    assert run.info.status == "FINISHED" and run.data.params["optimizer.lr"] == "0.01"
    assert run.data.tags["leaptrain.run_dir"] == str(run_dir.resolve())
    assert [value for _, value in history(store, run.info.run_id, "val/loss")] == pytest.approx(
        [row["val/loss"] for row in kept]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["test/accuracy"] == pytest.approx(summary["metrics"]["test/accuracy"])
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard still written


@needs_mlflow
def test_a_config_with_an_unreachable_mlflow_store_trains_with_one_warning(write_config, run_cli, tmp_path):
    from tests.conftest import SYNTHETIC

    text = SYNTHETIC.replace("log: {every_n_steps: 5}", "log: {loggers: [mlflow], mlflow_uri: 'http://127.0.0.1:9'}")
    started = time.perf_counter()
    code, out, err = run_cli(write_config(text))
    assert code == 0, err
    assert time.perf_counter() - started < 60
    assert (out + err).count("warning: MLflow: could not") == 1
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


def test_loggers_without_tensorboard_write_no_event_files_and_the_end_line_says_where_the_metrics_are(
    write_config, run_cli, tmp_path
):
    from tests.conftest import SYNTHETIC

    code, out, err = run_cli(write_config(SYNTHETIC.replace("log: {every_n_steps: 5}", "log: {loggers: [csv]}")))
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert not list(run_dir.glob("events.out.tfevents.*"))
    assert len(read_csv(run_dir / "metrics.csv")) == 2 and (run_dir / "summary.json").exists()
    assert "tensorboard --logdir" not in out and f"run saved in {run_dir.relative_to(tmp_path)}  (metrics.jsonl" in out
