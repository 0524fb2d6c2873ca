import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.layers = [nn.Linear(784, 32), nn.Linear(32, num_classes)]
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x * self.scale
