"""Recipe: an autoencoder: a network trained to copy its input through a narrow middle layer.

    python recipes/autoencoder.py                  # synthetic digits, made here: no download, under a minute
    python recipes/autoencoder.py --root data      # real MNIST from data/MNIST/raw (torchvision layout)
    python recipes/autoencoder.py --quick          # a few seconds (what CI runs)
    tensorboard --logdir runs                      # Images tab: originals above, reconstructions below

The targets are the inputs themselves: the loss is the mean squared error between an image and the network's
copy of it. The copy must pass through 16 numbers, so the network has to learn what digits have in common
(strokes, where they bend) instead of storing pixels. No labels are needed: this is unsupervised learning
with the same Trainer, loop and loss as any regression.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

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


class AutoEncoder(nn.Module):
    """784 pixels -> 16 numbers (the encoder) -> 784 pixels (the decoder)."""

    def __init__(self, code_size: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 256), nn.ReLU(), nn.Linear(256, code_size))
        self.decoder = nn.Sequential(nn.Linear(code_size, 256), nn.ReLU(), nn.Linear(256, 28 * 28), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encoder(x)  # N x 16: everything the decoder will know about each image
        return self.decoder(code).view_as(x)  # sigmoid: pixels in [0, 1], like the inputs


def synthetic_digits(samples: int, seed: int) -> torch.Tensor:
    """28x28 grey images (N x 1 x 28 x 28, in [0, 1]) of blocky digits at random places, with a little noise."""
    generator = torch.Generator().manual_seed(seed)
    glyphs = torch.tensor([[float(c) for c in digit] for digit in FONT]).view(10, 1, 5, 3)
    glyphs = F.interpolate(glyphs, scale_factor=4, mode="nearest")  # 20 x 12 pixels each
    labels = torch.randint(0, 10, (samples,), generator=generator)
    images = 0.1 * torch.rand(samples, 1, 28, 28, generator=generator)
    rows = torch.randint(0, 28 - 20 + 1, (samples,), generator=generator)
    cols = torch.randint(0, 28 - 12 + 1, (samples,), generator=generator)
    for i in range(samples):
        images[i, :, rows[i] : rows[i] + 20, cols[i] : cols[i] + 12] += 0.8 * glyphs[labels[i]]
    return images.clamp(0, 1)


def load_mnist(root: str, train: bool) -> torch.Tensor:
    """MNIST images in [0, 1] (N x 1 x 28 x 28) from ROOT/MNIST/raw; nothing is downloaded. Labels are not needed."""
    from torchvision import datasets

    try:
        dataset = datasets.MNIST(root, train=train, download=False)
    except RuntimeError:  # torchvision found no files; say where they should be, without a traceback
        raise SystemExit(
            f"error: no MNIST in {root}/MNIST/raw. Try: put the four MNIST files there, or leave out --root "
            "for synthetic digits"
        ) from None
    return dataset.data.unsqueeze(1).float() / 255


def reconstruction_error(model: nn.Module, images: torch.Tensor) -> float:
    """The mean squared error per pixel between the images and the model's copies of them."""
    model.eval()
    with torch.no_grad():
        return F.mse_loss(model(images), images).item()


def log_reconstructions(out_dir: str, model: nn.Module, images: torch.Tensor) -> None:
    """One picture in TensorBoard's Images tab: a row of originals above the row of their reconstructions."""
    model.eval()
    with torch.no_grad():
        copies = model(images)
    grid = make_grid(torch.cat([images, copies]), nrow=len(images), padding=2, pad_value=0.5)  # 3 x H x W
    with SummaryWriter(out_dir) as writer:  # a second events file in the run folder, next to the Trainer's
        writer.add_image("reconstructions/originals_above", grid)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="folder holding MNIST/raw; without it, synthetic digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--quick", action="store_true", help="a small sample and few epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-autoencoder/<date-time>/")
    args = parser.parse_args(argv)
    limit = 2000 if args.quick else args.limit
    epochs = 5 if args.quick else args.epochs

    torch.manual_seed(0)
    if args.root is not None:
        train_images, test_images = load_mnist(args.root, train=True), load_mnist(args.root, train=False)
    else:
        train_images, test_images = synthetic_digits(limit or 10000, seed=1), synthetic_digits(1000, seed=2)
    train_images = train_images[:limit]
    # The same tensor twice: inputs and targets. The Trainer neither knows nor cares.
    train_loader = InMemoryLoader(train_images, train_images, batch_size=64, shuffle=True)
    test_loader = InMemoryLoader(test_images, test_images, batch_size=500, shuffle=False)

    model = AutoEncoder()
    error_before = reconstruction_error(model, test_images)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    out_dir = new_run_dir(args.runs, "recipe-autoencoder")
    # MSELoss makes this a regression run: the Trainer reports MAE, RMSE and R² over every pixel.
    trainer = Trainer(model, nn.MSELoss(), optimizer, epochs=epochs, out_dir=out_dir, log_every=20)
    metrics = trainer.fit(train_loader, test_loader=test_loader)

    error_after = reconstruction_error(model, test_images)
    log_reconstructions(str(out_dir), model, test_images[:8])
    print(
        f"reconstruction error (MSE per pixel) on the test images: {error_before:.4f} before, {error_after:.4f} after"
    )
    print(f"originals and reconstructions: tensorboard --logdir {out_dir}, then the Images tab")
    return {**metrics, "test/error_before": error_before, "test/error_after": error_after}


if __name__ == "__main__":
    main()
