class PrintAccuracy:
    def on_epoch_end(self, trainer, epoch, metrics):
        print(f"epoch {epoch}: accuracy {metrics['acc']:.3f}, val accuracy {metrics['val_acc']:.3f}")
