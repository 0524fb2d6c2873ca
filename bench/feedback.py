"""How long from pressing enter to the first line of a config error? (Goal: under 1 s.)

Runs `python -m trainer CONFIG` in a fresh process on configs with typical mistakes and measures the time to
the first byte on stderr and to the end of the process, next to the time `import torch` alone takes.

    python bench/feedback.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MISTAKES = {
    "typo in a key": "data: {dataset: synthetic, batch_sise: 32}\nmodel: {name: mlp}\n",
    "unknown data set": "data: {dataset: mnsit}\nmodel: {name: cnn}\n",
    "YAML syntax": "data:\n  dataset: mnist\n\tbatch_size: 3\n",
    "typo in a key + optimizer argument": (
        "data: {dataset: synthetic, batch_sise: 32}\nmodel: {name: mlp}\noptimizer: {name: adamw, weight_decy: 0.1}\n"
    ),
    "optimizer argument only (needs torch)": (
        "data: {dataset: synthetic}\nmodel: mlp\noptimizer: {name: adamw, betass: 1}\n"
    ),
}


def time_command(command: list[str]) -> tuple[float, float]:
    """Seconds to the first byte on stderr, and to the end."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    process.stderr.read(1)
    first = time.perf_counter() - started
    process.stderr.read()
    process.wait()
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        torch_times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            torch_times.append(time.perf_counter() - started)
        print(f"{'python -c import torch':42} {statistics.median(torch_times):8.2f} s")
        print(f"{'mistake':42} {'first line':>10} {'whole':>8}")
        for name, text in MISTAKES.items():
            path = Path(folder) / "config.yaml"
            path.write_text(text)
            runs = [time_command([sys.executable, "-m", "trainer", str(path)]) for _ in range(args.repeats)]
            first = statistics.median(r[0] for r in runs)
            whole = statistics.median(r[1] for r in runs)
            verdict = "PASS" if first < 1.0 else "MISS"
            print(f"{name:42} {first:8.2f} s {whole:6.2f} s  {verdict}")


if __name__ == "__main__":
    main()
