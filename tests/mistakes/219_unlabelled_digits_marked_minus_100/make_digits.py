"""My digits, saved the way torchvision's MNIST keeps them (data/MNIST/processed/training.pt). Nobody has labelled
every tenth one yet: those get -100, which the loss leaves out."""

import os

import torch

NOT_LABELLED = -100

os.makedirs("data/MNIST/processed", exist_ok=True)
generator = torch.Generator().manual_seed(0)
for name, count in (("training.pt", 600), ("test.pt", 100)):
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    labels[::10] = NOT_LABELLED
    torch.save((images, labels), f"data/MNIST/processed/{name}")
