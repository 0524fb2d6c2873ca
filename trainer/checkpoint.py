"""Checkpoints and run files, written atomically: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import io
import os
import random
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch


@dataclass
class TrainState:
    """Where training is: what a checkpoint needs besides the weights to carry on exactly."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    batch: int = 0  # batches done in the epoch in progress (not 0 only after Ctrl-C)
    best_metric: float | None = None  # of the monitored metric (early_stopping.monitor, else val/loss)
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs in a row without improvement, for early stopping
    loader_rng: Any = None  # the shuffling generator's state when the epoch in progress began
    totals: Any = None  # the running sums of the epoch in progress
    stopped_early: bool = False


@dataclass
class Monitor:
    """The metric best.pt and early stopping follow."""

    name: str = "val/loss"
    mode: str = "min"  # "min" when lower is better, "max" when higher is
    min_delta: float = 0.0  # a change smaller than this is no improvement

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


def write_atomic(path: str | Path, data: bytes | memoryview | str) -> None:
    """Replace `path` with `data` in one step."""
    _replace(path, lambda file: file.write(data.encode("utf-8") if isinstance(data, str) else data))


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    _replace(path, lambda file: torch.save(checkpoint, file))


class CheckpointWriter:
    """Writes checkpoints on a background thread, so that training goes on while the disk works.

    `save` turns the checkpoint into bytes at once: a snapshot, since the next step changes the tensors. Only the
    write, flush and rename happen on the thread. Each `save` first waits for the write before it, so an older
    checkpoint never lands over a newer one; `wait` returns when all is on disk, and raises what went wrong.
    """

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def save(self, path: Path, checkpoint: dict[str, Any], also_as: Path | None = None) -> None:
        """Write `checkpoint` to `path`, then link it as `also_as` (best.pt) too when given."""
        self.wait()
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)

        def write() -> None:
            try:
                write_atomic(path, buffer.getbuffer())
                if also_as is not None:
                    link_atomic(path, also_as)
            except BaseException as err:  # handed to the training thread by wait()
                self.error = err

        # Not a daemon: a run that ends (or fails) right after a save still finishes writing it.
        self.thread = threading.Thread(target=write, name="checkpoint-writer")
        self.thread.start()

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def link_atomic(source: Path, path: Path) -> None:
    """Make `path` hold what `source` holds, by a hard link (no copy) where the file system allows it."""
    tmp = path.with_name(f".{path.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        write_atomic(path, source.read_bytes())
        return
    os.replace(tmp, path)


def _replace(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; a run folder is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint holds only tensors and plain data, so it loads with weights_only=True."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_states() -> dict[str, Any]:
    """Every random generator a run draws from, as tensors and plain data (loadable with weights_only)."""
    states: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if "numpy" in sys.modules:
        kind, keys, position, has_gauss, cached = sys.modules["numpy"].random.get_state()
        states["numpy"] = (kind, torch.from_numpy(keys.copy()), position, has_gauss, cached)
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        import numpy

        kind, keys, position, has_gauss, cached = states["numpy"]
        numpy.random.set_state((kind, keys.numpy(), position, has_gauss, cached))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
