"""Throughput of 1 against 2 processes under torchrun, for the MNIST CNN of configs/mnist.yaml, on this machine.

Each variant is a real `torchrun -m trainer` run (the cores split between the processes, gloo on CPUs); the
training seconds in its summary.json are compared. On a 2-core machine two processes
with one thread each compete with one process that uses both cores through its threads, so the ratio says how
well DDP's gradient exchange hides behind the compute. With a GPU it also reports one GPU's time for the
config's 3 epochs (99.2% test accuracy on a CPU) and the accuracy it reached.

    python bench/scaling.py --root PATH/TO/DATA            # real MNIST from PATH/TO/DATA/MNIST/raw
    python bench/scaling.py --root PATH/TO/DATA --epochs 1 --samples 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(processes: int, threads: int, args: argparse.Namespace, out: Path, extra: list[str]) -> dict:
    """One training run; its wall seconds, training seconds and final metrics."""
    overrides = [
        f"data.root={Path(args.root).resolve()}",
        f"train.epochs={args.epochs}",
        f"log.dir={out}",
        f"name=p{processes}",
        "log.graph=false",
        "log.pictures=false",
        *extra,
    ]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*launcher, "-m", "trainer", str(ROOT / "configs" / "mnist.yaml"), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the {processes}-process run failed:\n{done.stderr[-2000:]}")
    (run_dir,) = (out / f"p{processes}").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"wall": wall, "train": summary["wall_seconds"], "metrics": summary["metrics"], "steps": summary["steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder holding MNIST/raw")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"MNIST CNN (configs/mnist.yaml), {args.epochs} epoch(s), {cores} cores, gloo on the CPU")
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        one = run(1, cores, args, Path(tmp), [])
        two = run(2, max(1, cores // 2), args, Path(tmp), [])
    for name, result in (("1 process ", one), ("2 processes", two)):
        accuracy = result["metrics"].get("test/accuracy", float("nan"))
        print(
            f"  {name}  training {result['train']:6.1f} s  (wall {result['wall']:5.1f} s)  "
            f"test accuracy {accuracy:.2%}  steps {result['steps']}"
        )
    print(f"  speed-up of 2 processes: {one['train'] / two['train']:.2f}x  (1.00x: no gain; 2.00x: perfect)")
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
            gpu = run(1, cores, args, Path(tmp), ["train.device=cuda", "train.epochs=3"])
        print(f"  one GPU: 3 epochs in {gpu['train']:.1f} s, test accuracy {gpu['metrics']['test/accuracy']:.2%}")


if __name__ == "__main__":
    main()
