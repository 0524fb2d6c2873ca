import torch.nn.functional as F


def my_loss(logits, targets):
    predictions = logits.argmax(dim=1).float()
    return F.mse_loss(predictions, targets.float())
