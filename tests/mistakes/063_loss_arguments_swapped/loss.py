import torch.nn.functional as F


def my_loss(logits, targets):
    return F.cross_entropy(targets, logits)
