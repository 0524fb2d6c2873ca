import torch.nn.functional as F


def my_loss(logits, targets):
    return F.cross_entropy(logits, F.one_hot(targets, num_classes=10))
