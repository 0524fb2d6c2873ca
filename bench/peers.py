"""How fast does leaptrain's Trainer train, next to a hand-written loop, PyTorch Lightning and Keras 3 (torch backend)?

All four train the same MLP (hidden [512, 256]) and CNN (channels [32, 64], fc 128) from the same initial weights,
with AdamW (the same lr, betas, eps and weight decay), batch size 128, validation batch 512, on the same samples,
held in memory as tensors. Each epoch is a shuffled pass over the training tensors, then a pass over the
validation tensors for loss and accuracy. Only the training is timed: building the model is outside, building each
framework's trainer (leaptrain's Trainer, Lightning's Trainer, Keras's compile) and its fit are inside.

What each one does beside the arithmetic, inside the timing:
- hand loop and leaptrain: as in bench/overhead.py (the Trainer writes TensorBoard events, metrics.jsonl,
  summary.json, checkpoints and a tqdm bar sent to /dev/null);
- Lightning: its defaults, as a user gets them: a checkpoint each epoch, its TensorBoard logger, a progress bar
  sent to /dev/null, 2 sanity validation batches; it reads the very batches the hand loop reads (InMemoryLoader);
- Keras: model.fit(..., verbose=0) on the tensors, no callbacks: it writes nothing; it shuffles in its own order.

The runs alternate (hand, leaptrain, lightning, keras, hand, ...) in this one process, so that all see the same
machine load. It prints seconds per epoch (the median over --repeats), the ratio to the hand loop (the median of the
ratios within each round) and the final val accuracy, which should agree: the first three see the same batches.

    python bench/peers.py --quick                                  # smoke run: a few hundred samples, seconds
    python bench/peers.py --root PATH/TO/DATA --repeats 3          # real MNIST from PATH/TO/DATA/MNIST/raw

A peer that is not installed is skipped with a line saying so; `pip install "leaptrain[bench]"` installs them.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.metadata
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/overhead.py, also when imported from elsewhere

from overhead import (
    BATCH_SIZE,
    INPUT_SHAPE,
    LR,
    MODELS,
    NUM_CLASSES,
    VAL_BATCH_SIZE,
    Data,
    fresh_model,
    hand_loop,
    load_data,
    print_noise_note,
    quiet,
    timed_rounds,
    trainer_loop,
)

from trainer.components.splits import InMemoryLoader

PEERS = ("hand", "leaptrain", "lightning", "keras")
INSTALL = 'pip install "leaptrain[bench]"'
ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}  # torch device type -> Lightning's accelerator name


def find_peers(device: str) -> tuple[dict[str, str], dict[str, str]]:
    """({peer: label with its version} for those that can run, {peer: why not} for the others)."""
    labels = {"hand": "hand loop", "leaptrain": "leaptrain Trainer"}
    missing: dict[str, str] = {}
    try:
        import lightning

        labels["lightning"] = f"Lightning {lightning.__version__}"
    except ImportError as err:
        missing["lightning"] = f"not installed ({err})"
    # Keras reads its backend once, at import: it must be torch, on the device the others use.
    os.environ["KERAS_BACKEND"] = "torch"
    os.environ["KERAS_TORCH_DEVICE"] = device
    try:
        import keras

        if int(keras.__version__.split(".")[0]) < 3 or keras.backend.backend() != "torch":
            missing["keras"] = (
                f"keras {keras.__version__} with the {keras.backend.backend()} backend; needs 3+ on torch"
            )
        else:
            labels["keras"] = f"Keras {keras.__version__} (torch)"
    except ImportError as err:
        missing["keras"] = f"not installed ({err})"
    return labels, missing


@functools.cache
def lightning_classifier() -> type:
    """The LightningModule for any of our models: defined on first use, so that the script runs without Lightning."""
    import lightning as L
    import torch.nn.functional as F

    class Classifier(L.LightningModule):
        def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
            super().__init__()
            self.model, self.optimizer = model, optimizer

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            inputs, targets = batch
            loss = F.cross_entropy(self.model(inputs), targets)
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            inputs, targets = batch
            logits = self.model(inputs)
            accuracy = (logits.argmax(dim=1) == targets).float().mean()
            values = {"val/loss": F.cross_entropy(logits, targets), "val/accuracy": accuracy}
            self.log_dict(values, batch_size=len(targets))  # weighted by batch size: the mean over the split

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return self.optimizer

    return Classifier


def lightning_loop(module: Any, data: Data, epochs: int, seed: int, out_dir: Path) -> dict[str, float]:
    import lightning as L

    # Its info lines (GPU available, model summary) go to a logging handler made at import, past quiet().
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    trainer = L.Trainer(
        accelerator=ACCELERATORS[data.train_y.device.type],
        devices=1,
        max_epochs=epochs,
        default_root_dir=out_dir,
    )
    train = InMemoryLoader(data.train_x, data.train_y, BATCH_SIZE, shuffle=True, seed=seed)
    val = InMemoryLoader(data.val_x, data.val_y, VAL_BATCH_SIZE, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice about DataLoader workers and log intervals, for a tiny --quick run
        trainer.fit(module, train, val)
    return {key: float(trainer.callback_metrics[key]) for key in ("val/loss", "val/accuracy")}


def keras_model(name: str, torch_model: nn.Module) -> Any:
    """keras.Sequential with the layers of our MLP or CNN (NCHW, like torch), starting from `torch_model`'s weights."""
    import keras
    from keras import layers

    cfg = MODELS[name]
    stack: list[Any] = [keras.Input(INPUT_SHAPE)]
    if cfg.name == "mlp":
        stack.append(layers.Flatten())
        for width in cfg.hidden:
            stack += [layers.Dense(width, activation=cfg.activation), layers.Dropout(cfg.dropout)]
    else:
        for channels in cfg.channels:
            stack += [
                layers.Conv2D(
                    channels, cfg.kernel_size, padding="same", use_bias=not cfg.batch_norm, data_format="channels_first"
                ),
                # momentum and epsilon as torch's BatchNorm2d (Keras's momentum is 1 - torch's)
                layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5) if cfg.batch_norm else layers.Identity(),
                layers.Activation(cfg.activation),
                layers.MaxPooling2D(2, data_format="channels_first"),
            ]
        stack += [
            layers.Flatten(data_format="channels_last"),  # a plain reshape in (C, H, W) order, like nn.Flatten
            layers.Dense(cfg.fc, activation=cfg.activation),
            layers.Dropout(cfg.dropout),
        ]
    stack.append(layers.Dense(NUM_CLASSES))  # logits: the loss applies the softmax
    model = keras.Sequential(stack)

    # Same start as the others: torch's initial weights, in Keras's layouts.
    ours = [m for m in torch_model.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.BatchNorm2d)]
    theirs = [layer for layer in model.layers if layer.weights]
    for module, layer in zip(ours, theirs, strict=True):
        if isinstance(module, nn.BatchNorm2d):
            weights = [module.weight, module.bias, module.running_mean, module.running_var]
        elif isinstance(module, nn.Conv2d):  # (out, in, kh, kw) -> (kh, kw, in, out)
            weights = [module.weight.permute(2, 3, 1, 0)] + ([module.bias] if module.bias is not None else [])
        else:  # (out, in) -> (in, out)
            weights = [module.weight.T, module.bias]
        layer.set_weights([w.detach().cpu().numpy() for w in weights])
    return model


def keras_loop(model: Any, optimizer: torch.optim.Optimizer, data: Data, epochs: int) -> dict[str, float]:
    import keras

    settings = optimizer.defaults  # the torch optimizer's, so that the two cannot drift apart
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=settings["lr"],
            beta_1=settings["betas"][0],
            beta_2=settings["betas"][1],
            epsilon=settings["eps"],
            weight_decay=settings["weight_decay"],
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        data.train_x,
        data.train_y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        shuffle=True,
        validation_data=(data.val_x, data.val_y),
        validation_batch_size=VAL_BATCH_SIZE,
        verbose=0,
    )
    return {"val/loss": history.history["val_loss"][-1], "val/accuracy": history.history["val_accuracy"][-1]}


def prepare(peer: str, model_name: str, data: Data, epochs: int, seed: int, out_dir: Path) -> Callable[[], dict]:
    """The untimed part of one run (a fresh model from `seed`), and the timed part to call."""
    model, optimizer = fresh_model(model_name, seed, data.train_y.device)
    if peer == "hand":
        return lambda: hand_loop(model, optimizer, data, epochs, seed)
    if peer == "leaptrain":
        return lambda: trainer_loop(model, optimizer, data, epochs, seed, out_dir)
    if peer == "lightning":
        module = lightning_classifier()(model, optimizer)
        return lambda: lightning_loop(module, data, epochs, seed, out_dir)
    import keras

    keras.utils.set_random_seed(seed)  # its shuffling and dropout
    twin = keras_model(model_name, model)
    return lambda: keras_loop(twin, optimizer, data, epochs)


def run_once(peer: str, model_name: str, data: Data, epochs: int, seed: int) -> tuple[float, dict[str, float]]:
    """One run on a fresh model: (seconds per epoch, final val metrics)."""
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp, quiet():
        train = prepare(peer, model_name, data, epochs, seed, Path(tmp))
        gc.collect()  # so that no peer pays for another's garbage
        started = time.perf_counter()
        metrics = train()
        seconds = time.perf_counter() - started
    return seconds / epochs, metrics


def bench_model(model_name: str, data: Data, labels: dict[str, str], args: argparse.Namespace) -> None:
    model, _ = fresh_model(model_name, args.seed, data.train_y.device)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"\n{model_name}: {MODELS[model_name].model_dump(exclude={'name'})}, {parameters:,} parameters")

    def say_round(round_: int) -> None:
        # A CNN epoch over all of MNIST takes minutes on a laptop CPU: say how far it has come (stderr, not the table).
        print(f"  {model_name}: round {round_} of {args.repeats} done", file=sys.stderr, flush=True)

    seconds, results = timed_rounds(labels, run_once, model_name, data, args, say_round)

    print(f"  {'':<24} {'s/epoch':>8}  {'x hand':>6}  {'val acc':>7}  runs (s/epoch)")
    for peer, label in labels.items():
        # Each run is compared with the hand-loop run of its own round: a slow minute hits both sides of a pair.
        ratio = statistics.median(ours / hand for hand, ours in zip(seconds["hand"], seconds[peer], strict=True))
        runs = ", ".join(f"{s:.3f}" for s in seconds[peer])
        print(
            f"  {label:<24} {statistics.median(seconds[peer]):8.3f}  {ratio:6.2f}  "
            f"{results[peer]['val/accuracy']:7.4f}  [{runs}]"
        )
    print_noise_note(seconds, "peer")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="folder holding MNIST/raw; without it, synthetic MNIST-shaped tensors")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="models to measure")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each peer (the median is shown)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 512 train / 256 val samples, 1 repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (all peers use it)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    return args


def main() -> None:
    args = parse_args()
    labels, missing = find_peers(args.device)
    sizes = (512, 256) if args.quick else (20_000, 2_000) if args.root is None else (None, None)
    data = load_data(args.root, *sizes, args.seed).to(torch.device(args.device))
    print(
        f"{data.description}; batch {BATCH_SIZE} (val {VAL_BATCH_SIZE}); AdamW lr {LR}; device {args.device}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"leaptrain {importlib.metadata.version('leaptrain')}"
    )
    print(f"{args.epochs} epoch(s) per run, median of {args.repeats} run(s) per peer, the peers in turn")
    print("inside the timing: leaptrain's run files and bar; Lightning's defaults (checkpoint, logger, bar, 2 sanity")
    print("  batches); Keras fit with verbose=0 writes nothing. Bars go to /dev/null.")
    for peer, why in missing.items():
        print(f"{peer}: skipped, {why}. Try: {INSTALL}")
    if args.quick:
        print("--quick is a smoke run: too few batches for the ratios to mean anything")
    for name in args.models:
        bench_model(name, data, labels, args)


if __name__ == "__main__":
    main()
