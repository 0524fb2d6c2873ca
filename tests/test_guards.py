"""The guards around training: a NaN or inf loss stops the run with the weights as they were before that step; the
preflight's label checks at their boundaries; monitors that suit a regression run; out of memory explained; and
`Trainer.fit` on any iterable of batches, a generator included."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.checkpoint import load_checkpoint
from trainer.diagnostics import preflight
from trainer.errors import UserError
from trainer.loop import Options
from trainer.step_guard import OVERFLOW_PATIENCE, StepGuard

OWN_MODEL = SYNTHETIC.replace("model: {name: mlp, hidden: [16]}", "model: my_model.py:Net")


def only_run(tmp_path: Path, name: str = "tiny") -> Path:
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return run_dir


MODEL_SOURCE = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(2, num_classes)
        self.first_weights = None
        self.validated = False

    def forward(self, x):
        # Evaluation once the optimizer has moved the weights is the end of epoch 1 (the checks before training,
        # the layer table and the graph also run the model, but before any step).
        if self.first_weights is None:
            self.first_weights = self.fc.weight.detach().clone()
        stepped = not torch.equal(self.fc.weight, self.first_weights)
        self.validated = self.validated or (stepped and not self.training)
        logits = self.fc(x)
BODY
        return logits
"""


def write_model(tmp_path: Path, body: str) -> None:
    """my_model.py:Net for the 2-D blobs of SYNTHETIC: one linear layer, and `body` at the end of forward."""
    source = MODEL_SOURCE.replace("BODY", textwrap.indent(textwrap.dedent(body).strip(), " " * 8))
    (tmp_path / "my_model.py").write_text(source)


# --- NaN and inf: stop at the step, weights saved as they were before it ----------------------------------------

BREAKS = {
    # every score times NaN: the loss is nan
    "nan": "logits = logits * float('nan')",
    # every class but 0 scored -inf: the samples of the other classes have loss +inf, so the mean is +inf (not NaN)
    "inf": "logits = torch.cat([logits[:, :1], torch.full_like(logits[:, 1:], -float('inf'))], dim=1)",
}


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_a_nonfinite_loss_stops_at_its_step_with_the_weights_of_the_step_before(kind, write_config, run_cli, tmp_path):
    """The loss breaks at the first step of epoch 2. The run must stop there (not let an inf through because only
    NaN is checked), say the step and the cause, and save the weights as they were before that step: the weights
    epoch 1 ended with, which last.pt holds. Weights saved after the optimizer step would differ (or hold NaN)."""
    write_model(tmp_path, f"if self.training and self.validated:\n    {BREAKS[kind]}")
    code, _, err = run_cli(write_config(OWN_MODEL))
    assert code == 2
    run_dir = only_run(tmp_path)
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["state"]["epoch"] == 1  # no epoch after the broken step was completed
    bad_step = last["state"]["step"] + 1
    assert f"the loss became {kind} at step {bad_step} (epoch 2, batch 1)" in err
    assert "the first NaN/inf appears in the output of the model's own forward code (Net)" in err
    saved_path = run_dir / "checkpoints" / f"nonfinite-step{bad_step}.pt"
    assert f"The weights before this step are in {saved_path.relative_to(tmp_path)}" in err
    assert "Try: optimizer.lr=0.001 (10x lower)" in err
    saved = load_checkpoint(saved_path)
    assert saved["state"]["step"] == bad_step - 1
    assert saved["model"].keys() == last["model"].keys()
    for name, weights in saved["model"].items():
        assert torch.isfinite(weights).all(), name
        assert torch.equal(weights, last["model"][name]), name
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1]


class SpikeAt:
    """Cross entropy that returns `value` at training call `call`, and records the model's weights at that moment:
    the weights the step began with, since the loss is computed before backward and the optimizer step."""

    def __init__(self, model: nn.Module, call: int, value: float):
        self.model, self.call, self.value, self.calls = model, call, value, 0
        self.before: dict[str, torch.Tensor] = {}

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(logits, targets)
        if not torch.is_grad_enabled():  # evaluation
            return loss
        self.calls += 1
        if self.calls != self.call:
            return loss
        self.before = {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}
        return loss + self.value  # still part of the graph: a backward through it would run


def blobs(n: int = 96, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % classes
    return torch.randn(n, 2, generator=generator) + 2 * targets[:, None].float(), targets


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_the_python_api_stops_on_any_nonfinite_loss_mid_epoch(value, tmp_path):
    """Mid-epoch, with the Python API: the saved weights equal the ones the bad step began with, after training
    moved them (so `equal` does not hold by accident for the initial weights)."""
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    loss_fn = SpikeAt(model, call=5, value=value)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    inputs, targets = blobs()
    batches = [(inputs[i : i + 16], targets[i : i + 16]) for i in range(0, 96, 16)]
    options = Options(preflight=False, progress=False)
    trainer = Trainer(model, loss_fn, optimizer, epochs=1, task="classification", out_dir=tmp_path, options=options)
    with pytest.raises(UserError, match=rf"the loss became {value} at step 5 \(epoch 1, batch 5\)") as raised:
        trainer.fit(batches)
    path = tmp_path / "checkpoints" / "nonfinite-step5.pt"
    assert str(path) in raised.value.message
    saved = load_checkpoint(path)["model"]
    assert not torch.equal(saved["weight"], initial["weight"])  # four steps were taken
    for name, weights in saved.items():
        assert torch.isfinite(weights).all() and torch.equal(weights, loss_fn.before[name]), name
    assert all(torch.equal(v, loss_fn.before[k]) for k, v in model.state_dict().items())  # no step was taken


def test_a_finite_loss_with_nan_gradients_stops_before_they_reach_the_weights(tmp_path):
    """A finite loss whose gradient is NaN (sqrt at 0): the guard checks the gradients too, so the step is not
    taken, the weights stay finite, and autograd's anomaly mode names the backward function that made the NaN."""

    class SqrtAtZero(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            logits = self.fc(x)
            if (x[:, 0] == 99).any():  # d sqrt(u)/du at u = 0 is inf; times du/dw = 0 it is NaN
                logits = logits + (self.fc.weight * 0).sqrt().sum()
            return logits

    model = SqrtAtZero()
    inputs, targets = blobs()
    inputs[40, 0] = 99  # in the third batch of 16
    batches = [(inputs[i : i + 16], targets[i : i + 16]) for i in range(0, 96, 16)]
    seen = []
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        out_dir=tmp_path,
        callbacks=[StepRecorder(seen)],
        options=Options(preflight=False, progress=False, pictures=False),
        log_every=1,
    )
    with pytest.raises(UserError) as raised:
        trainer.fit(batches)
    message = raised.value.message
    assert message.startswith("the gradients became NaN/inf at step 3 (epoch 1, batch 3): ")
    assert "autograd's anomaly detection says: Function 'MulBackward0' returned nan values" in message  # inf * 0
    assert seen == [1, 2]  # the third step was neither taken nor logged
    saved = load_checkpoint(tmp_path / "checkpoints" / "nonfinite-step3.pt")["model"]
    for name, weights in model.state_dict().items():
        assert torch.isfinite(weights).all() and torch.equal(weights, saved[name]), name


class StepRecorder:
    def __init__(self, seen: list[int]):
        self.seen = seen

    def on_step_log(self, trainer: Trainer, step: int, values: dict[str, float]) -> None:
        self.seen.append(step)


# --- The preflight's label checks at their boundaries ---------------------------------------------------------


def failures(model: nn.Module, loss_fn: nn.Module, targets: torch.Tensor, classes: int | None = None) -> list[str]:
    report = preflight(model, loss_fn, (torch.randn(len(targets), 4), targets), num_classes=classes)
    return [f"{check.detail} Try: {check.fix}" for check in report.failures]


@pytest.mark.parametrize("outputs", [2, 3, 10])
def test_targets_one_class_beyond_the_outputs_fail_and_exactly_enough_pass(outputs):
    """Labels 0..K with K outputs is one output short (label K has no score): a failure naming K+1 outputs. Labels
    0..K-1 with K outputs is exactly enough: no failure."""
    labels = torch.arange(outputs + 1).repeat(4)
    (short,) = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels)
    assert f"the targets go from 0 to {outputs}, but the model outputs {outputs} scores (classes 0..{outputs - 1})" in (
        short
    )
    assert f"Try: make the last layer output {outputs + 1} scores" in short
    assert failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels % outputs, classes=outputs) == []
    assert failures(nn.Linear(4, outputs + 1), nn.CrossEntropyLoss(), labels, classes=outputs + 1) == []


@pytest.mark.parametrize("outputs", [2, 10])
def test_labels_numbered_from_one_are_told_to_subtract_one(outputs):
    """Labels 1..K with K outputs were numbered from 1: the fix is the labels, not an output for a class that never
    occurs. When the data says it has K+1 classes, or a 0 label is there, the model is what is short."""
    labels = torch.arange(1, outputs + 1).repeat(4)
    (from_one,) = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels, classes=outputs)
    assert f"the targets go from 1 to {outputs}, but the model outputs {outputs} scores" in from_one
    assert "the labels look numbered from 1" in from_one
    assert f"Try: subtract 1 from the labels so they run 0..{outputs - 1}" in from_one
    assert f"make the last layer output {outputs + 1} scores and leave score 0 unused" in from_one
    (unknown_classes,) = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels)
    assert "the labels look numbered from 1" in unknown_classes
    more_classes = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels, classes=outputs + 1)
    with_zero = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), torch.cat([labels, torch.tensor([0])]))
    for short in (*more_classes, *with_zero):
        assert "numbered from 1" not in short and f"Try: make the last layer output {outputs + 1} scores" in short
    assert len(more_classes) == len(with_zero) == 1
    wider = failures(nn.Linear(4, outputs), nn.CrossEntropyLoss(), labels + 1, classes=outputs)
    assert len(wider) == 1 and "numbered from 1" not in wider[0]  # 2..K+1: not a count from 1


@pytest.mark.parametrize("loss_fn", [nn.CrossEntropyLoss(), nn.NLLLoss()], ids=["cross_entropy", "nll"])
def test_negative_targets_fail_with_a_fix_for_labels(loss_fn):
    """-1 has no score whatever the number of outputs: the fix is about the labels, not a wider last layer."""
    model = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    (negative,) = failures(model, loss_fn, torch.tensor([-1, 0, 1, 2] * 4))
    assert "the targets go from -1 to 2, but class labels are 0..2 for the 3 scores the model outputs" in negative
    assert "number the classes from 0 (labels 1..K: subtract 1)" in negative
    assert "label -100 (the loss's ignore_index)" in negative
    assert "make the last layer output" not in negative


def test_targets_equal_to_the_ignore_index_are_not_labels():
    """-100 is CrossEntropyLoss's default ignore_index (padding in sequence tasks): torch skips those samples."""
    targets = torch.tensor([-100, 0, 1, 2] * 4)
    assert failures(nn.Linear(4, 3), nn.CrossEntropyLoss(), targets) == []
    assert failures(nn.Linear(4, 3), nn.CrossEntropyLoss(ignore_index=-1), targets.clamp(min=-1)) == []
    (wrong,) = failures(nn.Linear(4, 3), nn.CrossEntropyLoss(ignore_index=-1), targets)
    assert "the targets go from -100 to 2" in wrong and "label -1 (the loss's ignore_index)" in wrong


def test_integer_targets_for_bce_fail_and_float_ones_pass():
    model = nn.Linear(4, 1)
    (same_shape,) = failures(model, nn.BCEWithLogitsLoss(), torch.tensor([[0], [1]] * 8))
    assert "BCEWithLogitsLoss needs float targets (0.0 or 1.0), got torch.int64" in same_shape
    (labels,) = failures(nn.Linear(4, 3), nn.BCEWithLogitsLoss(), torch.tensor([0, 1, 2, 1] * 4))
    assert "Try: loss: cross_entropy (the targets are class labels)" in labels
    assert failures(model, nn.BCEWithLogitsLoss(), torch.tensor([[0.0], [1.0]] * 8)) == []


def test_cross_entropy_takes_float_class_probabilities_of_the_output_shape():
    """Soft labels (one probability per class) are valid; float labels of shape [N] are not."""
    probabilities = torch.softmax(torch.randn(16, 3), dim=1)
    assert failures(nn.Linear(4, 3), nn.CrossEntropyLoss(), probabilities) == []
    (flat,) = failures(nn.Linear(4, 3), nn.CrossEntropyLoss(), torch.arange(16.0) % 3)
    assert "takes class indices (int64, shape [16]) or class probabilities (float, shape [16, 3])" in flat


def test_a_model_one_output_short_stops_the_run_before_training(write_config, run_cli, tmp_path):
    """End to end: three classes, a model of two outputs. The run stops with exit 2 and writes no epoch."""
    (tmp_path / "my_model.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, num_classes):\n"
        "        super().__init__()\n        self.fc = nn.Linear(2, num_classes - 1)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n"
    )
    code, _, err = run_cli(write_config(OWN_MODEL))
    assert code == 2
    assert "the targets go from 0 to 2, but the model outputs 2 scores (classes 0..1)" in err
    assert "make the last layer output 3 scores" in err
    assert not list(tmp_path.rglob("metrics.jsonl")) and not list(tmp_path.rglob("*.pt"))  # no epoch, no step


# --- Monitors of a regression run -----------------------------------------------------------------------------

SINE = """
name: sine
data: {dataset: synthetic, kind: sine, samples: 300, test_samples: 50, batch_size: 32}
model: {name: mlp, hidden: [16]}
loss: mse
optimizer: {name: adamw, lr: 1e-2}
train: {epochs: 3}
log: {every_n_steps: 5}
"""


@pytest.mark.parametrize("monitor", ["val/accuracy", "train/accuracy", "val/top5"])
def test_a_regression_run_refuses_a_classification_monitor(monitor, write_config, run_cli, tmp_path):
    code, _, err = run_cli(write_config(SINE), f"train.early_stopping={{monitor: {monitor}, patience: 2}}")
    assert code == 2
    assert f"train.early_stopping.monitor: '{monitor}' is not a metric of this run" in err
    assert "Choose one of: train/loss, lr, val/loss, val/mae, val/rmse, val/r2" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("monitor", "higher_is_better"), [("val/r2", True), ("val/rmse", False), ("val/mae", False)])
def test_best_pt_of_a_regression_run_is_the_best_epoch_of_its_monitor(
    monitor, higher_is_better, write_config, run_cli, tmp_path
):
    """r2 is better higher, mae and rmse lower: best.pt holds the epoch with the highest r2 (lowest error), read
    from metrics.jsonl. The run is chosen so that the best and the worst epoch differ."""
    code, _, _ = run_cli(write_config(SINE), f"train.early_stopping={{monitor: {monitor}, patience: 2}}")
    assert code == 0
    run_dir = only_run(tmp_path, "sine")
    values = [json.loads(line)[monitor] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(values) == 3 and len(set(values)) == 3
    best = max(values) if higher_is_better else min(values)
    worst = min(values) if higher_is_better else max(values)
    best_epoch, worst_epoch = values.index(best) + 1, values.index(worst) + 1
    assert best_epoch != worst_epoch
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert checkpoint["state"]["epoch"] == best_epoch
    assert checkpoint["metrics"][monitor] == best
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_epoch"] == best_epoch and summary["monitor"] == monitor and summary["best_metric"] == best


def test_r2_best_is_not_simply_the_last_epoch(write_config, run_cli, tmp_path):
    """In this run val/r2 peaks at epoch 2 and dips at 3: best.pt must stay at epoch 2 while last.pt is epoch 3."""
    assert run_cli(write_config(SINE), "train.early_stopping={monitor: val/r2, patience: 2}")[0] == 0
    run_dir = only_run(tmp_path, "sine")
    values = [json.loads(line)["val/r2"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert values.index(max(values)) + 1 == 2 and values[2] < values[1]  # the shape this test relies on
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["state"]["epoch"] == 2
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["state"]["epoch"] == 3


# --- Out of memory on the CPU -----------------------------------------------------------------------------------


def test_cpu_out_of_memory_from_the_model_is_explained(write_config, run_cli, tmp_path):
    """A real allocation far beyond any computer's memory: torch's CPU allocator raises "DefaultCPUAllocator: can't
    allocate memory: you tried to allocate N bytes". The message names the CPU, the batch size, the size asked for,
    the model's size, and what to try (not fp16, which needs a GPU)."""
    write_model(tmp_path, "logits = logits + x.new_empty(x.shape[0], 2**45)[:, :1]  # 4 PiB for 32 samples")
    code, _, err = run_cli(write_config(OWN_MODEL))
    assert code == 2
    assert "DefaultCPUAllocator: can't allocate memory" in err  # what torch said is shown too
    line = MODEL_SOURCE.splitlines().index("BODY") + 1
    assert f"the computer (CPU memory) ran out of memory at batch size 32 (at my_model.py:{line})" in err
    assert "config.yaml:2: data.batch_size:" in err  # the key to change, at its line
    assert "one tensor asked for 4.0 PiB; the model has 9 parameters" in err
    assert "Try: data.batch_size=16, or precision bf16, or a smaller model" in err
    assert "fp16" not in err.split("Try:")[1]
    assert "Traceback" not in err


def test_cuda_out_of_memory_keeps_its_size_and_the_fp16_advice():
    from trainer.explain import explain

    message = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"
    error = explain(torch.OutOfMemoryError(message), batch_size=256, model=nn.Linear(10, 10))
    assert "the GPU ran out of memory at batch size 256; one tensor asked for 2.00 GiB" in error.message
    assert "the model has 110 parameters" in error.message
    assert "data.batch_size=128, or precision bf16/fp16" in error.fix


# --- Trainer.fit on any iterable of batches -------------------------------------------------------------------


class Stream(IterableDataset):
    """Batches made on the fly, as a stream with no length: each epoch draws new samples."""

    def __init__(self, batches: int, seed: int = 0):
        self.batches, self.seed, self.epoch = batches, seed, 0

    def __iter__(self):
        self.epoch += 1
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        for _ in range(self.batches):
            targets = torch.randint(0, 3, (16,), generator=generator)
            yield torch.randn(16, 2, generator=generator) + 2 * targets[:, None].float(), targets


def val_loss(model: nn.Module) -> float:
    inputs, targets = blobs(300)
    with torch.no_grad():
        return nn.functional.cross_entropy(model(inputs), targets).item()


def test_fit_trains_on_a_generator_of_batches():
    """A generator has no len and can be read once: one epoch trains on all its batches (the preflight's look at
    the first batch does not take it away), and the loss falls."""
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    before = val_loss(model)
    seen = []

    def batches():
        for inputs, targets in Stream(40):
            seen.append(len(targets))
            yield inputs, targets

    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, epochs=1, options=Options(progress=False))
    metrics = trainer.fit(batches(), iter(Stream(4, seed=100)), iter(Stream(4, seed=200)))
    assert len(seen) == 40 and trainer.state.step == 40  # every batch trained, none taken by the preflight
    assert 0 < metrics["val/loss"] < before and 0 < metrics["test/loss"] < before  # both read, once each
    assert val_loss(model) < 0.5 * before
    assert metrics["train/accuracy"] > 0.5  # chance is 1/3


def test_fit_trains_for_epochs_on_a_dataloader_without_len(tmp_path):
    """A DataLoader over an IterableDataset (len() raises TypeError) works every epoch; the run folder is complete,
    and the progress bar has no total."""
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    before = val_loss(model)
    loader = DataLoader(Stream(12), batch_size=None)
    with pytest.raises(TypeError):
        len(loader)
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=0.05),
        epochs=3,
        out_dir=tmp_path,
        log_every=4,
    )
    trainer.fit(loader)
    assert trainer.state.step == 36 and trainer.logger.bar.total is None
    losses = [json.loads(line)["train/loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0] and val_loss(model) < 0.5 * before
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["state"]["epoch"] == 3


@pytest.mark.parametrize("split", ["train_loader", "val_loader"])
def test_a_generator_for_several_epochs_is_refused_before_training(split):
    """The second epoch would find it empty: no training, or a val/loss of 0 that best.pt would take as the best."""
    model = nn.Linear(2, 3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=3)
    loaders = {"train_loader": list(Stream(4)), "val_loader": list(Stream(2))} | {split: iter(Stream(4))}
    with pytest.raises(ValueError, match=rf"{split} is a generator .* epochs=3 reads them 3 times"):
        trainer.fit(**loaders)
    assert trainer.state.step == 0


def test_accumulation_over_a_loader_without_len_is_refused_with_the_reason():
    model = nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, epochs=1, options=Options(accumulate=2))
    with pytest.raises(ValueError, match=r"accumulate=2 .* train_loader has no len"):
        trainer.fit(DataLoader(Stream(4), batch_size=None))
    assert trainer.state.step == 0


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam])
def test_a_fused_optimizer_skips_the_nan_step_on_the_device_and_the_run_stops_at_the_next_step_log(
    optimizer_class, tmp_path
):
    """With a fused optimizer (the GPU's default) the flags are read at log steps, not every step: the NaN step's
    update is skipped by the optimizer itself, the steps after it go on, and the run stops at the log naming the
    NaN step. The weights equal those of the same training without that batch."""
    inputs, targets = blobs()
    batches = [(inputs[i : i + 16], targets[i : i + 16]) for i in range(0, 96, 16)]

    def trained(steps: list[tuple[torch.Tensor, torch.Tensor]], call: int, log_every: int) -> Trainer:
        torch.manual_seed(0)
        model = nn.Linear(2, 3)
        optimizer = optimizer_class(
            model.parameters(), lr=0.5 if optimizer_class is torch.optim.SGD else 0.01, fused=True
        )
        options = Options(preflight=False, progress=False, pictures=False)
        return Trainer(model, SpikeAt(model, call, math.nan), optimizer, epochs=1, task="classification",
                       out_dir=tmp_path / str(call), log_every=log_every, options=options)  # fmt: skip

    guarded = trained(batches, call=3, log_every=5)
    assert guarded.guard.skips_on_device and not guarded.guard.reads_every_step
    with pytest.raises(UserError, match=r"the loss became nan at step 3 \(epoch 1, batch 3\)") as raised:
        guarded.fit(batches)
    assert "Its update was skipped; the weights (of step 5, finite) are in" in raised.value.message
    assert guarded.state.step == 5  # steps 4 and 5 went on before the log step read the flags
    without = trained([], call=0, log_every=5)
    without.fit([batch for i, batch in enumerate(batches[:5]) if i != 2])
    for name, weights in guarded.raw_model.state_dict().items():
        assert torch.allclose(weights, without.raw_model.state_dict()[name]), name
    saved = load_checkpoint(tmp_path / "3" / "checkpoints" / "nonfinite-step3.pt")["model"]
    assert all(torch.equal(saved[k], v) for k, v in guarded.raw_model.state_dict().items())


def test_fp16_overflows_are_counted_and_only_a_run_of_them_stops_the_training():
    """GradScaler skips an fp16 step that overflows and carries on: the guard counts those steps, says so at the
    epoch's end, and stops only at OVERFLOW_PATIENCE in a row."""
    guard = StepGuard(None, torch.device("cpu"), fp16=True)

    def steps(first: int, losses: list[float]) -> torch.Tensor:
        for step, loss in enumerate(losses, start=first):
            guard.watch(torch.tensor(loss), torch.zeros(2, 2), torch.zeros(2), 1, step - 1, step)
            guard.check([])  # no gradients here: the loss alone flags the step
        return guard.unread()

    three_then_a_good_one = [math.inf] * 3 + [1.0]
    assert guard.read(steps(1, three_then_a_good_one + [math.inf] * (OVERFLOW_PATIENCE - 1)), False) is None
    assert guard.overflowed == 3 + OVERFLOW_PATIENCE - 1
    assert guard.overflow_news().startswith(f"fp16: GradScaler skipped {guard.overflowed} steps whose gradients")
    assert guard.overflow_news() == ""  # said once
    bad = guard.read(steps(20, [math.inf]), before_update=True)  # the tenth in a row
    assert bad is not None and bad.kept.step == 20 and not bad.skipped_on_device
