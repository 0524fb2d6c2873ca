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
    from trainer.components.data import InMemoryLoader

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
        dog.on_step_log({"train/loss": loss})
    (rising,) = dog.epoch_advice({"train/loss": 1.6})
    assert "optimizer.lr=0.01" in rising
    for loss in (1.0, 1.2, 1.8, 2.5):
        dog.on_step_log({"train/loss": loss})
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
            dog.on_step_log({"train/loss": loss})
        assert dog.epoch_advice({"train/loss": sum(epoch_windows) / 4}) == []
