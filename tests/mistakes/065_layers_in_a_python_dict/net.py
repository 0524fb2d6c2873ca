import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.heads = {"digit": nn.Linear(784, num_classes)}
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.heads["digit"](x.flatten(1)) * self.scale
