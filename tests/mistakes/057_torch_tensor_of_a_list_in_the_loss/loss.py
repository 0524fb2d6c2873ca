import torch
import torch.nn.functional as F


def my_loss(logits, targets):
    losses = [F.cross_entropy(logits[i : i + 1], targets[i : i + 1]) for i in range(len(targets))]
    return torch.tensor(losses).mean()
