"""How long from pressing enter to the whole report on a config's mistakes? (Goal: the whole process under 1 s.)

Runs `python -m trainer CONFIG` in a fresh process on configs with typical mistakes and measures the time to the
first byte on stderr and to the end of the process, next to `python -c "import torch"` alone, and says whether
the process imported torch. The catalog of torch's signatures lives in a temporary folder: made by one run
first, as a learner's first run makes it, except in the row that measures that first run (an empty folder).

    python bench/feedback.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NET = "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, num_classes):\n" + (
    "        super().__init__()\n        self.fc = nn.Linear(2, num_classes)\n"
)
MISTAKES = {
    "typo in a key": "data: {dataset: synthetic, batch_sise: 32}\nmodel: {name: mlp}\n",
    "unknown data set": "data: {dataset: mnsit}\nmodel: {name: cnn}\n",
    "YAML syntax": "data:\n  dataset: mnist\n\tbatch_size: 3\n",
    "optimizer name": "data: {dataset: synthetic}\nmodel: mlp\noptimizer: {name: adamww}\n",
    "loss name": "data: {dataset: synthetic}\nmodel: mlp\nloss: cross_entropi\n",
    "scheduler name": "data: {dataset: synthetic}\nmodel: mlp\nscheduler: {name: one_cylce}\n",
    "torchvision model name": "data: {dataset: synthetic}\nmodel: {name: resnet81}\n",
    "optimizer argument": "data: {dataset: synthetic}\nmodel: mlp\noptimizer: {name: adamw, betass: 1}\n",
    "model argument": "data: {dataset: synthetic}\nmodel: {name: resnet18, zero_init_residul: true}\n",
    "key + optimizer argument": (
        "data: {dataset: synthetic, batch_sise: 32}\nmodel: {name: mlp}\noptimizer: {name: adamw, weight_decy: 0.1}\n"
    ),
    "class name in the learner's file": "data: {dataset: synthetic}\nmodel: {name: net.py:Nett}\n",
    "betas out of range": "data: {dataset: synthetic}\nmodel: mlp\noptimizer: {betas: [0.9, 1.5]}\n",
    "nesterov without momentum (needs torch)": (
        "data: {dataset: synthetic}\nmodel: mlp\noptimizer: {name: sgd, nesterov: true}\n"
    ),
}
FIRST_RUN = "optimizer name, first run (no catalog)"


def time_command(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds to the first byte on stderr, and to the end."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    process.stderr.read(1)
    first = time.perf_counter() - started
    process.stderr.read()
    process.wait()
    return first, time.perf_counter() - started


def imports_torch(command: list[str], cwd: Path, env: dict[str, str]) -> bool:
    """Whether the command imports torch: `-X importtime` lists every module imported."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    return any(line.rpartition("|")[2].strip() == "torch" for line in done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd, cache = Path(folder), Path(folder) / "cache"
        env = {**os.environ, "LEAPTRAIN_CACHE_DIR": str(cache)}
        (cwd / "net.py").write_text(NET)
        torch_times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            torch_times.append(time.perf_counter() - started)
        torch_time = statistics.median(torch_times)
        label = 'python -c "import torch"'
        print(f"{label:40} {'':>10} {torch_time:7.2f} s")
        print(f"{'mistake':40} {'first line':>10} {'whole':>9} {'whole/torch':>11} {'torch?':>7}")
        command = [sys.executable, "-m", "trainer", "config.yaml"]
        for name, text in {FIRST_RUN: MISTAKES["optimizer name"], **MISTAKES}.items():
            (cwd / "config.yaml").write_text(text)
            runs = []
            for _ in range(args.repeats):
                if name == FIRST_RUN:
                    shutil.rmtree(cache, ignore_errors=True)
                runs.append(time_command(command, cwd, env))
            first = statistics.median(r[0] for r in runs)
            whole = statistics.median(r[1] for r in runs)
            verdict = "PASS" if whole < 1.0 else "MISS"
            if name == FIRST_RUN:
                shutil.rmtree(cache, ignore_errors=True)
            torch = "yes" if imports_torch(command, cwd, env) else "no"
            print(f"{name:40} {first:8.2f} s {whole:7.2f} s {whole / torch_time:10.2f}x {torch:>7}  {verdict}")


if __name__ == "__main__":
    main()
