"""Recipe: write your own nn.Module (a small CNN with a residual block) and train it with leaptrain's Trainer.

    python recipes/custom_model.py                 # synthetic digits, made here: no download, under a minute
    python recipes/custom_model.py --root data     # real MNIST from data/MNIST/raw (torchvision layout)
    python recipes/custom_model.py --quick         # a few seconds (what CI runs)

A model is a class with layers made in __init__ and a forward() that says how data flows through them. You
write only the forward pass: autograd derives the backward pass, whatever shape your forward() has, skip
connections included. Copy this file and change ResidualCNN: that is the point of it.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from trainer import Trainer
from trainer.components.splits import InMemoryLoader
from trainer.logger import new_run_dir

# A 3 x 5 pixel font for the digits 0-9, one string per digit, read row by row ("1" is ink).
FONT = [
    "111101101101111",
    "010110010010111",
    "111001111100111",
    "111001111001111",
    "101101111001001",
    "111100111001111",
    "111100111101111",
    "111001001001001",
    "111101111101111",
    "111101111001111",
]


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions whose output is added to the block's input: y = x + f(x).

    The addition gives the gradient a short path back to earlier layers (the derivative of x + f(x) is
    1 + f'(x)), which is why networks built from such blocks (ResNets) still train when they are very deep.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)  # BN adds the bias
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(x + residual)  # padding=1 keeps the size, so x and residual have the same shape


class ResidualCNN(nn.Module):
    """Two stages of (convolution, halve the size, residual block), then global average pooling and a classifier."""

    def __init__(self, num_classes: int = 10, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        self.stage1 = nn.Sequential(
            nn.Conv2d(1, channels[0], kernel_size=3, padding=1, bias=False),  # 1 grey channel in
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28x28 -> 14x14: a quarter of the work for every later layer
            ResidualBlock(channels[0]),
        )
        self.stage2 = nn.Sequential(  # more channels at a smaller size: each unit now sees more of the image
            nn.Conv2d(channels[0], channels[1], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[1]),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14 -> 7x7
            ResidualBlock(channels[1]),
        )
        self.classify = nn.Linear(channels[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(x))  # N x 32 x 7 x 7
        x = x.mean(dim=(2, 3))  # average each feature map over the image: N x 32, whatever the image size
        return self.classify(x)  # one score (a "logit") per class; cross entropy applies the softmax


def synthetic_digits(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28x28 grey images of the digits 0-9 in a blocky font, at random places and brightness, with noise.

    The digit moves around the image, so the model has to recognise the shape wherever it is: the job
    convolutions do well. Returns images in [0, 1] (N x 1 x 28 x 28) and their labels.
    """
    generator = torch.Generator().manual_seed(seed)
    glyphs = torch.tensor([[float(c) for c in digit] for digit in FONT]).view(10, 1, 5, 3)
    glyphs = F.interpolate(glyphs, scale_factor=4, mode="nearest")  # 20 x 12 pixels each
    labels = torch.randint(0, 10, (samples,), generator=generator)
    images = 0.2 * torch.rand(samples, 1, 28, 28, generator=generator)  # background noise
    rows = torch.randint(0, 28 - 20 + 1, (samples,), generator=generator)
    cols = torch.randint(0, 28 - 12 + 1, (samples,), generator=generator)
    brightness = 0.6 + 0.4 * torch.rand(samples, generator=generator)
    for i in range(samples):
        r, c = rows[i], cols[i]
        images[i, :, r : r + 20, c : c + 12] += brightness[i] * glyphs[labels[i]]
    return images.clamp(0, 1), labels


def load_mnist(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images in [0, 1] (N x 1 x 28 x 28) and labels, from ROOT/MNIST/raw; nothing is downloaded."""
    from torchvision import datasets

    try:
        dataset = datasets.MNIST(root, train=train, download=False)
    except RuntimeError:  # torchvision found no files; say where they should be, without a traceback
        raise SystemExit(
            f"error: no MNIST in {root}/MNIST/raw. Try: put the four MNIST files there, or leave out --root "
            "for synthetic digits"
        ) from None
    return dataset.data.unsqueeze(1).float() / 255, dataset.targets


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="folder holding MNIST/raw; without it, synthetic digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--quick", action="store_true", help="a small sample and three epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-custom-model/<date-time>/")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    limit = 1000 if args.quick else args.limit
    epochs = 3 if args.quick else args.epochs
    if args.root is not None:
        train_images, train_labels = load_mnist(args.root, train=True)
        test_images, test_labels = load_mnist(args.root, train=False)
    else:
        train_images, train_labels = synthetic_digits(limit or 6000, seed=1)
        test_images, test_labels = synthetic_digits(1000, seed=2)
    train_images, train_labels = train_images[:limit], train_labels[:limit]
    # Scale to mean 0 and std 1 with the training images' own statistics: the first layer then starts
    # with inputs of the size its initial weights were chosen for.
    mean, std = train_images.mean(), train_images.std()
    train_images, test_images = (train_images - mean) / std, (test_images - mean) / std

    n_val = len(train_labels) // 10  # the last tenth, checked after every epoch to watch for overfitting
    train_loader = InMemoryLoader(train_images[:-n_val], train_labels[:-n_val], batch_size=64, shuffle=True)
    val_loader = InMemoryLoader(train_images[-n_val:], train_labels[-n_val:], batch_size=512, shuffle=False)
    test_loader = InMemoryLoader(test_images, test_labels, batch_size=512, shuffle=False)

    model = ResidualCNN()
    print(f"ResidualCNN: {sum(p.numel() for p in model.parameters()):,} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    out_dir = new_run_dir(args.runs, "recipe-custom-model")
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, epochs=epochs, out_dir=out_dir, log_every=20)
    return trainer.fit(train_loader, val_loader, test_loader)


if __name__ == "__main__":
    main()
