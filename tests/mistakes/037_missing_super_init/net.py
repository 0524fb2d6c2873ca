from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        self.fc = nn.Linear(784, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
