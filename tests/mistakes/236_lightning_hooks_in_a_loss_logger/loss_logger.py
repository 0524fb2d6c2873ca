class LossLogger:
    def __init__(self):
        self.train_loss = []
        self.val_loss = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.train_loss.append(float(trainer.callback_metrics["train_loss"]))

    def on_validation_epoch_end(self, trainer, pl_module):
        self.val_loss.append(float(trainer.callback_metrics["val_loss"]))
