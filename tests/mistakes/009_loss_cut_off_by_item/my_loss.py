import torch
import torch.nn.functional as F


def detached(logits, targets):
    return torch.tensor(F.cross_entropy(logits, targets).item())
