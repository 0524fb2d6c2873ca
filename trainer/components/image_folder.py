"""Your own images, one folder per class: decoded once and kept in memory when they fit, else read by workers.

Kept in memory, an epoch is a few tensor copies (augmented a whole batch at a time, as for CIFAR); read from disk,
each image is decoded, resized and augmented again every epoch in DataLoader worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from trainer import distributed
from trainer.components.augment import batch_augment, pixel_pipeline
from trainer.components.data import DataSplits, in_memory_splits, size_text
from trainer.config import ImageFolderData
from trainer.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
STATS_SAMPLE = 500  # images decoded to measure the mean and std when they are read from disk
NAMES_SHOWN = 5  # unreadable files named in the warning; the rest are counted
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


def build_image_folder(cfg: ImageFolderData, device: torch.device, seed: int) -> DataSplits:
    """Train / val / test loaders over the images under cfg.root, cached in memory when they fit."""
    root = Path(cfg.root)
    layout = find_images(root)
    height, width = (cfg.image_size, cfg.image_size) if isinstance(cfg.image_size, int) else cfg.image_size
    shape = (1 if cfg.grayscale else 3, height, width)
    train, val = (layout.train, layout.val) if layout.val is not None else split(layout.train, cfg.val_split, seed)
    test = layout.test or []
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
    return data


def find_images(root: Path) -> Layout:
    """root/<class>/*.jpg|png|..., or root/train/<class>/ with root/val/<class>/ and root/test/<class>/."""
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise UserError(f"image folder '{root}' {what}", fix=_layout_fix(root), key="data.root")
    if (root / "train").is_dir() and _class_folders(root / "train"):
        class_names = _class_names(root / "train")
        splits: dict[str, list[Item] | None] = {"val": None, "test": None}
        for name in splits:
            folder = root / name
            if folder.is_dir():
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
    class_names = _class_names(root)
    return Layout(class_names, _items(root, class_names), None, None)


def _class_names(folder: Path) -> list[str]:
    names = _class_folders(folder)
    if not names:
        loose = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found = f" (it holds {loose} images, but not in class folders)" if loose else ""
        raise UserError(f"no class folders in '{folder}'{found}", fix=_layout_fix(folder), key="data.root")
    if len(names) == 1:
        raise UserError(
            f"'{folder}' holds one class folder ({names[0]}): a classifier needs at least two classes",
            fix=_layout_fix(folder),
            key="data.root",
        )
    return names


def _class_folders(folder: Path) -> list[str]:
    # Hidden folders are tools' own (.ipynb_checkpoints, .git), never classes.
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _items(folder: Path, class_names: list[str]) -> list[Item]:
    items = []
    for label, name in enumerate(class_names):
        files = sorted(
            p
            for p in (folder / name).rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not files:
            raise UserError(
                f"class folder '{folder / name}' holds no images ({', '.join(IMAGE_SUFFIXES)})",
                fix=f"put the {name} images in it, or remove the folder. {_layout_fix(folder)}",
                key="data.root",
            )
        items += [(path, label) for path in files]
    return items


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


def read_image(path: str | Path, size: tuple[int, int], grayscale: bool) -> torch.Tensor:
    """One image file as uint8 C x H x W, resized to `size` (height, width); raises when it cannot be read."""
    with quiet_torchvision_decoders():
        return _read_image(path, size, grayscale)


def _read_image(path: str | Path, size: tuple[int, int], grayscale: bool) -> torch.Tensor:
    """read_image for threads, which silence torchvision around the whole pass (see quiet_torchvision_decoders)."""
    from torchvision.transforms.v2 import functional as F

    try:
        pixels = _decode_torchvision(Path(path), grayscale)
    except Exception:  # a format torchvision does not read (bmp, CMYK jpeg, ...), or a torchvision without decoders
        pixels = _decode_pil(Path(path), grayscale)
    if pixels.dim() == 4:  # an animated gif: its first frame
        pixels = pixels[0]
    if pixels.dtype != torch.uint8:  # a 16-bit png
        pixels = F.to_dtype(pixels, torch.uint8, scale=True)
    if tuple(pixels.shape[-2:]) != size:
        pixels = F.resize(pixels, list(size), antialias=True)  # antialias: what PIL (and predict) do too
    return pixels.contiguous()


def _decode_torchvision(path: Path, grayscale: bool) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    mode = ImageReadMode.GRAY if grayscale else ImageReadMode.RGB
    # Phone photos are often stored sideways with an EXIF note saying which way is up.
    return decode_image(data, mode=mode, apply_exif_orientation=True)


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


def verify_image(path: str | Path) -> None:
    """Raises unless the file looks like a whole image: header read, png checksums checked, nothing decoded."""
    from PIL import Image

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
        tqdm(total=len(paths), desc=what, unit="image", leave=False, dynamic_ncols=True) as bar,
    ):
        for index, (result, ok) in enumerate(pool.map(attempt, paths)):
            if ok:
                keep(index, result)
            else:
                failed.append(index)
            bar.update()
    return failed


def _warn_unreadable(paths: list[Path], root: Path, total: int) -> None:
    if not paths:
        return
    names = ", ".join(str(_relative(p, root)) for p in paths[:NAMES_SHOWN])
    more = f" and {len(paths) - NAMES_SHOWN} more" if len(paths) > NAMES_SHOWN else ""
    print(
        f"warning: skipped {len(paths)} of {total:,} image files that could not be read: {names}{more}",
        file=sys.stderr,
    )


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
    read = functools.partial(_read_image, size=size, grayscale=grayscale)
    failed = for_each_file(paths, read, keep, "decoding images into memory")
    _warn_unreadable([everything[i][0] for i in failed], Path(cfg.root), len(everything))
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
    mean, std = pixel_stats(train[0])
    augment = batch_augment(list(cfg.augment), cfg.crop_padding)  # per sample, a whole batch at a time, on device
    train_transform, eval_transform = pixel_pipeline(mean, std, device, augment)
    info = _info(class_names, shape, mean, std)
    return in_memory_splits(
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
    failed = for_each_file(paths, verify_image, lambda index, result: None, "checking image files")
    _warn_unreadable([everything[i][0] for i in failed], Path(cfg.root), len(everything))
    bad = {everything[i][0] for i in failed}
    train, val, test = ([item for item in items if item[0] not in bad] for items in splits)
    _check_not_empty(train, cfg.root)

    size, grayscale = (shape[1], shape[2]), shape[0] == 1
    sample = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:STATS_SAMPLE].tolist()
    decoded: list[torch.Tensor] = []
    read = functools.partial(_read_image, size=size, grayscale=grayscale)
    for_each_file(
        [str(train[i][0]) for i in sample], read, lambda _, pixels: decoded.append(pixels), "measuring pixels"
    )
    _check_not_empty(decoded, cfg.root)
    mean, std = pixel_stats(torch.stack(decoded))
    normalize = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    augment = []
    if "random_crop" in cfg.augment and cfg.crop_padding > 0:
        augment.append(v2.RandomCrop(size, padding=cfg.crop_padding))
    if "horizontal_flip" in cfg.augment:
        augment.append(v2.RandomHorizontalFlip())

    pin = device.type == "cuda"  # page-locked batches copy to the GPU faster, and alongside the compute
    world = distributed.world_size()
    train_files = ImageFiles(train, size, grayscale, v2.Compose(augment + normalize))
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

    def eval_loader(items: list[Item], every_epoch: bool) -> DataLoader | None:
        if not items:
            return None
        files = ImageFiles(items, size, grayscale, v2.Compose(normalize))
        return DataLoader(
            files,
            batch_size=cfg.batch_size * 4,  # no gradients kept: bigger batches fit
            sampler=DistributedSampler(files, shuffle=False) if world > 1 else None,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0 and every_epoch,
        )

    return DataSplits(
        train_loader,
        eval_loader(val, every_epoch=True),
        eval_loader(test, every_epoch=False),
        shape,
        len(class_names),
        description="",
        info=_info(class_names, shape, mean, std),
    )
