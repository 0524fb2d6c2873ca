"""Photos of my clothes, 28x28 grey, sorted in a spreadsheet whose categories are numbered 1..10, saved the way
torchvision's FashionMNIST keeps them (data/FashionMNIST/processed/training.pt)."""

import os

import torch

os.makedirs("data/FashionMNIST/processed", exist_ok=True)
generator = torch.Generator().manual_seed(0)
for name, count in (("training.pt", 600), ("test.pt", 100)):
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    category = torch.randint(1, 11, (count,), generator=generator)  # the spreadsheet's numbers, 1..10
    torch.save((images, category), f"data/FashionMNIST/processed/{name}")
