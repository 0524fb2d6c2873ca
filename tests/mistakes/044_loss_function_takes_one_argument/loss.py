import torch.nn.functional as F


def my_loss(logits):
    return F.cross_entropy(logits, logits.argmax(1))
