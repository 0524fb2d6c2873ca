from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.embed = nn.Embedding(256, 4)
        self.fc = nn.Linear(784 * 4, num_classes)

    def forward(self, x):
        vectors = self.embed(x.flatten(1))
        return self.fc(vectors.flatten(1))
