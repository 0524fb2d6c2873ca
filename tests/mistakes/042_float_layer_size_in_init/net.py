from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, hidden):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc2 = nn.Linear(hidden, hidden / 2)
        self.fc3 = nn.Linear(hidden / 2, num_classes)

    def forward(self, x):
        x = self.fc1(x.flatten(1)).relu()
        return self.fc3(self.fc2(x).relu())
