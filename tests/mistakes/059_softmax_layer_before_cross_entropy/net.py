from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, num_classes), nn.Softmax(dim=1)
        )

    def forward(self, x):
        return self.layers(x)
