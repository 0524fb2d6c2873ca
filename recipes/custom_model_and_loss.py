"""Recipe: your own model and your own loss function, trained by leaptrain's Trainer from plain Python.

    python recipes/custom_model_and_loss.py --root data --epochs 2
    python recipes/custom_model_and_loss.py --root data --quick    # 1,000 images, 3 epochs: a few seconds

Copy this file and change the model or the loss: that is the point of it. You write the forward pass and
the loss with ordinary tensor operations; autograd works out every gradient, so there is no calculus to do.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets

from trainer import Trainer
from trainer.components.splits import InMemoryLoader
from trainer.logger import new_run_dir


class SmallNet(nn.Module):
    """Two conv layers and a linear classifier: LeNet's shape with batch norm and ReLU."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)  # 1 channel in (grey), 16 feature maps out
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.classify = nn.Linear(32 * 7 * 7, num_classes)  # 28x28 halved twice is 7x7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # -> 16 x 14 x 14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # -> 32 x 7 x 7
        return self.classify(x.flatten(1))  # one score (a "logit") per class


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Cross entropy that gives less weight to examples the model already gets right (Lin et al., 2017).

    With gamma = 0 this is exactly F.cross_entropy; try both and compare the curves in TensorBoard.
    """
    log_probs = F.log_softmax(logits, dim=1)  # log of the predicted probability of every class
    log_p_true = log_probs.gather(1, targets[:, None]).squeeze(1)  # ... of the right class only
    p_true = log_p_true.exp()
    return (-((1 - p_true) ** gamma) * log_p_true).mean()


def load_mnist(root: str, train: bool, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as two tensors: images scaled to mean 0 and std 1, labels as class indices."""
    dataset = datasets.MNIST(root, train=train, download=True)
    images = dataset.data[:limit].unsqueeze(1).float() / 255  # N x 1 x 28 x 28, in [0, 1]
    return (images - 0.1307) / 0.3081, dataset.targets[:limit]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="folder holding MNIST/raw (downloaded when missing)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (a quick try)")
    parser.add_argument("--quick", action="store_true", help="1,000 images and three epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-focal/<date-time>/")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    limit, epochs = (1000, 3) if args.quick else (args.limit, args.epochs)
    train_images, train_labels = load_mnist(args.root, train=True, limit=limit)
    test_images, test_labels = load_mnist(args.root, train=False, limit=limit)
    n_val = len(train_labels) // 10  # hold out the last tenth of the training images to watch for overfitting
    train_loader = InMemoryLoader(train_images[:-n_val], train_labels[:-n_val], batch_size=128, shuffle=True)
    val_loader = InMemoryLoader(train_images[-n_val:], train_labels[-n_val:], batch_size=512, shuffle=False)
    test_loader = InMemoryLoader(test_images, test_labels, batch_size=512, shuffle=False)

    model = SmallNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    out_dir = new_run_dir(args.runs, "recipe-focal")
    trainer = Trainer(model, focal_loss, optimizer, epochs=epochs, task="classification", out_dir=out_dir)
    return trainer.fit(train_loader, val_loader, test_loader)


if __name__ == "__main__":
    main()
