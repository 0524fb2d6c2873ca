import torch.nn.functional as F


def my_loss(logits, targets):
    targets = targets.view(-1, 1)
    return F.cross_entropy(logits, targets)
