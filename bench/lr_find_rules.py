"""Which rule should lr-find use to turn its curve into one learning rate? Measured on the shipped configs.

For each config: one range test (the same curve for every rule), the lr each rule suggests, then a short
training run at each suggestion and at the config's own lr, with the config's optimizer and schedule. The table
gives the final validation loss and accuracy of each run; the best lr of each config is marked with *.

    python bench/lr_find_rules.py                      (run from the project folder; real MNIST in ../shared/data)
    python bench/lr_find_rules.py --only iris moons    (some configs only)
    python bench/lr_find_rules.py --seed 1             (another draw of weights, batches and split)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time

import torch

from trainer.cli import load_config
from trainer.lr_find import RULES, lr_find, suggest_lr
from trainer.run import build, train_from_config

QUIET = ["log.progress=false", "log.pictures=false", "log.graph=false", "log.histograms=0"]
# config, overrides, epochs of each short run (enough steps for the schedule to mean something on tiny data)
CONFIGS = {
    "mnist_mlp": ("configs/mnist_mlp.yaml", ["data.root=../shared/data"], 1),
    "mnist": ("configs/mnist.yaml", ["data.root=../shared/data"], 1),
    "synthetic": ("configs/synthetic.yaml", [], 3),
    "moons": ("configs/moons.yaml", [], 3),
    "blobs": ("configs/blobs.yaml", [], 3),
    "iris": ("configs/iris.yaml", [], 15),
}


def curve_suggestions(path: str, overrides: list[str]) -> tuple[dict[str, float | None], float]:
    """The lr each rule suggests from one range test with lr-find's defaults, and the config's own lr."""
    cfg, _ = load_config(path, overrides + QUIET)
    built = build(cfg)
    with torch.random.fork_rng(devices=[]):
        result = lr_find(built.model, built.loss_fn, built.optimizer, built.data.train, device=built.device)
    return {rule: suggest_lr(result.lrs, result.losses, rule)[0] for rule in RULES}, cfg.optimizer.lr


def short_run(path: str, overrides: list[str], epochs: int, lr: float, log_dir: str) -> dict[str, float]:
    """The final metrics of a training run of `epochs` at `lr` (its output hidden)."""
    cfg, _ = load_config(
        path, [*overrides, *QUIET, f"optimizer.lr={lr}", f"train.epochs={epochs}", f"log.dir={log_dir}"]
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_dir = train_from_config(cfg)
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configs to measure (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every run (its weights, batches, split)")
    args = parser.parse_args()
    header = f"{'config':10} {'lr from':11} {'lr':>8} {'val/loss':>9} {'val/acc':>8}"
    rows, wins = [header], dict.fromkeys(["config", *RULES], 0)
    ratios: dict[str, list[float]] = {source: [] for source in ["config", *RULES]}
    with tempfile.TemporaryDirectory() as log_dir:
        for name in args.only or CONFIGS:
            path, overrides, epochs = CONFIGS[name]
            overrides = [*overrides, f"seed={args.seed}"]
            started = time.perf_counter()
            suggestions, own = curve_suggestions(path, overrides)
            candidates = {"config": own, **suggestions}
            tried: dict[float, dict[str, float]] = {}
            for lr in candidates.values():
                if lr is not None and lr not in tried:
                    tried[lr] = short_run(path, overrides, epochs, lr, log_dir)
            best = min(tried, key=lambda lr: tried[lr].get("val/loss", math.inf))
            for source, lr in candidates.items():
                if lr is None:
                    rows.append(f"{name:10} {source:11} {'-':>8}")
                    continue
                metrics = tried[lr]
                mark = " *" if lr == best else ""
                wins[source] += lr == best
                ratios[source].append(metrics["val/loss"] / tried[best]["val/loss"])
                accuracy = metrics.get("val/accuracy", math.nan)
                rows.append(f"{name:10} {source:11} {lr:8.1e} {metrics['val/loss']:9.4f} {accuracy:8.4f}{mark}")
            rows.append(f"{'':10} ({epochs} epochs a run, {time.perf_counter() - started:.0f} s for this config)")
            print("\n".join(rows[-len(candidates) - 1 :]), flush=True)
    print("\n" + "\n".join(rows))
    print("\nbest val/loss won by: " + ", ".join(f"{source} {count}" for source, count in wins.items()))
    mean = {source: math.exp(sum(map(math.log, r)) / len(r)) for source, r in ratios.items() if r}
    print("val/loss over the best, geometric mean: " + ", ".join(f"{s} {m:.2f}x" for s, m in mean.items()))


if __name__ == "__main__":
    main()
