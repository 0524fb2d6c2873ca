import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.weight = torch.randn(784, num_classes, requires_grad=True)
        self.bias = torch.zeros(num_classes, requires_grad=True)

    def forward(self, x):
        return x.flatten(1) @ self.weight + self.bias
