"""Checkpoints: what a run saves to carry on exactly, written atomically (trainer/atomic.py) with a checksum that
every load verifies."""

from __future__ import annotations

import hashlib
import io
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.atomic import replace_file, saving, write_atomic
from trainer.errors import UserError
from trainer.run_files import BEST, LAST


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


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    with saving(Path(path)):
        replace_file(path, lambda file: torch.save(sealed(checkpoint), file))


class CheckpointWriter:
    """Writes checkpoints on a background thread, so that training goes on while the disk works.

    `save` turns the checkpoint into bytes at once: a snapshot, since the next step changes the tensors. Only the
    write, flush and rename happen on the thread. Each `save` first waits for the write before it, so an older
    checkpoint never lands over a newer one; `wait` returns when all is on disk, and raises what went wrong.
    A failed write calls `on_failure` at once, so that training stops at the next step instead of an epoch later.
    """

    def __init__(self, on_failure: Callable[[], None] = lambda: None) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.on_failure = on_failure

    def save(self, path: Path, checkpoint: dict[str, Any], also_as: Path | None = None) -> None:
        """Write `checkpoint` to `path`, and to `also_as` (best.pt) too when given: a file of its own, so that damage
        to one leaves the other. best.pt is written first: when its save fails, last.pt is still the one before, and
        a resume from it trains this epoch again and saves both; last.pt never says an epoch is best that best.pt
        does not hold."""
        self.wait()
        buffer = io.BytesIO()
        torch.save(sealed(checkpoint), buffer)

        def write() -> None:
            try:
                for target in [path] if also_as is None else [also_as, path]:
                    with saving(target):
                        write_atomic(target, buffer.getbuffer())
            except BaseException as err:  # handed to the training thread by wait()
                self.error = err
                self.on_failure()

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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint holds only tensors and plain data, so it loads with weights_only=True. Its checksum is checked:
    a file damaged on disk is refused by name, with the run's other checkpoint offered."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and "checksum" in checkpoint:  # older checkpoints have none
        stored = checkpoint.pop("checksum")
        if stored != checksum(checkpoint):
            raise UserError(f"{path} is damaged: its contents do not match its checksum", fix=other_checkpoint(path))
    return checkpoint


def sealed(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint with the checksum of its contents, which every load verifies."""
    return {**checkpoint, "checksum": checksum(checkpoint)}


def checksum(value: Any) -> str:
    """The sha256 of a checkpoint's tensors (their bytes, dtype and shape) and of its plain data, in order."""
    digest = hashlib.sha256()

    def add(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            digest.update(f"dict {len(value)};".encode())
            for key, item in value.items():
                add(key)
                add(item)
        elif isinstance(value, list | tuple):
            digest.update(f"{type(value).__name__} {len(value)};".encode())
            for item in value:
                add(item)
        else:  # numbers, strings, None: their repr is exact (a float's repr reads back to the same float)
            digest.update(f"{type(value).__name__} {value!r};".encode())

    add(value)
    return digest.hexdigest()


def other_checkpoint(path: str | Path) -> str:
    """What to use instead of a damaged checkpoint: the run's other one (best.pt for last.pt and back), if intact."""
    path = Path(path)
    other = path.with_name(BEST if path.name == LAST else LAST)
    if other == path or not other.is_file():
        return f"restore {path.name} from a copy, or train again; a run keeps checkpoints/last.pt and best.pt"
    try:
        epoch = load_checkpoint(other)["state"]["epoch"]
    except Exception:  # damaged too, or not a checkpoint of ours
        return f"restore {path.name} from a copy, or train again: {other} cannot be read either"
    use = f"the other checkpoint, {other} (after epoch {epoch}), is intact: evaluate or predict with it instead"
    if path.name == LAST:
        resume = f"cp {other} {path} && python -m trainer resume {path.parent.parent}"
        return f"{use}, or carry on training from it with: {resume}"
    return use


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
