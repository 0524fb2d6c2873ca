class DebugCallback:
    def on_fit_start(self, trainer):
        print("training start")

    def on_epoch_end(self, args, state, control, **kwargs):
        print("epoch", state.epoch)
        print(state.log_history[-1])
