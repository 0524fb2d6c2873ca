from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, width=32):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.layers(x)
