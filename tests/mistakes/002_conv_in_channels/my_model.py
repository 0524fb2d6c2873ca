import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3)
        self.fc = nn.Linear(8 * 26 * 26, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
