"""How much slower and bigger is `trainer.Trainer` than the PyTorch loop a careful person writes by hand?

Both loops train the same model (a fresh one from the same seed each run) on the same in-memory tensors with
AdamW (lr 1e-3), batch size 128 and no scheduler. Each epoch both do the same work: a shuffled pass over the
training tensors (forward, cross entropy, zero_grad, backward, step), then a pass over the validation tensors
under torch.no_grad for loss and accuracy. The Trainer runs with `out_dir` set to a temporary folder, so its
tqdm bar, TensorBoard events, metrics.jsonl, summary.json and checkpoints are all inside the timing.

For an MLP (hidden [512, 256]) and the CNN (channels [32, 64], fc 128) it prints:
- seconds per epoch, the median over --repeats runs, hand loop and Trainer alternating (a/b/a/b) in this
  process so that both see the same machine load, and the ratio trainer/hand (goal: <= 1.05): the median of
  the ratios of neighbouring runs, and the ratio of the fastest runs;
- the peak RSS of one fresh child process per variant, and the difference (goal: within 100 MB).

Run it from the repository root:

    python bench/overhead.py --quick                         # smoke run: tiny synthetic data, seconds
    python bench/overhead.py                                 # synthetic MNIST-shaped data, 20,000 / 2,000
    python bench/overhead.py --root PATH/TO/DATA --repeats 3 # real MNIST from PATH/TO/DATA/MNIST/raw

Without --root the data are random tensors shaped like MNIST (1x28x28, 10 classes): the work per batch is
the same as with the real digits, only the accuracies mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainer.components.data import build_data
from trainer.components.models import build_model
from trainer.components.splits import InMemoryLoader
from trainer.config import CNNModel, MLPModel, VisionData
from trainer.loop import Options

BATCH_SIZE = 128
VAL_BATCH_SIZE = BATCH_SIZE * 4  # what build_data gives the validation loader
LR = 1e-3
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
GOAL_RATIO = 1.05
GOAL_MEMORY_MB = 100.0
NOISY_SPREAD = 1.10  # slowest / fastest run of one variant above which the timing is not trusted
MODELS: dict[str, MLPModel | CNNModel] = {
    "mlp": MLPModel(name="mlp", hidden=[512, 256]),
    "cnn": CNNModel(name="cnn", channels=[32, 64], fc=128),
}
VARIANTS = ("hand", "trainer")
TRAINER_PICTURES = {"on": True}  # --no-pictures: measure the Trainer without TensorBoard pictures


@dataclass
class Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    description: str

    def to(self, device: torch.device) -> Data:
        return Data(*(t.to(device) for t in self.tensors()), self.description)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.train_x, self.train_y, self.val_x, self.val_y

    def head(self, train: int, val: int) -> Data:
        return Data(self.train_x[:train], self.train_y[:train], self.val_x[:val], self.val_y[:val], self.description)


def load_data(root: str | None, train: int | None, val: int | None, seed: int) -> Data:
    """Synthetic tensors (`train` / `val` samples), or MNIST from `root` (all of it unless sizes are given)."""
    if root is None:
        assert train is not None and val is not None
        generator = torch.Generator().manual_seed(seed)
        return Data(
            torch.randn(train, *INPUT_SHAPE, generator=generator),
            torch.randint(NUM_CLASSES, (train,), generator=generator),
            torch.randn(val, *INPUT_SHAPE, generator=generator),
            torch.randint(NUM_CLASSES, (val,), generator=generator),
            f"synthetic MNIST-shaped tensors: {train} train / {val} val",
        )
    cfg = VisionData(dataset="mnist", root=root, download=False, batch_size=BATCH_SIZE)
    splits = build_data(cfg, torch.device("cpu"), seed)
    assert splits.val is not None
    data = Data(splits.train.inputs, splits.train.targets, splits.val.inputs, splits.val.targets, "")
    if train is not None and val is not None:  # --quick: the first few samples of each split
        data = data.head(train, val)
    data.description = f"mnist from {root}: {len(data.train_y)} train / {len(data.val_y)} val"
    return data


def fresh_model(name: str, seed: int, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    # Seeding right before building gives both variants the same initial weights and the same dropout masks.
    torch.manual_seed(seed)
    model = build_model(MODELS[name], INPUT_SHAPE, NUM_CLASSES).to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=LR)


def hand_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Data, epochs: int, seed: int
) -> dict[str, float]:
    """The loop written by hand; shuffles with the same seeded generator as InMemoryLoader, so same batches."""
    generator = torch.Generator().manual_seed(seed)
    n, n_val = len(data.train_y), len(data.val_y)
    metrics: dict[str, float] = {}
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(data.train_y.device)
        for start in range(0, n, BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            inputs, targets = data.train_x[index], data.train_y[index]
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        model.eval()
        with torch.no_grad():
            loss_sum = torch.zeros((), device=data.val_y.device)
            correct = torch.zeros((), dtype=torch.long, device=data.val_y.device)
            for start in range(0, n_val, VAL_BATCH_SIZE):
                inputs = data.val_x[start : start + VAL_BATCH_SIZE]
                targets = data.val_y[start : start + VAL_BATCH_SIZE]
                logits = model(inputs)
                loss_sum += F.cross_entropy(logits, targets, reduction="sum")
                correct += (logits.argmax(dim=1) == targets).sum()
        metrics = {"val/loss": loss_sum.item() / n_val, "val/accuracy": correct.item() / n_val}
    return metrics


def trainer_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Data, epochs: int, seed: int, out_dir: Path
) -> dict[str, float]:
    # Imported here so that the hand loop's child process never loads the Trainer's modules: their memory
    # (tqdm, TensorBoard, torchvision for summary.json) belongs to the Trainer's side of the comparison.
    from trainer.loop import Trainer

    train = InMemoryLoader(data.train_x, data.train_y, BATCH_SIZE, shuffle=True, seed=seed)
    val = InMemoryLoader(data.val_x, data.val_y, VAL_BATCH_SIZE, shuffle=False)
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        epochs=epochs,
        device=data.train_y.device,
        out_dir=out_dir,
        options=Options(pictures=TRAINER_PICTURES["on"]),
    )
    return trainer.fit(train, val)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send tqdm's bar (stderr) and the Trainer's epoch lines (stdout) to /dev/null, for both variants alike."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull), contextlib.redirect_stdout(devnull):
        yield


def run_once(variant: str, model_name: str, data: Data, epochs: int, seed: int) -> tuple[float, dict[str, float]]:
    """One run on a fresh model: (seconds per epoch, final val metrics). Only the training itself is timed."""
    model, optimizer = fresh_model(model_name, seed, data.train_y.device)
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp, quiet():
        gc.collect()  # so that neither variant pays for the other's garbage
        started = time.perf_counter()
        if variant == "hand":
            metrics = hand_loop(model, optimizer, data, epochs, seed)
        else:
            metrics = trainer_loop(model, optimizer, data, epochs, seed, Path(tmp))
        seconds = time.perf_counter() - started
    return seconds / epochs, metrics


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB."""
    # On Linux ru_maxrss survives exec: a child started from this big process would report at least the
    # parent's size, whatever it does itself. VmHWM belongs to the child's own address space.
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    import resource  # Unix only; measure_memory skips the check where it is missing

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def child_main(args: argparse.Namespace) -> None:
    """Runs one variant once in this fresh process and prints its peak RSS as one JSON line."""
    # torch.load puts the tensors straight into their final memory; reading MNIST again with build_data
    # would set the peak during decoding and could hide the variant's own memory.
    tensors = torch.load(args.child_data, weights_only=True)
    data = Data(*tensors, "").to(torch.device(args.device))
    _, metrics = run_once(args.child, args.model, data, args.epochs, args.seed)
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "metrics": metrics}))


def measure_memory(variant: str, model_name: str, data_file: Path, args: argparse.Namespace) -> float | None:
    if sys.platform == "win32":
        return None
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--child", variant, "--child-data", str(data_file), "--model", model_name),
        *("--epochs", str(args.epochs), "--seed", str(args.seed), "--device", args.device),
        *(["--no-pictures"] if args.no_pictures else []),
    ]
    return peak_rss_of_child(command, f"the {variant} memory run")


def peak_rss_of_child(command: list[str], what: str) -> float:
    """Run a bench's --child command and read the peak RSS it prints as JSON on its last line."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def timed_rounds(
    variants: Iterable[str],
    run: Callable[[str, str, Data, int, int], tuple[float, dict[str, float]]],
    model_name: str,
    data: Data,
    args: argparse.Namespace,
    after_round: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Seconds per epoch of each timed run of each variant, and each variant's last metrics.

    The first run in a process pays for lazy imports (TensorBoard, torchvision) and allocator warm-up: a few
    untimed batches of each variant keep that out. Then the variants take turns for --repeats rounds, so that
    drift in machine speed hits them alike. `run(variant, model, data, epochs, seed)` trains one of them.
    """
    warm = data.head(BATCH_SIZE * 4, VAL_BATCH_SIZE)
    for variant in variants:
        run(variant, model_name, warm, 1, args.seed)
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    results: dict[str, dict[str, float]] = {}
    for round_ in range(1, args.repeats + 1):
        for variant in variants:
            per_epoch, results[variant] = run(variant, model_name, data, args.epochs, args.seed)
            seconds[variant].append(per_epoch)
        if after_round is not None:
            after_round(round_)
    return seconds, results


def print_noise_note(seconds: dict[str, list[float]], what: str) -> None:
    """Identical runs should take the same time; a wide spread means something else was using the CPU, and then
    a 5% verdict says nothing."""
    spread = max(max(values) / min(values) for values in seconds.values())
    if spread > NOISY_SPREAD:
        print(f"  note: runs of one {what} differ by up to {spread - 1:.0%}: the machine's speed varied, so trust the")
        print("        ratio less; more --repeats (or a quieter machine) help")


def bench_model(model_name: str, data: Data, data_file: Path, args: argparse.Namespace) -> bool:
    model, _ = fresh_model(model_name, args.seed, data.train_y.device)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"\n{model_name}: {MODELS[model_name].model_dump(exclude={'name'})}, {parameters:,} parameters")

    seconds, results = timed_rounds(VARIANTS, run_once, model_name, data, args)
    median = {variant: statistics.median(values) for variant, values in seconds.items()}
    for variant in VARIANTS:
        runs = ", ".join(f"{s:.3f}" for s in seconds[variant])
        print(f"  {variant + ' loop' if variant == 'hand' else variant:<10} {median[variant]:8.3f} s/epoch  [{runs}]")
    # Each Trainer run is compared with the hand-loop run just before it, so that a slow minute on a shared
    # machine hits both sides of a pair; the median of those ratios is the verdict. The ratio of the fastest
    # runs is shown beside it: interference from other processes only ever adds time.
    pairs = [ours / hand for hand, ours in zip(seconds["hand"], seconds["trainer"], strict=True)]
    ratio = statistics.median(pairs)
    fastest = min(seconds["trainer"]) / min(seconds["hand"])
    time_ok = ratio <= GOAL_RATIO
    print(
        f"  ratio trainer/hand {ratio:.3f} (median of pairs; fastest runs {fastest:.3f})  "
        f"(goal <= {GOAL_RATIO:.2f})  {verdict(time_ok)}"
    )
    print_noise_note(seconds, "variant")

    # Same seed, same batches, same arithmetic: both must end with the same model. Accuracy must match
    # exactly; the loss may differ in the last digits (a sum over the split versus batch means times n).
    hand, ours = results["hand"], results["trainer"]
    same = hand["val/accuracy"] == ours["val/accuracy"] and abs(hand["val/loss"] - ours["val/loss"]) < 1e-4
    print(
        f"  same result: {'yes' if same else 'NO'}  (val/loss {hand['val/loss']:.5f} vs {ours['val/loss']:.5f}, "
        f"val/accuracy {hand['val/accuracy']:.4f} vs {ours['val/accuracy']:.4f})"
    )

    memory = {variant: measure_memory(variant, model_name, data_file, args) for variant in VARIANTS}
    if memory["hand"] is None or memory["trainer"] is None:
        print("  peak RSS: not measured (no resource module on this platform)")
        return time_ok
    extra = memory["trainer"] - memory["hand"]
    memory_ok = extra <= GOAL_MEMORY_MB
    print(
        f"  peak RSS  hand loop {memory['hand']:.1f} MB  trainer {memory['trainer']:.1f} MB  "
        f"difference {extra:+.1f} MB  (goal <= {GOAL_MEMORY_MB:.0f} MB)  {verdict(memory_ok)}"
    )
    return time_ok and memory_ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="folder holding MNIST/raw; without it, synthetic MNIST-shaped tensors")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (the median is shown)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (per-run costs spread as in a real run)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="models to measure")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,024 train / 256 val samples, 1 repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pictures", action="store_true", help="Trainer without TensorBoard pictures")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (both variants use it)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    return args


def main() -> None:
    args = parse_args()
    TRAINER_PICTURES["on"] = not args.no_pictures
    if args.child:
        child_main(args)
        return
    sizes = (1024, 256) if args.quick else (20_000, 2_000) if args.root is None else (None, None)
    data = load_data(args.root, *sizes, args.seed)
    device = torch.device(args.device)
    print(
        f"{data.description}; batch {BATCH_SIZE} (val {VAL_BATCH_SIZE}); AdamW lr {LR}; device {device}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{args.epochs} epoch(s) per run, median of {args.repeats} run(s) per variant, hand/trainer alternating")
    if args.quick:  # 8 batches: the Trainer's fixed cost per run (checkpoint, event files) dominates
        print("--quick is a smoke run: too few batches for the ratio and its verdict to mean anything")
    with tempfile.TemporaryDirectory(prefix="overhead-data-") as tmp:
        data_file = Path(tmp) / "data.pt"
        torch.save(data.tensors(), data_file)  # the memory children read exactly these tensors
        data = data.to(device)
        all_ok = [bench_model(name, data, data_file, args) for name in args.models]
    print(f"\noverall: {verdict(all(all_ok))}")


if __name__ == "__main__":
    main()
