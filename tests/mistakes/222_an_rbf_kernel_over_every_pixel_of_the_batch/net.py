import torch
from torch import nn


class PixelKernel(nn.Module):
    """Compares every pixel value with every other one (an RBF kernel), then classifies."""

    def __init__(self, num_classes):
        super().__init__()
        self.head = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x):
        values = x.reshape(-1, 1)  # every value of the whole batch, not of one image
        kernel = torch.exp(-torch.cdist(values, values))
        return self.head(x.flatten(1)) + kernel.mean()
