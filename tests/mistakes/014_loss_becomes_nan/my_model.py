import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(784, num_classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        logits = self.fc(x.flatten(1))
        if self.calls > 6:  # a few good calls (checks and steps), then NaN
            logits = logits * torch.log(-torch.ones_like(logits))
        return logits
