"""Export a trained run's model for use without leaptrain (ONNX, a torch.export program, or TorchScript), with
what is needed to use it written beside it; checked against the run's own model on inputs of its data.

The export takes what the model took in training: a float32 batch, already normalized (images) or encoded (the
rows of a table). How to get there from a file or a row is in the `.json` beside the export, and `predict` does
it: `python -m trainer predict runs/.../export/model.onnx photo.jpg`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.atomic import replace_file, write_atomic
from trainer.components.data import build_data, data_section
from trainer.components.models import build_model
from trainer.config import Config
from trainer.errors import UserError
from trainer.failure import is_user_file, place_in_forward_trace, short_path, user_place
from trainer.run_files import EXPORT_SUFFIXES, RunFiles

META_VERSION = 1
CHECK_SAMPLES = 32  # inputs the export is compared on; the example it is traced with has 2 (the batch size stays free)
EXAMPLE_SAMPLES = 2
INPUT, OUTPUT = "input", "output"  # the names of the export's input and output (ONNX asks for them by name)
SHOW_EXPORTER_OUTPUT = False  # --debug sets it: what torch.onnx and torch.export print, for a bug report


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    title: str  # for messages
    packages: tuple[str, ...]  # needed besides torch, to export and to run it
    load: str  # how a Python program runs it, written into the .json beside it


FORMATS = {
    "onnx": Format(
        "onnx",
        EXPORT_SUFFIXES["onnx"],
        "ONNX",
        ("onnx", "onnxscript", "onnxruntime"),
        "onnxruntime.InferenceSession('{file}').run(None, {{'input': x.numpy()}})[0]",
    ),
    "pt2": Format("pt2", EXPORT_SUFFIXES["pt2"], "pt2", (), "torch.export.load('{file}').module()(x)"),
    "torchscript": Format(
        "torchscript", EXPORT_SUFFIXES["torchscript"], "TorchScript", (), "torch.jit.load('{file}')(x)"
    ),
}
SUFFIXES = {f.suffix: f for f in FORMATS.values()}


@dataclass
class Inputs:
    """Inputs to check the export on, and where they come from ('32 images of the val split')."""

    batch: torch.Tensor
    source: str


@dataclass
class Exported:
    path: Path
    meta: Path
    format: Format
    largest_difference: float
    same_class: tuple[int, int] | None  # (agreeing, compared) for a classifier
    inputs: str
    warnings: list[str]


def format_for(name: str | None, out: str | None) -> Format:
    """The format asked for, else the one the output file's suffix names, else ONNX."""
    by_suffix = SUFFIXES.get(Path(out).suffix.lower()) if out else None
    if name is not None and by_suffix is not None and by_suffix.name != name:
        raise UserError(
            f"-o {out} names a {by_suffix.name} file, but --format is {name}",
            fix=f"write -o {Path(str(out)).with_suffix(FORMATS[name].suffix)} (or leave out --format)",
        )
    return FORMATS[name] if name is not None else by_suffix or FORMATS["onnx"]


def export_path(out: str | None, run_dir: Path, fmt: Format) -> Path:
    """-o as given (a folder gets model.<suffix> inside); by default the run's export/ folder."""
    if out is None:
        return RunFiles(run_dir).export / f"model{fmt.suffix}"
    path = Path(out).expanduser()
    if path.is_dir() or not path.suffix:
        return path / f"model{fmt.suffix}"
    if path.suffix.lower() != fmt.suffix:
        fix = f"write -o {path.with_suffix(fmt.suffix)}"
        raise UserError(f"-o {out}: {fmt.title} files end in {fmt.suffix}", fix=fix)
    return path


def meta_path(export: Path) -> Path:
    """The .json beside an export: model.onnx -> model.onnx.json (two formats of one name do not share one)."""
    return export.with_name(export.name + ".json")


def export_run(cfg: Config, checkpoint: dict[str, Any], checkpoint_path: Path, fmt: Format, path: Path) -> Exported:
    """Write the export and its .json, after checking that it computes what the run's model computes."""
    needs_packages(fmt, "export")
    inputs, num_outputs = check_inputs(cfg, checkpoint)
    info = checkpoint.get("data") or {}
    model = build_model(cfg.model, tuple(inputs.batch.shape[1:]), num_outputs, load_weights=False, data_info=info)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    with torch.no_grad():
        expected = model(inputs.batch)
    attempt = attempt_export(model, inputs.batch, expected, fmt)
    if attempt.failure is not None:
        raise cannot_export(attempt, fmt, model, inputs, expected)
    same = None
    if checkpoint.get("data", {}).get("class_names") and expected.dim() == 2:
        same = (int((attempt.outputs.argmax(1) == expected.argmax(1)).sum()), len(expected))
    replace_file(path, lambda file: file.write(attempt.written))
    meta = meta_path(path)
    described = describe(cfg, checkpoint, checkpoint_path, fmt, path, inputs, attempt.difference)
    write_atomic(meta, json.dumps(described, indent=2))
    return Exported(path, meta, fmt, attempt.difference, same, inputs.source, attempt.warnings)


@dataclass
class Attempt:
    """An export in one format, run on the check inputs: its bytes, its outputs, or where it failed."""

    written: bytes = b""
    warnings: list[str] = field(default_factory=list)  # the tracer's, about lines of the user's code
    outputs: torch.Tensor | None = None
    difference: float = 0.0
    failure: str | None = None  # "export" (the exporter refused), "run" (the export failed on the inputs), "differs"
    error: Exception | None = None


def attempt_export(model: torch.nn.Module, batch: torch.Tensor, expected: torch.Tensor, fmt: Format) -> Attempt:
    """Export with a small example, then run the export on the whole check batch: a batch size (or a path through
    the forward) that the exporter fixed shows up as an error or a difference, here and not in the user's app."""
    attempt = Attempt()
    try:
        attempt.written, attempt.warnings = write_export(model, batch[:EXAMPLE_SAMPLES], fmt)
    except Exception as err:
        attempt.failure, attempt.error = "export", err
        return attempt
    try:
        attempt.outputs = load_export(attempt.written, fmt)(batch)
    except Exception as err:
        attempt.failure, attempt.error = "run", err
        return attempt
    attempt.difference = largest_difference(attempt.outputs, expected)
    scale = max(1.0, float(expected.abs().max()))
    if not attempt.difference <= 1e-3 * scale:  # NaN, or far beyond float rounding
        attempt.failure = "differs"
    return attempt


def check_inputs(cfg: Config, checkpoint: dict[str, Any]) -> tuple[Inputs, int]:
    """Samples of the run's own data (the val split, else test, else train), and the model's number of outputs.

    Where the data are not here (the run came from another machine), random inputs of the trained shape stand in,
    and the message says so."""
    info = checkpoint.get("data") or {}
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a data set being read may say so; stdout is for results
            data = build_data(data_section(cfg), torch.device("cpu"), cfg.seed)
    except UserError as err:
        if "input_shape" not in info:
            raise
        generator = torch.Generator().manual_seed(cfg.seed)
        batch = torch.randn(CHECK_SAMPLES, *info["input_shape"], generator=generator)
        outputs = len(info["class_names"]) if "class_names" in info else 1
        reason = str(err).splitlines()[0]
        return Inputs(batch, f"{CHECK_SAMPLES} random inputs (the run's data could not be read: {reason})"), outputs
    split, loader = next((s, lo) for s, lo in (("val", data.val), ("test", data.test), ("train", data.train)) if lo)
    batches = []
    for batch, _ in loader:
        batches.append(batch.float())
        if sum(len(b) for b in batches) >= CHECK_SAMPLES:
            break
    batch = torch.cat(batches)[:CHECK_SAMPLES]
    if len(batch) <= EXAMPLE_SAMPLES:  # a batch of another size than the example's shows a batch size fixed in it
        batch = batch.repeat(EXAMPLE_SAMPLES + 1, *[1] * (batch.dim() - 1))[: EXAMPLE_SAMPLES + 1]
    batch = batch.contiguous()
    kind = "images" if batch.dim() == 4 else "rows" if "features" in info else "samples"
    return Inputs(batch, f"{len(batch)} {kind} of the {split} split"), data.num_classes


def write_export(model: torch.nn.Module, example: torch.Tensor, fmt: Format) -> tuple[bytes, list[str]]:
    """The export's bytes, and what the tracer warned about in the user's code ('file.py:12: ...')."""
    batch = torch.export.Dim("batch", min=1)
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught, quiet():
        warnings.simplefilter("always")
        if fmt.name == "onnx":
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
            buffer.write(program.model_proto.SerializeToString())  # type: ignore[union-attr]
        elif fmt.name == "pt2":
            torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), buffer)
        else:
            torch.jit.save(torch.jit.trace(model, example, check_trace=False), buffer)
    traced = [
        f"{short_path(w.filename)}:{w.lineno}: {str(w.message).split('.')[0]}"
        for w in caught
        if issubclass(w.category, torch.jit.TracerWarning) and is_user_file(w.filename)
    ]
    return buffer.getvalue(), list(dict.fromkeys(traced))


def load_export(data: bytes | Path, fmt: Format) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from a float32 batch to the export's outputs, whichever format it is."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    if fmt.name == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(raw, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(None, {INPUT: x.float().contiguous().numpy()})[0])
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's: TorchScript is deprecated, still loads
        module = torch.export.load(io.BytesIO(raw)).module() if fmt.name == "pt2" else torch.jit.load(io.BytesIO(raw))

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x.float())

    return forward


def largest_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    if got.shape != expected.shape:
        return float("nan")
    return float((got.float() - expected.float()).abs().max()) if got.numel() else 0.0


def cannot_export(
    attempt: Attempt, fmt: Format, model: torch.nn.Module, inputs: Inputs, expected: torch.Tensor
) -> UserError:
    """Why the model does not export in this format, at which line of the user's code, and a format that works."""
    err = attempt.error
    text = f"{type(err).__name__}: {err}" if err is not None else ""
    found = place_in_forward_trace(text) or (user_place(err.__traceback__) if err is not None else None)
    if found is not None and not Path(found.path).is_file():  # TorchScript names the code it compiled itself
        found = None
    place = f"{found.where} (in {found.function}: {found.source})" if found else ""
    if attempt.failure == "differs":
        why = (
            f"the export gives other outputs than the run's model on {inputs.source} (the largest difference is "
            f"{attempt.difference:.3g}, where outputs reach {float(expected.abs().max()):.3g})"
        )
        change = "a trace keeps only the path its example took: make an `if` on tensor values a torch.where, "
    elif "data-dependent" in text or "GuardOnDataDependent" in text:
        why = "its forward takes a Python decision (an `if`, a loop, `.item()`) on the values of a tensor"
        change = "compute both ways and pick with torch.where(condition, a, b), "
    elif attempt.failure == "run" or ("Constraint" in text and "batch" in text):
        fixes = "fixes the batch size (a number, or x.shape[0] turned into an int, where the batch goes)"
        why = f"its forward {fixes}"
        if attempt.failure == "run":
            why = f"the export, made with a batch of {EXAMPLE_SAMPLES}, fails on a batch of {len(inputs.batch)}: {why}"
        change = "keep the batch free: x.flatten(1) or x.view(x.size(0), -1), "
    else:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        why = f"{type(err).__name__}: {first[:300]}"
        change = ""
    if attempt.warnings:
        why += "; the tracer warned: " + "; ".join(attempt.warnings)
    works = [other for other in FORMATS.values() if other != fmt and _takes(model, inputs.batch, expected, other)]
    instead = (
        f"or export with --format {works[0].name}, which takes this model as it is"
        if works
        else "or use the run's checkpoint from Python (no format takes this model as it is)"
    )
    return UserError(
        f"cannot export the model as {fmt.title}: {why}" + (f", at {place}" if place else ""),
        fix=f"nothing was written. {(change or 'change that line, ').capitalize()}{instead}",
    )


def _takes(model: torch.nn.Module, batch: torch.Tensor, expected: torch.Tensor, fmt: Format) -> bool:
    if not all(_installed(package) for package in fmt.packages):
        return False
    attempt = attempt_export(model, batch, expected, fmt)
    return attempt.failure is None and not attempt.warnings  # a trace that warned may not hold for other inputs


def needs_packages(fmt: Format, doing: str) -> None:
    missing = [package for package in fmt.packages if not _installed(package)]
    if missing:
        raise UserError(
            f"to {doing} {fmt.title}, Python needs the package(s) {', '.join(missing)}, which are not installed",
            fix=f'pip install "leaptrain[export]"  (or: pip install {" ".join(fmt.packages)}); or export with --format '
            "pt2, which needs only torch",
        )


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporters print pages of graphs and log lines, even on success: kept from the terminal (see --debug)."""
    if SHOW_EXPORTER_OUTPUT:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def describe(
    cfg: Config,
    checkpoint: dict[str, Any],
    checkpoint_path: Path,
    fmt: Format,
    path: Path,
    inputs: Inputs,
    difference: float,
) -> dict[str, Any]:
    """What a program needs to use the export, as the .json beside it; `predict` reads it back."""
    info = checkpoint.get("data") or {}
    shape = ["batch", *inputs.batch.shape[1:]]
    if "class_names" in info:
        output = "one score (a logit) per class, in the order of data.class_names; softmax gives probabilities"
    elif info.get("task") == "regression" or "features" in info:
        output = "the predicted number(s), in the target's own units"
    else:
        output = "the model's outputs"
    state = checkpoint.get("state") or {}
    return {
        "leaptrain_export": META_VERSION,
        "format": fmt.name,
        "file": path.name,
        "made_from": f"{checkpoint_path} (epoch {state.get('epoch', '?')})",
        "dataset": cfg.data.dataset,
        "input": {"name": INPUT, "shape": shape, "dtype": "float32", "prepare": preparation(info, shape)},
        "output": {"name": OUTPUT, "meaning": output},
        "data": info,
        "load": fmt.load.format(file=path.name),
        "checked": {"on": inputs.source, "largest_difference": difference},
    }


def preparation(info: dict[str, Any], shape: list[Any]) -> str:
    """In words: how a file or a row becomes the export's input, as training made it."""
    if "features" in info:
        return (
            "one row per sample: the columns data.features in order; a number column minus data.mean, divided by "
            "data.std; a category column as one 0/1 column per value of data.categories (all 0 for a value not there)"
        )
    if len(shape) == 4 and "mean" in info:
        channels = "grey (1 channel)" if shape[1] == 1 else f"RGB ({shape[1]} channels)"
        inverted = (
            "; light strokes on a dark ground, as in training: a photo of dark ink on light paper is inverted first"
            if info.get("invert_light_background")
            else ""
        )
        return (
            f"an image as {channels}, resized to {shape[3]}x{shape[2]} (width x height), pixels scaled to 0..1, "
            f"then per channel minus data.mean and divided by data.std; shape (batch, channels, height, width)"
            + inverted
        )
    return "the inputs as the run's data set gives them"


def read_meta(export: Path) -> dict[str, Any]:
    """The .json beside an export, or a message saying how to get it."""
    meta = meta_path(export)
    fix = f"export the run again (python -m trainer export RUN -o {export}): it writes {meta.name} beside it"
    if not meta.is_file():
        raise UserError(f"{export} has no {meta.name} beside it: it says what the model takes and gives", fix=fix)
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {meta}: {err}", fix=fix) from err
    if not isinstance(data, dict) or data.get("leaptrain_export") is None:
        raise UserError(f"{meta} was not written by leaptrain's export", fix=fix)
    return data


def load_for_predict(export: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """The export as a function, and its .json."""
    meta = read_meta(export)
    fmt = SUFFIXES[export.suffix.lower()]
    needs_packages(fmt, "run")
    try:
        return load_export(export, fmt), meta
    except Exception as err:
        first_line = (str(err).splitlines() or [""])[0]
        raise UserError(
            f"cannot load {export} as {fmt.title}: {type(err).__name__}: {first_line}",
            fix=f"export the run again: python -m trainer export RUN --format {fmt.name} -o {export}",
        ) from err
