import torch.nn.functional as F


def per_sample(logits, targets):
    return F.cross_entropy(logits, targets, reduction="none")
