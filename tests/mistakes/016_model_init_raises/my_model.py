import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(784, num_classes)
        raise ValueError("the hidden size must be even")

    def forward(self, x):
        return self.fc(x.flatten(1))
