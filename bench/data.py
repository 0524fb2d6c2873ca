"""How fast does leaptrain feed data, against the DataLoader way of the pytorch/examples scripts?

For MNIST and CIFAR-10 it prints the samples per second of one training epoch of batches (no model):
- leaptrain: the data set in memory as tensors, batches cut by index; CIFAR kept as uint8 and augmented
  (random crop with 4 pixels of padding, horizontal flip) and normalized a whole batch at a time;
- torchvision: the data set class with per-sample transforms (ToTensor, Normalize; for CIFAR RandomCrop and
  RandomHorizontalFlip first) through a DataLoader with 0 and with 2 worker processes, as pytorch/examples does;
then the ratio (goal: >= 5x on MNIST against the faster DataLoader), the memory the in-memory data set takes
against its tensors' size, and how long one training step of the shipped CNN takes per batch against how long
our feeding takes: the model, not the data, should be what the time goes to.

    python bench/data.py --mnist-root PATH/TO/DATA        # real MNIST from PATH/TO/DATA/MNIST/raw
    python bench/data.py                                  # random data of the real sizes (60,000 / 50,000)
    python bench/data.py --quick                          # smoke run on small random data

Without a real CIFAR-10 folder (--cifar-root) random images of CIFAR's size are written in CIFAR's own pickle
layout to a temporary folder: the work per image is the same, only the pictures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import pickle
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from trainer.components.data import build_data
from trainer.components.models import build_model
from trainer.config import CifarData, CNNModel, ResNetModel, VisionData

BATCH_SIZE = 128
GOAL_RATIO = 5.0


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; 0 elsewhere)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    line = next(line for line in status.read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 2**10


def samples_per_second(loader: Iterable[Any], limit: int | None = None) -> float:
    """Samples per second of one pass over `loader` (the first `limit` batches when given)."""
    started, samples = time.perf_counter(), 0
    for batch, (inputs, _) in enumerate(loader):
        samples += len(inputs)
        if limit is not None and batch + 1 >= limit:
            break
    return samples / (time.perf_counter() - started)


def write_idx(path: Path, tensor: torch.Tensor) -> None:
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    path.write_bytes(header + tensor.to(torch.uint8).numpy().tobytes())


def random_mnist(root: Path, train: int, test: int) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.randint(0, 10, (n,)))


@contextlib.contextmanager
def random_cifar(train: int, test: int) -> Iterator[Path]:
    """Random images in CIFAR-10's pickle layout, with torchvision told their checksums for the duration."""
    from torchvision import datasets

    cls = datasets.CIFAR10
    saved = cls.train_list, cls.test_list, cls.meta
    with tempfile.TemporaryDirectory(prefix="bench-cifar-") as tmp:
        folder = Path(tmp) / cls.base_folder
        folder.mkdir()
        sizes = [train // 5] * 5 + [test]
        for (name, _), n in zip(cls.train_list + cls.test_list, sizes, strict=True):
            entry = {"data": torch.randint(0, 256, (n, 3072), dtype=torch.uint8).numpy(), "labels": [0] * n}
            (folder / name).write_bytes(pickle.dumps(entry))
        (folder / cls.meta["filename"]).write_bytes(pickle.dumps({"label_names": [str(c) for c in range(10)]}))
        md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
        cls.train_list = [[name, md5[name]] for name, _ in saved[0]]
        cls.test_list = [[name, md5[name]] for name, _ in saved[1]]
        cls.meta = {**saved[2], "md5": md5[cls.meta["filename"]]}
        try:
            yield Path(tmp)
        finally:
            cls.train_list, cls.test_list, cls.meta = saved


def torchvision_loader(name: str, root: Path, workers: int) -> Any:
    """The pytorch/examples way: a torchvision data set with per-sample transforms in a shuffling DataLoader."""
    from torchvision import datasets, transforms

    if name == "mnist":
        steps = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        dataset = datasets.MNIST(str(root), train=True, transform=transforms.Compose(steps))
    else:
        steps = [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ]
        dataset = datasets.CIFAR10(str(root), train=True, transform=transforms.Compose(steps))
    return torch.utils.data.DataLoader(
        dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers, persistent_workers=False
    )


def step_seconds(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, repeats: int = 5) -> float:
    """Seconds of one training step (forward, loss, backward, SGD step) on one batch: the median of `repeats`."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[repeats // 2]


def bench(name: str, cfg: VisionData | CifarData, model_cfg: Any, root: Path, limit: int | None) -> bool:
    print(f"\n{name}  (batch size {BATCH_SIZE})")
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    data = build_data(cfg, torch.device("cpu"), 0)
    load_seconds = time.perf_counter() - started
    held = sum(
        split.inputs.nbytes + split.targets.nbytes for split in (data.train, data.val, data.test) if split is not None
    )
    grown = rss_mb() - before
    print(f"  load into memory   {load_seconds:6.2f} s  ({data.description})")
    print(f"  memory             {grown:6.0f} MB resident for {held / 2**20:.0f} MB of tensors")

    ours = [samples_per_second(data.train, limit) for _ in range(3)]  # the first pass warms the allocator up
    after_epochs = rss_mb() - before
    print(
        f"  leaptrain          {max(ours):9,.0f} samples/s   (memory after 3 epochs: {after_epochs:.0f} MB, no copies)"
    )
    theirs = {}
    for workers in (0, 2):
        theirs[workers] = samples_per_second(torchvision_loader(name, root, workers), limit)
        print(f"  DataLoader, {workers} workers {theirs[workers]:9,.0f} samples/s")
    ratio = max(ours) / max(theirs.values())
    ok = ratio >= GOAL_RATIO if name == "mnist" else True
    goal = f"(goal >= {GOAL_RATIO:.0f}x)  {'PASS' if ok else 'MISS'}" if name == "mnist" else ""
    print(f"  ratio              {ratio:6.1f}x against the faster DataLoader {goal}")

    inputs, targets = next(iter(data.train))
    model = build_model(model_cfg, data.input_shape, data.num_classes)
    step = step_seconds(model, inputs, targets)
    feed = BATCH_SIZE / max(ours)
    share = feed / (feed + step)
    print(
        f"  per batch          model step {1000 * step:.1f} ms, feeding {1000 * feed:.2f} ms: "
        f"the data takes {share:.1%} of a training step"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-root", help="folder holding MNIST/raw (default: random data of MNIST's size)")
    parser.add_argument("--cifar-root", help="folder holding cifar-10-batches-py (default: random data)")
    parser.add_argument("--quick", action="store_true", help="small random data and 20 batches per pass")
    args = parser.parse_args()
    torch.manual_seed(0)
    import torchvision.datasets  # noqa: F401  imported before any memory is measured: its size is not the data's

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one epoch of training batches per pass")
    limit = 20 if args.quick else None
    sizes = (4_000, 1_000) if args.quick else (60_000, 10_000)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-mnist-") as tmp:
        root = Path(args.mnist_root) if args.mnist_root else Path(tmp)
        if not args.mnist_root:
            random_mnist(root, *sizes)
        cfg = VisionData(dataset="mnist", root=str(root), download=False, batch_size=BATCH_SIZE)
        ok &= bench("mnist", cfg, CNNModel(name="cnn"), root, limit)
    with contextlib.ExitStack() as stack:
        sizes = (5_000, 1_000) if args.quick else (50_000, 10_000)
        root = Path(args.cifar_root) if args.cifar_root else stack.enter_context(random_cifar(*sizes))
        cfg = CifarData(dataset="cifar10", root=str(root), download=False, batch_size=BATCH_SIZE)
        model = ResNetModel(name="resnet", stem=16, channels=[32, 64, 128])  # configs/cifar10.yaml's model
        ok &= bench("cifar10", cfg, model, root, limit)
    print(f"\noverall: {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
