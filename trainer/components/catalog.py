"""The names and constructor signatures of torch's optimizers, schedulers and losses and of torchvision's models,
kept in a small file per torch and torchvision version, so a config's components are checked without importing
torch (which takes seconds): a misspelled name or argument is reported in a blink.

The file is made the first time it is needed, from torch itself, and made again when the versions, leaptrain's
code that lists the components, or the file itself do not match: it is never a list written by hand.
It lives in $LEAPTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/leaptrain, else ~/.cache/leaptrain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from trainer.components import losses, models, optim, resolve
from trainer.components.resolve import Signature
from trainer.config import LossConfig, ModelConfig, OptimizerConfig, SchedulerConfig, expand_shorthands
from trainer.errors import Problem

FORMAT = 1  # the layout of the file; a new layout makes the old files stale


@dataclass(frozen=True)
class Catalog:
    """Each component kind: the name a config may use -> what its constructor accepts."""

    optimizers: dict[str, Signature]
    schedulers: dict[str, Signature]
    losses: dict[str, Signature]
    models: dict[str, Signature]  # a torchvision builder's name -> its model class's signature


def problems_in_valid_sections(data: dict[str, Any]) -> list[Problem]:
    """The name and argument names of each component section that is valid on its own, checked against the
    catalog: no torch, and no user file is run (they import torch); that comes once these checks pass."""
    sections: dict[str, tuple[Any, Callable[[Any, Any], list[Problem]], str]] = {
        "model": (ModelConfig, models.check_model_names, "models"),
        "loss": (LossConfig, losses.check_loss_names, "losses"),
        "optimizer": (OptimizerConfig, optim.check_optimizer_names, "optimizers"),
        "scheduler": (SchedulerConfig, optim.check_scheduler_names, "schedulers"),
    }
    expand_shorthands(data)  # `loss: mse` is `loss: {name: mse}`
    catalog = None
    problems = []
    for key, (schema, check, kind) in sections.items():
        if key not in data:
            continue  # the default is a valid choice
        try:
            section = TypeAdapter(schema).validate_python(data[key])
        except ValidationError:
            continue  # its schema problems are reported already
        catalog = catalog or load_catalog()
        problems += check(section, getattr(catalog, kind))
    return problems


def load_catalog() -> Catalog:
    """The catalog for the installed torch: read from its file, or made from torch (and saved) when the file is
    missing, stale or unreadable. Read once per process while the file stays as it is."""
    path = cache_file()
    return _catalog_at(path, _file_state(path))


@functools.cache
def _catalog_at(path: Path, state: tuple[int, int, int] | None) -> Catalog:
    """Keyed by the file's path (LEAPTRAIN_CACHE_DIR may change between calls) and its state: a file damaged or
    replaced since is read again."""
    stamp = _stamp()
    try:
        return _from_json(json.loads(path.read_text()), stamp)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing, stale or damaged: make it again
    catalog = build_catalog()
    if "unknown" not in (stamp["torch"], stamp["torchvision"]):  # else no version tells when it goes stale
        with contextlib.suppress(OSError):  # a read-only cache folder: the checks still run, on this catalog
            write_catalog(path, catalog, stamp)
    return catalog


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is written again: os.replace gives it a new inode, an edit a new size or time."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def build_catalog() -> Catalog:
    """The catalog, asked of torch and torchvision themselves (this imports them: a few seconds)."""
    return Catalog(
        optimizers=optim.optimizer_signatures(),
        schedulers=optim.scheduler_signatures(),
        losses=losses.loss_signatures(),
        models=models.model_signatures(),
    )


def cache_file(stamp: dict[str, Any] | None = None) -> Path:
    """Where the catalog for these versions lives: one file per torch and torchvision version."""
    stamp = stamp or _stamp()
    folder = os.environ.get("LEAPTRAIN_CACHE_DIR")
    if not folder:
        home = os.environ.get("XDG_CACHE_HOME") or Path(os.path.expanduser("~")) / ".cache"
        folder = str(Path(home) / "leaptrain")
    return Path(folder) / f"catalog-torch{stamp['torch']}-tv{stamp['torchvision']}.json"


def write_catalog(path: Path, catalog: Catalog, stamp: dict[str, Any]) -> None:
    """Write the file atomically: processes starting together (a sweep's workers) never read half a file.
    (trainer/checkpoint.py has the same for checkpoints, but importing it imports torch.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"stamp": stamp, **dataclasses.asdict(catalog)}, indent=1)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _from_json(data: dict[str, Any], stamp: dict[str, Any]) -> Catalog:
    if data["stamp"] != stamp:
        raise ValueError("made for other versions")
    kinds = {
        field.name: {
            name: Signature(**{**entry, "args": tuple(entry["args"]), "required": tuple(entry["required"])})
            for name, entry in data[field.name].items()
        }
        for field in dataclasses.fields(Catalog)
    }
    return Catalog(**kinds)


@functools.cache
def _stamp() -> dict[str, Any]:
    """What the catalog was made from: the versions (read without importing torch) and leaptrain's code that
    lists the components (a changed rule of which classes count makes the file stale too). Worked out once per
    process: neither changes while it runs."""
    code = hashlib.sha256()
    for file in (__file__, losses.__file__, models.__file__, optim.__file__, resolve.__file__):
        with contextlib.suppress(OSError, TypeError):
            code.update(Path(file).read_bytes())  # type: ignore[arg-type]
    return {
        "format": FORMAT,
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "code": code.hexdigest()[:16],
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
