"""eval and predict use a trained run through its checkpoint alone: no YAML needed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from PIL import Image

from trainer.components.data import build_data
from trainer.config import VisionData


def trained_run(fake_mnist: Path, write_config, run_cli, tmp_path: Path) -> Path:
    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {{name: cnn, channels: [8]}}\n"
    assert run_cli(write_config(text), "train.epochs=3")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    return run_dir


def test_eval_reports_the_same_test_metrics_as_training(fake_mnist, write_config, run_cli, tmp_path):
    run_dir = trained_run(fake_mnist, write_config, run_cli, tmp_path)
    code, out, _ = run_cli("eval", run_dir / "checkpoints" / "last.pt")
    assert code == 0 and "test/accuracy" in out
    saved = json.loads((run_dir / "eval-test.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert saved["test/accuracy"] == summary["metrics"]["test/accuracy"]
    code, _, _ = run_cli("eval", run_dir, "--split", "val")
    assert code == 0 and (run_dir / "eval-val.json").exists()


def test_predict_labels_image_files_and_writes_a_csv(fake_mnist, write_config, run_cli, tmp_path):
    run_dir = trained_run(fake_mnist, write_config, run_cli, tmp_path)
    data = build_data(VisionData(dataset="mnist", root=str(fake_mnist), download=False), torch.device("cpu"), 0)
    folder = tmp_path / "images"
    folder.mkdir()
    raw = data.test.inputs * 0.3081 + 0.1307  # back to pixels in [0, 1]
    for i in range(4):
        pixels = (raw[i, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        image = Image.fromarray(pixels).resize((84, 84))
        if i % 2:  # dark ink on white, as a learner draws it
            image = Image.eval(image, lambda v: 255 - v)
        suffix = ".jfif" if i == 3 else ".png"  # a JPEG under a name browsers give it: read, as training reads it
        image.save(folder / f"{i}_label{int(data.test.targets[i])}{suffix}", format="JPEG" if i == 3 else "PNG")
    (folder / "notes.png").write_text("not an image")
    code, _, err = run_cli("predict", run_dir, folder, "--out", tmp_path / "predictions.csv")
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == 4
    assert sum(row["class"] == Path(row["file"]).stem.split("label")[1] for row in rows) >= 3
    assert "skipped 1 file(s)" in err and "notes.png" in err


def test_eval_of_a_missing_run_says_what_to_give(run_cli):
    code, _, err = run_cli("eval", "runs/nothing")
    assert code == 2 and "'runs/nothing' does not exist" in err and "Try: train a config first" in err


def test_predict_skips_an_image_too_large_to_decode_by_its_header(fake_mnist, write_config, run_cli, tmp_path):
    from tests.test_bounded_input import bomb_png

    run_dir = trained_run(fake_mnist, write_config, run_cli, tmp_path)
    (tmp_path / "bomb.png").write_bytes(bomb_png(20000, 20000))  # 400 million pixels, a few hundred KB on disk
    code, _, err = run_cli("predict", run_dir, tmp_path / "bomb.png")
    assert code == 2  # nothing predicted
    assert "bomb.png (20,000 x 20,000 pixels, more than data.max_pixels (90,000,000) allows" in err
