class GoodEnough:
    """Stop training once validation accuracy reaches the target."""

    def __init__(self, target):
        self.target = target

    def on_epoch_end(self, trainer, epoch, metrics):
        return metrics["val/accuracy"] >= self.target
