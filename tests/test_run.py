"""What run.py decides before training: the resume checks and their words, and the `check` command's report."""

from __future__ import annotations

import pytest

from tests.conftest import SYNTHETIC
from trainer.config import Config
from trainer.errors import ConfigError, UserError
from trainer.run import check_from_config, check_resumable, schedule_on_resume, span


def config(scheduler: dict, epochs: int, lr: float = 0.001) -> Config:
    return Config.model_validate(
        {
            "data": {"dataset": "synthetic"},
            "model": {"name": "mlp"},
            "optimizer": {"name": "adamw", "lr": lr},
            "scheduler": scheduler,
            "train": {"epochs": epochs},
        }
    )


def test_a_span_of_epochs_is_one_epoch_or_a_range():
    assert span(4, 4) == "epoch 4" and span(1, 5) == "epochs 1-5"


@pytest.mark.parametrize(
    "scheduler, planned, epochs, said",
    [
        (
            {"name": "cosine"},
            5,
            8,
            ": the cosine schedule of epochs 1-5 keeps its steps; epochs 6-8 get a new cosine of their own "
            "(a warm restart: the lr starts again at 0.001, then falls by epoch 8)",
        ),
        (
            {"name": "one_cycle", "max_lr": 0.01},
            1,
            2,
            ": the one_cycle schedule of epoch 1 keeps its steps; epoch 2 gets a new one_cycle of its own "
            "(a warm restart: the lr climbs to 0.01 again, then falls by epoch 2)",
        ),
        (
            {"name": "one_cycle"},  # without max_lr, the optimizer's lr is the peak
            3,
            5,
            ": the one_cycle schedule of epochs 1-3 keeps its steps; epochs 4-5 get a new one_cycle of their own "
            "(a warm restart: the lr climbs to 0.001 again, then falls by epoch 5)",
        ),
        ({"name": "step", "step_size": 2}, 3, 6, ""),  # a schedule of its own length goes on as it was
        ({"name": "one_cycle", "total_steps": 1000}, 3, 2, ""),  # a fixed length trained shorter: nothing to say
    ],
    ids=["cosine longer", "one_cycle by one epoch", "one_cycle at the lr", "step", "fixed one_cycle shorter"],
)
def test_a_longer_resume_says_what_becomes_of_the_schedule(scheduler, planned, epochs, said, tmp_path):
    assert schedule_on_resume(config(scheduler, epochs), planned, tmp_path) == said


@pytest.mark.parametrize("name", ["cosine", "one_cycle"])
def test_a_planned_schedule_cannot_be_cut_short(name, tmp_path):
    with pytest.raises(ConfigError) as caught:
        schedule_on_resume(config({"name": name}, 3), 5, tmp_path)
    (problem,) = caught.value.problems
    assert problem.key == "train.epochs"
    assert problem.message == (
        f"the {name} schedule was planned for 5 epochs: it can be lengthened, not cut short (its lr would stop "
        f"before it has come down). Try: python -m trainer resume {tmp_path}"
    )


@pytest.mark.parametrize("fixed", ["total_steps", "epochs", "steps_per_epoch"])
@pytest.mark.parametrize("name", ["one_cycle", "OneCycleLR"])
def test_a_one_cycle_of_a_fixed_length_cannot_be_trained_past(name, fixed, tmp_path):
    with pytest.raises(ConfigError) as caught:
        schedule_on_resume(config({"name": name, fixed: 1000}, 6), 3, tmp_path)
    (problem,) = caught.value.problems
    assert problem.key == "train.epochs"
    assert problem.message == (
        f"scheduler.{fixed} fixes the length of the {name} schedule: a resumed run cannot train past it. "
        f"Try: a new run with a longer schedule, from {tmp_path / 'config.yaml'}"
    )


def test_a_cosine_of_a_fixed_length_may_be_trained_past(tmp_path):
    assert schedule_on_resume(config({"name": "cosine", "T_max": 4}, 9), 3, tmp_path) == ""


@pytest.fixture
def finished_run(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=1")[0] == 0
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    return run


def test_the_python_api_refuses_to_resume_from_a_runs_checkpoints_folder(finished_run):
    cfg = Config.model_validate({"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}})
    for inside in (finished_run / "checkpoints", finished_run / "checkpoints" / "last.pt"):
        with pytest.raises(UserError) as caught:
            check_resumable(cfg, inside)
        assert str(caught.value).startswith(f"'{inside}' is ") and "not the run folder" in str(caught.value)
        assert caught.value.fix == f"python -m trainer resume {finished_run}"


def test_the_python_api_refuses_a_folder_that_is_no_run(tmp_path):
    cfg = Config.model_validate({"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}})
    with pytest.raises(UserError) as caught:
        check_resumable(cfg, tmp_path / "nowhere")
    assert str(caught.value) == (
        f"'{tmp_path / 'nowhere'}' does not exist; resume carries on one run folder from its checkpoints/last.pt"
    )


def test_the_python_api_refuses_a_run_without_its_last_checkpoint(finished_run):
    (finished_run / "checkpoints" / "last.pt").unlink()
    cfg = Config.model_validate({"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}})
    with pytest.raises(UserError) as caught:
        check_resumable(cfg, finished_run)
    assert str(caught.value) == (
        f"'{finished_run}' has no checkpoints/last.pt: the run finished, and its checkpoints were deleted"
    )
    assert caught.value.fix == f"train it again from its config: python -m trainer {finished_run}/config.yaml"


def resumable_with(run, config: dict) -> Config:
    """The run's last checkpoint made to hold `config` (as a run saves it: in JSON form); `config` parsed."""
    from trainer.checkpoint import load_checkpoint, save_checkpoint

    cfg = Config.model_validate(config)
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    checkpoint["config"] = cfg.model_dump(mode="json")
    checkpoint["state"]["epoch"] = 0  # epochs left to train: a resume to make
    save_checkpoint(run / "checkpoints" / "last.pt", checkpoint)
    return cfg


def test_a_config_with_a_pair_resumes_unchanged(finished_run, capfd):
    """image_size: [32, 48] is a tuple once parsed and a list once saved: the same value for the resume check."""
    data = {"dataset": "image_folder", "root": "photos", "image_size": [32, 48]}
    cfg = resumable_with(finished_run, {"data": data, "model": {"name": "mlp"}})
    assert check_resumable(cfg, finished_run)["config"]["data"]["image_size"] == [32, 48]
    assert "resuming with" not in capfd.readouterr().out


def test_a_key_set_only_now_is_a_change_the_resume_check_sees(finished_run):
    cfg = resumable_with(finished_run, {"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}})
    with pytest.raises(ConfigError) as caught:
        check_resumable(cfg.model_copy(update={"name": "renamed"}), finished_run)
    (problem,) = caught.value.problems
    assert problem.key == "name" and problem.message.startswith(f"was None in {finished_run}, now 'renamed'")


def test_the_check_command_reports_the_data_the_warnings_and_the_whole_checklist(tmp_path, capsys):
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 5))\n"
    )
    cfg = Config.model_validate(
        {
            "data": {"dataset": "synthetic", "samples": 200, "classes": 3, "batch_size": 16},
            "model": {"name": str(tmp_path / "net.py") + ":Net"},
            "scheduler": {"name": "cosine", "eta_min": 0.01},
            "optimizer": {"name": "adamw", "lr": 0.001},
            "train": {"grad_clip": 1e-6},
        }
    )
    report = check_from_config(cfg)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "data: synthetic: 180 train / 20 val / 500 test samples" and out[1].startswith("feeding: ")
    assert out[2].startswith("warning: scheduler.eta_min: 0.01 is the lowest lr")
    assert out[3].startswith("warning: train.grad_clip: 1e-06 caps the gradient norm") and len(out) == 4
    assert [(check.status, check.detail) for check in report.checks if check.name == "loss vs targets"] == [
        ("warn", "the model outputs 5 scores but the data has 3 classes")  # one line for the check: no pass beside it
    ]
    names = {check.name for check in report.checks}
    assert {"overfit one batch", "data loading"} <= names  # the full checklist, with an optimizer and loader
    assert [layer[1] for layer in report.layers] == ["Linear", "ReLU", "Linear"]


def ten_classes(data_val_split: float = 0.1, **sections) -> Config:
    data = {"dataset": "synthetic", "classes": 10, "samples": 300, "val_split": data_val_split}
    return Config.model_validate({"data": data, "model": {"name": "mlp"}, **sections})


def test_log_metrics_of_another_task_are_refused_under_their_key():
    from trainer.run import build, check_metric_settings

    cfg = ten_classes(log={"metrics": ["r2"]})
    with pytest.raises(ConfigError) as caught:
        check_metric_settings(cfg, build(cfg).data)
    (problem,) = caught.value.problems
    assert problem.key == "log.metrics"
    assert problem.message == (
        "'r2' is not a classification metric. Try one of: accuracy, top5, per_class_accuracy, confusion_matrix"
    )


def test_early_stopping_may_monitor_only_a_number_the_run_logs():
    from trainer.run import build, check_metric_settings

    cfg = ten_classes(train={"early_stopping": {"monitor": "val/per_class_accuracy"}})
    with pytest.raises(ConfigError) as caught:
        check_metric_settings(cfg, build(cfg).data)
    (problem,) = caught.value.problems
    assert problem.key == "train.early_stopping.monitor"
    assert problem.message == (
        "'val/per_class_accuracy' is not a metric of this run (did you mean 'val/accuracy'?). Choose one of: "
        "train/loss, lr, train/accuracy, val/loss, val/accuracy, val/top5"  # top5: the data has 10 classes
    )
    top5 = ten_classes(train={"early_stopping": {"monitor": "val/top5", "mode": "max"}})
    check_metric_settings(top5, build(top5).data)


def finished_with(run, state: dict, **sections) -> Config:
    """The finished run's checkpoint with `state` changed; the config it resumes with (the run's own plus
    `sections`)."""
    from trainer.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    checkpoint["state"] |= state
    cfg = Config.model_validate(checkpoint["config"] | sections)
    checkpoint["config"] = cfg.model_dump(mode="json")
    save_checkpoint(run / "checkpoints" / "last.pt", checkpoint)
    return cfg


def test_a_finished_run_has_nothing_to_resume_and_says_how_to_train_longer(finished_run):
    from trainer.run import NothingToDo

    cfg = finished_with(finished_run, {"epoch": 1, "stopped_early": False})
    with pytest.raises(NothingToDo) as caught:
        check_resumable(cfg, finished_run)
    assert str(caught.value) == (
        f"{finished_run} has trained 1 epochs: nothing to resume. "
        f"To train longer: python -m trainer resume {finished_run} train.epochs=6"
    )


def test_a_run_that_stopped_early_says_to_be_more_patient(finished_run):
    from trainer.run import NothingToDo

    stopping = {"monitor": "val/loss", "patience": 3}
    cfg = finished_with(
        finished_run, {"epoch": 1, "stopped_early": True}, train={"epochs": 9, "early_stopping": stopping}
    )
    with pytest.raises(NothingToDo) as caught:
        check_resumable(cfg, finished_run)
    assert str(caught.value) == (
        f"{finished_run} has stopped early: nothing to resume. "
        f"To train longer: python -m trainer resume {finished_run} train.early_stopping.patience=6"
    )


def test_each_change_a_resume_allows_is_said_on_its_own_line(finished_run, capfd):
    cfg = finished_with(finished_run, {"epoch": 1, "stopped_early": False}, scheduler={"name": "cosine"})
    longer = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 3})})
    longer = longer.model_copy(update={"log": cfg.log.model_copy(update={"every_n_steps": 2})})
    check_resumable(longer, finished_run)
    assert capfd.readouterr().out.splitlines() == [
        "resuming with log.every_n_steps changed: 5 -> 2",
        "resuming with train.epochs changed: 1 -> 3: the cosine schedule of epoch 1 keeps its steps; epochs 2-3 get "
        "a new cosine of their own (a warm restart: the lr starts again at 0.01, then falls by epoch 3)",
    ]


def test_a_schedule_cut_short_on_resume_points_back_at_the_run(finished_run):
    cfg = finished_with(finished_run, {"epoch": 1}, scheduler={"name": "cosine"}, train={"epochs": 4})
    shorter = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    (finished_run / "summary.json").unlink()  # stopped while testing: there is something to resume
    with pytest.raises(ConfigError) as caught:
        check_resumable(shorter, finished_run)
    assert caught.value.problems[0].message.endswith(f"Try: python -m trainer resume {finished_run}")


def test_without_a_validation_split_only_train_numbers_may_be_monitored():
    """val_split 0: no val/ number is logged, so monitoring one is refused up front, and the message says why."""
    from trainer.run import build, check_metric_settings

    cfg = ten_classes(data_val_split=0, train={"early_stopping": {"monitor": "val/loss"}})
    with pytest.raises(ConfigError) as caught:
        check_metric_settings(cfg, build(cfg).data)
    (problem,) = caught.value.problems
    assert problem.message == (
        "'val/loss' is not a metric of this run (this run has no validation split: data.val_split is 0) "
        "(did you mean 'train/loss'?). Choose one of: train/loss, lr, train/accuracy"
    )
    train_loss = ten_classes(data_val_split=0, train={"early_stopping": {"monitor": "train/loss"}})
    check_metric_settings(train_loss, build(train_loss).data)
    typo = ten_classes(train={"early_stopping": {"monitor": "val/los"}})
    with pytest.raises(ConfigError) as caught:  # with a validation split, a wrong name gets no such hint
        check_metric_settings(typo, build(typo).data)
    assert "no validation split" not in caught.value.problems[0].message
