class EarlyStoppingByLossVal:
    def __init__(self, monitor="val_loss", close_enough=1.0):
        self.monitor = monitor
        self.close_enough = close_enough

    def on_epoch_end(self, epoch, logs={}):
        current = logs.get(self.monitor)
        if current is not None and current < self.close_enough:
            print("Epoch %05d: early stopping THR" % epoch)
            self.model.stop_training = True
