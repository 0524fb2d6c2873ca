"""How much slower per step is `trainer.Trainer` than the PyTorch loop a careful person writes by hand, on a GPU?

For three models (the MNIST MLP and CNN of bench/overhead.py, and the residual net configs/cifar10.yaml trains on
CIFAR-10, with its batch size and channels_last), at fp32 and bf16 (autocast), eager and under torch.compile, it
runs three loops on the same synthetic data and the same fresh model (AdamW, lr 1e-3): the hand loop, the Trainer
with TensorBoard pictures (the default) and the Trainer without them. Both Trainers write a run folder in a
temporary directory (events, checkpoint, summary.json), without a progress bar.

The data are random tensors shaped like MNIST (1x28x28) or CIFAR (3x32x32) with random labels, made from a fixed
seed on the device and kept there: exactly one epoch of full batches, cut by index by InMemoryLoader, so that no
data set is needed and the data cost nothing but a gather per batch.

How a step is timed: each loop reads its batches through the same wrapper, which puts a mark on the device's clock
as it hands out each batch (a torch.cuda.Event on CUDA, time.perf_counter on the CPU). The time between two marks
is one step of whichever loop reads them: forward, loss, backward, optimizer step and what the loop does around
them, measured the same way for both loops and without a callback inside the Trainer's step. On CUDA the events
sit in the stream, so a loop bound by kernel launches and one bound by the GPU are both timed as they run. The
first `log_every` steps are a warm-up (compilation, cuDNN, allocator); the median of the next --steps steps is the
figure (their mean, log steps included, is kept in the JSON file). On MPS, which has no event timer here, the
device is synchronized at both ends of the timed steps and the figure is their mean. With --repeats the loops
alternate (hand, Trainer, Trainer without pictures, hand, ...); the ratio is the median over the repeats of each
Trainer run against the hand run just before it, and the table shows each loop's median run.

Also measured, per loop:
- host-device syncs per step (CUDA only): torch.cuda.set_sync_debug_mode("warn") during a window of steps with
  no log step in it, after the timed steps, counting the warnings it emits (checked first on a known sync);
- the validation pass: the hand loop's, and for the Trainer the pause from the end of the last training step to
  the callbacks' on_epoch_end: the val pass, the pictures when on, the epoch's log line and TensorBoard scalars;
  each loop evaluates once before training, so that compiling the evaluation graph is not inside the figure;
- peak memory: torch.cuda.max_memory_allocated on CUDA (the data included, the same for every loop); on the CPU
  the peak RSS of a fresh child process per loop, as bench/overhead.py measures it.

Goals: ratio trainer/hand <= 1.05 per model, precision and compile mode; 0 syncs per step outside log steps.

    python bench/gpu.py                               # CUDA when there is one: all models, eager and compiled
    python bench/gpu.py --device cpu --quick          # smoke run in well under a minute
    python bench/gpu.py --models resnet --compile on --steps 300 --out resnet.json
    python bench/gpu.py --device cpu --models mlp cnn --repeats 3    # a busy CPU: alternate and take medians
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from overhead import (
    BATCH_SIZE,
    GOAL_RATIO,
    INPUT_SHAPE,
    LR,
    MODELS,
    NUM_CLASSES,
    peak_rss_mb,
    peak_rss_of_child,
    quiet,
    verdict,
)
from torch import nn

from trainer.components.models import build_model
from trainer.components.splits import InMemoryLoader
from trainer.config import CNNModel, MLPModel, ResNetModel
from trainer.loop import Options

CIFAR_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cifar10.yaml"
CIFAR_SHAPE = (3, 32, 32)
PRECISIONS = ("fp32", "bf16")
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16}
VARIANTS = ("hand", "trainer", "trainer_no_pictures")
LOG_EVERY = 50  # the Trainer's default, and what the shipped configs use
VAL_BATCHES = 8  # validation batches of 4 x the training batch, as build_data makes them
QUICK_BATCH = {"mnist": 32, "cifar": 16}
SYNC_WARNING = "synchronizing CUDA operation"  # what set_sync_debug_mode("warn") says for each sync


@dataclass(frozen=True)
class Spec:
    """One model and the data it trains on."""

    config: MLPModel | CNNModel | ResNetModel
    input_shape: tuple[int, int, int]
    batch_size: int
    channels_last: bool
    source: str


def model_specs(quick: bool) -> dict[str, Spec]:
    # The CIFAR net is read from the shipped config, so that this measures what `python -m trainer
    # configs/cifar10.yaml` trains: the same model, batch size and memory format.
    cifar = yaml.safe_load(CIFAR_CONFIG.read_text())
    mnist_batch = QUICK_BATCH["mnist"] if quick else BATCH_SIZE
    cifar_batch = QUICK_BATCH["cifar"] if quick else cifar["data"]["batch_size"]
    return {
        "mlp": Spec(MODELS["mlp"], INPUT_SHAPE, mnist_batch, False, "bench/overhead.py"),
        "cnn": Spec(MODELS["cnn"], INPUT_SHAPE, mnist_batch, False, "bench/overhead.py"),
        "resnet": Spec(
            ResNetModel(**cifar["model"]),
            CIFAR_SHAPE,
            cifar_batch,
            bool(cifar["train"].get("channels_last", False)),
            "configs/cifar10.yaml",
        ),
    }


@dataclass(frozen=True)
class Plan:
    """The steps of one run: warm-up, timed steps, then a window with no log step in it where syncs are counted.

    Marks are numbered from 0: mark i is put just before batch i is handed out, mark `total` when the epoch ends,
    so step s (from 1) lies between marks s-1 and s and logs when s % log_every == 0.
    """

    steps: int
    log_every: int
    val_batches: int
    count_syncs: bool  # CUDA, where the sync counter was seen to work

    @property
    def warmup(self) -> int:
        return self.log_every

    @property
    def window_start(self) -> int:
        """The first log step at or after the timed steps: the window starts right after it."""
        end = self.warmup + self.steps
        return -(-end // self.log_every) * self.log_every

    @property
    def total(self) -> int:
        return self.window_start + self.log_every - 1  # the window ends before the next log step

    @property
    def window_steps(self) -> int:
        return self.total - self.window_start


def make_plan(steps: int, quick: bool, count_syncs: bool) -> Plan:
    # Few steps need a shorter log interval, so that warm-up, timing and sync window all fit.
    log_every = max(2, min(LOG_EVERY, steps // 2))
    return Plan(steps, log_every, 2 if quick else VAL_BATCHES, count_syncs)


@dataclass
class Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def make_data(spec: Spec, plan: Plan, device: torch.device, seed: int) -> Data:
    """Random inputs and labels for one epoch of `plan.total` full batches, made on the device from `seed`."""
    generator = torch.Generator(device=device).manual_seed(seed)
    n_train, n_val = plan.total * spec.batch_size, plan.val_batches * spec.batch_size * 4

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.randn(n, *spec.input_shape, generator=generator, device=device)
        return inputs, torch.randint(NUM_CLASSES, (n,), generator=generator, device=device)

    return Data(*split(n_train), *split(n_val))


class StepClock:
    """Marks on the device's clock; the steps are the gaps between neighbouring marks."""

    def __init__(self, device: torch.device, marks: int):
        self.device = device
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(marks)] if device.type == "cuda" else []
        self.times = [0.0] * marks

    def mark(self, index: int) -> None:
        if self.events:
            self.events[index].record()
        else:
            self.times[index] = time.perf_counter()

    def step_ms(self) -> list[float]:
        if self.events:
            torch.cuda.synchronize(self.device)
            return [start.elapsed_time(end) for start, end in itertools.pairwise(self.events)]
        return [(end - start) * 1e3 for start, end in itertools.pairwise(self.times)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class TimedLoader:
    """An InMemoryLoader whose batches are marked on the device's clock as they are handed out, with the CUDA sync
    counter switched on for the plan's window. The hand loop and the Trainer read their batches through it alike.

    Every `__iter__` starts a new clock: the Trainer's preflight takes one batch before training, and only the
    pass that trains is timed. `generator` is the loader's, so that the preflight leaves the shuffling as it was.
    """

    def __init__(self, loader: InMemoryLoader, device: torch.device, plan: Plan):
        self.loader, self.device, self.plan = loader, device, plan
        self.generator = loader.generator
        self.clock = StepClock(device, plan.total + 1)
        self.finished_at = 0.0  # perf_counter when the last step was done, the device drained
        self.mps_window: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.clock, self.mps_window = StepClock(self.device, self.plan.total + 1), []
        try:
            for index, batch in enumerate(self.loader):
                self.at_mark(index)
                yield batch
            self.at_mark(len(self.loader))
        finally:
            self.count_syncs(False)  # also when the run fails: the debug mode would stay on for the next one

    def at_mark(self, index: int) -> None:
        plan = self.plan
        if index == plan.window_start:
            self.count_syncs(True)
        if index == plan.total:
            self.count_syncs(False)  # before the marks below: synchronizing is itself a sync
        self.clock.mark(index)
        if self.device.type == "mps" and index in (plan.warmup, plan.warmup + plan.steps):
            synchronize(self.device)
            self.mps_window.append(time.perf_counter())
        if index == plan.total:
            synchronize(self.device)
            self.finished_at = time.perf_counter()

    def count_syncs(self, on: bool) -> None:
        if self.plan.count_syncs:
            torch.cuda.set_sync_debug_mode("warn" if on else 0)

    def timed_ms(self) -> list[float]:
        """The timed steps' milliseconds (on MPS one figure: the mean of the timed steps)."""
        if self.device.type == "mps":
            return [(self.mps_window[1] - self.mps_window[0]) * 1e3 / self.plan.steps]
        return self.clock.step_ms()[self.plan.warmup : self.plan.warmup + self.plan.steps]


@contextlib.contextmanager
def sync_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collects every warning of the block (each one, not once per place), for counting the sync warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def count_sync_warnings(caught: list[warnings.WarningMessage]) -> int:
    return sum(SYNC_WARNING in str(warning.message) for warning in caught)


def sync_counting_works(device: torch.device) -> str:
    """'ok' when the counter sees a known sync (.item() on a CUDA tensor), else why syncs cannot be counted."""
    if device.type != "cuda":
        return f"n/a on {device.type}"
    value = torch.zeros((), device=device)
    with sync_warnings() as caught:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            value.item()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    if count_sync_warnings(caught) == 0:
        return "not counted: .item() emitted no sync warning under torch.cuda.set_sync_debug_mode('warn')"
    return "ok"


@dataclass(frozen=True)
class Cell:
    model: str
    precision: str
    compiled: bool

    @property
    def mode(self) -> str:
        return "compile" if self.compiled else "eager"

    def key(self) -> str:
        return f"{self.model},{self.precision},{self.mode}"

    @staticmethod
    def parse(text: str) -> Cell:
        model, precision, mode = text.split(",")
        return Cell(model, precision, mode == "compile")


@dataclass
class Result:
    """What one loop measured in one run."""

    median_ms: float
    mean_ms: float
    step_ms: list[float]
    syncs_per_step: float | None
    eval_ms: float
    peak_memory_mb: float | None
    warnings: list[str] = field(default_factory=list)  # the Trainer's diagnoses (random labels: "has not moved")


def fresh_model(spec: Spec, seed: int, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    # Seeding right before building gives every loop the same initial weights and the same dropout masks.
    torch.manual_seed(seed)
    model = build_model(spec.config, spec.input_shape, NUM_CLASSES).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.AdamW(model.parameters(), lr=LR)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    dtype = AUTOCAST[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def loaders(spec: Spec, plan: Plan, data: Data, device: torch.device, seed: int) -> tuple[TimedLoader, InMemoryLoader]:
    train = InMemoryLoader(data.train_x, data.train_y, spec.batch_size, shuffle=True, seed=seed)
    val = InMemoryLoader(data.val_x, data.val_y, spec.batch_size * 4, shuffle=False)
    return TimedLoader(train, device, plan), val


def hand_evaluate(
    model: nn.Module, val: InMemoryLoader, spec: Spec, device: torch.device, precision: str
) -> dict[str, float]:
    """The val pass written by hand: loss and accuracy summed on the device, read once at the end."""
    model.eval()
    with torch.no_grad():
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for inputs, targets in val:
            if spec.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                logits = model(inputs)
                loss_sum += F.cross_entropy(logits, targets, reduction="sum")
            correct += (logits.argmax(dim=1) == targets).sum()
    return {"val/loss": loss_sum.item() / val.num_samples, "val/accuracy": correct.item() / val.num_samples}


def hand_run(cell: Cell, spec: Spec, plan: Plan, data: Data, device: torch.device, seed: int) -> Result:
    """The loop written by hand: forward under autocast, cross entropy, zero_grad, backward, step."""
    model, optimizer = fresh_model(spec, seed, device)
    forward = torch.compile(model) if cell.compiled else model
    train, val = loaders(spec, plan, data, device, seed)
    hand_evaluate(forward, val, spec, device, cell.precision)  # warm-up, as for the Trainer
    with sync_warnings() as caught:
        forward.train()
        for inputs, targets in train:
            if spec.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with autocast(device, cell.precision):
                loss = F.cross_entropy(forward(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    hand_evaluate(forward, val, spec, device, cell.precision)
    synchronize(device)
    eval_ms = (time.perf_counter() - train.finished_at) * 1e3
    return summarize(train, caught, eval_ms)


class EpochEnd:
    """Notes when the callbacks' on_epoch_end is reached: after the val pass, the pictures and the epoch's log."""

    def __init__(self, device: torch.device):
        self.device, self.at = device, 0.0

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        synchronize(self.device)
        self.at = time.perf_counter()


def trainer_run(
    cell: Cell, spec: Spec, plan: Plan, data: Data, device: torch.device, seed: int, pictures: bool
) -> Result:
    # Imported here so that the hand loop's memory child never loads the Trainer's modules (as bench/overhead.py).
    from trainer.loop import Trainer

    model, optimizer = fresh_model(spec, seed, device)
    train, val = loaders(spec, plan, data, device, seed)
    epoch_end = EpochEnd(device)
    options = Options(compile=cell.compiled, channels_last=spec.channels_last, progress=False, pictures=pictures)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        trainer = Trainer(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            epochs=1,
            device=device,
            precision=cell.precision,
            out_dir=Path(tmp) / "run",
            log_every=plan.log_every,
            callbacks=[epoch_end],
            options=options,
        )
        trainer.evaluate(val)  # warm-up: compiles the evaluation graph before the timed pass, as for the hand loop
        with sync_warnings() as caught:
            trainer.fit(train, val)
    eval_ms = (epoch_end.at - train.finished_at) * 1e3
    result = summarize(train, caught, eval_ms)
    result.warnings = list(trainer.diagnosis)
    return result


def summarize(train: TimedLoader, caught: list[warnings.WarningMessage], eval_ms: float) -> Result:
    steps = train.timed_ms()
    syncs = count_sync_warnings(caught) / train.plan.window_steps if train.plan.count_syncs else None
    return Result(statistics.median(steps), statistics.fmean(steps), steps, syncs, eval_ms, None)


def run_variant(
    variant: str, cell: Cell, spec: Spec, plan: Plan, data: Data, device: torch.device, seed: int
) -> Result:
    """One run of one loop on a fresh model; on CUDA with its peak memory."""
    if cell.compiled:
        torch.compiler.reset()  # every loop compiles from the same empty cache (and none runs out of cache entries)
    gc.collect()  # so that no loop pays for another's garbage
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with quiet():
        if variant == "hand":
            result = hand_run(cell, spec, plan, data, device, seed)
        else:
            result = trainer_run(cell, spec, plan, data, device, seed, pictures=variant == "trainer")
    if device.type == "cuda":
        result.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def median_run(results: list[Result]) -> Result:
    """The run whose median step time is the median of the runs (the lower one of the middle two)."""
    return sorted(results, key=lambda result: result.median_ms)[(len(results) - 1) // 2]


def child_main(args: argparse.Namespace) -> None:
    """Runs one loop once in this fresh process and prints its peak RSS as one JSON line."""
    cell = Cell.parse(args.child_cell)
    spec = model_specs(args.quick)[cell.model]
    plan = make_plan(args.steps, args.quick, count_syncs=False)  # this process measures memory only
    device = torch.device(args.device)
    data = make_data(spec, plan, device, args.seed)
    run_variant(args.child, cell, spec, plan, data, device, args.seed)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def cpu_memory(variant: str, cell: Cell, args: argparse.Namespace) -> float | None:
    """The peak RSS of a fresh process that runs one loop (None where /proc and resource are both missing)."""
    if sys.platform == "win32":
        return None
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--child", variant, "--child-cell", cell.key(), "--device", args.device),
        *("--steps", str(args.steps), "--seed", str(args.seed), "--threads", str(torch.get_num_threads())),
        *(["--quick"] if args.quick else []),
    ]
    return peak_rss_of_child(command, f"the {variant} memory run of {cell.key()}")


def figure(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cell_name(row: dict[str, Any]) -> str:
    return f"{row['model']} {row['precision']} {row['compile']}"


COLUMNS = "{:<7}{:<6}{:<9}{:>9}{:>11}{:>7}  {:<16}{:<28}{}"
TABLE_HEAD = "\n".join(
    [
        COLUMNS.format(
            "model", "prec", "compile", "hand ms", "trainer ms", "ratio", "syncs/step", "eval ms", "peak MB"
        ),
        COLUMNS.format(
            "", "", "", "per step", "per step", "", "hand / trainer", "hand / no pics / pics", "hand / trainer"
        ),
    ]
)


def print_row(row: dict[str, Any], device: torch.device) -> None:
    hand, ours, bare = (row["loops"][variant] for variant in VARIANTS)
    if device.type == "cuda":
        syncs = f"{figure(hand.syncs_per_step, 2)} / {figure(ours.syncs_per_step, 2)}"
    else:
        syncs = f"n/a on {device.type}"
    evals = f"{hand.eval_ms:.1f} / {bare.eval_ms:.1f} / {ours.eval_ms:.1f}"
    memory = f"{figure(hand.peak_memory_mb)} / {figure(ours.peak_memory_mb)}"
    medians = (f"{hand.median_ms:.3f}", f"{ours.median_ms:.3f}", f"{row['ratio']:.3f}")
    print(COLUMNS.format(row["model"], row["precision"], row["compile"], *medians, syncs, evals, memory))


def measure_cpu_memory(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Peak RSS of the hand loop and the Trainer, one fresh process each, two at a time: they measure memory, not
    time. --quick measures the first row only (a fresh process takes seconds to import torch and the Trainer)."""
    measured = rows[:1] if args.quick else rows
    jobs = [(row, variant) for row in measured for variant in ("hand", "trainer")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        peaks = list(pool.map(lambda job: cpu_memory(job[1], job[0]["cell"], args), jobs))
    for (row, variant), peak in zip(jobs, peaks, strict=True):
        row["loops"][variant].peak_memory_mb = peak
    print(f"\npeak RSS of a fresh process per loop{' (the first row only with --quick)' if args.quick else ''}:")
    for row in measured:
        hand, ours = row["loops"]["hand"].peak_memory_mb, row["loops"]["trainer"].peak_memory_mb
        if hand is not None and ours is not None:
            print(f"  {cell_name(row)}: hand {hand:.1f} MB  trainer {ours:.1f} MB  difference {ours - hand:+.1f} MB")


def goal_lines(rows: list[dict[str, Any]], device: torch.device, counting: str) -> bool:
    """The verdicts, one line per row; returns whether every goal was met."""
    print(f"\ngoals: ratio trainer/hand <= {GOAL_RATIO:.2f}; 0 syncs per step outside log steps (CUDA only)")
    all_ok = True
    for row in rows:
        syncs = row["loops"]["trainer"].syncs_per_step
        time_ok = row["ratio"] <= GOAL_RATIO
        sync_ok = syncs is None or syncs == 0
        sync_text = counting if syncs is None else f"{syncs:.2f} (goal 0)  {verdict(sync_ok)}"
        print(
            f"  {cell_name(row)}: ratio trainer/hand {row['ratio']:.3f} (goal <= {GOAL_RATIO:.2f})  "
            f"{verdict(time_ok)};  syncs/step {sync_text}"
        )
        all_ok = all_ok and time_ok and sync_ok
    return all_ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, choices=["cuda", "cpu", "mps"], help="default: %(default)s")
    parser.add_argument("--quick", action="store_true", help="smoke run: small batches, few steps, mlp and cnn")
    parser.add_argument("--steps", type=int, help="timed steps per run (default 200; 8 with --quick)")
    parser.add_argument("--models", nargs="+", choices=["mlp", "cnn", "resnet"], help="default: all (--quick: mlp cnn)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument(
        "--compile",
        choices=["off", "on", "both"],
        help="torch.compile: without, with, or both (default: both on CUDA; off on other devices and with --quick, "
        "as compiling takes a minute or more)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each loop, alternating (default: 1)")
    parser.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's; 1 with --quick)")
    parser.add_argument("--out", default="bench_gpu.json", help="the JSON file of every figure (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--child-cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 8 if args.quick else 200
    if args.steps < 4:
        parser.error(f"--steps {args.steps}: the median needs a few steps. Try: --steps 8 or more")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: runs of each loop. Try: 1 or more")
    if args.models is None:
        args.models = ["mlp", "cnn"] if args.quick else ["mlp", "cnn", "resnet"]
    if args.compile is None:
        args.compile = "both" if args.device == "cuda" and not args.quick else "off"
    if args.threads is None and args.quick:
        # Two threads on a busy two-core machine wait for each other's time slices: steps of 400 ms instead of 4.
        args.threads = 1
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU here. Try: --device cpu")
    if args.device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: torch sees no Apple GPU here. Try: --device cpu")
    return args


def print_setup(args: argparse.Namespace, device: torch.device, specs: dict[str, Spec], plan: Plan) -> str:
    """The header; returns the device's name."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"device {name}; torch {torch.__version__}, {torch.get_num_threads()} threads; AdamW lr {LR}")
    print(
        f"per run: {plan.warmup} warm-up steps, {plan.steps} timed (median), syncs counted over steps "
        f"{plan.window_start + 1}-{plan.total} (log every {plan.log_every}); val {plan.val_batches} batches of 4x"
    )
    for model in args.models:
        spec = specs[model]
        shape = "x".join(map(str, spec.input_shape))
        layout = ", channels_last" if spec.channels_last else ""
        config = spec.config.model_dump(exclude={"name"})
        print(f"  {model}: {config} from {spec.source}; {shape}, batch {spec.batch_size}{layout}")
    if args.quick:
        print("--quick is a smoke run: too few steps for the ratios and their verdicts to mean anything")
    return name


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.child:
        child_main(args)
        return
    device = torch.device(args.device)
    counting = sync_counting_works(device)
    specs, plan = model_specs(args.quick), make_plan(args.steps, args.quick, count_syncs=counting == "ok")
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    name = print_setup(args, device, specs, plan)
    print(f"syncs per step: {counting}\n")
    print(TABLE_HEAD)

    rows: list[dict[str, Any]] = []
    for cell in [Cell(m, p, c) for m in args.models for p in args.precisions for c in modes]:
        spec = specs[cell.model]
        data = make_data(spec, plan, device, args.seed)
        # The loops alternate, so that a machine that slows down for a while slows all of them; each Trainer run
        # is compared with the hand run just before it, and the median of those ratios is the verdict.
        runs: dict[str, list[Result]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                runs[variant].append(run_variant(variant, cell, spec, plan, data, device, args.seed))
        del data
        pairs = [ours.median_ms / hand.median_ms for hand, ours in zip(runs["hand"], runs["trainer"], strict=True)]
        loops = {variant: median_run(results) for variant, results in runs.items()}
        row = {
            "model": cell.model,
            "precision": cell.precision,
            "compile": cell.mode,
            "ratio": statistics.median(pairs),
            "pair_ratios": pairs,
            "run_medians_ms": {variant: [run.median_ms for run in results] for variant, results in runs.items()},
        }
        rows.append(row | {"loops": loops, "cell": cell})
        print_row(rows[-1], device)

    if device.type == "cpu":
        measure_cpu_memory(rows, args)
    all_ok = goal_lines(rows, device, counting)
    print(f"\noverall: {verdict(all_ok)}")

    report: dict[str, Any] = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "plan": asdict(plan) | {"warmup": plan.warmup, "total": plan.total, "window_steps": plan.window_steps},
        "models": {m: specs[m].config.model_dump() | {"batch_size": specs[m].batch_size} for m in args.models},
        "sync_counting": counting,
        "goal_ratio": GOAL_RATIO,
        "results": [
            {key: value for key, value in row.items() if key not in ("loops", "cell")}
            | {"loops": {variant: asdict(result) for variant, result in row["loops"].items()}}
            for row in rows
        ],
        "ratios": {},  # model -> precision -> eager/compile -> trainer/hand
        "overall": verdict(all_ok),
    }
    for row in rows:
        report["ratios"].setdefault(row["model"], {}).setdefault(row["precision"], {})[row["compile"]] = row["ratio"]
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
