import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.digit = nn.Linear(784, num_classes)
        self.parity = nn.Linear(784, 2)

    def forward(self, x):
        x = x.flatten(1)
        both = torch.stack([self.digit(x), self.parity(x)])
        return both.mean(0)
