from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(784, num_classes)

    def forward(self, x):
        outputs = []
        outputs.append(self.fc(x.flatten(1)))
        return outputs
