import torch.nn.functional as F


def my_loss(logits, targets):
    return F.nll_loss(logits, targets)
