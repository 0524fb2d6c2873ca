"""Files written atomically: a crash leaves the old file or the new one, never half of one; a write that fails
(a full disk, a read-only folder, a file where a folder is meant) is a message naming the file and the fix."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from trainer.errors import UserError
from trainer.run_files import run_of


def write_atomic(path: str | Path, data: bytes | memoryview | str) -> None:
    """Replace `path` with `data` in one step."""
    replace_file(path, lambda file: file.write(data.encode("utf-8") if isinstance(data, str) else data))


@contextlib.contextmanager
def saving(path: Path) -> Iterator[None]:
    """A write that fails (a full disk, a folder made read-only) becomes a message naming the file and the space
    left; the file that was there before is untouched (see replace_file)."""
    try:
        yield
    except OSError as err:
        free = ""
        with contextlib.suppress(OSError):
            free = f"; {size_text(shutil.disk_usage(path.parent).free)} free on that disk"
        run_dir = run_of(path)
        kept = f" (the {path.name} already there, from the save before, is intact)" if path.is_file() else ""
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "free some space there"
        elif err.errno == errno.EFBIG:  # a limit on the size of one file: the shell's (ulimit -f) or the disk's
            fix = "raise the limit on file size (ulimit -f unlimited), or keep the run on a disk allowing larger files"
        else:
            fix = f"make {path.parent} writable"
        raise UserError(
            f"could not save {path}: {err.strerror or err}{free}. Training stopped so that no more work is lost{kept}",
            fix=f"{fix}, then carry on with: python -m trainer resume {run_dir}",
        ) from err


def replace_file(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    in_a_file = file_in_the_way(path)
    if in_a_file is not None:
        raise UserError(
            f"cannot write {path}: {in_a_file} is a file, not a folder",
            fix=f"give a path in a folder, e.g. {in_a_file.parent / path.name}",
        )
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


def file_in_the_way(path: str | Path) -> Path | None:
    """The file standing where one of `path`'s folders is meant (notes.txt of notes.txt/run/x.json), or None."""
    return next((folder for folder in Path(path).parents if folder.exists() and not folder.is_dir()), None)


def size_text(n: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("bytes", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
