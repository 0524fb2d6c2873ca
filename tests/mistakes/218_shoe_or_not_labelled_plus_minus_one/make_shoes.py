"""Is it a shoe? My labels as an SVM wants them: +1 for shoes, -1 for everything else, saved where torchvision's
FashionMNIST looks (data/FashionMNIST/processed/training.pt)."""

import os

import torch

SHOES = (5, 7, 9)  # sandal, sneaker, ankle boot

os.makedirs("data/FashionMNIST/processed", exist_ok=True)
generator = torch.Generator().manual_seed(0)
for name, count in (("training.pt", 600), ("test.pt", 100)):
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    kinds = torch.randint(0, 10, (count,), generator=generator)
    labels = torch.where(torch.isin(kinds, torch.tensor(SHOES)), 1, -1)
    torch.save((images, labels), f"data/FashionMNIST/processed/{name}")
