"""Photos of my clothes, 28x28 grey, saved the way torchvision's FashionMNIST keeps them
(data/FashionMNIST/processed/training.pt). The ones I could not sort are labelled -1 for now."""

import os

import torch

UNSORTED = -1

os.makedirs("data/FashionMNIST/processed", exist_ok=True)
generator = torch.Generator().manual_seed(0)
for name, count in (("training.pt", 600), ("test.pt", 100)):
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    labels[::6] = UNSORTED
    torch.save((images, labels), f"data/FashionMNIST/processed/{name}")
