"""Early stopping, gradient accumulation and clipping, memory layout: each does what it says."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
import torch
from PIL import Image

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.components.augment import Pixels
from trainer.components.splits import DataSplits, InMemoryLoader
from trainer.loop import Options


def test_early_stopping_stops_and_says_so(write_config, run_cli, tmp_path):
    stopping = "train.early_stopping={monitor: train/loss, mode: max, patience: 2}"  # the loss falls: never 'better'
    code, out, _ = run_cli(write_config(SYNTHETIC), "train.epochs=10", stopping)
    assert code == 0
    assert "early stop: train/loss has not improved for 2 epochs" in out
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped early" and summary["epochs"] == 3 and summary["best_epoch"] == 1


def test_best_checkpoint_follows_the_monitor(write_config, run_cli, tmp_path):
    stopping = "train.early_stopping={monitor: val/accuracy, mode: max, patience: 5}"
    assert run_cli(write_config(SYNTHETIC), "train.epochs=3", stopping)[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    accuracies = [json.loads(line)["val/accuracy"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["metrics"]["val/accuracy"] == max(accuracies)


def test_a_wrong_monitor_name_lists_the_metrics_of_the_run(write_config, run_cli, tmp_path):
    code, _, err = run_cli(write_config(SYNTHETIC), "train.early_stopping={monitor: val/acc}")
    assert code == 2
    assert "train.early_stopping.monitor: 'val/acc' is not a metric of this run (did you mean 'val/accuracy'?)" in err
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli(write_config(SYNTHETIC), "data.val_split=0", "train.early_stopping={monitor: val/loss}")
    assert code == 2 and "this run has no validation split" in err


def one_step(batch_size: int, accumulate: int) -> torch.Tensor:
    torch.manual_seed(0)
    inputs, targets = torch.randn(64, 5), torch.randn(64, 1)
    model = torch.nn.Linear(5, 1)
    trainer = Trainer(
        model,
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        options=Options(accumulate=accumulate, preflight=False),
    )
    trainer.fit(InMemoryLoader(inputs, targets, batch_size, shuffle=False))
    assert trainer.state.step == 1
    return model.weight.detach().clone()


def test_accumulated_gradients_equal_the_large_batch_gradient():
    assert torch.allclose(one_step(batch_size=16, accumulate=4), one_step(batch_size=64, accumulate=1), atol=1e-6)


def clipped_update(grad_clip: float | None) -> float:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    before = [p.detach().clone() for p in model.parameters()]
    inputs, targets = torch.randn(8, 3) * 100, torch.randn(8, 1) * 100
    trainer = Trainer(
        model,
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=1.0),
        epochs=1,
        options=Options(grad_clip=grad_clip, preflight=False),
    )
    trainer.fit(InMemoryLoader(inputs, targets, 8, shuffle=False))
    return torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]).norm()


def test_gradient_clipping_caps_the_update():
    assert clipped_update(None) > 100  # with lr 1, the step is the gradient itself: huge here
    assert clipped_update(0.5) == pytest.approx(0.5, rel=1e-4)


def test_channels_last_trains_a_cnn_to_the_same_result(fake_mnist, write_config, run_cli, tmp_path):
    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {{name: cnn, channels: [8]}}\n"
    path = write_config(text)
    assert run_cli(path, "name=plain", "train.epochs=1")[0] == 0
    assert run_cli(path, "name=last", "train.epochs=1", "train.channels_last=true")[0] == 0
    losses = {}
    for name in ("plain", "last"):
        (run_dir,) = (tmp_path / "runs" / name).iterdir()
        losses[name] = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["train/loss"]
    assert losses["last"] == pytest.approx(losses["plain"], rel=1e-4)


# A learner's model that writes down, for every training forward, what the layers see: a line per forward.
RECORDING_NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        hidden = self.conv(x).mean(dim=(2, 3))
        logits = self.head(hidden)
        if self.training and torch.is_grad_enabled():
            channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            weight_last = self.conv.weight.is_contiguous(memory_format=torch.channels_last)
            with open("seen.txt", "a") as seen:
                seen.write(f"{logits.dtype} {channels_last} {weight_last}\\n")
        return logits
"""


def forwards_seen(fake_cifar, write_config, run_cli, tmp_path, *overrides: str) -> set[str]:
    """What the recording model saw in the forwards of the training steps, for a run of fake CIFAR (3 channels, so
    that the channels-last layout differs from the default one: with 1 channel the two are the same strides)."""
    (tmp_path / "net.py").write_text(RECORDING_NET)
    text = f"data: {{dataset: cifar10, root: {fake_cifar}, download: false, batch_size: 50}}\nmodel: net.py:Net\n"
    assert run_cli(write_config(text), "train.epochs=1", *overrides)[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    steps = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["state"]["step"]
    seen = (tmp_path / "seen.txt").read_text().splitlines()
    assert steps >= 3 and len(seen) >= steps
    return set(seen[-steps:])  # the steps' forwards come last (the preflight's one batch comes before them)


def test_bf16_runs_the_forward_in_bfloat16(fake_cifar, write_config, run_cli, tmp_path):
    assert forwards_seen(fake_cifar, write_config, run_cli, tmp_path, "train.precision=bf16") == {
        "torch.bfloat16 False False"
    }


def test_fp32_runs_the_forward_in_float32_with_the_default_layout(fake_cifar, write_config, run_cli, tmp_path):
    assert forwards_seen(fake_cifar, write_config, run_cli, tmp_path) == {"torch.float32 False False"}


def test_channels_last_gives_the_model_channels_last_inputs_and_weights(fake_cifar, write_config, run_cli, tmp_path):
    assert forwards_seen(fake_cifar, write_config, run_cli, tmp_path, "train.channels_last=true") == {
        "torch.float32 True True"
    }


@pytest.mark.slow  # compiling takes seconds on a CPU
@pytest.mark.skipif(
    not torch.cuda.is_available() and not (shutil.which("cc") or shutil.which("gcc")),
    reason="torch.compile's inductor needs a C compiler on a CPU, and train.compile offers no other backend",
)
def test_compiled_model_trains_and_saves_plain_weights(write_config, run_cli, tmp_path):
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert run_cli(write_config(SYNTHETIC), "name=plain")[0] == 0
    assert not torch._dynamo.utils.counters["stats"]["unique_graphs"]  # a plain run compiles nothing
    assert run_cli(write_config(SYNTHETIC), "train.compile=true")[0] == 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the forward ran as a compiled graph
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    weights = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not [key for key in weights if key.startswith("_orig_mod")]  # loadable into the plain model
    losses = [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]


def test_compile_wraps_the_model_the_trainer_runs_but_not_the_one_it_saves():
    from torch._dynamo.eval_frame import OptimizedModule

    model = torch.nn.Linear(3, 2)
    plain = Trainer(
        model,
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        options=Options(preflight=False),
    )
    compiled = Trainer(
        model,
        torch.nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        options=Options(compile=True, preflight=False),
    )
    assert not isinstance(plain.model, OptimizedModule)
    assert isinstance(compiled.model, OptimizedModule) and compiled.model._orig_mod is model
    assert compiled.raw_model is model  # checkpoints hold the plain model's weights


def test_histograms_and_graph_reach_tensorboard(write_config, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli(write_config(SYNTHETIC), "log.histograms=1")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = events.Tags()
    assert {"weights/1.weight", "gradients/1.weight"} <= set(tags["histograms"])
    assert tags["graph"]
    assert "Linear" in (run_dir / "model.txt").read_text()


def test_classification_runs_report_top5_per_class_accuracy_and_pictures(fake_mnist, write_config, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {{name: cnn, channels: [8]}}\n"
    code, out, _ = run_cli(write_config(text), "train.epochs=2")
    assert code == 0
    assert "test/top5" in out and "class  accuracy" in out
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["per_class_accuracy"]) == 10 and len(summary["confusion_matrix"]) == 10
    assert sum(map(sum, summary["confusion_matrix"])) == 64  # every test image counted once
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    assert {"val/confusion_matrix", "val/samples (wrong first)"} <= set(events.Tags()["images"])
    picture = events.Images("val/confusion_matrix")[-1]
    decoded = Image.open(io.BytesIO(picture.encoded_image_string))
    assert decoded.format == "PNG" and decoded.size == (picture.width, picture.height) and decoded.mode == "RGB"


def test_regression_runs_report_mae_rmse_and_r2():
    torch.manual_seed(0)
    inputs = torch.randn(256, 3)
    targets = inputs @ torch.tensor([[1.0], [2.0], [-1.0]])
    model = torch.nn.Linear(3, 1)
    trainer = Trainer(model, torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=10)
    metrics = trainer.fit(InMemoryLoader(inputs, targets, 32, shuffle=True), InMemoryLoader(inputs, targets, 64, False))
    assert metrics["val/r2"] > 0.99 and metrics["val/mae"] < 0.1 and metrics["val/rmse"] < 0.1


def test_metrics_that_do_not_fit_the_task_are_config_errors(write_config, run_cli):
    code, _, err = run_cli(write_config(SYNTHETIC), "log.metrics=[acuracy,r2]")
    assert code == 2
    assert "log.metrics: unknown metric 'acuracy' (did you mean 'accuracy'?)" in err
    assert "log.metrics: 'r2' is not a classification metric" in err


def test_samples_to_show_are_the_misclassified_ones_of_every_batch():
    from trainer.loop import Evaluation
    from trainer.metrics import Metrics

    evaluation = Evaluation("val", Metrics("classification", None))
    for batch in range(3):
        targets = torch.zeros(40, dtype=torch.long)
        logits = torch.tensor([[1.0, 0.0]]).repeat(40, 1)
        logits[batch] = torch.tensor([0.0, 1.0])  # one wrong prediction in each batch
        evaluation.keep_samples(torch.full((40, 1, 2, 2), float(batch)), logits, targets, limit=8)
    inputs, outputs, kept_targets = evaluation.samples
    wrong = outputs.argmax(dim=1) != kept_targets
    assert len(inputs) == 8 and wrong[:3].all() and not wrong[3:].any()
    assert sorted(inputs[:3, 0, 0, 0].tolist()) == [0.0, 1.0, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_with_grad_scaler_trains_on_cuda(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.device=cuda", "train.precision=fp16", "train.epochs=3")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    losses = [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["scaler"] is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda_gives_the_same_losses(write_config, run_cli, tmp_path):
    path = write_config(SYNTHETIC)
    assert run_cli(path, "name=whole", "train.device=cuda", "train.epochs=2")[0] == 0
    assert run_cli(path, "name=parts", "train.device=cuda", "train.epochs=1")[0] == 0
    (parts,) = (tmp_path / "runs" / "parts").iterdir()
    assert run_cli("resume", parts, "train.epochs=2")[0] == 0
    (whole,) = (tmp_path / "runs" / "whole").iterdir()
    read = lambda run: [json.loads(line)["train/loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert read(parts) == pytest.approx(read(whole), rel=1e-5)  # cuDNN/cuBLAS may differ in the last bits


def test_pictures_can_be_turned_off(write_config, run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli(write_config(SYNTHETIC), "log.pictures=false")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == []


def test_schedules_count_optimizer_steps_when_accumulating(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.accumulate=4", "scheduler=cosine")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["lr"] == pytest.approx(0.0, abs=1e-9)  # the cosine reached its end exactly at the last step


def test_accuracy_is_monitored_as_higher_is_better(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC), "train.epochs=4", "train.early_stopping={monitor: val/accuracy}")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    accuracies = [json.loads(line)["val/accuracy"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_metric"] == max(accuracies)


def test_no_progress_bar_when_the_output_is_not_a_terminal(write_config, run_cli):
    code, out, err = run_cli(write_config(SYNTHETIC))
    assert code == 0
    assert "batch/s" not in err and "it/s" not in err  # no bar redraws in a log file
    assert out.count("epoch 1/2") == 1 and out.count("epoch 2/2") == 1  # one line per epoch instead


def test_log_progress_false_turns_the_bar_off_even_in_a_terminal(monkeypatch):
    import sys

    from trainer.logger import ConsoleLogger

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as if in a terminal
    shown, hidden = ConsoleLogger(progress=True), ConsoleLogger(progress=False)
    for logger, disabled in ((shown, False), (hidden, True)):
        batches = logger.progress([1, 2], "epoch 1/1")
        assert next(batches) == 1 and bool(logger.bar.disable) is disabled  # looked at while the epoch runs
        assert list(batches) == [2]


def test_cuda_runs_get_tf32_cudnn_benchmark_and_fused_optimizers_and_cpu_runs_do_not():
    """What trainer/speed.py sets is what a careful hand-written GPU loop sets; a CPU run is left as it is."""
    from trainer.speed import gpu_defaults, optimizer_arguments

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark)
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = cudnn.benchmark = False
        assert gpu_defaults(torch.device("cpu")) is None and not cudnn.benchmark
        said = gpu_defaults(torch.device("cuda"))
        assert said is not None and "TF32" in said and "cudnn.benchmark" in said
        assert matmul.allow_tf32 and cudnn.allow_tf32 and cudnn.benchmark
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = before
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert optimizer_arguments(torch.optim.AdamW, {"weight_decay": 0.1}, cuda) == {"weight_decay": 0.1, "fused": True}
    assert optimizer_arguments(torch.optim.AdamW, {"foreach": False}, cuda) == {"foreach": False}  # the config's
    assert optimizer_arguments(torch.optim.RMSprop, {}, cuda) == {}  # no fused kernel
    assert optimizer_arguments(torch.optim.SGD, {}, cpu) == {}


def test_compile_takes_torchs_mode_and_static_shapes(monkeypatch):
    """train.compile: max-autotune reaches torch.compile as its mode, with one graph per input shape."""
    from trainer import Options, Trainer

    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, **settings: seen.append(settings) or model)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(model, torch.nn.CrossEntropyLoss(), optimizer, options=Options(compile="max-autotune", progress=False))
    Trainer(model, torch.nn.CrossEntropyLoss(), optimizer, options=Options(compile=True, progress=False))
    assert seen == [{"mode": "max-autotune", "dynamic": False}, {"mode": None, "dynamic": False}]
    with pytest.raises(ValueError, match=re.escape("Options(compile='fast'): torch.compile's mode. Try: default")):
        Options(compile="fast")


def test_a_misspelled_compile_mode_in_the_config_names_the_modes(write_config, run_cli):
    code, _, err = run_cli(write_config(SYNTHETIC), "train.compile=max_autotune")
    assert code == 2 and "train.compile" in err and "max-autotune" in err and "Traceback" not in err


def test_channels_last_batches_are_made_in_that_layout_and_not_copied_again():
    """The uint8 -> float step writes the Trainer's layout directly: moving the batch to the model copies nothing."""
    pixels = Pixels([0.5] * 3, [0.25] * 3, torch.device("cpu"), augment=None)
    images = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    loader = InMemoryLoader(images, torch.arange(8) % 2, batch_size=4, shuffle=False, transform=pixels)
    DataSplits(loader, None, None, (3, 4, 4), 2, "").deliver_in(torch.channels_last)
    inputs, targets = next(iter(loader))
    assert inputs.is_contiguous(memory_format=torch.channels_last) and inputs.dtype == torch.float32
    model = torch.nn.Conv2d(3, 2, 1)
    trainer = Trainer(model, torch.nn.CrossEntropyLoss(), device="cpu", options=Options(channels_last=True))
    assert trainer.to_device(inputs, targets)[0].data_ptr() == inputs.data_ptr()
    assert torch.allclose(inputs, (images[:4].float() - 127.5) / 63.75)  # mean 0.5, std 0.25 of 255
