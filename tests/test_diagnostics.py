"""The preflight, the watchdog and the error rewriting, on deliberately broken pieces."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tests.conftest import SYNTHETIC
from trainer.diagnostics import first_batch, preflight
from trainer.explain import explain
from trainer.watchdog import Watchdog, diagnose_nonfinite


def blobs(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    targets = torch.arange(n) % 3
    return torch.randn(n, 4) + targets[:, None].float(), targets


def test_preflight_leaves_weights_gradients_and_random_state_untouched():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = blobs()
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    report = preflight(model, nn.CrossEntropyLoss(), batch, num_classes=3)
    assert not report.failures
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_training_with_and_without_preflight_gives_the_same_losses(write_config, run_cli, tmp_path):
    path = write_config(SYNTHETIC)
    assert run_cli(path, "name=on")[0] == 0
    assert run_cli(path, "name=off", "train.preflight=false")[0] == 0
    losses = {}
    for name in ("on", "off"):
        (run_dir,) = (tmp_path / "runs" / name).iterdir()
        losses[name] = [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert losses["on"] == losses["off"]


def test_first_batch_does_not_change_the_shuffle_order():
    from trainer.components.splits import InMemoryLoader

    a = InMemoryLoader(torch.arange(20).float(), torch.arange(20), 5, shuffle=True, seed=3)
    b = InMemoryLoader(torch.arange(20).float(), torch.arange(20), 5, shuffle=True, seed=3)
    first_batch(a)
    assert torch.equal(torch.cat([t for _, t in a]), torch.cat([t for _, t in b]))


def test_full_check_overfits_a_batch_and_times_the_data():
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    inputs, targets = blobs()
    report = preflight(
        model,
        nn.CrossEntropyLoss(),
        (inputs, targets),
        num_classes=3,
        full=True,
        make_optimizer=lambda p: torch.optim.Adam(p, lr=1e-2),
        loader=[(inputs, targets)] * 3,
    )
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["overfit one batch"] == "pass" and "data loading" in statuses
    assert [row[1] for row in report.layers] == ["Linear", "ReLU", "Linear"]


def test_a_model_that_cannot_learn_fails_the_overfit_test():
    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(3))

        def forward(self, x):  # ignores its input: it cannot tell the examples apart
            return self.bias.expand(len(x), 3)

    report = preflight(
        Frozen(), nn.CrossEntropyLoss(), blobs(), full=True, make_optimizer=lambda p: torch.optim.Adam(p, lr=1e-2)
    )
    assert {c.name: c.status for c in report.checks}["overfit one batch"] == "warn"


def test_nll_on_raw_scores_is_a_failure():
    report = preflight(nn.Linear(4, 3), nn.NLLLoss(), blobs(), num_classes=3)
    assert any("nll expects log-probabilities" in c.detail for c in report.failures)
    with_log_softmax = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    assert not preflight(with_log_softmax, nn.NLLLoss(), blobs(), num_classes=3).failures


def test_float_targets_for_cross_entropy_are_a_failure():
    inputs, targets = blobs()
    report = preflight(nn.Linear(4, 3), nn.CrossEntropyLoss(), (inputs, targets.float()), num_classes=3)
    (failure,) = report.failures
    assert "takes class indices (int64" in failure.detail and "torch.float32 [64]" in failure.detail


def test_watchdog_gives_each_advice_once():
    dog = Watchdog(lr=0.1)
    for loss in (1.0, 1.2, 1.8, 2.5):
        dog.on_step_log(None, 0, {"train/loss": loss})
    (rising,) = dog.epoch_advice({"train/loss": 1.6})
    assert "optimizer.lr=0.01" in rising
    for loss in (1.0, 1.2, 1.8, 2.5):
        dog.on_step_log(None, 0, {"train/loss": loss})
    assert dog.epoch_advice({"train/loss": 1.6}) == []


def test_watchdog_sees_overfitting():
    dog = Watchdog(lr=0.1)
    advice = []
    for train, val in ((0.5, 0.40), (0.3, 0.42), (0.1, 0.50)):
        advice += dog.epoch_advice({"train/loss": train, "val/loss": val})
    (overfit,) = advice
    assert "overfitting" in overfit and "0.4000 -> 0.5000" in overfit


def test_nonfinite_diagnosis_names_inputs_weights_or_layer():
    model = nn.Sequential(nn.Linear(4, 3))
    inputs, targets = blobs()
    nan_inputs = inputs.clone()
    nan_inputs[0, 0] = float("nan")
    assert "inputs of this batch hold 1 NaN/inf" in diagnose_nonfinite(
        model, nn.CrossEntropyLoss(), nan_inputs, targets
    )
    model[0].weight.data[0, 0] = float("inf")
    assert "weights already hold NaN/inf (0.weight)" in diagnose_nonfinite(
        model, nn.CrossEntropyLoss(), inputs, targets
    )
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    model[2].weight.data[:] = 3e38  # the sum of a few such products overflows float32 to inf
    cause = diagnose_nonfinite(model, nn.CrossEntropyLoss(), inputs.abs(), targets)
    assert "the first NaN/inf appears in the output of layer '2' (Linear)" in cause


def test_out_of_memory_suggests_half_the_batch_size():
    error = explain(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), batch_size=256)
    assert error.key == "data.batch_size"
    assert "ran out of memory at batch size 256" in error.message and "data.batch_size=128" in error.fix


def test_loss_without_graph_from_torch_is_explained():
    with pytest.raises(RuntimeError) as caught:
        torch.tensor(1.0).backward()
    error = explain(caught.value)
    assert "cut off from the model" in error.message and ".item()" in error.fix


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_part_of_the_model_on_another_device_is_explained():
    layer = nn.Linear(4, 3).cuda()
    with pytest.raises(RuntimeError) as caught:
        layer(torch.randn(2, 4))
    assert "nn.ModuleList" in explain(caught.value).fix


def test_check_command_prints_the_checklist_and_exit_code(write_config, run_cli):
    code, out, err = run_cli("check", write_config(SYNTHETIC))
    assert code == 0, err
    assert "[PASS] forward: input [32, 2] -> output [32, 3]." in out
    assert "ready to train" in out
    code, out, _ = run_cli("check", write_config(SYNTHETIC), "loss=mse")
    assert code == 2
    assert "[FAIL] loss vs targets: MSELoss compares output and targets element by element" in out


def test_a_failed_preflight_leaves_no_run_folder(write_config, run_cli, tmp_path):
    code, _, err = run_cli(write_config(SYNTHETIC), "loss=mse")
    assert code == 2 and "MSELoss compares output and targets" in err
    assert not (tmp_path / "runs").exists()


def test_epoch_metrics_are_logged_at_the_step_the_epoch_ended(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=3")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [12, 24, 36]  # 360 training samples in batches of 32


def test_errors_in_a_model_file_name_the_file_and_line(write_config, run_cli, tmp_path):
    (tmp_path / "net.py").write_text("import torch\nclass Net(torch.nn.Module)\n    pass\n")
    code, _, err = run_cli(write_config(SYNTHETIC), "model=net.py:Net")
    assert code == 2 and "net.py:2: Python cannot read this line" in err
    (tmp_path / "net.py").write_text("import torchh\n\n\nclass Net:\n    pass\n")  # defines Net; its import fails
    code, _, err = run_cli(write_config(SYNTHETIC), "model=net.py:Net")
    assert code == 2 and "net.py:1: ModuleNotFoundError while importing 'net.py'" in err


def test_a_custom_loss_on_class_labels_still_reports_accuracy(write_config, run_cli, tmp_path):
    (tmp_path / "my_loss.py").write_text(
        "import torch.nn.functional as F\n\ndef ce(logits, targets):\n    return F.cross_entropy(logits, targets)\n"
    )
    code, out, _ = run_cli(write_config(SYNTHETIC), "loss=my_loss.py:ce")
    assert code == 0 and "val/accuracy" in out


def test_warnings_are_kept_in_diagnosis_txt_and_tensorboard(write_config, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tmp_path / "net.py").write_text(
        "import torch\n\nclass Net(torch.nn.Module):\n"
        "    def __init__(self, num_classes):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(2, num_classes)\n\n    def forward(self, x):\n"
        "        return torch.softmax(self.fc(x), dim=1)\n"
    )
    code, out, err = run_cli(write_config(SYNTHETIC), "model=net.py:Net")
    assert code == 0
    assert out.count("already ends in softmax") + err.count("already ends in softmax") == 1  # printed once
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert "already ends in softmax" in (run_dir / "diagnosis.txt").read_text()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    (text,) = events.Tensors("diagnosis/text_summary")[-1:]
    assert b"already ends in softmax" in text.tensor_proto.string_val[0]


def test_a_settled_loss_in_a_later_epoch_is_not_called_flat():
    dog = Watchdog(lr=0.1)
    for epoch_windows in ([2.0, 1.0, 0.5, 0.3], [0.06, 0.0601, 0.0599, 0.06]):
        for loss in epoch_windows:
            dog.on_step_log(None, 0, {"train/loss": loss})
        assert dog.epoch_advice({"train/loss": sum(epoch_windows) / 4}) == []


# --- The pieces of the checklist, pinned line by line ---------------------------------------------------------------


def test_a_check_line_offers_its_fix_only_when_something_is_wrong():
    from trainer.diagnostics import Check

    assert Check("pass", "gradients", "all 4 get a gradient", "unused fix").line() == (
        "[PASS] gradients: all 4 get a gradient."
    )
    assert Check("warn", "data loading", "slow").line() == "[WARN] data loading: slow."
    assert Check("fail", "loss", "not one number", "use mean").line() == "[FAIL] loss: not one number. Try: use mean"


def test_the_layer_table_lists_every_leaf_with_its_output_shape_and_own_parameters():
    from trainer.diagnostics import layer_summary

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
            self.rnn = nn.GRU(8, 5, batch_first=True)  # returns a tuple (output, hidden), not a tensor
            self.head = nn.Linear(5, 3)

        def forward(self, x):
            out, _ = self.rnn(self.embed(x))
            return self.head(out[:, -1])

    model = Tagger()
    model.train()
    table = layer_summary(model, torch.randn(2, 7, 4))
    assert table.splitlines() == [
        "layer    type    output shape  parameters",
        "embed.0  Linear  [B, 7, 8]     40        ",
        "embed.1  ReLU    [B, 7, 8]     0         ",
        "rnn      GRU     tuple         225       ",
        "head     Linear  [B, 3]        18        ",
        "283 parameters (283 trainable)",
    ]
    assert model.training  # the table is made in evaluation mode, and the mode is given back


def test_the_layer_summary_counts_frozen_parameters_apart():
    from trainer.diagnostics import layer_summary

    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1000))
    model[0].requires_grad_(False)
    lines = layer_summary(model, torch.randn(3, 4)).splitlines()
    assert lines[2:] == ["1      Linear  [B, 1000]     9,000     ", "9,040 parameters (9,000 trainable)"]


def _per_sample_loss(output, targets):
    return nn.functional.cross_entropy(output, targets, reduction="none")


class _PerSampleLoss(nn.Module):
    def forward(self, output, targets):
        return nn.functional.cross_entropy(output, targets, reduction="none")


@pytest.mark.parametrize(
    "loss_fn, defined_at",
    [
        (_per_sample_loss, _per_sample_loss.__code__.co_firstlineno),
        (__import__("functools").partial(_per_sample_loss), _per_sample_loss.__code__.co_firstlineno),
        (_PerSampleLoss(), _PerSampleLoss.forward.__code__.co_firstlineno - 1),
        (nn.CrossEntropyLoss(reduction="none"), None),  # torch's own loss: no file of the learner's to point at
    ],
    ids=["function", "partial", "module", "torch"],
)
def test_a_loss_that_is_not_one_number_points_at_where_the_learner_defined_it(loss_fn, defined_at):
    from trainer.failure import short_path

    (failure,) = preflight(nn.Linear(4, 3), loss_fn, blobs(), num_classes=3).failures
    assert failure.detail.startswith("the loss is [64], not one number")
    if defined_at is None:
        assert failure.detail == "the loss is [64], not one number"
    else:
        assert failure.detail.endswith(f" (loss defined at {short_path(__file__)}:{defined_at})")


def test_the_one_batch_check_compares_the_outputs_with_the_classes_of_the_data():
    from trainer.diagnostics import check_one_batch

    inputs, targets = blobs()
    warnings = check_one_batch(nn.Linear(4, 3), nn.CrossEntropyLoss(), (inputs, targets), torch.device("cpu"), 5)
    assert warnings == [
        "[WARN] loss vs targets: the model outputs 3 scores but the data has 5 classes. "
        "Try: make the last layer output 5 scores"
    ]
    assert check_one_batch(nn.Linear(4, 3), nn.CrossEntropyLoss(), (inputs, targets), torch.device("cpu"), 3) == []


class _ScriptedLoss:
    """A loss whose values follow a script, whatever the model does (it still has a graph to backpropagate)."""

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self, output, targets):
        self.calls += 1
        return output.sum() * 0 + self.values[min(self.calls, len(self.values)) - 1]


NOT_LEARNED = (
    "the model, the loss or the learning rate is off: try optimizer.lr 10x higher and lower, and check that the loss "
    "compares the right things"
)


@pytest.mark.parametrize(
    "losses, status, detail, fix",
    [
        ([1.0] * 59 + [0.19], "pass", "16 examples learned in 60 steps: loss 1.000 -> 0.1900", ""),
        ([5.0] * 59 + [1.0], "warn", "could not learn 16 examples in 60 steps: loss 5.000 -> 1.000", NOT_LEARNED),
        ([4.0] + [1.0] * 58 + [0.5], "pass", "16 examples learned in 60 steps: loss 4.000 -> 0.5000", ""),
        (
            [4.0] + [3.0] * 58 + [1.0],
            "warn",
            "could not learn 16 examples in 60 steps: loss 4.000 -> 1.000",
            NOT_LEARNED,
        ),
        (
            [1.0] * 59 + [float("inf")],
            "fail",
            "the loss became inf while learning 16 examples",
            "lower optimizer.lr by 10x",
        ),
        (
            [1.0] * 59 + [float("nan")],
            "fail",
            "the loss became nan while learning 16 examples",
            "lower optimizer.lr by 10x",
        ),
    ],
    ids=["a_fifth_less", "exactly_a_fifth", "against_the_first", "not_the_second", "inf", "nan"],
)
def test_overfitting_one_batch_judges_the_60th_loss_against_the_first(losses, status, detail, fix):
    """Learned means the 60th loss is below a fifth of the first one (exactly a fifth is not enough)."""
    from trainer.diagnostics import Report, _overfit_one_batch

    seen = []
    model = nn.Linear(4, 3)
    model.register_forward_hook(lambda module, args, output: seen.append(len(args[0])))
    loss_fn = _ScriptedLoss(losses)
    report = Report()
    _overfit_one_batch(model, loss_fn, blobs(), lambda p: torch.optim.SGD(p, lr=0.1), report)
    (check,) = report.checks
    assert (check.name, check.status, check.detail, check.fix) == ("overfit one batch", status, detail, fix)
    assert loss_fn.calls == 60 and seen == [16] * 60  # 60 steps on the batch's first 16 examples


def test_overfitting_one_batch_learns_16_examples_on_a_copy():
    from trainer.diagnostics import Report, _overfit_one_batch

    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sizes = []
    optimizers = []

    def make_optimizer(params):
        optimizers.append(torch.optim.Adam(params, lr=1e-2))
        return optimizers[-1]

    def loss_fn(output, targets):
        sizes.append(len(targets))
        return nn.functional.cross_entropy(output, targets)

    report = Report()
    _overfit_one_batch(model, loss_fn, blobs(), make_optimizer, report)
    assert report.checks[0].status == "pass" and sizes == [16] * 60
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
    trial = optimizers[0].param_groups[0]["params"]
    assert all(p is not q for p in trial for q in model.parameters())
    assert optimizers[0].state  # the copy's optimizer really stepped


class _Clock:
    """A fake time.perf_counter that moves only when the test says: timing checks become exact."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    "load_seconds, step_seconds, status, detail",
    [
        (0.75, 1.0, "warn", "loading a batch takes 750.0 ms, a training step 1000.0 ms: the model waits for data"),
        (0.5, 1.0, "pass", "loading a batch takes 500.0 ms, a training step 1000.0 ms"),  # exactly half: not waiting
        (0.25, 1.0, "pass", "loading a batch takes 250.0 ms, a training step 1000.0 ms"),
        (0.75, 2.0, "pass", "loading a batch takes 750.0 ms, a training step 2000.0 ms"),
        (1.5, 2.0, "warn", "loading a batch takes 1500.0 ms, a training step 2000.0 ms: the model waits for data"),
    ],
)
def test_data_loading_is_compared_with_the_training_step(monkeypatch, load_seconds, step_seconds, status, detail):
    from trainer import diagnostics

    clock = _Clock()
    monkeypatch.setattr(diagnostics.time, "perf_counter", clock)
    fetched = []

    def loader():
        for i in range(25):
            clock.now += load_seconds
            fetched.append(i)
            yield blobs(8)

    class Slow(nn.Linear):
        def forward(self, x):
            clock.now += step_seconds
            return super().forward(x)

    stepped = []

    def make_optimizer(params):
        optimizer = torch.optim.SGD(params, lr=0.1)
        optimizer.register_step_post_hook(lambda *args: stepped.append(1))
        return optimizer

    report = diagnostics.Report()
    model = Slow(4, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    diagnostics._data_vs_step_time(model, nn.CrossEntropyLoss(), loader(), make_optimizer, report)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the steps trained a copy
    (check,) = report.checks
    assert (check.name, check.status, check.detail) == ("data loading", status, detail)
    assert len(fetched) == 10 and len(stepped) == 10  # ten batches timed, each trained on once
    assert (check.fix == "use more DataLoader workers, or keep the data in memory") == (status == "warn")


# --- Where the learner's own code went wrong: file and line in the check's words ---------------------------------
def _line_of(cls: type, text: str) -> str:
    """'tests/test_diagnostics.py:412: <text>': the line of `cls`'s source that holds `text`, as the check names it."""
    import inspect

    from trainer.failure import short_path

    lines, start = inspect.getsourcelines(cls)
    number = next(start + i for i, line in enumerate(lines) if text in line)
    return f"{short_path(inspect.getsourcefile(cls))}:{number}: {lines[number - start].strip()}"


def _typed_in(cls: type) -> type:
    """The same class typed into an interpreter: its code has no source file to point at."""
    import inspect

    namespace = {"nn": nn, "torch": torch}
    exec(compile(inspect.getsource(cls), "<typed in>", "exec"), namespace)
    return namespace[cls.__name__]


class _ReturnsAPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x), x


class _DropsHalfTheBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x[::2])


@pytest.mark.parametrize(
    "model, detail",
    [
        (_ReturnsAPair(), "the model returns a tuple, not a tensor"),
        (_DropsHalfTheBatch(), "the output has 32 rows for a batch of 64"),
    ],
    ids=["tuple", "rows"],
)
def test_a_wrong_output_names_the_learners_forward(model, detail):
    import inspect

    from trainer.failure import short_path

    forward = type(model).forward
    where = f" (forward at {short_path(inspect.getsourcefile(forward))}:{inspect.getsourcelines(forward)[1]})"
    (failure,) = preflight(model, nn.CrossEntropyLoss(), blobs(), num_classes=3).failures
    assert failure.detail == detail + where
    torch_model = nn.Sequential(nn.Linear(4, 3), nn.Unflatten(0, (32, 2)))  # torch's own forward: no place to name
    (failure,) = preflight(torch_model, nn.CrossEntropyLoss(), blobs(), num_classes=3).failures
    assert failure.detail == "the output has 32 rows for a batch of 64"
    (failure,) = preflight(_typed_in(_ReturnsAPair)(), nn.CrossEntropyLoss(), blobs(), num_classes=3).failures
    assert failure.detail == "the model returns a tuple, not a tensor"


class _TrailingComma(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = (nn.Linear(4, 3),)

    def forward(self, x):
        return self.fc(x)


class _PlainTensorWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.scale = torch.ones(3, requires_grad=True)

    def forward(self, x):
        return self.fc(x) * self.scale


class _WeightSetByName(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        for name in ("scale", "shift"):  # no `self.scale =` line to point at
            setattr(self, name, torch.ones(3, requires_grad=True))

    def forward(self, x):
        return self.fc(x) * self.scale + self.shift


def test_hidden_layers_and_weights_name_the_line_that_made_them():
    from trainer.diagnostics import check_model_structure
    from trainer.errors import UserError

    with pytest.raises(UserError) as caught:  # before the optimizer is built, as a run checks it
        check_model_structure(_TrailingComma())
    made, called = _line_of(_TrailingComma, "self.fc = ("), _line_of(_TrailingComma, "return self.fc(")
    assert (
        f"[FAIL] hidden layers: `fc` is a tuple holding one layer: a trailing comma at {made} made it one, and it is "
        f"called at {called}. Try: remove the comma at the end of that line"
    ) in str(caught.value)
    report = preflight(_PlainTensorWeight(), nn.CrossEntropyLoss(), blobs(), num_classes=3)
    (hidden,) = [check for check in report.checks if check.name == "hidden weights"]
    assert hidden.detail.startswith(f"`scale` ({_line_of(_PlainTensorWeight, 'self.scale =')}) is a plain tensor")
    report = preflight(_WeightSetByName(), nn.CrossEntropyLoss(), blobs(), num_classes=3)
    scale, shift = [check for check in report.checks if check.name == "hidden weights"]
    assert scale.detail.startswith("`scale` is a plain tensor, not a weight of the model")
    assert shift.detail.startswith("`shift` is a plain tensor, not a weight of the model")


class _EndsInSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


def _own_bce(output, targets):
    return nn.functional.binary_cross_entropy_with_logits(output, targets)


def test_a_squashed_output_names_the_line_and_the_learners_loss():
    from trainer.failure import short_path

    inputs, targets = blobs()
    batch = (inputs, (targets == 1).float()[:, None])
    report = preflight(_EndsInSigmoid(), _own_bce, batch)
    (squashed,) = [check for check in report.checks if check.name == "output range"]
    where = f"{short_path(__file__)}:{_own_bce.__code__.co_firstlineno}"
    assert squashed.detail == (
        f"the model's output comes out of a sigmoid (scores in 0..1) (at "
        f"{_line_of(_EndsInSigmoid, 'torch.sigmoid(')}), but binary_cross_entropy_with_logits (in your loss, {where}) "
        "applies its own softmax or sigmoid and wants raw scores, so the model learns slowly or not at all"
    )
    report = preflight(_EndsInSigmoid(), nn.BCEWithLogitsLoss(), batch)
    (squashed,) = [check for check in report.checks if check.name == "output range"]
    assert "but BCEWithLogitsLoss applies its own" in squashed.detail


class _SixUnusedLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.spare = nn.ModuleList(nn.Linear(4, 4, bias=False) for _ in range(6))

    def forward(self, x):
        return self.fc(x)


def test_layers_without_a_gradient_are_named_four_at_a_time():
    report = preflight(_SixUnusedLayers(), nn.CrossEntropyLoss(), blobs(), num_classes=3)
    (unused,) = [check for check in report.checks if check.name == "gradients"]
    assert unused.detail.startswith(
        "spare.0.weight, spare.1.weight, spare.2.weight, spare.3.weight and 2 more get no gradient"
    )
    model = _SixUnusedLayers()
    del model.spare[4:]
    (unused,) = [
        check for check in preflight(model, nn.CrossEntropyLoss(), blobs()).checks if check.name == "gradients"
    ]
    assert unused.detail.startswith("spare.0.weight, spare.1.weight, spare.2.weight, spare.3.weight get no gradient")


@pytest.mark.parametrize(
    "loss_fn",
    [
        __import__("functools").partial(nn.functional.cross_entropy, reduction="none"),  # torch's function
        eval(compile("lambda output, targets: (output - output).sum(1)", "<typed in>", "eval")),  # no source file
    ],
    ids=["partial_of_torch", "no_source"],
)
def test_a_loss_without_a_file_of_the_learners_names_no_place(loss_fn):
    (failure,) = preflight(nn.Linear(4, 3), loss_fn, blobs(), num_classes=3).failures
    assert failure.detail == "the loss is [64], not one number"


class _FailsInEvaluation(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = self.fc(x)
        if not self.training:  # a test-time branch with a mistake in it
            x = x.flatten()
        return self.head(x)


class _FixedBatchInEvaluation(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.fc(x)
        if not self.training:
            x = x.view(4, 3)  # written for a batch of 4
        return x


def test_the_layer_table_names_a_batch_size_written_into_forward():
    """The table is made from a few samples: a view that fixes the batch size fails there, and is named."""
    from trainer.diagnostics import layer_summary
    from trainer.errors import UserError

    with pytest.raises(UserError) as caught:
        layer_summary(_FixedBatchInEvaluation(), torch.randn(2, 4))
    assert str(caught.value).startswith("view/reshape to [4, 3] fixes the batch at 4 samples, but this batch has 2")
    assert (
        caught.value.fix == "keep the batch size free: x.view(x.size(0), -1) or x.flatten(1) instead of x.view(4, ...)"
    )
    with pytest.raises(UserError) as caught:  # no line to read the batch from, only the table's own count
        layer_summary(_typed_in(_FixedBatchInEvaluation)(), torch.randn(2, 4))
    assert str(caught.value).startswith("view/reshape to [4, 3] fixes the batch at 4 samples, but this batch has 2")


class _ForwardMisspelled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def foward(self, x):
        return self.fc(x)


def test_the_layer_table_names_a_misspelled_forward():
    from trainer.diagnostics import layer_summary
    from trainer.errors import UserError
    from trainer.failure import short_path

    with pytest.raises(UserError) as caught:
        layer_summary(_ForwardMisspelled(), torch.randn(2, 4))
    where = f"{short_path(__file__)}:{_ForwardMisspelled.foward.__code__.co_firstlineno}"
    assert str(caught.value).startswith(f"the model has no forward method, but a method 'foward' at {where}")
    assert caught.value.fix == "rename 'foward' to 'forward' (the Trainer calls model(x), which runs forward)"


def test_the_layer_table_explains_a_model_that_fails_in_evaluation_mode():
    from trainer.diagnostics import layer_summary
    from trainer.errors import UserError

    model = _FailsInEvaluation()
    with pytest.raises(UserError) as caught:
        layer_summary(model, torch.randn(2, 4))
    lines = str(caught.value).splitlines()
    line = _line_of(_FailsInEvaluation, "return self.head(x)")
    assert [text.strip() for text in lines] == [
        f"layer 'head' (Linear) expects 3 input features, but 6 arrive (at {line.rsplit(': ', 1)[0]})",
        line,  # the learner's line, with the shapes on it
        "on that line: x: [6] float32",
        "during the forward pass in evaluation mode (model.eval(), 2 samples)",
        "layer 'head' (Linear) got [6] float32; its weights are float32",
        "torch said: RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x6 and 3x2)",
    ]
    assert caught.value.fix == "in_features: 3 -> 6 for that layer (or change the layers before it)"
    assert model.training  # the mode is given back after a failure too


@pytest.mark.parametrize(
    "model, where",
    [
        (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid()), " (layer '3', Sigmoid)"),
        (nn.Sequential(nn.Linear(4, 1), nn.Sigmoid(), nn.Flatten(0)), ""),  # not the last layer: no place to name
    ],
    ids=["last_layer", "unnamed"],
)
def test_a_squashed_output_names_the_last_layer_when_it_is_the_squashing_one(model, where):
    inputs, targets = blobs()
    report = preflight(model, nn.BCEWithLogitsLoss(), (inputs, (targets == 1).float().reshape(model(inputs).shape)))
    (squashed,) = [check for check in report.checks if check.name == "output range"]
    assert squashed.detail == (
        f"the model's output comes out of a sigmoid (scores in 0..1){where}, but BCEWithLogitsLoss applies its own "
        "softmax or sigmoid and wants raw scores, so the model learns slowly or not at all"
    )


def test_a_failed_check_points_at_its_config_section():
    from trainer.diagnostics import Report, raise_on_failures
    from trainer.errors import UserError

    def raised(*checks: tuple[str, str]) -> UserError:
        report = Report()
        for name, detail in checks:
            report.add("fail", name, detail, "a fix")
        with pytest.raises(UserError) as caught:
            raise_on_failures(report)
        return caught.value

    loss = raised(("loss vs targets", "labels 0..3"), ("initial loss", "far too high"))
    assert str(loss) == (
        "checking one batch before training found what would go wrong:\n"
        "  [FAIL] loss vs targets: labels 0..3. Try: a fix\n  [FAIL] initial loss: far too high. Try: a fix"
    )
    assert loss.fix == "`python -m trainer check CONFIG` prints the whole checklist and the model's layers"
    assert (loss.key, raised(("inputs", "NaN")).key, raised(("model output", "a tuple")).key) == (
        "loss",
        "data",
        "model",
    )
    assert raised(("model output", "a tuple"), ("loss", "not one number")).key == ""  # two sections: no single line
    raise_on_failures(Report())  # nothing failed: nothing raised


def test_a_model_without_trainable_parameters_is_refused_before_the_optimizer():
    from trainer.diagnostics import check_model_structure
    from trainer.errors import UserError

    frozen = nn.Sequential(nn.Linear(4, 3)).requires_grad_(False)
    with pytest.raises(UserError) as caught:
        check_model_structure(frozen)
    assert str(caught.value).endswith(
        "\n  [FAIL] parameters: the model has no trainable parameters. Try: make each layer an attribute of the model "
        "(self.layer = nn.Linear(...)) inside __init__"
    )
    assert caught.value.key == "model"

    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(4, 3)]  # hidden from torch: the model has no parameters at all

    with pytest.raises(UserError) as caught:
        check_model_structure(Listed())
    assert "[FAIL] hidden layers: `layers` is a plain Python list" in str(caught.value)
    assert "no trainable parameters" not in str(caught.value)  # the cause is said, not its consequence too
    check_model_structure(nn.Linear(4, 3))


# --- The first loss, judged against what a fresh model gives -----------------------------------------------------
def _own_nll(output, targets):
    return nn.functional.nll_loss(output, targets)


def initial_loss_checks(logits, loss_fn=None, loss: float = 1.0) -> list[tuple[str, str, str]]:
    """The "initial loss" line for these outputs of a 3-class model and this first loss."""
    from trainer.diagnostics import Report, _initial_loss_check

    report = Report()
    report.initial_loss = loss
    _initial_loss_check(nn.Linear(4, 3), loss_fn or nn.CrossEntropyLoss(), torch.tensor(logits), report)
    assert all(check.name == "initial loss" for check in report.checks)
    return [(check.status, check.detail, check.fix) for check in report.checks]


SOFTMAX_TWICE = (
    "warn",
    "the model's output already ends in softmax; cross_entropy applies log-softmax itself, so learning is slow",
    "remove the final softmax from the model",
)
LOG_SOFTMAX_TWICE = (
    "warn",
    "the model's output already ends in log_softmax; cross_entropy applies log-softmax itself, so learning is slow",
    "remove the final log_softmax from the model",
)
RAW_FOR_NLL = (
    "nll expects log-probabilities (all <= 0), but the model outputs raw scores{}: nll_loss would go negative "
    "without end while nothing is learned"
)
NLL_FIX = "end the model with F.log_softmax(x, dim=1), or use cross_entropy, which does both"
A_FRESH_ONE = "(a fresh 3-class model gives about ln(3) = 1.099)"


@pytest.mark.parametrize(
    "logits, loss_fn, expected",
    [
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], None, SOFTMAX_TWICE),  # certain probabilities: zeros are probabilities
        ([[0.3334, 0.3334, 0.3334]], None, SOFTMAX_TWICE),  # rounded: the rows sum to 1.0002
        ([[0.5, 0.0, 0.2]], None, ("pass", f"1.000 {A_FRESH_ONE}", "")),  # not negative, yet no probabilities
        ([[0.0, -30.0, -30.0]], None, LOG_SOFTMAX_TWICE),  # log(1) = 0 is a log-probability
        ([[-1.0984, -1.0984, -1.0984]], None, LOG_SOFTMAX_TWICE),  # rounded: the exps sum to 1.0002
        ([[-0.5, -2.0, -1.0]], None, ("pass", f"1.000 {A_FRESH_ONE}", "")),  # negative, yet the exps sum to 1.11
        ([[0.5, -0.2, 0.1]], nn.NLLLoss(), ("fail", RAW_FOR_NLL.format(""), NLL_FIX)),
        ([[-1.0986, -1.0986, -1.0986]], nn.NLLLoss(), ("pass", f"1.000 {A_FRESH_ONE}", "")),
    ],
    ids=["one_hot", "rounded_probabilities", "relu", "log_one_hot", "rounded_log", "negative", "nll_raw", "nll_log"],
)
def test_the_first_loss_tells_probabilities_and_log_probabilities_from_scores(logits, loss_fn, expected):
    assert initial_loss_checks(logits, loss_fn) == [expected]


def test_raw_scores_into_the_learners_nll_are_a_warning_that_names_the_loss():
    """A loss function of the learner's is judged from its source, so it is a warning, not a certain failure."""
    from trainer.failure import short_path

    where = f" (loss defined at {short_path(__file__)}:{_own_nll.__code__.co_firstlineno})"
    assert initial_loss_checks([[0.5, -0.2, 0.1]], _own_nll) == [("warn", RAW_FOR_NLL.format(where), NLL_FIX)]


@pytest.mark.parametrize(
    "loss, expected",
    [
        (0.0, ("pass", f"0.000 {A_FRESH_ONE}", "")),
        (3.0, ("pass", f"3.000 {A_FRESH_ONE}", "")),
        (3 * __import__("math").log(3), ("pass", f"3.296 {A_FRESH_ONE}", "")),  # exactly three times: not far above
        (
            3.5,
            (
                "warn",
                "3.50, far above ln(3) = 1.10 that an unsure fresh model gives: its outputs start very large",
                "normalize the inputs (mean 0, std 1) or use a smaller weight init",
            ),
        ),
    ],
    ids=["zero", "three", "three_times_ln3", "far_above"],
)
def test_a_first_loss_far_above_ln_of_the_classes_is_a_warning(loss, expected):
    assert initial_loss_checks([[0.0, 0.0, 0.0]], loss=loss) == [expected]


def test_the_first_loss_is_judged_only_for_class_scores_of_one_sample_per_row():
    from trainer.diagnostics import Report, _initial_loss_check

    for loss_fn, logits in ((nn.MSELoss(), torch.zeros(2, 3)), (nn.CrossEntropyLoss(), torch.zeros(2, 3, 5))):
        report = Report()
        report.initial_loss = 9.0
        _initial_loss_check(nn.Linear(4, 3), loss_fn, logits, report)
        assert report.checks == []


def test_a_softmax_layer_before_cross_entropy_is_named():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    report = preflight(model, nn.CrossEntropyLoss(), blobs(), num_classes=3)
    (initial,) = [check for check in report.checks if check.name == "initial loss"]
    assert initial.detail.startswith("the model's output already ends in softmax (layer '3', Softmax); cross_entropy")
    model = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    (initial,) = [
        c for c in preflight(model, nn.CrossEntropyLoss(), blobs(), num_classes=3).checks if c.name == "initial loss"
    ]
    assert initial.detail.startswith("the model's output already ends in log_softmax (layer '1', LogSoftmax);")


# --- Do the model's output and the targets fit the loss? ---------------------------------------------------------
def contract(loss_fn, logits, targets, num_classes=None) -> tuple[bool, list[tuple[str, str, str]]]:
    """(training may go on, the "loss vs targets" lines) for this output and these targets."""
    from trainer.diagnostics import Report, _loss_contract

    report = Report()
    goes_on = _loss_contract(loss_fn, logits, targets, num_classes, report)
    assert all(check.name == "loss vs targets" for check in report.checks)
    return goes_on, [(check.status, check.detail, check.fix) for check in report.checks]


LABELS = torch.tensor([0, 1, 2, 1, 0, 2, 1, 0])
SCORES = torch.zeros(8, 3)
FOR_NUMBERS = "loss: mse (or l1, huber) to predict numbers; for classes, one output per class and integer labels"


@pytest.mark.parametrize(
    "loss_fn, logits, targets, num_classes, goes_on, line",
    [
        (nn.CrossEntropyLoss(), torch.zeros(8), LABELS, None, False, (
            "fail", "CrossEntropyLoss needs one score per class, but the output is [8]",
            "make the last layer output one score per class",
        )),
        (nn.NLLLoss(), torch.zeros(8, 1), LABELS.float(), None, False, (
            "fail", "NLLLoss over a single output is always 0 (the softmax of one score is 1), and the targets are "
            "numbers [8]: nothing would be learned", FOR_NUMBERS,
        )),
        (nn.CrossEntropyLoss(), torch.zeros(8, 1), torch.zeros(8, dtype=torch.int64), None, True, (
            "pass", "1 class scores, targets within 0..0", "",
        )),
        (nn.CrossEntropyLoss(), SCORES, LABELS, 3, True, ("pass", "3 class scores, targets within 0..2", "")),
        (nn.CrossEntropyLoss(), SCORES, LABELS, 4, True, (
            "warn", "the model outputs 3 scores but the data has 4 classes", "make the last layer output 4 scores",
        )),
        (nn.CrossEntropyLoss(), SCORES, torch.where(LABELS == 1, -100, LABELS), None, True, (
            "pass", "3 class scores, targets within 0..2 (3 of 8 at the ignore_index -100: left out)", "",
        )),
        (nn.CrossEntropyLoss(), SCORES, torch.full((8,), -100), None, True, (
            "pass", "3 class scores, targets within 0..2 (8 of 8 at the ignore_index -100: left out)", "",
        )),
        (nn.CrossEntropyLoss(), SCORES, LABELS.float(), None, False, (
            "fail", "CrossEntropyLoss takes class indices (int64, shape [8]) or class probabilities (float, shape "
            "[8, 3]), but the targets are torch.float32 [8]",
            "for numbers to predict use loss: mse; for class labels give int64 targets",
        )),
        (nn.CrossEntropyLoss(), SCORES, torch.full((8, 3), 1 / 3), None, True, (
            "pass", "3 class scores, targets within 0..2", "",
        )),
        (nn.MSELoss(), torch.zeros(8, 1), LABELS.float(), None, False, (
            "fail", "MSELoss compares output and targets element by element, but the output is [8, 1] and the "
            "targets [8] (torch would broadcast them and learn the wrong thing)",
            "make the model output [8] (e.g. .squeeze(1) for one number per sample)",
        )),
        (nn.L1Loss(), SCORES, LABELS, None, False, (
            "fail", "L1Loss compares output and targets element by element, but the output is [8, 3] and the "
            "targets [8] (torch would broadcast them and learn the wrong thing)",
            "loss: cross_entropy (the targets are class labels)",
        )),
        (nn.MSELoss(), torch.zeros(8, 1), LABELS, None, False, (
            "fail", "MSELoss compares output and targets element by element, but the output is [8, 1] and the "
            "targets [8] (torch would broadcast them and learn the wrong thing)",
            "make the model output [8] (e.g. .squeeze(1) for one number per sample)",
        )),
        (nn.BCELoss(), torch.zeros(8, 1), LABELS[:, None], None, False, (
            "fail", "BCELoss needs float targets (0.0 or 1.0), got torch.int64",
            "convert the targets with .float(), or use loss: cross_entropy for class labels",
        )),
        (nn.HuberLoss(), torch.zeros(8, 1), torch.zeros(8, 1), None, True, (
            "pass", "output [8, 1], targets [8, 1]", "",
        )),
        (_own_bce, torch.zeros(8, 1), LABELS[:, None], None, True, ("pass", "output [8, 1], targets [8, 1]", "")),
    ],
    ids=[
        "one_score", "single_output_numbers", "single_output_labels", "labels", "fewer_classes_in_data",
        "some_ignored", "all_ignored", "float_labels", "probabilities", "mse_shapes", "l1_labels", "mse_int",
        "bce_int", "same_shape", "own_loss",
    ],
)  # fmt: skip
def test_the_output_and_the_targets_are_checked_against_the_loss(loss_fn, logits, targets, num_classes, goes_on, line):
    assert contract(loss_fn, logits, targets, num_classes) == (goes_on, [line])


class _WeightedLoss(nn.CrossEntropyLoss):
    def __init__(self):
        super().__init__(weight=torch.tensor([1.0, 2.0, 1.0]))


def _ce_with_notes(output, targets):
    return nn.functional.cross_entropy(output, targets)  # not F.softmax(output) first # see the docs


def _own_log_softmax_nll(output, targets):
    return nn.functional.nll_loss(nn.functional.log_softmax(output, dim=1), targets)


def _own_mse(output, targets):
    return nn.functional.mse_loss(output, targets)


@pytest.mark.parametrize(
    "loss_fn, kind",
    [
        (nn.CrossEntropyLoss(), "CrossEntropyLoss"),
        (_WeightedLoss(), "_WeightedLoss"),  # a subclass of a torch loss is taken at its name, not read
        (_ce_with_notes, "CrossEntropyLoss"),  # what follows the first # is a comment, softmax( in it too
        (_own_log_softmax_nll, ""),  # it makes its own probabilities: no rule about raw scores applies
        (_own_mse, ""),
        (_own_nll, "NLLLoss"),
    ],
    ids=["torch", "subclass", "comment", "own_probabilities", "unknown", "nll"],
)
def test_a_loss_is_judged_by_the_torch_loss_it_calls(loss_fn, kind):
    from trainer.diagnostics import loss_kind

    assert loss_kind(loss_fn) == kind


def test_an_output_made_without_autograd_has_no_last_operation():
    from trainer.diagnostics import last_operation

    assert last_operation(torch.zeros(3)) == ""
    assert last_operation(torch.zeros(3, requires_grad=True).sigmoid().view(3, 1)) == "Sigmoid"


class _MakesLayersInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = nn.ReLU()(self.fc(x))  # weightless: made anew at no cost
        x = nn.PReLU()(x)
        return nn.Linear(3, 3)(x)


def test_layers_with_weights_made_in_forward_are_named_by_line():
    report = preflight(_MakesLayersInForward(), nn.CrossEntropyLoss(), blobs(), num_classes=3)
    made = [
        (check.status, check.detail, check.fix) for check in report.checks if check.name == "layers made in forward"
    ]
    why = "a layer made here is new, with fresh random weights, on every call, so it is never trained (the optimizer "
    assert made == [
        (
            "warn",
            f"{_line_of(_MakesLayersInForward, 'nn.PReLU()')}: {why}only knows the layers made in __init__)",
            "make it once in __init__ (self.prelu = nn.PReLU(...)) and call it in forward",
        ),
        (
            "warn",
            f"{_line_of(_MakesLayersInForward, 'nn.Linear(3, 3)')}: {why}only knows the layers made in __init__)",
            "make it once in __init__ (self.linear = nn.Linear(...)) and call it in forward",
        ),
    ]


@pytest.mark.parametrize(
    "model, loss_fn, squashed, initial",
    [
        (
            nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()),
            nn.CrossEntropyLoss(),
            True,
            False,
        ),  # said once: no initial-loss line beside it
        (nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)), nn.CrossEntropyLoss(), False, True),  # initial loss's
        (nn.Sequential(nn.Linear(4, 1), nn.Softmax(dim=0)), nn.BCEWithLogitsLoss(), True, False),
        (nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), nn.MSELoss(), False, False),  # mse takes any range
    ],
    ids=["sigmoid_ce", "softmax_ce", "softmax_bce", "sigmoid_mse"],
)
def test_a_squashed_output_is_said_once_by_the_check_that_explains_it(model, loss_fn, squashed, initial):
    inputs, targets = blobs()
    if not isinstance(loss_fn, nn.CrossEntropyLoss):
        targets = (targets == 1).float()[:, None]
    checks = preflight(model, loss_fn, (inputs, targets)).checks
    lines = [(c.status, c.fix) for c in checks if c.name == "output range"]
    fix = "remove the final activation from forward (return the last Linear layer's output)"
    assert lines == ([("warn", fix)] if squashed else [])
    assert [c.status for c in checks if c.name == "initial loss"] == (["warn"] if initial else [])


class CrossEntropyLoss(nn.Module):
    """A learner's own cross entropy, named as torch names it, without an ignore_index."""

    def forward(self, output, targets):
        return nn.functional.cross_entropy(output, targets)


@pytest.mark.parametrize(
    "loss_fn, logits, targets, line",
    [
        (nn.CrossEntropyLoss(), torch.zeros(8, 2), torch.tensor([-1, 1] * 4), (
            "fail", "the targets go from -1 to 1, but class labels are 0..1 for the 2 scores the model outputs: a "
            "negative label has no score",
            "labels -1 and +1 (as an SVM takes them) are two classes: make them 0 and 1, (labels + 1) // 2",
        )),
        (CrossEntropyLoss(), SCORES, LABELS - 1, (
            "fail", "the targets go from -1 to 1, but class labels are 0..2 for the 3 scores the model outputs: a "
            "negative label has no score",
            "number the classes from 0 (labels 1..K: subtract 1); to leave samples out, give them the label -100 "
            "(the loss's ignore_index) or drop them",
        )),
        (nn.CrossEntropyLoss(), SCORES, LABELS + 1, (
            "fail", "the targets go from 1 to 3, but the model outputs 3 scores (classes 0..2): the labels look "
            "numbered from 1",
            "subtract 1 from the labels so they run 0..2 (or make the last layer output 4 scores and leave score 0 "
            "unused)",
        )),
        (nn.CrossEntropyLoss(), SCORES, LABELS * 2, (
            "fail", "the targets go from 0 to 4, but the model outputs 3 scores (classes 0..2)",
            "make the last layer output 5 scores",
        )),
        (nn.CrossEntropyLoss(), torch.zeros(8, 1), torch.full((8,), -100), (
            "pass", "1 class scores, targets within 0..0 (8 of 8 at the ignore_index -100: left out)", "",
        )),
    ],
    ids=["plus_minus_one", "own_class_negative", "from_one", "beyond", "one_output_all_ignored"],
)  # fmt: skip
def test_labels_outside_the_scores_are_told_what_to_change(loss_fn, logits, targets, line):
    assert contract(loss_fn, logits, targets) == (line[0] == "pass", [line])
