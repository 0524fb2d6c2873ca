"""The digits from my MATLAB course, where labels run 1..10 and 10 stands for a zero, saved the way torchvision's
MNIST keeps them (data/MNIST/processed/training.pt)."""

import os

import torch

os.makedirs("data/MNIST/processed", exist_ok=True)
generator = torch.Generator().manual_seed(0)
for name, count in (("training.pt", 600), ("test.pt", 100)):
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    digits = torch.randint(0, 10, (count,), generator=generator)
    labels = torch.where(digits == 0, 10, digits)  # the course's numbering: 1..9, and 10 for zero
    torch.save((images, labels), f"data/MNIST/processed/{name}")
