"""Every number of a config is checked against its job: impossible values stop the run with the line and a value to
try, implausible ones are warned about before training, in the key the learner typed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import SYNTHETIC
from trainer.errors import ConfigError
from trainer.numbers import Context, check_numbers, findings, number_warnings, role_of
from trainer.validation import validate_config

BASE = {"data": {"dataset": "synthetic", "samples": 400}, "model": {"name": "mlp", "hidden": [16]}}


def config(**sections):
    data = {key: dict(value) for key, value in BASE.items()}
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value} if isinstance(value, dict) else value
    return validate_config(data)


def found(cfg, **data_size):
    return {f.key: f for f in findings(cfg, **data_size)}


def test_roles_are_keyed_on_the_argument_name_whatever_the_class():
    assert role_of("optimizer.momentum") == "momentum"  # SGD, RMSprop, ...
    assert role_of("optimizer.betas") == "betas"  # Adam, AdamW, NAdam, ...
    assert role_of("scheduler.gamma") == "decay"
    assert role_of("loss.label_smoothing") == "probability"
    assert role_of("model.dropout") == "probability"  # built-in and torchvision models alike
    assert role_of("model.p") == "probability" and role_of("loss.p") is None  # a loss's p is a norm's degree
    assert role_of("train.early_stopping.patience") == role_of("scheduler.patience") == "count"
    assert role_of("optimizer.foreach") is None


def test_momentum_nine_is_an_error_that_suggests_point_nine():
    (problem,) = check_numbers(config(optimizer={"name": "SGD", "lr": 0.1, "momentum": 9}), [])
    assert problem.key == "optimizer.momentum"
    assert problem.message.startswith("9 is not a momentum")
    assert problem.message.endswith("Try: optimizer.momentum=0.9")
    assert check_numbers(config(optimizer={"name": "rmsprop", "momentum": 99}), [])[0].message.endswith("=0.99")


@pytest.mark.parametrize(
    ("betas", "said", "fix"),
    [
        (0.9, "is one number", "[0.9, 0.999]"),
        ([0.9, 9.99], "holds 9.99", "[0.9, 0.999]"),
        ([0.9, 0.99, 0.9], "has 3 numbers", "[0.9, 0.999]"),
        ([-0.1, 0.999], "a negative one as beta1", "[0.9, 0.999]"),
    ],
)
def test_betas_must_be_a_pair_of_numbers_below_one(betas, said, fix):
    (problem,) = check_numbers(config(optimizer={"name": "AdamW", "betas": betas}), [])
    assert problem.key == "optimizer.betas" and said in problem.message
    assert problem.message.endswith(f"Try: optimizer.betas={fix}")


def test_a_numbers_own_message_replaces_torchs_terser_refusal_of_the_section():
    from trainer.errors import Problem

    torch_says = Problem("optimizer", "torch rejects these arguments: 'float' object is not subscriptable")
    other = Problem("loss", "torch rejects these arguments: something else")
    problems = check_numbers(config(optimizer={"name": "adam", "betas": 0.9}), [torch_says, other])
    assert [p.key for p in problems] == ["loss", "optimizer.betas"]


@pytest.mark.parametrize(
    ("section", "key", "value", "said", "fix"),
    [
        ("model", "dropout", 50, "reads as a percent", "0.5"),
        ("data", "val_split", 20, "reads as a percent", "0.2"),
        ("model", "dropout", 1, "1 would zero every unit", "0.1"),
        ("optimizer", "lr", 0, "0 never moves the weights", "0.001"),
        ("optimizer", "lr", -0.01, "must be a positive number", "0.001"),
        ("train", "epochs", 0, "a count of at least 1", "1"),
        ("train", "grad_clip", -1, "must be above 0", "1"),
    ],
)
def test_leaptrain_keys_that_cannot_do_their_job_are_schema_errors_with_a_value_to_try(section, key, value, said, fix):
    data = {**BASE, section: {**BASE.get(section, {}), key: value}}
    if section == "model":
        data["model"] = {"name": "mlp", key: value}
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    (problem,) = caught.value.problems
    assert problem.key == f"{section}.{key}"
    assert said in problem.message and f"Try: {fix}" in problem.message


def test_the_json_schema_keeps_the_bounds_for_editors():
    from trainer.schema import config_schema

    text = str(config_schema())
    assert "'exclusiveMaximum': 1" in text and "'exclusiveMinimum': 0" in text


@pytest.mark.parametrize(
    ("optimizer", "lr", "warned"),
    [("adam", 10, "very high"), ("adamw", 1e-9, "very low"), ("sgd", 5, "very high"), ("sgd", 0.1, None)],
)
def test_learning_rates_are_judged_against_what_their_optimizer_usually_takes(optimizer, lr, warned):
    finding = found(config(optimizer={"name": optimizer, "lr": lr})).get("optimizer.lr")
    if warned is None:
        assert finding is None
    else:
        assert finding.message.startswith(f"is a {warned} learning rate for {optimizer}") and not finding.error


def test_the_shipped_learning_rates_raise_no_warning():
    for name, lr in [("adamw", 0.1), ("sgd", 0.1), ("adamw", 3e-3), ("adadelta", 1.0)]:
        assert "optimizer.lr" not in found(config(optimizer={"name": name, "lr": lr}))


def test_weight_decay_depends_on_how_the_optimizer_applies_it():
    assert "optimizer.weight_decay" in found(config(optimizer={"name": "adamw", "weight_decay": 5}))
    assert "optimizer.weight_decay" not in found(config(optimizer={"name": "adamw", "weight_decay": 0.1}))
    assert "optimizer.weight_decay" in found(config(optimizer={"name": "sgd", "weight_decay": 0.1}))
    assert found(config(optimizer={"name": "sgd", "weight_decay": -1}))["optimizer.weight_decay"].error


def test_an_optimizer_of_the_learners_own_is_not_judged_by_what_torchs_take():
    assert not found(config(optimizer={"name": "my_optim.py:Lion", "lr": 10, "weight_decay": 1}))
    with pytest.raises(ConfigError, match="0 is not a learning rate"):  # whatever the optimizer
        config(optimizer={"name": "my_optim.py:Lion", "lr": 0})


def test_adam_with_decoupled_weight_decay_is_judged_as_adamw():
    decoupled = {"name": "adam", "weight_decay": 0.1, "decoupled_weight_decay": True}
    assert "optimizer.weight_decay" not in found(config(optimizer=decoupled))


def test_schedules_are_measured_in_the_runs_own_epochs():
    train = {"epochs": 3}
    step = found(config(scheduler={"name": "step", "step_size": 30, "gamma": 0.1}, train=train))
    assert "the lr is never decayed" in step["scheduler.step_size"].message
    assert (
        "grows"
        in found(config(scheduler={"name": "ExponentialLR", "gamma": 1.5}, train=train))["scheduler.gamma"].message
    )
    decays = found(config(scheduler={"name": "ExponentialLR", "gamma": 0.5}, train={"epochs": 25}))["scheduler.gamma"]
    assert "decays the lr 25 times" in decays.message and 0.5 < decays.fix < 1
    assert "scheduler.gamma" not in found(config(scheduler={"name": "step", "gamma": 0.7}, train={"epochs": 10}))
    milestones = found(config(scheduler={"name": "MultiStepLR", "milestones": [30, 60]}, train=train))
    assert milestones["scheduler.milestones"].fix == [1, 2]
    cosine = found(config(scheduler={"name": "cosine", "T_max": 1000}, train=train))["scheduler.T_max"]
    assert "long before the lr has fallen" in cosine.message and cosine.fix == 3


def test_patience_as_long_as_the_run_can_never_act():
    stopping = found(config(train={"epochs": 5, "early_stopping": {"patience": 5}}))
    assert "early stopping can never stop the run" in stopping["train.early_stopping.patience"].message
    plateau = found(config(scheduler={"name": "plateau", "patience": 10}, train={"epochs": 3}))
    assert "the lr is never lowered" in plateau["scheduler.patience"].message
    assert not found(config(train={"epochs": 20, "early_stopping": {"patience": 3}}))
    # early stopping asked for with its default patience of 3, in a run of 2 epochs
    default = found(config(train={"epochs": 2, "early_stopping": {"monitor": "val/loss"}}))
    assert default["train.early_stopping.patience"].value == 3


def test_checks_against_the_data_size_count_samples_and_steps():
    cfg = config(data={"batch_size": 512}, train={"epochs": 2}, log={"every_n_steps": 500})
    by_key = found(cfg, samples=360, batches=1)
    assert "larger than the 360 training samples" in by_key["data.batch_size"].message
    assert by_key["data.batch_size"].fix == 32
    assert "the whole run has 2 steps" in by_key["log.every_n_steps"].message
    assert "data.batch_size" not in found(cfg)  # before the data is built nothing is known of its size


def test_ten_thousand_epochs_of_mnist_is_a_warning_but_ten_are_fine():
    assert "would take days" in found(config(train={"epochs": 10_000}), samples=54_000)["train.epochs"].message
    assert "train.epochs" not in found(config(train={"epochs": 10}), samples=54_000)
    assert "train.epochs" not in found(config(train={"epochs": 1000}), samples=360)


def test_a_one_cycle_plan_shorter_than_the_run_is_an_error_once_the_data_is_known():
    cfg = config(scheduler={"name": "one_cycle", "total_steps": 10}, train={"epochs": 2})
    with pytest.raises(ConfigError) as caught:
        number_warnings(cfg, SimpleNamespace(train=_Loader(360, 12)))
    (problem,) = caught.value.problems
    assert problem.key == "scheduler.total_steps" and problem.message.endswith("Try: scheduler.total_steps=24")


def test_defaults_the_learner_never_typed_are_not_warned_about():
    cfg = config(train={"epochs": 1})  # log.every_n_steps is 50 by default, more than this run's 13 steps
    assert number_warnings(cfg, SimpleNamespace(train=_Loader(360, 12))) == []


def test_warnings_name_the_key_and_the_value_to_try():
    cfg = config(optimizer={"name": "adam", "lr": 10})
    (line,) = number_warnings(cfg, SimpleNamespace(train=_Loader(360, 12)))
    assert line.startswith("optimizer.lr: 10 is a very high learning rate for adam")
    assert line.endswith("Try: optimizer.lr=0.001")


def test_context_counts_optimizer_steps_with_accumulation():
    assert Context(epochs=3, batches=10, accumulate=4).steps == 9


def test_training_prints_the_warnings_before_the_first_epoch(run_cli, tmp_path):
    (tmp_path / "config.yaml").write_text(SYNTHETIC.replace("batch_size: 32", "batch_size: 1024"))
    code, out, _ = run_cli("config.yaml", "log.progress=false")
    assert code == 0
    warning = "warning: data.batch_size: 1024 is larger than the 360 training samples"
    assert warning in out and out.index(warning) < out.index("epoch 1/2")


def test_check_prints_the_warnings_too(run_cli, tmp_path):
    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    _, out, _ = run_cli("check", "config.yaml", "optimizer.lr=10")
    assert "warning: optimizer.lr: 10 is a very high learning rate for adamw" in out


def test_an_impossible_argument_stops_the_run_with_its_line(run_cli, tmp_path):
    (tmp_path / "config.yaml").write_text(
        SYNTHETIC.replace("lr: 1e-2}", "lr: 1e-2, momentum: 9}").replace("adamw", "sgd")
    )
    code, _, err = run_cli("config.yaml")
    assert code == 2
    assert "config.yaml:5: optimizer.momentum: 9 is not a momentum" in err
    assert not (tmp_path / "runs").exists()


class _Loader:
    """The two things the checks read of a training loader: its samples and its batches."""

    def __init__(self, samples: int, batches: int):
        self.num_samples, self.batches = samples, batches

    def __len__(self) -> int:
        return self.batches


def test_the_two_ends_of_a_cyclic_range_must_be_in_order():
    upside_down = found(config(scheduler={"name": "CyclicLR", "base_lr": 0.1, "max_lr": 0.001}))
    assert "the range is upside down" in upside_down["scheduler.base_lr"].message
    assert not found(config(scheduler={"name": "CyclicLR", "base_lr": 1e-4, "max_lr": 1e-2}))


def test_a_config_keys_job_is_the_one_its_name_has_for_torchs_arguments():
    from trainer.config import SyntheticData
    from trainer.schema import config_schema

    assert role_of("data.test_samples") == role_of("log.histograms") == role_of("scheduler.cooldown") == "count0"
    assert SyntheticData(dataset="synthetic", test_samples=0).test_samples == 0
    with pytest.raises(ValueError, match="is not a count of at least 1"):
        SyntheticData(dataset="synthetic", samples=0)
    defs = config_schema()["$defs"]
    assert defs["SyntheticData"]["properties"]["test_samples"]["minimum"] == 0
    assert defs["SyntheticData"]["properties"]["samples"]["minimum"] == 1
    assert defs["LogConfig"]["properties"]["histograms"]["minimum"] == 0


def test_a_config_field_marked_with_a_role_its_name_does_not_have_is_refused():
    from typing import Annotated

    from pydantic import BaseModel

    from trainer.numbers import Role

    with pytest.raises(TypeError, match="'widht' is marked Role"):

        class Section(BaseModel):
            widht: Annotated[int, Role()] = 1
