"""eject: the plain PyTorch script of a config runs without leaptrain and reaches the same losses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import make_fake_mnist


def run_both(config, tmp_path, run_cli, *overrides):
    """(losses of the leaptrain run, losses the ejected script prints): train and val per epoch, then test."""
    code, out, err = run_cli("eject", config, *overrides, "-o", "plain.py")
    assert code == 0 and "wrote plain.py" in out, err
    script = (tmp_path / "plain.py").read_text()
    assert "import trainer" not in script and "from trainer" not in script and "loss.backward()" in script
    printed = subprocess.run([sys.executable, "plain.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr
    theirs = [
        float(word)
        for line in printed.stdout.splitlines()
        for name, word in zip(line.split(), line.split()[1:], strict=False)
        if name in ("train/loss", "val/loss", "test/loss")
    ]
    assert run_cli(config, *overrides)[0] == 0
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    ours = [row[key] for row in rows for key in ("train/loss", "val/loss") if key in row]
    ours.append(json.loads((run_dir / "summary.json").read_text())["metrics"]["test/loss"])
    return ours, theirs


def test_an_ejected_synthetic_config_gives_the_same_losses(write_config, run_cli, tmp_path):
    config = write_config(
        "data: {dataset: synthetic, kind: moons, samples: 600, test_samples: 200, batch_size: 32}\n"
        "model: {name: mlp, hidden: [16, 16], dropout: 0.1}\noptimizer: {name: adamw, lr: 1e-2}\n"
        "scheduler: one_cycle\ntrain: {epochs: 3}\n"
    )
    ours, theirs = run_both(config, tmp_path, run_cli)
    assert len(ours) == len(theirs) == 7
    assert theirs == pytest.approx(ours, rel=1e-5)  # printed with 6 decimals


def test_an_ejected_mnist_cnn_gives_the_same_losses(write_config, run_cli, tmp_path):
    root = make_fake_mnist(tmp_path / "data", train=256, test=64)
    config = write_config(
        f"data: {{dataset: mnist, root: {root}, batch_size: 32, download: false}}\n"
        "model: {name: cnn, channels: [4, 8], fc: 16}\noptimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n"
        "scheduler: {name: step, step_size: 1, gamma: 0.5}\ntrain: {epochs: 2}\n"
    )
    ours, theirs = run_both(config, tmp_path, run_cli)
    assert theirs == pytest.approx(ours, rel=1e-4, abs=1e-6)


def test_eject_says_what_it_does_not_cover(write_config, run_cli):
    config = write_config("data: {dataset: synthetic}\nmodel: {name: resnet18}\n")
    code, _, err = run_cli("eject", config)
    assert code == 2 and "not model 'resnet18'" in err and "configs/mnist.yaml" in err


def test_an_ejected_script_keeps_channels_last_bf16_and_clipping_and_reads_like_a_person_wrote_it(
    write_config, run_cli, tmp_path
):
    root = make_fake_mnist(tmp_path / "data", train=256, test=64)
    config = write_config(
        f"data: {{dataset: mnist, root: {root}, batch_size: 32, download: false}}\n"
        "model: {name: cnn, channels: [4, 8], fc: 16, batch_norm: false}\noptimizer: {name: adamw, lr: 0.01}\n"
        "scheduler: one_cycle\ntrain: {epochs: 2, channels_last: true, precision: bf16, grad_clip: 0.5}\n"
    )
    ours, theirs = run_both(config, tmp_path, run_cli)
    assert theirs == pytest.approx(ours, rel=1e-4, abs=1e-6)
    script = (tmp_path / "plain.py").read_text()
    assert "memory_format=torch.channels_last" in script and "torch.autocast" in script
    assert "clip_grad_norm_(model.parameters(), 0.5)" in script
    leftovers = [line for line in script.splitlines() if line.strip() == "pass" or " if True else " in line]
    assert not leftovers and "BatchNorm2d" not in script  # batch_norm: false leaves no trace


@pytest.mark.parametrize(
    ("setting", "key"),
    [("train.accumulate=2", "train.accumulate"), ("train.early_stopping={patience: 2}", "train.early_stopping")],
)
def test_eject_refuses_what_its_loop_would_not_do(write_config, run_cli, setting, key):
    config = write_config("data: {dataset: synthetic}\nmodel: {name: mlp}\n")
    code, _, err = run_cli("eject", config, setting)
    assert code == 2 and "Traceback" not in err
    assert "the script would not train as the run does" in err and f"{key}=" in err
