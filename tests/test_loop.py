"""The Trainer's arithmetic, checked against the same computation written out by hand: accumulation, clipping,
the logged means, early stopping, best.pt, schedules stepped per batch or per epoch, and what it keeps to show."""

from __future__ import annotations

import dataclasses
import json
import platform
import re
import signal
import sys
import time

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from trainer import Trainer, distributed
from trainer.callbacks import EarlyStopping
from trainer.checkpoint import load_checkpoint
from trainer.errors import UserError
from trainer.loop import (
    Evaluation,
    MetricTotals,
    Options,
    StoppedBySignal,
    default_task,
    resolve_device,
    step_epoch_scheduler,
)
from trainer.metric_names import Monitor
from trainer.metrics import Metrics


def batches(n: int = 6, size: int = 8, features: int = 3, classes: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, features, generator=generator), torch.randint(0, classes, (size,), generator=generator))
        for _ in range(n)
    ]


def linear(seed: int = 0, features: int = 3, outputs: int = 3) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(features, outputs)


def trainer_for(model: nn.Module, lr: float = 0.1, **settings) -> Trainer:
    """A Trainer with SGD on a cross-entropy loss; settings of Options are passed in `options`."""
    settings = {"epochs": 1, "preflight": False, "progress": False, "device": "cpu", **settings}
    options = Options(**{name: settings.pop(name) for name in list(settings) if name in OPTION_NAMES})
    return Trainer(
        model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=lr), options=options, **settings
    )


OPTION_NAMES = {field.name for field in dataclasses.fields(Options)}


def by_hand(model: nn.Module, groups: list[list[tuple[torch.Tensor, torch.Tensor]]], lr: float, clip=None):
    """Plain SGD, one step per group of batches, on the gradient of the group's mean loss (groups of equal batches)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for group in groups:
        optimizer.zero_grad()
        for inputs, targets in group:
            (nn.functional.cross_entropy(model(inputs), targets) / len(group)).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
    return model


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name


@pytest.mark.parametrize(
    ("accumulate", "groups"),
    [(1, [[0], [1], [2], [3], [4]]), (2, [[0, 1], [2, 3], [4]]), (3, [[0, 1, 2], [3, 4]]), (5, [[0, 1, 2, 3, 4]])],
)
def test_accumulation_steps_on_the_mean_gradient_of_each_group_and_the_short_last_group(accumulate, groups):
    data = batches(5)
    trainer = trainer_for(linear(), accumulate=accumulate)
    trainer.fit(data)
    assert trainer.state.step == len(groups)
    expected = by_hand(linear(), [[data[i] for i in group] for group in groups], lr=0.1)
    assert_same_weights(trainer.raw_model, expected)


def test_gradient_clipping_caps_the_norm_of_every_step():
    data = batches(4)
    trainer = trainer_for(linear(), lr=0.5, grad_clip=0.05)
    trainer.fit(data)
    assert_same_weights(trainer.raw_model, by_hand(linear(), [[b] for b in data], lr=0.5, clip=0.05))
    unclipped = trainer_for(linear(), lr=0.5)
    unclipped.fit(data)
    assert not torch.allclose(unclipped.raw_model.weight, trainer.raw_model.weight)


def test_logged_values_are_the_means_since_the_last_log_and_the_epoch_is_the_mean_of_all(monkeypatch):
    data = batches(6)
    logged = []
    trainer = trainer_for(linear(), lr=0.0, log_every=2)  # lr 0: every batch sees the starting weights
    monkeypatch.setattr(trainer.logger, "on_step_log", lambda _, step, values: logged.append((step, values)))
    metrics = trainer.fit(data)
    with torch.no_grad():
        model = linear()
        losses = [nn.functional.cross_entropy(model(x), y).item() for x, y in data]
        hits = [(model(x).argmax(1) == y).float().mean().item() for x, y in data]
    assert [step for step, _ in logged] == [2, 4, 6]
    for (_, values), first in zip(logged, (0, 2, 4), strict=True):
        assert values["train/loss"] == pytest.approx(sum(losses[first : first + 2]) / 2, rel=1e-6)
        assert values["train/accuracy"] == pytest.approx(sum(hits[first : first + 2]) / 2, rel=1e-6)
        assert values["lr"] == 0.0
    assert metrics["train/loss"] == pytest.approx(sum(losses) / 6, rel=1e-6)
    assert metrics["train/accuracy"] == pytest.approx(sum(hits) / 6, rel=1e-6)


def test_metric_totals_weigh_each_batch_by_its_size():
    totals = MetricTotals(classification=True)
    totals.add(torch.tensor(1.0), torch.tensor([[1.0, 0.0]] * 3), torch.tensor([0, 0, 1]))
    totals.add(torch.tensor(4.0), torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
    assert totals.since_last_log("train")[0] == pytest.approx({"train/loss": 7 / 4, "train/accuracy": 3 / 4})
    totals.add(torch.tensor(2.0), torch.tensor([[0.0, 1.0]] * 2), torch.tensor([0, 0]))
    assert totals.since_last_log("train")[0] == pytest.approx({"train/loss": 2.0, "train/accuracy": 0.0})
    assert totals.compute("val") == pytest.approx({"val/loss": 11 / 6, "val/accuracy": 3 / 6})
    one = MetricTotals(classification=False)
    one.add(torch.tensor(5.0), torch.zeros(1, 1), torch.zeros(1, 1))  # a log after a single sample
    assert one.since_last_log("train")[0] == {"train/loss": 5.0}
    regression = MetricTotals(classification=False)
    regression.add(torch.tensor(3.0), torch.zeros(2, 1), torch.zeros(2, 1))
    assert regression.compute("val") == {"val/loss": 3.0}


class Scripted(nn.Module):
    """A model whose validation loss follows a script, one value per epoch: its output is a constant per epoch."""

    def __init__(self, val_losses: list[float]):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))
        self.val_losses, self.epoch = val_losses, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # the loss of a regression on zero targets: the output squared
            return torch.full((len(x), 1), self.val_losses[self.epoch] ** 0.5) + 0 * self.bias
        return (x[:, :1] * 0 + self.bias).expand(len(x), 1)


def scripted_run(val_losses: list[float], tmp_path, **settings) -> tuple[Trainer, dict]:
    model = Scripted(val_losses)
    data = [(torch.zeros(4, 1), torch.zeros(4, 1))]
    trainer = Trainer(
        model,
        nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.0),
        epochs=len(val_losses),
        device="cpu",
        out_dir=tmp_path,
        options=Options(preflight=False, progress=False, pictures=False),
        **settings,
    )
    original = trainer.end_epoch

    def next_epoch(*args):
        original(*args)
        model.epoch += 1

    trainer.end_epoch = next_epoch
    trainer.fit(data, data)
    return trainer, json.loads((tmp_path / "summary.json").read_text())


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    trainer, summary = scripted_run([5, 4, 4, 4.5, 3, 3, 6], tmp_path, callbacks=[EarlyStopping(2)])
    assert trainer.state.epoch == 4 and summary["status"] == "stopped early"
    assert summary["best_epoch"] == 2 and summary["best_metric"] == pytest.approx(4.0)
    assert trainer.stop_reason == "early stop: val/loss has not improved for 2 epochs"
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["state"]["epoch"] == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["state"]["epoch"] == 4


def test_patience_of_one_epoch_and_a_min_delta(tmp_path):
    trainer, _ = scripted_run(
        [5, 4.95, 4.5, 4.45], tmp_path, callbacks=[EarlyStopping(1)], monitor=Monitor("val/loss", "min", 0.1)
    )
    assert trainer.state.epoch == 2 and trainer.stop_reason.endswith("has not improved for 1 epoch")
    assert trainer.state.best_epoch == 1


def test_without_patience_every_epoch_runs_and_best_pt_is_the_best_one(tmp_path):
    trainer, summary = scripted_run([5, 2, 3, 4, 4], tmp_path)
    assert trainer.state.epoch == 5 and summary["status"] == "finished" and summary["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["state"]["epoch"] == 2


def test_a_callback_may_stop_the_run_with_its_reason(tmp_path):
    seen = []

    class Judge:
        def on_epoch_end(self, trainer, epoch, metrics):
            seen.append((epoch, metrics["val/loss"]))
            return "pruned: worse than the median" if epoch == 2 else None

    trainer, summary = scripted_run([5, 4, 3, 2], tmp_path, callbacks=[Judge()])
    assert seen == [(1, pytest.approx(5.0)), (2, pytest.approx(4.0))]
    assert trainer.state.epoch == 2 and summary["status"] == "stopped early"
    assert trainer.stop_reason == "pruned: worse than the median"


def test_without_validation_best_pt_follows_the_training_loss():
    trainer = trainer_for(linear())
    trainer.fit(batches(2))
    assert trainer.monitor == Monitor("train/loss")
    named = trainer_for(linear(), monitor=Monitor("train/accuracy"))
    named.fit(batches(2))
    assert named.monitor.name == "train/accuracy"  # a monitor given is kept


def test_a_per_batch_schedule_steps_after_each_step_and_a_per_epoch_one_after_each_epoch(monkeypatch):
    model = linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    per_batch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        scheduler=per_batch,
        epochs=2,
        device="cpu",
        log_every=1,
        options=Options(scheduler_every_batch=True, preflight=False, progress=False),
    )
    logged = []
    monkeypatch.setattr(trainer.logger, "on_step_log", lambda _, step, values: logged.append((step, values["lr"])))
    trainer.fit(batches(3))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5**6)
    assert logged == [(s, pytest.approx(0.5 ** (s - 1))) for s in range(1, 7)]  # the lr each step trained with

    model = linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    per_epoch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    Trainer(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        scheduler=per_epoch,
        epochs=2,
        device="cpu",
        options=Options(preflight=False, progress=False),
    ).fit(batches(3))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_plateau_follows_the_validation_loss_and_else_the_training_loss():
    def plateau():
        optimizer = torch.optim.SGD(linear().parameters(), lr=1.0)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5), optimizer

    scheduler, optimizer = plateau()
    for val, train in [(1.0, 9.0), (2.0, 1.0), (3.0, 0.5)]:  # val rises while train falls
        step_epoch_scheduler(scheduler, {"val/loss": val, "train/loss": train})
    assert optimizer.param_groups[0]["lr"] == 0.25
    scheduler, optimizer = plateau()
    for train in [3.0, 2.0, 1.0]:
        step_epoch_scheduler(scheduler, {"train/loss": train})
    assert optimizer.param_groups[0]["lr"] == 1.0


def test_the_summary_counts_what_was_done(tmp_path):
    trainer = trainer_for(linear(), out_dir=tmp_path, epochs=2, pictures=False)
    trainer.fit(batches(3), batches(2, seed=1), batches(2, seed=2))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["epochs"], summary["steps"], summary["status"], summary["monitor"]) == (
        2,
        6,
        "finished",
        "val/loss",
    )
    assert summary["evaluated_split"] == "test" and len(summary["confusion_matrix"]) == 3
    assert sum(map(sum, summary["confusion_matrix"])) == 16  # every test sample counted once
    assert set(summary["metrics"]) >= {"train/loss", "val/loss", "test/loss", "test/accuracy", "lr"}
    assert summary["wall_seconds"] > 0 and summary["device"] == "cpu"


def test_evaluation_keeps_the_misclassified_samples_first_and_at_most_the_limit():
    evaluation = Evaluation("val", Metrics("classification", 2))
    for _ in range(3):
        inputs = torch.arange(40.0).reshape(40, 1)
        logits = torch.stack([torch.zeros(40), torch.ones(40)], dim=1)  # always class 1
        targets = (torch.arange(40) % 4 != 0).long()  # class 0 one time in four: 10 wrong answers a batch
        evaluation.keep_samples(inputs, logits, targets)
    kept_inputs, kept_logits, kept_targets = evaluation.samples
    wrong = (kept_logits.argmax(1) != kept_targets).tolist()
    assert wrong == [True] * 30 + [False] * 34  # every wrong one of the three batches, then right ones
    assert kept_inputs[:10, 0].tolist() == list(range(0, 40, 4))  # in the order they came
    evaluation.keep_samples(torch.zeros(2, 1), torch.zeros(2, 2, 2), torch.zeros(2, 2).long())  # not classes: skipped
    assert len(evaluation.samples[2]) == 64


def test_evaluation_keeps_the_points_of_problems_with_one_or_two_features_up_to_the_limit():
    evaluation = Evaluation("val", Metrics("classification", 2))
    evaluation.keep_points(torch.zeros(5, 3), torch.zeros(5))  # three features: nothing to draw
    assert evaluation.points is None
    evaluation.keep_points(torch.arange(12.0).reshape(6, 2), torch.arange(6), limit=8)
    evaluation.keep_points(torch.arange(12.0, 24).reshape(6, 2), torch.arange(6, 12), limit=8)
    evaluation.keep_points(torch.zeros(6, 2), torch.zeros(6), limit=8)  # full: skipped
    inputs, targets = evaluation.points
    assert targets.tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and inputs[-1].tolist() == [14.0, 15.0]


def test_the_task_follows_the_loss_and_auto_picks_the_cpu_here():
    assert default_task(nn.CrossEntropyLoss()) == "classification" and default_task(nn.NLLLoss()) == "classification"
    assert default_task(nn.MSELoss()) == "regression" and default_task(lambda out, y: out.sum()) == "regression"
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")


def test_fp16_on_the_cpu_is_refused_with_bf16_offered():
    with pytest.raises(ValueError, match="use precision 'bf16'"):
        trainer_for(linear(), precision="fp16")


@pytest.mark.parametrize("empty", [[], iter([])], ids=["an empty list", "an empty generator"])
def test_a_loader_with_no_batches_is_refused_before_training(empty):
    for preflight in (True, False):
        with pytest.raises(ValueError, match=r"^train_loader gives no batches\. Try: "):
            trainer_for(linear(), preflight=preflight).fit(empty)


def test_the_python_api_preflight_checks_the_classes_and_passes_its_warnings_on(monkeypatch):
    warned = []
    softmaxed = nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=1))  # cross entropy takes raw scores
    trainer = trainer_for(softmaxed, preflight=True)
    monkeypatch.setattr(trainer, "warn", warned.append)
    trainer.fit(batches(2))
    assert len(warned) == 1 and "softmax" in warned[0].lower()
    fewer = trainer_for(linear(), preflight=True, num_classes=4)
    monkeypatch.setattr(fewer, "warn", warned.append)
    fewer.fit(batches(2))
    assert "the model outputs 3 scores but the data has 4 classes" in warned[1]


def test_a_nonfinite_loss_through_the_python_api_names_the_lr_key_and_keeps_the_message(tmp_path):
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * float("inf")

    with pytest.raises(UserError) as failure:
        trainer_for(Exploding()).fit(batches(2))
    error = failure.value
    assert error.key == "optimizer.lr" and error.fix.startswith("optimizer.lr=0.01 (10x lower)")
    assert error.message.startswith("the loss became nan at step 1 (epoch 1, batch 1): ")
    assert error.message.endswith(".") and "None" not in error.message  # no run folder: no file to name

    with pytest.raises(UserError) as saved:
        trainer_for(Exploding(), out_dir=tmp_path, pictures=False).fit(batches(2))
    assert saved.value.message.endswith(
        f"The weights before this step are in {tmp_path}/checkpoints/nonfinite-step1.pt."
    )
    assert saved.value.message in (tmp_path / "diagnosis.txt").read_text()


def test_a_batch_larger_than_the_samples_kept_gives_its_wrong_answers_first():
    evaluation = Evaluation("val", Metrics("classification", 2))
    logits = torch.stack([torch.zeros(100), torch.ones(100)], dim=1)  # always class 1
    targets = torch.ones(100).long()
    targets[90:] = 0  # the ten wrong answers come last in the batch
    evaluation.keep_samples(torch.arange(100.0).reshape(100, 1), logits, targets)
    kept_inputs, _, kept_targets = evaluation.samples
    assert kept_inputs[:10, 0].tolist() == list(range(90, 100)) and kept_targets[:10].tolist() == [0] * 10
    assert len(kept_targets) == 64
    soft = Evaluation("val", Metrics("classification", 2))
    soft.keep_samples(torch.zeros(4, 1), torch.zeros(4, 2), torch.full((4, 2), 0.5))  # class probabilities
    assert soft.samples is None


def test_a_checkpoint_from_before_the_per_step_curves_were_kept_still_resumes(tmp_path):
    trainer = trainer_for(linear(), out_dir=tmp_path / "run", pictures=False)
    trainer.fit(batches(2))
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    del checkpoint["callbacks"], checkpoint["threads"]
    again = trainer_for(linear(), out_dir=tmp_path / "run", pictures=False, epochs=2)
    again.load(checkpoint)
    assert again.fit(batches(2))["train/loss"] > 0 and again.state.epoch == 2


def predicts_the_largest_input() -> nn.Linear:
    """Three classes; the prediction is the index of the largest input, so every answer is known in advance."""
    model = nn.Linear(3, 3)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
        model.bias.zero_()
    return model


# Class 0: both right; class 1: one right, one predicted 0; class 2: no test samples at all.
KNOWN_ANSWERS = [(torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]]), torch.tensor([0, 0, 1, 1]))]


def no_nan(constant: str):
    raise AssertionError(f"summary.json holds {constant}, which is not JSON")


def test_the_final_table_and_summary_json_give_each_class_its_accuracy_and_a_class_without_samples_none(
    tmp_path, capsys
):
    trainer = trainer_for(predicts_the_largest_input(), lr=0.0, out_dir=tmp_path, class_names=["cat", "dog", "bird"])
    trainer.fit(KNOWN_ANSWERS, None, KNOWN_ANSWERS)
    printed = capsys.readouterr().out
    assert (
        "metric          value\n-------------  ------\ntest/loss      0.8014\ntest/accuracy  75.00%\n\n"
        "class    accuracy\n-----  ----------\ncat       100.00%\ndog        50.00%\nbird   no samples\n"
    ) in printed  # the last split evaluated, then one row per class under its name
    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=no_nan)
    assert summary["evaluated_split"] == "test"
    assert summary["per_class_accuracy"] == [1.0, 0.5, None]
    assert summary["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_class_names_that_do_not_match_the_classes_leave_the_rows_numbered(capsys):
    trainer = trainer_for(predicts_the_largest_input(), lr=0.0, class_names=["cat", "dog"])  # 2 names, 3 classes
    trainer.fit(KNOWN_ANSWERS, KNOWN_ANSWERS)
    printed = capsys.readouterr().out
    assert "class    accuracy\n-----  ----------\n0         100.00%\n1          50.00%\n2      no samples\n" in printed
    assert "val/accuracy  75.00%" in printed and "train/" not in printed.split("metric")[-1]


def test_summary_json_gives_the_wall_seconds_to_the_millisecond(tmp_path):
    trainer = trainer_for(linear(), out_dir=tmp_path, pictures=False)
    started = time.perf_counter()
    metrics = trainer.fit(batches(2))
    elapsed = time.perf_counter() - started
    wall = json.loads((tmp_path / "summary.json").read_text())["wall_seconds"]
    assert 0 < wall <= elapsed + 0.001
    assert trainer.summary_of(metrics, 12.34567)["wall_seconds"] == 12.346


def test_evaluation_keeps_the_first_thousand_points_of_a_two_feature_problem_to_draw(tmp_path):
    trainer = trainer_for(linear(features=2, outputs=2), out_dir=tmp_path)  # a run folder: its pictures are drawn
    inputs = torch.arange(3000.0).reshape(1500, 2)
    trainer.evaluate([(inputs[i : i + 300], torch.zeros(300).long()) for i in range(0, 1500, 300)])
    kept_inputs, kept_targets = trainer.evaluation.points
    assert len(kept_targets) == 1000 and kept_inputs.tolist() == inputs[:1000].tolist()
    unseen = trainer_for(linear(features=2, outputs=2))  # no run folder, no pictures: nothing kept to draw
    unseen.evaluate([(inputs, torch.zeros(1500).long())])
    assert unseen.evaluation.points is None and unseen.evaluation.samples is None


def test_evaluation_puts_the_wrong_answers_first_by_the_prediction_of_each_sample():
    evaluation = Evaluation("val", Metrics("classification", 3))
    logits = torch.tensor([[0.0, 5, 0], [0, 0, 9]])  # predicts 1 (right), then 2 (wrong)
    evaluation.keep_samples(torch.tensor([[0.0], [1]]), logits, torch.tensor([1, 0]))
    assert evaluation.samples[0][:, 0].tolist() == [1.0, 0.0]
    evaluation.keep_samples(torch.tensor([[2.0]]), torch.tensor([[9.0, 0, 0]]), torch.tensor([1]))  # wrong
    inputs, _, targets = evaluation.samples
    assert inputs[:, 0].tolist() == [1.0, 2.0, 0.0] and targets.tolist() == [0, 1, 1]  # the right one of both last
    few = Evaluation("val", Metrics("classification", 3))
    logits = torch.tensor([[0.0, 5, 0], [0, 5, 0], [0, 0, 9], [9, 0, 0]])  # predicts 1, 1, 2, 0
    few.keep_samples(torch.arange(4.0).reshape(4, 1), logits, torch.tensor([1, 1, 0, 1]), limit=2)
    assert few.samples[0][:, 0].tolist() == [2.0, 3.0]  # a batch larger than the limit: its two wrong answers


class RecordsItsInputs(nn.Module):
    """A small CNN that writes down, for every forward, the layout and dtype of what it sees."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.seen: list[tuple[bool, bool, torch.dtype]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.conv(x).mean(dim=(2, 3))
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        self.seen.append((self.training, channels_last, logits.dtype))
        return logits


def images(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three channels, so that the channels-last layout differs from the default one (with one they are the same)."""
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, 5, 5, generator=generator), torch.randint(0, 3, (4,), generator=generator))] * n


def test_channels_last_gives_the_model_channels_last_images_in_training_and_evaluation():
    model = RecordsItsInputs()
    trainer_for(model, channels_last=True).fit(images(), images(1))
    assert model.seen == [(True, True, torch.float32)] * 2 + [(False, True, torch.float32)]
    plain = RecordsItsInputs()
    trainer_for(plain).fit(images(1), images(1))
    assert plain.seen == [(True, False, torch.float32), (False, False, torch.float32)]
    flat = trainer_for(linear(), channels_last=True)  # inputs that are not images are left as they are
    assert flat.fit(batches(2))["train/loss"] > 0


def test_bf16_runs_the_forward_in_bfloat16_on_the_cpu_in_training_and_evaluation():
    model = RecordsItsInputs()
    trainer_for(model, precision="bf16").fit(images(1), images(1))
    assert model.seen == [(True, False, torch.bfloat16), (False, False, torch.bfloat16)]


def test_the_progress_bar_names_the_epoch_and_the_number_of_epochs(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as if in a terminal
    trainer_for(linear(), epochs=2, progress=True).fit(batches(2))
    bars = capsys.readouterr().err
    assert "epoch 1/2:   0%|          | 0/2" in bars and "epoch 2/2:   0%|          | 0/2" in bars


def test_a_distributed_sampler_gets_each_epoch_number_and_so_a_new_order_every_epoch():
    class RecordsOrder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.order = nn.Linear(3, 3), []

        def forward(self, x):
            self.order += x[:, 0].long().tolist()
            return self.fc(x)

    dataset = TensorDataset(torch.arange(8.0)[:, None].expand(8, 3).contiguous(), torch.zeros(8).long())
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)  # what torchrun's loader has
    model = RecordsOrder()
    trainer_for(model, epochs=2).fit(DataLoader(dataset, batch_size=4, sampler=sampler))
    orders = []
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders[0] != orders[1]
    assert model.order == orders[0] + orders[1]


def test_a_parameter_a_batch_leaves_unused_is_not_moved_by_momentum():
    """The gradients are reset to None, not to zeros, before each step: the optimizer then skips a parameter that
    got no gradient, as torch's own zero_grad() does by default (zeros would let momentum and decay move it)."""

    class UsesItsGateOnce(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc, self.gate, self.calls = nn.Linear(3, 3), nn.Parameter(torch.ones(3)), 0

        def forward(self, x):
            self.calls += 1
            return self.fc(x) * self.gate if self.calls == 1 else self.fc(x)

    def trained(n: int) -> nn.Module:
        model = UsesItsGateOnce()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        Trainer(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            epochs=1,
            device="cpu",
            options=Options(preflight=False, progress=False),
        ).fit(batches(n))
        return model

    one, three = trained(1), trained(3)
    assert not torch.equal(one.gate, torch.ones(3))  # the first step moved it
    assert torch.equal(three.gate, one.gate)  # the next two did not
    assert not torch.equal(three.fc.weight, one.fc.weight)


def test_a_generator_serves_one_epoch_and_a_resumed_run_may_read_one_for_its_last_epoch(tmp_path):
    with pytest.raises(ValueError) as refused:
        trainer_for(linear(), epochs=2).fit(iter(batches(2)))
    assert str(refused.value).startswith(
        "train_loader is a generator (an iterator): its batches can be read only once, but epochs=2 reads them 2 "
        "times. Try: a list of batches, a DataLoader, or an object whose __iter__ makes a new generator each time"
    )
    assert trainer_for(linear()).fit(iter(batches(2)))["train/loss"] > 0  # one epoch: fine

    trainer_for(linear(), out_dir=tmp_path, pictures=False).fit(batches(2))
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    last_epoch = trainer_for(linear(), epochs=2)
    last_epoch.load(checkpoint)
    last_epoch.fit(iter(batches(2)))  # epoch 2 of 2: read once
    assert (last_epoch.state.epoch, last_epoch.state.step) == (2, 4)
    two_more = trainer_for(linear(), epochs=3)
    two_more.load(checkpoint)
    with pytest.raises(ValueError, match=r"^val_loader is a generator .* but epochs=3 reads them 2 times\. Try: "):
        two_more.fit(batches(2), iter(batches(2)))


def test_ctrl_c_during_a_step_finishes_it_saves_it_and_says_how_to_resume(tmp_path, capsys):
    class PressesCtrlCInStepTwo(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc, self.calls = nn.Linear(3, 3), 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 2:
                signal.raise_signal(signal.SIGINT)
            return self.fc(x)

    before = signal.getsignal(signal.SIGINT)
    trainer = trainer_for(PressesCtrlCInStepTwo(), out_dir=tmp_path, epochs=2, pictures=False)
    with pytest.raises(StoppedBySignal) as stopped:
        trainer.fit(batches(4))
    last = tmp_path / "checkpoints" / "last.pt"
    # The Python API's folder has no config.yaml, so `resume` could not rebuild it: the Python that carries on is said.
    assert stopped.value.message == (
        f"stopped by Ctrl-C after step 2; saved. Carry on in Python: trainer.load(trainer.checkpoint_file('{last}')), "
        "then trainer.fit(...) with the same loaders"
    )
    assert stopped.value.exit_code == 130
    assert "Ctrl-C: finishing this step and saving (press Ctrl-C again to stop at once)" in capsys.readouterr().out
    state = load_checkpoint(last)["state"]
    assert (state["epoch"], state["batch"], state["step"]) == (0, 2, 2)  # in the middle of epoch 1
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C does again what it did before
    model = PressesCtrlCInStepTwo()
    model.calls = 2  # past its Ctrl-C
    again = trainer_for(model, out_dir=tmp_path, epochs=2, pictures=False)
    again.load(again.checkpoint_file(last))  # the printed lines, as written
    again.fit(batches(4))
    assert again.state.step == 8 and again.state.epoch == 2


def test_under_ddp_the_gradients_are_shared_only_on_the_last_batch_before_each_step(tmp_path):
    """DDP's no_sync: the batches accumulated before a step keep their gradients to themselves; the last one before
    each step (the short last group's too) shares the sum. A process group of one process is enough to see it."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = linear()
        trainer = trainer_for(model, accumulate=3)
        trainer.model = torch.nn.parallel.DistributedDataParallel(model)  # what torchrun's processes train
        shared = []
        trainer.model.register_forward_pre_hook(lambda ddp, args: shared.append(ddp.require_backward_grad_sync))
        trainer.fit(batches(7))
    finally:
        dist.destroy_process_group()
    assert shared == [False, False, True, False, False, True, True] and trainer.state.step == 3


def test_under_torchrun_one_all_reduce_per_step_log_brings_the_means_nan_flags_and_stop_votes(monkeypatch):
    trainer = trainer_for(linear(), log_every=5)
    other_process_asks = False
    reduced = []

    def sum_with_count(values, count):  # the other process: the same loss sum and samples, its own vote
        reduced.append(len(values))
        loss, flags, vote = values
        return [2 * loss, flags, vote + float(other_process_asks)], 2 * count

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "sum_with_count", sum_with_count)
    totals = MetricTotals(classification=False)
    totals.add(torch.tensor(3.0), torch.zeros(4, 1), torch.zeros(4))
    trainer.stop_requested, trainer.state.step = True, 3
    assert not trainer.stop_is_agreed() and reduced == []  # between logs: no process stops alone
    trainer.state.step = 5
    assert trainer.values_at_log_step(totals, 0.1) == {"train/loss": 3.0, "lr": 0.1}
    assert reduced == [3] and trainer.stop_is_agreed()  # one all-reduce: loss sum, NaN flags, vote
    trainer.stop_requested = False
    trainer.values_at_log_step(totals, 0.1)
    assert not trainer.stop_is_agreed()  # nobody asked
    other_process_asks = True
    trainer.values_at_log_step(totals, 0.1)
    assert trainer.stop_is_agreed()  # Ctrl-C on another process stops this one at the same step


class WrongInputSize(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class ChangesInPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        h = torch.sigmoid(self.fc(x))
        h += 1  # sigmoid's backward needs its output as it was
        return h


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.ones(3))

    def forward(self, h):
        return h * torch.mv(h, self.weights)[:, None]  # mv is not autocast: bfloat16 h, float32 weights


def failure_in_training(model: nn.Module, **options) -> str:
    with pytest.raises(UserError) as failure:
        trainer_for(model, **options).fit(batches(2, size=9))
    return failure.value.message


def test_an_error_in_the_forward_names_the_layer_and_what_it_got():
    message = failure_in_training(WrongInputSize())
    assert re.match(
        r"layer 'fc' \(Linear\) expects 4 input features, but 3 arrive \(at \S*test_loop\.py:\d+\)", message
    )
    assert "\n    layer 'fc' (Linear) got [9, 3] float32; its weights are float32\n" in message


def test_an_error_in_backward_names_the_forward_line_that_made_the_tensor():
    message = failure_in_training(ChangesInPlace())
    assert re.match(
        r"autograd needs the output of Sigmoid \(shape \[9, 3\]\), made at \S*test_loop\.py:\d+, as it was, but it is "
        r"changed in place before backward at \S*test_loop\.py:\d+: h \+= 1",
        message,
    )
    assert re.search(r"\n    made by \S*test_loop\.py:\d+: h = torch\.sigmoid\(self\.fc\(x\)\)\n", message)


def test_an_error_only_bf16_makes_is_explained_with_the_bfloat16_the_layer_got():
    torch.manual_seed(0)
    message = failure_in_training(nn.Sequential(nn.Linear(3, 3), Gate()), precision="bf16")
    assert re.match(r"RuntimeError in layer '1' \(Gate\) \(at \S*test_loop\.py:\d+\)", message)
    assert "\n    layer '1' (Gate) got [9, 3] bfloat16; its weights are float32\n" in message


def test_without_a_split_evaluated_the_run_ends_with_no_table_and_the_time(capsys):
    trainer_for(linear()).fit(batches(2))
    assert re.fullmatch(
        r"epoch 1/1  train/loss \d\.\d{4}  train/accuracy \d+\.\d\d%  lr 1\.00e-01  \(\d+\.\ds\)\n\ndone in \d+\.\ds\n",
        capsys.readouterr().out,
    )


def test_summary_json_names_the_python_torch_and_torchvision_versions(tmp_path):
    trainer_for(linear(), out_dir=tmp_path, pictures=False).fit(batches(2))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["versions"] == {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }


def test_long_epochs_sum_the_loss_in_float64_and_count_the_right_answers_exactly():
    many = 2**24  # a float32 sum stops counting at 2**24: 2**24 + 1 is rounded back to 2**24
    totals = MetricTotals(classification=True)
    totals.add(torch.tensor(1.0), torch.zeros(1, 2).expand(many, 2), torch.zeros(1).long().expand(many))  # all right
    totals.add(torch.tensor(1.0), torch.zeros(1, 2), torch.zeros(1).long())
    assert totals.compute("train") == {"train/loss": 1.0, "train/accuracy": 1.0}


def test_a_monitor_that_names_no_metric_of_the_run_is_refused_with_the_closest_name():
    trainer = trainer_for(linear(), monitor=Monitor("val/acuracy"), callbacks=[EarlyStopping(2)])
    with pytest.raises(ValueError) as refused:
        trainer.fit(batches(2), batches(1))
    assert str(refused.value) == (
        "monitor 'val/acuracy' is not a metric of this run (did you mean 'val/accuracy'?). "
        "Try one of: train/loss, train/accuracy, val/loss, val/accuracy, lr"
    )


def test_samples_to_draw_are_looked_for_in_the_first_batches_only():
    from trainer.loop import SAMPLE_BATCHES

    evaluation = Evaluation("val", Metrics("classification", 3))
    right = torch.tensor([[9.0, 0, 0]])  # predicts 0
    for _ in range(SAMPLE_BATCHES):
        evaluation.keep_samples(torch.tensor([[0.0]]), right, torch.tensor([0]))
    evaluation.keep_samples(torch.tensor([[1.0]]), right, torch.tensor([2]))  # a wrong one, too late to be seen
    inputs, _, _ = evaluation.samples
    assert len(inputs) == SAMPLE_BATCHES and 1.0 not in inputs[:, 0].tolist()
