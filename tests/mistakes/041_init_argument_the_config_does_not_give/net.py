from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, hidden_size):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)).relu())
