"""Your own images, one folder per class: decoded once and kept in memory when they fit, else read by workers.

Kept in memory, an epoch is a few tensor copies (augmented a whole batch at a time, as for CIFAR); read from disk,
each image is decoded, resized and augmented again every epoch in DataLoader worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from trainer import distributed
from trainer.components.augment import Pixels, batch_augment, pixel_pipeline
from trainer.components.splits import DataSplits, DeviceBatches, check_split_classes, in_memory_splits, size_text
from trainer.config import ImageFolderData
from trainer.errors import UserError, did_you_mean_path
from trainer.progress import progress_bar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
STATS_SAMPLE = 500  # images decoded to measure the mean and std when they are read from disk
NAMES_SHOWN = 5  # files and folders named in a message; the rest are counted
SPLIT_FOLDERS = {"val": ("val", "valid", "validation"), "test": ("test",)}  # the first name is ours
ALL_SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}
SYSTEM_FILES = {"Thumbs.db", "desktop.ini", "Icon\r"}  # written by Windows and macOS into every folder
SIGNATURES = [  # a file's first bytes -> its format
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
]
READABLE_CONTENT = {"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"}
SURVEY_MAX = 2000  # image headers read to find colour modes and bit depths; more are sampled evenly
# torchvision 0.29 deprecates its decoders in favour of torchcodec; they remain the fastest we have without it.
TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"

Item = tuple[Path, int]  # an image file and its class index


@dataclass
class Layout:
    """The image files found under data.root, by split (val and test are None when there is no such folder)."""

    class_names: list[str]
    train: list[Item]
    val: list[Item] | None
    test: list[Item] | None


class EveryFileOnce(Sampler[int]):
    """This process's share of an evaluation split under torchrun: files rank, rank + world, rank + 2 * world...
    DistributedSampler would repeat a few files to give every process as many; then they would count twice in
    the metrics. Evaluation needs no equal shares (its sums are added up once, at the end), so none is repeated."""

    def __init__(self, count: int) -> None:
        self.indices = range(distributed.rank(), count, distributed.world_size())

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_image_folder(cfg: ImageFolderData, device: torch.device, seed: int) -> DataSplits:
    """Train / val / test loaders over the images under cfg.root, cached in memory when they fit."""
    root = Path(cfg.root)
    layout = find_images(root)
    height, width = (cfg.image_size, cfg.image_size) if isinstance(cfg.image_size, int) else cfg.image_size
    shape = (1 if cfg.grayscale else 3, height, width)
    train, val = (layout.train, layout.val) if layout.val is not None else split(layout.train, cfg.val_split, seed)
    test = layout.test or []
    fraction = cfg.val_split if layout.val is None else 0.0
    warnings = check_class_images(layout.class_names, train, val, test, root, fraction)
    survey_modes(train + val + test, root, cfg.grayscale)
    files = len(train) + len(val) + len(test)
    in_memory, why = choose_cache(cfg.cache, files, shape, device)
    names = ", ".join(layout.class_names[:10]) + (", ..." if len(layout.class_names) > 10 else "")
    description = f"image_folder {root}: {len(layout.class_names)} classes ({names})"
    if in_memory:
        data = _in_memory(cfg, (train, val, test), shape, device, seed, layout.class_names)
        threads = decode_threads()
        data.feeding = f"{why}, decoded once by {threads} thread{'s' if threads > 1 else ''}; {data.feeding}"
    else:
        workers, workers_why = resolve_workers(cfg.workers)
        data = _from_disk(cfg, (train, val, test), shape, device, seed, workers, layout.class_names)
        data.feeding = f"{why}: decoded, resized and augmented each epoch by {workers_why}"
    counts = [0 if loader is None else _samples(loader) for loader in (data.train, data.val, data.test)]
    data.description = f"{description}, {counts[0]:,} train / {counts[1]:,} val / {counts[2]:,} test images"
    data.warnings[:0] = warnings  # the split's warnings first, as they were found first
    return data


def find_images(root: Path) -> Layout:
    """root/<class>/*.jpg|png|..., or root/train/<class>/ with root/val/<class>/ and root/test/<class>/.

    A folder laid out almost so (the classes one level deeper or higher, splits named valid/ or validation/,
    split folders with no class folders in them) is named in the message, with what it holds.
    """
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        near = did_you_mean_path(root) if not root.exists() else ""
        raise UserError(f"image folder '{root}' {what}{near}", fix=_layout_fix(root), key="data.root")
    if (root / "train").is_dir() and _class_folders(root / "train"):
        class_names = _class_names(root / "train")
        splits: dict[str, list[Item] | None] = {"val": None, "test": None}
        for name in splits:
            folder = _split_folder(root, name)
            if folder is not None:
                found = _class_folders(folder)
                if found != class_names:
                    raise UserError(
                        f"the class folders of {folder} ({', '.join(found) or 'none'}) differ from those of "
                        f"{root / 'train'} ({', '.join(class_names)})",
                        fix=f"give {folder} the same class folders as {root / 'train'}, e.g. {root}/train/cats/001.jpg "
                        f"and {folder}/cats/101.jpg; or remove {folder} to hold out data.val_split of the training "
                        "images instead",
                        key="data.root",
                    )
                splits[name] = _items(folder, class_names)
        return Layout(class_names, _items(root / "train", class_names), splits["val"], splits["test"])
    _check_not_splits(root)
    class_names = _class_names(root)
    return Layout(class_names, _items(root, class_names), None, None)


def _split_folder(root: Path, split: str) -> Path | None:
    """root/val (or root/valid, root/validation, as many data sets name it), or root/test."""
    names = SPLIT_FOLDERS[split]
    found = [root / name for name in names if (root / name).is_dir()]
    if len(found) > 1:
        raise UserError(
            f"'{root}' holds {' and '.join(p.name + '/' for p in found)}: both would be the {split} split",
            fix=f"keep one of them, named {names[0]}/",
            key="data.root",
        )
    if found and found[0].name != names[0]:
        print(f"note: {found[0]} holds the {split} images (read as {names[0]}/)", file=sys.stderr)
    return found[0] if found else None


def _check_not_splits(root: Path) -> None:
    """train/ and test/ holding images directly are splits without classes, not two classes named so."""
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    splits = [p for p in folders if p.name.lower() in ALL_SPLIT_NAMES]
    if len(splits) < 2 or len(splits) < len(folders):
        return  # one folder named train beside bus/ and car/ is a class of trains
    loose = {p.name: _loose_images(p) for p in splits}
    if not any(loose.values()):
        return
    held = ", ".join(f"{name}/ ({len(files)} images)" for name, files in loose.items())
    raise UserError(
        f"'{root}' holds {held} with the images directly in them: these are splits, and each needs one folder per "
        "class inside",
        fix=f"sort the images into class folders, e.g. {root}/train/cats/001.jpg and {root}/train/dogs/002.jpg, "
        f"{root}/val/cats/101.jpg ...",
        key="data.root",
    )


def _loose_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _nearby_layout(root: Path) -> tuple[Path, str] | None:
    """A folder near root laid out as classes (one or two levels deeper, or root's parent), and what it holds."""
    candidates = []
    below = [root]
    for _ in range(3):  # root/a/b/c at most: a folder nested one or two levels too deep
        below = [p for folder in below for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        candidates += below
    if _loose_images(root):
        candidates.append(root.parent)  # root is itself one class folder
    for folder in candidates:
        if folder == root:
            continue
        classes = {name: len(_loose_images(folder / name)) for name in _class_folders(folder)}
        with_images = {name: n for name, n in classes.items() if n}
        if len(with_images) >= 2:
            shown = ", ".join(f"{name} ({n} images)" for name, n in list(with_images.items())[:5])
            return folder, shown + (f", ... ({len(with_images)} classes)" if len(with_images) > 5 else "")
        if (folder / "train").is_dir() and len(_class_folders(folder / "train")) >= 2:
            return folder, f"train/ with {', '.join(_class_folders(folder / 'train')[:5])}"
    return None


def _layout_error(folder: Path, message: str) -> UserError:
    """The message, with the folder nearby that has the layout when there is one (its path is the fix)."""
    nearby = _nearby_layout(folder)
    if nearby is None:
        return UserError(message, fix=_layout_fix(folder), key="data.root")
    path, held = nearby
    return UserError(
        f"{message}; {path} holds {held}",
        fix=f"did you mean data.root: {path}? (or arrange {folder} as one folder per class)",
        key="data.root",
    )


def _class_names(folder: Path) -> list[str]:
    names = _class_folders(folder)
    if not names:
        loose = _loose_images(folder)
        found = f" (it holds {_some(loose, folder)} directly, but not in class folders)" if loose else ""
        raise _layout_error(folder, f"no class folders in '{folder}'{found}")
    if len(names) == 1:
        raise _layout_error(
            folder, f"'{folder}' holds one class folder ({names[0]}): a classifier needs at least two classes"
        )
    return names


def _some(paths: list[Path], root: Path) -> str:
    """'3 images (a.png, b.png, c.png)' or '40 images (a.png, ... and 35 more)'."""
    names = ", ".join(str(_relative(p, root)) for p in paths[:NAMES_SHOWN])
    more = f", and {len(paths) - NAMES_SHOWN} more" if len(paths) > NAMES_SHOWN else ""
    return f"{len(paths)} image{'s' if len(paths) != 1 else ''} ({names}{more})"


def _class_folders(folder: Path) -> list[str]:
    # Hidden folders are tools' own (.ipynb_checkpoints, .git), never classes.
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _items(folder: Path, class_names: list[str]) -> list[Item]:
    """Every image of every class folder; files that are images under another name are taken too, the others
    named in one line. A class folder with no image is an error that names every such folder and what it holds."""
    items: list[Item] = []
    empty: list[tuple[str, list[tuple[Path, str]]]] = []
    renamed: list[Path] = []
    others: list[tuple[Path, str]] = []
    for label, name in enumerate(class_names):
        files = sorted(
            p
            for p in (folder / name).rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        images = []
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
                continue
            content = what_file_is(path)
            if content in READABLE_CONTENT:  # a .jfif or .tif that is a JPEG or TIFF: its content decides
                images.append(path)
                renamed.append(path)
            elif path.name not in SYSTEM_FILES:
                others.append((path, content))
        if not images:
            empty.append((name, [(path, what) for path, what in others if (folder / name) in path.parents]))
        items += [(path, label) for path in images]
    if empty:
        insides = {}
        for name, held in empty:
            inside = f"{len(held)} file{'s' if len(held) > 1 else ''}, none an image read here: " if held else "nothing"
            insides[name] = inside + ", ".join(f"{p.name} ({what})" for p, what in held[:3])
        parts = [f"'{folder / name}' ({inside})" for name, inside in list(insides.items())[:NAMES_SHOWN]]
        more = f", and {len(empty) - NAMES_SHOWN} more" if len(empty) > NAMES_SHOWN else ""
        names = ", ".join(name for name, _ in empty)
        suffixes = ", ".join(IMAGE_SUFFIXES)
        if len(empty) == 1:
            name = empty[0][0]
            message = f"class folder '{folder / name}' holds no images ({suffixes}); it holds {insides[name]}"
        else:
            message = f"{len(empty)} class folders hold no images ({suffixes}): {'; '.join(parts)}{more}"
        raise UserError(
            message,
            fix=f"put the images of {names} in {'them' if len(empty) > 1 else 'it'}, or remove "
            f"{'those folders' if len(empty) > 1 else 'the folder'}: each class folder holds its images, e.g. "
            f"{folder}/cats/001.jpg",
            key="data.root",
        )
    if renamed:
        names = ", ".join(str(_relative(p, folder)) for p in renamed[:NAMES_SHOWN])
        more = f", and {len(renamed) - NAMES_SHOWN} more" if len(renamed) > NAMES_SHOWN else ""
        print(
            f"note: {len(renamed)} file{'s' if len(renamed) > 1 else ''} with other suffixes than "
            f"{', '.join(IMAGE_SUFFIXES)} hold{'s' if len(renamed) == 1 else ''} images, read as such: {names}{more}",
            file=sys.stderr,
        )
    if others:
        shown = ", ".join(f"{_relative(p, folder)} ({what})" for p, what in others[:NAMES_SHOWN])
        more = f", and {len(others) - NAMES_SHOWN} more" if len(others) > NAMES_SHOWN else ""
        files = "1 file that is not an image" if len(others) == 1 else f"{len(others)} files that are not images"
        print(f"note: left out {files}: {shown}{more}", file=sys.stderr)
    return items


def is_image_file(path: Path) -> bool:
    """Named as an image, or holding one under another name (a .jfif that is a JPEG): what training reads."""
    return path.suffix.lower() in IMAGE_SUFFIXES or what_file_is(path) in READABLE_CONTENT


def what_file_is(path: Path) -> str:
    """What a file holds, from its first bytes: 'JPEG', 'PNG', ... (READABLE_CONTENT), or a few words."""
    try:
        with path.open("rb") as file:
            head = file.read(512)
    except OSError as err:
        return f"cannot be opened: {err.strerror}"
    if not head:
        return "empty, 0 bytes"
    for signature, name in SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", errors="replace")
        if brand in ("heic", "heix", "mif1", "heim", "hevc"):
            return "a HEIC photo (an iPhone's format), which is not read here"
        return "AVIF, which is not read here" if brand.startswith("avi") else "a video or HEIF file"
    try:
        text = head.decode("utf-8").lstrip("\ufeff").lstrip()
    except UnicodeDecodeError:
        return "not an image format"
    lowered = text[:100].lower()
    if lowered.startswith(("<!doctype html", "<html")):
        return "a web page saved under an image's name"
    if "<svg" in lowered:
        return "an SVG drawing, which is not read here"
    return f"text: {text.splitlines()[0][:30]!r}" if text else "blank text"


def survey_modes(items: list[Item], root: Path, grayscale: bool) -> None:
    """One line for images that are not 8-bit RGB (grey, RGBA, palette, CMYK, 16-bit): each is converted as it is
    read, which is right, but transparency is dropped and a grey folder trained as RGB wastes two channels."""
    from PIL import Image

    step = max(1, len(items) // SURVEY_MAX)
    looked = items[::step]
    modes: dict[str, list[Path]] = {}
    for path, _ in looked:
        try:
            with Image.open(path) as image:
                mode = image.mode
                if image.format == "PNG" and mode in ("RGB", "RGBA", "L", "LA") and _png_bit_depth(path) == 16:
                    mode = "16-bit " + mode
        except Exception:  # unreadable files are named when they are decoded
            continue
        modes.setdefault(mode, []).append(path)
    if not modes:
        return
    words = {
        "L": "grey",
        "LA": "grey with transparency",
        "RGBA": "RGBA (transparency is dropped)",
        "P": "palette (P)",
        "PA": "palette with transparency",
        "CMYK": "CMYK (printing colours)",
        "1": "black and white (1 bit)",
        "I;16": "16-bit grey",
        "I": "32-bit grey",
        "F": "floating-point grey",
    }
    grey = {"L", "LA", "1", "I;16", "I;16B", "I", "F", "16-bit L", "16-bit I", "16-bit I;16"}
    sampled = f" (of {len(looked):,} looked at)" if step > 1 else ""
    if not grayscale and set(modes) <= grey:
        print(
            f"note: every image{sampled} is grey ({', '.join(sorted(modes))}): data.grayscale: true would give the "
            "model one channel instead of three equal ones",
            file=sys.stderr,
        )
        return
    target = "L" if grayscale else "RGB"
    odd = {mode: paths for mode, paths in modes.items() if mode != target}
    if not odd:
        return
    count = sum(len(paths) for paths in odd.values())
    parts = [f"{len(paths)} {words.get(mode, mode)}, e.g. {_relative(paths[0], root)}" for mode, paths in odd.items()]
    kind = "8-bit grey" if grayscale else "8-bit RGB"
    print(
        f"note: {count} of {len(looked):,} images{sampled} are not {kind}: {'; '.join(parts)}. Each is converted to "
        f"{kind} as it is read",
        file=sys.stderr,
    )


def _png_bit_depth(path: Path) -> int:
    with path.open("rb") as file:
        header = file.read(26)
    return header[24] if len(header) > 24 else 8


def check_class_images(
    class_names: list[str], train: list[Item], val: list[Item], test: list[Item], root: Path, fraction: float
) -> list[str]:
    """Every class needs training images (the error names the images of one that has none); the warnings for a
    class missing from val or test."""
    splits = (("train", train), ("val", val), ("test", test))
    counts = {split: Counter(class_names[label] for _, label in items) for split, items in splits}

    def untrained_error(untrained: list[str]) -> UserError:
        name = untrained[0]
        held = [path for path, label in val + test if class_names[label] == name]
        return UserError(
            f"class '{name}' has {_some(held, root)}, and the random split put "
            f"{'it' if len(held) == 1 else 'all of them'} in val, none in training (data.val_split {fraction})",
            fix=f"add images of {name} (a few for each split at least), or lower data.val_split",
            key="data.val_split",
        )

    return check_split_classes(class_names, counts, "image", untrained_error)


def _layout_fix(root: Path) -> str:
    return (
        f"arrange the images in one folder per class, e.g. {root}/cats/001.jpg and {root}/dogs/002.png "
        f"(or {root}/train/<class>/ with {root}/val/<class>/ to choose the validation images yourself), "
        "and point data.root at that folder"
    )


def split(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(train, val): a seeded random `fraction` of the items held out, so the same seed holds out the same files."""
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(len(items) * fraction)
    return [items[i] for i in sorted(order[n_val:])], [items[i] for i in sorted(order[:n_val])]


def choose_cache(cache: str, count: int, shape: tuple[int, int, int], device: torch.device) -> tuple[bool, str]:
    """Whether to keep the decoded images in memory, and one line saying so and why."""
    size = count * shape[0] * shape[1] * shape[2]
    images = f"{count:,} images of {'x'.join(map(str, shape))} take {size_text(size)} as uint8"
    if cache != "auto":
        where = "kept in memory" if cache == "memory" else "read from disk"
        return cache == "memory", f"{images}: {where} (data.cache: {cache})"
    free, where = available_memory(device)
    if size < free / 4:
        return True, f"{images}: kept in memory (under a quarter of the {size_text(free)} {where})"
    return False, f"{images}, over a quarter of the {size_text(free)} {where}: read from disk (data.cache: auto)"


def available_memory(device: torch.device) -> tuple[float, str]:
    """Bytes free for the cache, and what they are: it is built in memory, then moved to the training device."""
    free, where = _free_ram()
    if device.type == "cuda":
        gpu_free, _ = torch.cuda.mem_get_info(device)
        if gpu_free < free:
            return gpu_free, "free on the GPU"
    return free, where


def _free_ram() -> tuple[float, str]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(int(line.split()[1]) * 1024, _container_room()), "of memory available"
    except OSError:  # not Linux
        pass
    try:
        import psutil

        return psutil.virtual_memory().available, "of memory available"
    except ImportError:
        return 4 * 2**30, "of memory assumed available (psutil is not installed to ask)"


# The Linux kernel's own files for a container's memory (cgroup v2), the same on every Linux system; elsewhere
# they do not exist and no limit is assumed.
CGROUP = Path("/sys/fs/cgroup")


def _container_room() -> float:
    """Bytes a container's memory limit (cgroup v2) leaves; /proc/meminfo tells the whole machine's."""
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        used = int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return float("inf")
    return float("inf") if limit == "max" else max(int(limit) - used, 0)


def resolve_workers(workers: int | str) -> tuple[int, str]:
    """DataLoader worker processes, and words saying who decodes the images."""
    if workers != "auto":
        count = int(workers)
        return count, f"{count} DataLoader workers (data.workers)" if count else "this process (data.workers: 0)"
    if sys.platform in ("win32", "darwin"):
        # Workers there start by re-importing the script (spawn): slow, and broken for code typed in a notebook.
        return 0, (
            "this process (data.workers: auto means 0 on Windows and macOS, where worker processes start by "
            "re-importing your script and misbehave in notebooks; set data.workers: 4 when running a script)"
        )
    count = min(os.cpu_count() or 1, 8)
    return count, f"{count} DataLoader workers (data.workers: auto, one per CPU core up to 8)"


class TooManyPixels(Exception):
    """An image whose header promises more pixels than data.max_pixels: refused before it is decoded."""


def read_image(path: str | Path, size: tuple[int, int], grayscale: bool, max_pixels: int | None = None) -> torch.Tensor:
    """One image file as uint8 C x H x W, resized to `size` (height, width); raises when it cannot be read, or
    (TooManyPixels) when its header gives more than `max_pixels` pixels."""
    with quiet_torchvision_decoders():
        return _read_image(path, size, grayscale, max_pixels)


def _read_image(
    path: str | Path, size: tuple[int, int], grayscale: bool, max_pixels: int | None = None
) -> torch.Tensor:
    """read_image for threads, which silence torchvision around the whole pass (see quiet_torchvision_decoders)."""
    from torchvision.transforms.v2 import functional as F

    data = Path(path).read_bytes()
    if max_pixels is not None:
        check_pixels(data, max_pixels)
    try:
        pixels = _decode_torchvision(data, grayscale)
    except Exception:  # a format torchvision does not read (bmp, CMYK jpeg, ...), or a torchvision without decoders
        pixels = _decode_pil(Path(path), grayscale)
    if pixels.dim() == 4:  # an animated gif: its first frame
        pixels = pixels[0]
    if pixels.dtype != torch.uint8:  # a 16-bit png
        pixels = F.to_dtype(pixels, torch.uint8, scale=True)
    if tuple(pixels.shape[-2:]) != size:
        pixels = F.resize(pixels, list(size), antialias=True)  # antialias: what PIL (and predict) do too
    return pixels.contiguous()


def _decode_torchvision(data: bytes, grayscale: bool) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mode = ImageReadMode.GRAY if grayscale else ImageReadMode.RGB
    # Phone photos are often stored sideways with an EXIF note saying which way is up.
    return decode_image(encoded, mode=mode, apply_exif_orientation=True)


def pixel_size(data: bytes | Path) -> tuple[int, str] | None:
    """The pixels an image file's header promises, and how to say it ('20,000 x 20,000'), read without decoding
    (decode_image would unpack them all first); None when the header cannot be read. `data` is the file's bytes,
    or its path (then only the header is read)."""
    from PIL import Image

    if isinstance(data, Path):
        with data.open("rb") as file:
            start = file.read(24)
    else:
        start = data[:24]
    if start.startswith(b"\x89PNG\r\n\x1a\n") and start[12:16] == b"IHDR":  # PNG: the size is in the first chunk
        width, height = int.from_bytes(start[16:20], "big"), int.from_bytes(start[20:24], "big")
        return width * height, f"{width:,} x {height:,}"
    try:
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError as err:  # PIL's own ceiling, far above ours, names only the count
        found = re.search(r"\((\d+) pixels\)", str(err))
        return (int(found[1]), f"{int(found[1]):,} pixels") if found else None
    except Exception:  # not an image: the decoders say so
        return None
    return width * height, f"{width:,} x {height:,}"


def check_pixels(data: bytes | Path, max_pixels: int) -> None:
    """Raise TooManyPixels when the header promises more than max_pixels pixels (a decompression bomb: a 1 MB
    PNG can hold 20,000 x 20,000 of one colour, 1.2 GB once decoded)."""
    size = pixel_size(data)
    if size is not None and size[0] > max_pixels:
        raise TooManyPixels(
            f"{size[1]} pixels, more than data.max_pixels ({max_pixels:,}) allows; set data.max_pixels: "
            f"{size[0]} to read it"
        )


@contextlib.contextmanager
def quiet_torchvision_decoders() -> Iterator[None]:
    """Silence torchvision 0.29's warning, on every decode, that its decoders will move to torchcodec: they work.

    Callers wrap a whole pass over files, not each decode: catch_warnings swaps process-wide state, which threads
    entering and leaving it at once would leave scrambled.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TORCHVISION_DEPRECATION, category=DeprecationWarning)
        yield


def _decode_pil(path: Path, grayscale: bool) -> torch.Tensor:
    from PIL import Image, ImageOps
    from torchvision.transforms.v2.functional import pil_to_tensor

    with Image.open(path) as image:
        return pil_to_tensor(ImageOps.exif_transpose(image).convert("L" if grayscale else "RGB"))


def verify_image(path: str | Path, max_pixels: int | None = None) -> None:
    """Raises unless the file looks like a whole image: header read, png checksums checked, nothing decoded; and
    (TooManyPixels) when the header promises more than max_pixels pixels."""
    from PIL import Image

    if max_pixels is not None:
        check_pixels(Path(path), max_pixels)
    with Image.open(path) as image:
        image.verify()


def decode_threads() -> int:
    """Threads that decode every file once: one per core, up to 8."""
    return min(os.cpu_count() or 1, 8)


def for_each_file(
    paths: list[str], function: Callable[[str], Any], keep: Callable[[int, Any], None], what: str
) -> list[int]:
    """keep(index, function(path)) for every path, on several threads, with a progress bar; the indices that failed.

    Threads, not worker processes: the decoders release Python's lock, so threads use every core (1,024 x 768 jpegs
    decode 1.9x as fast on 2 cores), start at once where worker processes take half a second, and are safe on
    Windows, macOS and in notebooks. Results reach `keep` as they come, so decoded images go straight into the
    cache instead of piling up in a list as big as the cache itself.
    """

    def attempt(path: str) -> tuple[Any, bool]:
        try:
            return function(path), True
        except Exception:  # unreadable: the caller names it and leaves it out
            return None, False

    failed = []
    with (
        quiet_torchvision_decoders(),
        ThreadPoolExecutor(decode_threads()) as pool,
        progress_bar(total=len(paths), desc=what, unit="image", leave=False, dynamic_ncols=True) as bar,
    ):
        for index, (result, ok) in enumerate(pool.map(attempt, paths)):
            if ok:
                keep(index, result)
            else:
                failed.append(index)
            bar.update()
    return failed


def _unreadable_warnings(paths: list[Path], root: Path, total: int, max_pixels: int | None = None) -> list[str]:
    if not paths:
        return []
    names = ", ".join(f"{_relative(p, root)} ({_why_unreadable(p, max_pixels)})" for p in paths[:NAMES_SHOWN])
    more = f" and {len(paths) - NAMES_SHOWN} more" if len(paths) > NAMES_SHOWN else ""
    return [
        f"skipped {len(paths)} of {total:,} image files that could not be read: {names}{more}; replace or delete them"
    ]


def _why_unreadable(path: Path, max_pixels: int | None = None) -> str:
    if max_pixels is not None:
        try:
            verify_image(path, max_pixels)
        except TooManyPixels as err:
            return str(err)
        except Exception:  # damaged or no image: said below
            pass
    content = what_file_is(path)
    return f"a damaged {content}" if content in READABLE_CONTENT else content


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _in_memory(
    cfg: ImageFolderData,
    splits: tuple[list[Item], list[Item], list[Item]],
    shape: tuple[int, int, int],
    device: torch.device,
    seed: int,
    class_names: list[str],
) -> DataSplits:
    """Decode every image once into uint8 tensors; epochs then cut, augment and normalize whole batches."""
    everything = [item for items in splits for item in items]
    size, grayscale = (shape[1], shape[2]), shape[0] == 1
    images = torch.empty((len(everything), *shape), dtype=torch.uint8)
    labels = torch.tensor([label for _, label in everything], dtype=torch.long)

    def keep(index: int, pixels: torch.Tensor) -> None:
        images[index].copy_(pixels)  # 3x quicker than images[index] = pixels

    paths = [str(path) for path, _ in everything]
    read = functools.partial(_read_image, size=size, grayscale=grayscale, max_pixels=cfg.max_pixels)
    failed = for_each_file(paths, read, keep, "decoding images into memory")
    bad = [everything[i][0] for i in failed]
    warnings = _unreadable_warnings(bad, Path(cfg.root), len(everything), cfg.max_pixels)
    readable = torch.ones(len(everything), dtype=torch.bool)
    readable[failed] = False
    tensors, start = [], 0
    for items in splits:
        part = slice(start, start + len(items))  # each split is a view of `images`, not a copy...
        start += len(items)
        ok = readable[part]
        # ...unless some of its files could not be read and must be left out.
        tensors.append((images[part], labels[part]) if ok.all() else (images[part][ok], labels[part][ok]))
    train, val, test = tensors
    _check_not_empty(train[1], cfg.root)
    mean, std = normalization(cfg, shape[0]) or pixel_stats(train[0])
    augment = batch_augment(list(cfg.augment), cfg.crop_padding)  # per sample, a whole batch at a time, on device
    train_transform, eval_transform = pixel_pipeline(mean, std, device, augment)
    info = _info(class_names, shape, mean, std)
    data = in_memory_splits(
        cfg,
        train,
        test if len(test[1]) else None,
        device,
        seed,
        info=info,
        train_transform=train_transform,
        eval_transform=eval_transform,
        val=val,  # already split (an empty val means none: in_memory_splits must not split again)
    )
    data.warnings += warnings
    return data


def normalization(cfg: ImageFolderData, channels: int) -> tuple[list[float], list[float]] | None:
    """data.mean and data.std when the config (or the pretrained weights) gives them, one per channel; else None."""
    if cfg.mean is None and cfg.std is None:
        return None
    for key, values in (("mean", cfg.mean), ("std", cfg.std)):
        if values is None or len(values) != channels:
            given = "missing" if values is None else f"{len(values)} values"
            raise UserError(
                f"data.{key} needs one value per channel ({channels}: {'grey' if channels == 1 else 'RGB'}), "
                f"and it is {given}",
                fix="give data.mean and data.std together, e.g. [0.485, 0.456, 0.406] and [0.229, 0.224, 0.225], "
                "or neither (they are then measured on the training images)",
                key=f"data.{key}",
            )
    assert cfg.mean is not None and cfg.std is not None
    return list(cfg.mean), list(cfg.std)


def pixel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 N x C x H x W images, in [0, 1] units."""
    sums = squares = torch.zeros(images.shape[1], dtype=torch.float64)
    for chunk in images.split(256):  # a float copy of all the images at once would be 4x the cache
        values = chunk.float()
        sums = sums + values.sum(dim=(0, 2, 3)).double()
        squares = squares + values.square().sum(dim=(0, 2, 3)).double()
    count = images[:, 0].numel()
    mean = sums / count
    # A channel that never changes (e.g. pure red and blue squares) would divide by zero: floor at one grey level.
    std = (squares / count - mean.square()).clamp(min=0).sqrt().clamp(min=1.0)
    return (mean / 255).tolist(), (std / 255).tolist()


def _info(class_names: list[str], shape: tuple[int, int, int], mean: list[float], std: list[float]) -> dict[str, Any]:
    return {"task": "classification", "class_names": class_names, "input_shape": list(shape), "mean": mean, "std": std}


def _check_not_empty(targets: torch.Tensor | list[Any], root: str) -> None:
    if len(targets) == 0:
        raise UserError(
            f"none of the training images under '{root}' could be read", fix=_layout_fix(Path(root)), key="data.root"
        )


def _samples(loader: Any) -> int:
    return loader.num_samples if hasattr(loader, "num_samples") else len(loader.dataset)


class ImageFiles(Dataset):
    """Image files decoded, resized and transformed one at a time (in DataLoader workers): the disk path.

    The files were checked up front; should one still fail to decode (a damaged end of a jpeg passes the check),
    the next readable file stands in for it, with a warning, rather than stopping training mid-epoch.
    """

    def __init__(
        self, items: list[Item], size: tuple[int, int], grayscale: bool, transform: Callable[[torch.Tensor], Any]
    ):
        self.paths = [str(path) for path, _ in items]  # strings: cheaper to send to each worker process
        self.labels = [label for _, label in items]
        self.read = functools.partial(read_image, size=size, grayscale=grayscale)  # pickles into worker processes
        self.transform = transform
        self.failed: set[int] = set()  # per process: each worker warns once per file

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for tries in range(len(self.paths)):
            candidate = (index + tries) % len(self.paths)
            if candidate in self.failed:
                continue
            try:
                pixels = self.read(self.paths[candidate])
            except Exception as err:
                self.failed.add(candidate)
                print(
                    f"warning: could not read {self.paths[candidate]} ({type(err).__name__}); "
                    f"the next image stands in for it ({len(self.failed)} unreadable in this process)",
                    file=sys.stderr,
                )
                continue
            return self.transform(pixels), self.labels[candidate]
        raise RuntimeError("none of the images could be read")


def _from_disk(
    cfg: ImageFolderData,
    splits: tuple[list[Item], list[Item], list[Item]],
    shape: tuple[int, int, int],
    device: torch.device,
    seed: int,
    workers: int,
    class_names: list[str],
) -> DataSplits:
    """DataLoaders that decode each image every epoch in `workers` processes; unreadable files are left out first."""
    from torchvision.transforms import v2

    everything = [item for items in splits for item in items]
    paths = [str(path) for path, _ in everything]
    verify = functools.partial(verify_image, max_pixels=cfg.max_pixels)
    failed = for_each_file(paths, verify, lambda index, result: None, "checking image files")
    warnings = _unreadable_warnings([everything[i][0] for i in failed], Path(cfg.root), len(everything), cfg.max_pixels)
    bad = {everything[i][0] for i in failed}
    train, val, test = ([item for item in items if item[0] not in bad] for items in splits)
    _check_not_empty(train, cfg.root)

    size, grayscale = (shape[1], shape[2]), shape[0] == 1
    given = normalization(cfg, shape[0])
    if given is not None:
        mean, std = given
    else:
        sample = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:STATS_SAMPLE].tolist()
        decoded: list[torch.Tensor] = []
        read = functools.partial(_read_image, size=size, grayscale=grayscale, max_pixels=cfg.max_pixels)
        for_each_file(
            [str(train[i][0]) for i in sample], read, lambda _, pixels: decoded.append(pixels), "measuring pixels"
        )
        _check_not_empty(decoded, cfg.root)
        mean, std = pixel_stats(torch.stack(decoded))
    augment: list[Any] = []
    if "random_crop" in cfg.augment and cfg.crop_padding > 0:
        augment.append(v2.RandomCrop(size, padding=cfg.crop_padding))
    if "horizontal_flip" in cfg.augment:
        augment.append(v2.RandomHorizontalFlip())

    pin = device.type == "cuda"  # page-locked batches copy to the GPU faster, and alongside the compute
    world = distributed.world_size()
    # The workers decode and augment uint8 pixels; they cross to the device as uint8 and become floats there.
    train_files = ImageFiles(train, size, grayscale, v2.Compose(augment) if augment else v2.Identity())
    # Under torchrun each process reads its own share of every epoch (DistributedSampler, reshuffled by the
    # Trainer's set_epoch), and data.batch_size stays the global batch: each process takes its part of it.
    sampler = DistributedSampler(train_files, shuffle=True, seed=seed) if world > 1 else None
    train_loader = DataLoader(
        train_files,
        batch_size=max(1, cfg.batch_size // world),
        shuffle=sampler is None,
        sampler=sampler,
        # The Trainer saves this generator's state to replay an epoch's order on resume; it also seeds the workers.
        generator=torch.Generator().manual_seed(seed),
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,  # no new worker processes every epoch
    )
    normalize = Pixels(mean, std, device, augment=None)

    def eval_loader(items: list[Item], every_epoch: bool) -> DeviceBatches | None:
        if not items:
            return None
        files = ImageFiles(items, size, grayscale, v2.Identity())
        loader = DataLoader(
            files,
            batch_size=cfg.batch_size * 4,  # no gradients kept: bigger batches fit
            sampler=EveryFileOnce(len(files)) if world > 1 else None,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0 and every_epoch,
        )
        return DeviceBatches(loader, normalize, device)

    return DataSplits(
        DeviceBatches(train_loader, normalize, device),
        eval_loader(val, every_epoch=True),
        eval_loader(test, every_epoch=False),
        shape,
        len(class_names),
        description="",
        info=_info(class_names, shape, mean, std),
        warnings=warnings,
    )
