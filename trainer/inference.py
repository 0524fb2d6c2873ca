"""Use a trained run: evaluate it on a split, or predict the classes of image files. The checkpoint holds its config."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.atomic import write_atomic
from trainer.checkpoint import load_checkpoint, other_checkpoint
from trainer.components.data import build_data, data_section
from trainer.components.image_folder import IMAGE_SUFFIXES, TooManyPixels, check_pixels, is_image_file
from trainer.components.losses import build_loss
from trainer.components.models import build_model
from trainer.config import Config, ImageFolderData
from trainer.errors import UserError, did_you_mean_path
from trainer.loop import Trainer, resolve_device
from trainer.run_files import CHECKPOINTS


def find_checkpoint(run_or_checkpoint: str, command: str = "eval", again: Callable[[Path], str] | None = None) -> Path:
    """A .pt file as given, or the run folder's best.pt (else its last.pt); anything else is refused with the runs
    to give instead (`again` writes the command to type with one of them)."""
    from trainer.folders import checkpoint_file

    return checkpoint_file(run_or_checkpoint, command, again or (lambda path: f"python -m trainer {command} {path}"))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A leaptrain checkpoint, or a message saying what the file is not."""
    fix = "give a checkpoint written by leaptrain: checkpoints/best.pt or last.pt of a run folder"
    if path.parent.name == CHECKPOINTS:  # a run's own checkpoint, damaged or cut short: offer the other one
        fix = other_checkpoint(path)
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a PyTorch checkpoint (or it was cut short)", fix=fix)
    try:
        checkpoint = load_checkpoint(path)  # checks the checksum: a damaged file is named, with the other offered
    except UserError:
        raise
    except Exception as err:  # a file holding arbitrary Python objects, or damaged inside
        first_line = (str(err).splitlines() or [""])[0]
        raise UserError(f"cannot read {path}: {type(err).__name__}: {first_line}", fix=fix) from err
    if not isinstance(checkpoint, dict) or not {"model", "config"} <= set(checkpoint):
        raise UserError(f"{path} holds weights but not the config they were trained with", fix=fix)
    return checkpoint


def evaluate_checkpoint(cfg: Config, checkpoint: dict[str, Any], split: str) -> dict[str, float]:
    device = resolve_device(cfg.train.device)
    data = build_data(data_section(cfg), device, cfg.seed)
    loader = {"train": data.train, "val": data.val, "test": data.test}[split]
    if loader is None:
        raise UserError(f"this data set has no {split} split", fix="use --split test or --split train")
    model = build_model(cfg.model, data.input_shape, data.num_classes, load_weights=False, data_info=data.info)
    model.load_state_dict(checkpoint["model"])
    loss_fn = build_loss(cfg.loss)
    trainer = Trainer(model, loss_fn, device=device, task=data.task)  # no optimizer: evaluation takes no step
    return trainer.evaluate(loader, split)


@dataclass
class Prediction:
    file: str  # the image file, or for a table "file:line"
    label: str  # the class, or for regression the predicted number
    probability: float | None  # of that class; None for regression


Forward = Callable[[torch.Tensor], torch.Tensor]  # a batch as training gave it -> the model's outputs


def model_forward(cfg: Config, checkpoint: dict[str, Any]) -> Forward:
    """The checkpoint's model as a function, in eval mode and without gradients."""
    info = checkpoint.get("data") or {}
    outputs = len(info.get("class_names") or [0])  # the classes, or one number for a regression
    model = build_model(cfg.model, tuple(info.get("input_shape", ())), outputs, load_weights=False, data_info=info)
    model.load_state_dict(checkpoint["model"])
    model.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return forward


def predict_files(
    forward: Forward, info: dict[str, Any], inputs: list[str], dataset: str, max_pixels: int | None = None
) -> tuple[list[Prediction], list[str]]:
    """The class and its probability for each image file (folders are searched); and the files that failed.

    `info` is what the run kept about its data (the checkpoint's, or an export's .json): image size, normalization,
    class names, or a table's columns and statistics."""
    if "features" in info:  # a run on a table: the inputs are CSV files of new rows
        return predict_rows(forward, info, inputs), []
    shape = tuple(info.get("input_shape", ()))
    if len(shape) != 3 or "class_names" not in info:
        raise UserError(
            f"predict reads image files, but this run trained on '{dataset}' data", fix="use `eval` for this run"
        )
    mean = torch.tensor(info.get("mean", [0.0] * shape[0]))[:, None, None]
    std = torch.tensor(info.get("std", [1.0] * shape[0]))[:, None, None]
    predictions, failed = [], []
    max_pixels = max_pixels or ImageFolderData.model_fields["max_pixels"].default
    for path in image_files(inputs):
        try:
            check_pixels(path, max_pixels)  # from the header: a decompression bomb is never decoded
            pixels = load_image(path, shape, info.get("invert_light_background", False))
        except TooManyPixels as err:
            failed.append(f"{path} ({err})")
            continue
        except Exception:  # an unreadable or corrupt file is skipped, not a crash halfway through a folder
            failed.append(str(path))
            continue
        probabilities = forward(((pixels - mean) / std)[None]).softmax(dim=1)[0]
        best = int(probabilities.argmax())
        predictions.append(Prediction(str(path), info["class_names"][best], float(probabilities[best])))
    return predictions, failed


def predict_rows(forward: Forward, info: dict[str, Any], inputs: list[str]) -> list[Prediction]:
    """Each row of the CSV files, encoded with the training split's statistics: its class and probability, or the
    predicted number. The files need the feature columns (in any order); the target column may be missing."""
    from trainer.components.tables import Rows, encode_inputs, lookup, number, read_table

    predictions = []
    for name in inputs:
        table = read_table(name, key="")
        for feature in info["features"]:
            lookup(table, feature, key="")  # a missing column is named, with the columns the file has
            if feature in info["mean"]:  # a number column: every cell must hold a number, as in training
                for line, cell in zip(table.lines, table.cells(feature), strict=True):
                    if number(cell) is None:
                        raise UserError(
                            f"{name} line {line}: column '{feature}' holds '{cell}', not a number",
                            fix="fill in or correct that cell: the model was trained on numbers in this column",
                        )
        outputs = forward(encode_inputs(Rows(table, list(range(len(table.rows)))), info))
        for line, output in zip(table.lines, outputs, strict=True):
            where = f"{name}:{line}"
            if "class_names" in info:
                probabilities = output.softmax(dim=0)
                best = int(probabilities.argmax())
                predictions.append(Prediction(where, info["class_names"][best], float(probabilities[best])))
            else:
                predictions.append(Prediction(where, f"{float(output[0]):.6g}", None))
    return predictions


def image_files(inputs: list[str]) -> list[Path]:
    files = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(
                f"'{name}' does not exist{did_you_mean_path(path)}", fix="give image files or folders that hold them"
            )
    if not files:
        raise UserError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(inputs)}")
    return files


def load_image(path: Path, shape: tuple[int, ...], invert_light_background: bool = False) -> torch.Tensor:
    """A file as the model saw its training images: grey or RGB, resized, in [0, 1].

    With `invert_light_background` (MNIST-like data: light strokes on a dark ground), a photo of dark ink on
    white paper is turned the other way round.
    """
    from PIL import Image, ImageOps
    from torchvision.transforms.v2.functional import pil_to_tensor

    channels, height, width = shape
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)  # a phone photo stored sideways, upright as in training
        image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
        pixels = pil_to_tensor(image).float() / 255
    if invert_light_background:
        border = torch.cat([pixels[..., 0, :], pixels[..., -1, :], pixels[..., :, 0], pixels[..., :, -1]], dim=-1)
        if border.mean() > 0.5:
            pixels = 1 - pixels
    return pixels


def save_predictions_csv(predictions: list[Prediction], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "class", "probability"])
    writer.writerows([p.file, p.label, "" if p.probability is None else f"{p.probability:.4f}"] for p in predictions)
    write_atomic(path, buffer.getvalue())


def save_eval(metrics: dict[str, float], run_dir: Path, split: str) -> Path:
    path = run_dir / f"eval-{split}.json"
    write_atomic(path, json.dumps(metrics, indent=2) + "\n")
    return path
