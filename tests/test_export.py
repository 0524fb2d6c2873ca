"""`export` writes a run's model in another format with a .json of what it takes and gives, checked against the run's
model; `predict` takes the export as it takes the run."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainer.components.data import build_data
from trainer.config import VisionData

BRANCHY = """
import torch
from torch import nn


class Branchy(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(784, num_classes)

    def forward(self, x):
        x = x.flatten(1)
        if x.mean() > 0:
            return self.fc(x)
        return -self.fc(x)


class FixedBatch(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(784, num_classes)

    def forward(self, x):
        n = int(x.shape[0])
        return self.fc(x.reshape(n, 784))
"""


def mnist_run(
    fake_mnist: Path, write_config, run_cli, tmp_path: Path, model: str = "{name: cnn, channels: [8]}"
) -> Path:
    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {model}\ntrain: {{epochs: 1}}\n"
    assert run_cli(write_config(text), "log.dir=runs")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    return run_dir


def digit_images(fake_mnist: Path, folder: Path, count: int = 4) -> Path:
    data = build_data(VisionData(dataset="mnist", root=str(fake_mnist), download=False), torch.device("cpu"), 0)
    folder.mkdir()
    raw = data.test.inputs * 0.3081 + 0.1307
    for i in range(count):
        pixels = (raw[i, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).resize((56, 56)).save(folder / f"{i}.png")
    return folder


def test_an_onnx_export_runs_in_onnx_runtime_as_the_run_does_and_predict_takes_it(
    fake_mnist, write_config, run_cli, tmp_path
):
    onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install onnxruntime)")
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    code, out, err = run_cli("export", run_dir)
    assert code == 0, err
    export = run_dir / "export" / "model.onnx"
    assert f"exported {export}" in out
    assert "checked on 25 images of the val split: largest difference from the run's model" in out  # all of val
    assert "the same class for 25 of 25" in out
    meta = json.loads((run_dir / "export" / "model.onnx.json").read_text())
    assert meta["input"]["shape"] == ["batch", 1, 28, 28] and meta["data"]["class_names"][3] == "3"
    assert meta["data"]["mean"] == [0.1307] and "minus data.mean" in meta["input"]["prepare"]
    assert meta["checked"]["largest_difference"] < 1e-4

    # Outside leaptrain: ONNX Runtime alone, on a batch size the export was not made with, as the .json says.
    session = onnxruntime.InferenceSession(str(export), providers=["CPUExecutionProvider"])
    batch = torch.randn(5, 1, 28, 28)
    (scores,) = session.run(None, {meta["input"]["name"]: batch.numpy()})
    from trainer.cli import config_of_checkpoint
    from trainer.inference import model_forward

    cfg, _, checkpoint, _ = config_of_checkpoint(str(run_dir), [])
    assert torch.allclose(torch.from_numpy(scores), model_forward(cfg, checkpoint)(batch), atol=1e-4)

    images = digit_images(fake_mnist, tmp_path / "digits")
    code, from_run, _ = run_cli("predict", run_dir, images)
    assert code == 0
    code, from_export, _ = run_cli("predict", export, images)
    assert code == 0 and from_export.splitlines() == from_run.splitlines() and len(from_run.splitlines()) == 4


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_pt2_and_torchscript_exports_predict_as_the_run_does(fmt, fake_mnist, write_config, run_cli, tmp_path):
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    code, out, err = run_cli("export", run_dir, "-o", f"shipped/digits.{fmt}")  # the format from the suffix
    assert code == 0, err
    assert (tmp_path / "shipped" / f"digits.{fmt}.json").is_file()
    assert "largest difference from the run's model 0" in out  # the same kernels as the model: bit for bit
    images = digit_images(fake_mnist, tmp_path / "digits")
    _, from_run, _ = run_cli("predict", run_dir, images)
    code, from_export, _ = run_cli("predict", f"shipped/digits.{fmt}", images)
    assert code == 0 and from_export.splitlines() == from_run.splitlines()


def test_a_table_run_exports_with_its_encoding_and_predicts_rows(write_config, run_cli, tmp_path):
    rows = ["size,colour,label"] + [
        f"{i % 7},{'red' if i % 3 else 'blue'},{'big' if i % 7 > 3 else 'small'}" for i in range(90)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    config = write_config("data: {dataset: csv, path: t.csv, target: label}\nmodel: {name: mlp, hidden: [8]}\n")
    assert run_cli(config, "train.epochs=2", "log.dir=runs")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    code, out, err = run_cli("export", run_dir, "--format", "pt2")
    assert code == 0, err
    assert "rows of the val split" in out
    meta = json.loads((run_dir / "export" / "model.pt2.json").read_text())
    assert meta["data"]["features"] == ["size", "colour"] and meta["data"]["categories"]["colour"] == ["blue", "red"]
    assert "one 0/1 column per value" in meta["input"]["prepare"]
    (tmp_path / "new.csv").write_text("colour,size\nred,6\nblue,1\ngreen,2\n")  # another order, an unseen colour
    _, from_run, _ = run_cli("predict", run_dir, "new.csv")
    code, from_export, _ = run_cli("predict", run_dir / "export" / "model.pt2", "new.csv")
    assert code == 0 and from_export.splitlines() == from_run.splitlines() and len(from_run.splitlines()) == 3


def test_a_forward_deciding_on_tensor_values_is_refused_with_its_line_and_nothing_is_written(
    fake_mnist, write_config, run_cli, tmp_path
):
    (tmp_path / "nets.py").write_text(textwrap.dedent(BRANCHY))
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path, model="{name: nets.py:Branchy}")
    code, _, err = run_cli("export", run_dir, "--format", "pt2")
    assert code == 2
    assert "cannot export the model as pt2: its forward takes a Python decision" in err
    line = BRANCHY.splitlines().index("        if x.mean() > 0:") + 1
    assert f"at nets.py:{line} (in forward: if x.mean() > 0:)" in err
    assert "torch.where" in err and "Traceback" not in err
    assert not (run_dir / "export").exists()


def test_a_forward_that_fixes_the_batch_size_is_found_on_a_batch_of_another_size(
    fake_mnist, write_config, run_cli, tmp_path
):
    (tmp_path / "nets.py").write_text(textwrap.dedent(BRANCHY))
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path, model="{name: nets.py:FixedBatch}")
    code, _, err = run_cli("export", run_dir, "--format", "torchscript")
    assert code == 2
    assert "the export, made with a batch of 2, fails on a batch of 25: its forward fixes the batch size" in err
    line = BRANCHY.splitlines().index("        n = int(x.shape[0])") + 1
    assert f"nets.py:{line}: Converting a tensor to a Python integer" in err  # the tracer's warning, at that line
    assert "x.view(x.size(0), -1)" in err
    assert not (run_dir / "export").exists()


def test_without_the_data_the_export_is_checked_on_random_inputs_and_says_so(
    fake_mnist, write_config, run_cli, tmp_path
):
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    shutil.rmtree(fake_mnist)  # the run came from another machine: its data are not here
    code, out, err = run_cli("export", run_dir, "--format", "pt2")
    assert code == 0, err
    assert "checked on 32 random inputs (the run's data could not be read:" in out


def test_wrong_paths_and_formats_are_refused_with_what_to_type(fake_mnist, write_config, run_cli, tmp_path):
    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    code, _, err = run_cli("export", run_dir, "--format", "onnx", "-o", "model.pt2")
    assert code == 2 and "-o model.pt2 names a pt2 file, but --format is onnx" in err and "-o model.onnx" in err
    code, _, err = run_cli("export", run_dir, "-o", "model.txt")
    assert code == 2 and "ONNX files end in .onnx" in err
    code, _, err = run_cli("export", "runs")  # the folder above the runs
    assert code == 2 and f"Try: python -m trainer export {run_dir.relative_to(tmp_path)}" in err
    assert run_cli("export", run_dir, "--format", "pt2")[0] == 0
    (run_dir / "export" / "model.pt2.json").unlink()
    code, _, err = run_cli("predict", run_dir / "export" / "model.pt2", "x.png")
    assert code == 2 and "has no model.pt2.json beside it" in err and "python -m trainer export" in err


def test_onnx_without_its_packages_says_what_to_install(fake_mnist, write_config, run_cli, tmp_path, monkeypatch):
    from trainer import export

    run_dir = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    monkeypatch.setattr(export, "_installed", lambda package: package != "onnxscript")
    code, _, err = run_cli("export", run_dir)
    assert code == 2
    assert "to export ONNX, Python needs the package(s) onnxscript, which are not installed" in err
    assert 'pip install "leaptrain[export]"' in err and "--format pt2" in err
