from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc1 = nn.Linear(784, 64),
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.fc1(x.flatten(1)).relu()
        return self.fc2(x)
