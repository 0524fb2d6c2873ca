"""Recipe: write a loss as a plain Python function (cross entropy with label smoothing) and train with it.

    python recipes/custom_loss.py               # spirals, made here; under a minute
    python recipes/custom_loss.py --quick       # a few seconds (what CI runs)
    python recipes/custom_loss.py --smoothing 0.3

A loss is any function (logits, targets) -> one number that autograd can differentiate: ordinary tensor
operations are enough, and the Trainer calls it exactly like a torch.nn loss. The same network is trained
twice, with this function and with torch's built-in cross entropy, and one line compares them.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from trainer import Trainer
from trainer.components.data import build_data
from trainer.components.splits import DataSplits
from trainer.config import SyntheticData
from trainer.logger import new_run_dir
from trainer.loop import LossFn


def label_smoothing_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Cross entropy against a softened target: 1 - smoothing on the right class, smoothing spread over all classes.

    Plain cross entropy is smallest when the right class gets probability 1, which only infinitely large logits
    give: the model keeps growing its weights to be ever more sure. Spreading a little of the target over every
    class sets a finite best answer, so the model stays less over-confident (Szegedy et al., 2016).
    """
    log_probs = F.log_softmax(logits, dim=1)  # N x C: log of the predicted probability of every class
    nll = -log_probs.gather(1, targets[:, None]).squeeze(1)  # -log p(right class): plain cross entropy, per sample
    uniform = -log_probs.mean(dim=1)  # cross entropy against the uniform distribution over the C classes
    return ((1 - smoothing) * nll + smoothing * uniform).mean()  # the mean over the batch, like torch's losses


def spirals(samples: int, seed: int) -> DataSplits:
    """Three interleaved spirals of 2-D points, built by leaptrain's own data code (data.dataset: synthetic)."""
    cfg = SyntheticData(dataset="synthetic", kind="spirals", samples=samples, test_samples=1000, noise=0.2)
    return build_data(cfg, torch.device("cpu"), seed)


def mlp(inputs: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, classes))


def train(name: str, loss_fn: LossFn, samples: int, epochs: int, runs: str) -> tuple[dict[str, float], float]:
    """Train a fresh network with `loss_fn`; returns the Trainer's metrics and its mean confidence on the test set."""
    torch.manual_seed(0)  # the same first weights for both losses: only the loss differs
    data = spirals(samples, seed=0)
    model = mlp(data.input_shape[0], data.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    # A plain function does not say what it is for, so tell the Trainer (it reports accuracy for classification).
    trainer = Trainer(
        model, loss_fn, optimizer, epochs=epochs, task="classification", out_dir=new_run_dir(runs, name), log_every=20
    )
    metrics = trainer.fit(data.train, data.val, data.test)
    with torch.no_grad():  # how sure the model is of its answers: the mean of the largest predicted probability
        confidence = torch.cat([F.softmax(model(x), dim=1).amax(dim=1) for x, _ in data.test]).mean().item()
    return metrics, confidence


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoothing", type=float, default=0.1, help="share of the target spread over all classes")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-label-smoothing/<date-time>/")
    args = parser.parse_args(argv)
    samples, epochs = (1500, 15) if args.quick else (3000, args.epochs)

    # First make sure the function computes what we think: torch has label smoothing built in to compare with.
    logits, targets = torch.randn(16, 3), torch.randint(0, 3, (16,))
    ours = label_smoothing_cross_entropy(logits, targets, args.smoothing)
    torchs = F.cross_entropy(logits, targets, label_smoothing=args.smoothing)
    assert torch.allclose(ours, torchs), f"{ours} != {torchs}"
    print(f"our function {ours.item():.6f} = F.cross_entropy(label_smoothing={args.smoothing}) {torchs.item():.6f}")

    def smoothed(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return label_smoothing_cross_entropy(logits, targets, args.smoothing)

    metrics, confidence = train("recipe-label-smoothing", smoothed, samples, epochs, args.runs)
    plain, plain_confidence = train("recipe-cross-entropy", nn.CrossEntropyLoss(), samples, epochs, args.runs)
    print(
        f"test accuracy: label smoothing {args.smoothing} {metrics['test/accuracy']:.1%} "
        f"(mean confidence {confidence:.1%}) vs built-in cross entropy {plain['test/accuracy']:.1%} "
        f"(mean confidence {plain_confidence:.1%})"
    )
    return {
        **metrics,
        "test/confidence": confidence,
        "cross_entropy/test/accuracy": plain["test/accuracy"],
        "cross_entropy/test/confidence": plain_confidence,
    }


if __name__ == "__main__":
    main()
