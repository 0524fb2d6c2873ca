import torch.nn.functional as F


def my_loss(logits, targets):
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    return loss
