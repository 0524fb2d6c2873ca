"""`eject`: the plain PyTorch script a config stands for, with no `trainer` import, to read, run and change.

The script does what a leaptrain run does, in the same order and with the same random draws: seed, load the data
and hold out the same validation samples, build the same layers, shuffle with the same generator, take the same
steps. So it reaches the same losses (tests/test_eject.py checks). What it leaves out is what the framework adds
around the loop: checkpoints, resume, TensorBoard, the checks and the messages.
"""

from __future__ import annotations

import textwrap
from typing import Any

from trainer.config import CNNModel, Config, MLPModel, SyntheticData, VisionData
from trainer.diagnostics import takes_class_indices
from trainer.errors import UserError

TOTAL_STEPS = 987_654_321  # a marker for the schedule's length, which the script computes from the data it loads


def eject_script(cfg: Config, source_name: str) -> str:
    """The script, as text."""
    parts = [
        _header(cfg, source_name),
        _data(cfg),
        _model(cfg),
        _loop(cfg),
    ]
    return "\n\n\n".join(textwrap.dedent(part).strip("\n") for part in parts) + "\n"


def _unsupported(what: str, key: str) -> UserError:
    return UserError(
        f"eject writes plain scripts for mnist, fashion_mnist and synthetic data with the mlp or cnn model, not {what}",
        fix="eject a config with those (e.g. configs/mnist.yaml) to see the loop; the framework runs this one",
        key=key,
    )


def _header(cfg: Config, source_name: str) -> str:
    return f'''
        """Plain PyTorch: what `python -m trainer {source_name}` does, written out by `python -m trainer eject`.

        Run it with `python THIS_FILE`. It trains the same model on the same data, in the same order, as the
        config: the losses it prints match the run's. Change anything: it is an ordinary PyTorch script.
        """

        import math
        import random

        import torch
        from torch import nn

        SEED = {cfg.seed}
        EPOCHS = {cfg.train.epochs}
        BATCH_SIZE = {cfg.data.batch_size}
        VAL_SPLIT = {cfg.data.val_split}
        DEVICE = torch.device("cpu")  # or "cuda" when you have a GPU
        '''


def _data(cfg: Config) -> str:
    data = cfg.data
    if isinstance(data, VisionData):
        from trainer.components.torchvision_data import PIXEL_STATS

        mean, std = PIXEL_STATS[data.dataset]
        dataset_class = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[data.dataset]
        return f'''
            def load_data():
                """Training and test images as normalized float tensors: the whole data set fits in memory."""
                from torchvision import datasets

                splits = []
                for train in (True, False):
                    dataset = datasets.{dataset_class}({data.root!r}, train=train, download={data.download})
                    pixels = dataset.data.unsqueeze(1).float().div_(255)  # N x 1 x 28 x 28, in [0, 1]
                    splits += [(pixels - {mean}) / {std}, dataset.targets.long()]  # mean 0, std 1
                return splits


            NUM_CLASSES = 10
            '''
    if isinstance(data, SyntheticData):
        return _synthetic(data)
    raise _unsupported(f"'{data.dataset}' data", "data.dataset")


def _synthetic(data: SyntheticData) -> str:
    import inspect

    from trainer.components import toy

    maker = inspect.getsource(toy.MAKERS[data.kind])
    # The generator's own code, with the config's values in place of `cfg.<key>`.
    for key in ("classes", "features", "noise"):
        maker = maker.replace(f"cfg.{key}", repr(getattr(data, key)))
    maker = maker.replace("cfg: SyntheticData, n: int, generator: torch.Generator", "n, generator")
    maker = maker.replace(" -> tuple[torch.Tensor, torch.Tensor]", "")
    private = maker.split("(")[0].removeprefix("def ").strip()
    name = private.lstrip("_")
    maker = maker.replace(f"def {private}(", f"def {name}(")
    outputs = 1 if data.kind == "sine" else 2 if data.kind in ("moons", "circles") else data.classes
    rest = f"""
        def load_data():
            \"\"\"{data.samples} training and {data.test_samples} test points, drawn from the seed.\"\"\"
            generator = torch.Generator().manual_seed(SEED)
            inputs, targets = {name}({data.samples + data.test_samples}, generator)
            return inputs[:{data.samples}], targets[:{data.samples}], inputs[{data.samples}:], targets[{data.samples}:]


        NUM_CLASSES = {outputs}  # outputs of the model
        """
    return maker.strip() + "\n\n\n" + textwrap.dedent(rest).strip()


def _model(cfg: Config) -> str:
    model = cfg.model
    activation = {"relu": "nn.ReLU", "gelu": "nn.GELU", "silu": "nn.SiLU", "tanh": "nn.Tanh", "sigmoid": "nn.Sigmoid"}
    if isinstance(model, MLPModel):
        act = activation.get(model.activation, "nn.LeakyReLU")
        return f'''
            class Model(nn.Sequential):
                """Flatten; Linear, {model.activation} and dropout per hidden layer; a Linear to the outputs."""

                def __init__(self, in_features, num_outputs):
                    layers = [nn.Flatten()]
                    for width in {model.hidden}:
                        layers += [nn.Linear(in_features, width), {act}(), nn.Dropout({model.dropout})]
                        in_features = width
                    layers.append(nn.Linear(in_features, num_outputs))
                    super().__init__(*layers)
            '''
    if isinstance(model, CNNModel):
        act = activation.get(model.activation, "nn.LeakyReLU")
        conv_args = f"{model.kernel_size}, padding={model.kernel_size // 2}, bias={not model.batch_norm}"
        norm = "\n                            nn.BatchNorm2d(out_channels)," if model.batch_norm else ""
        return f'''
            class Model(nn.Module):
                """Conv blocks that halve the image each time, then a small fully connected head."""

                def __init__(self, input_shape, num_outputs):
                    super().__init__()
                    in_channels, height, width = input_shape
                    blocks = []
                    for out_channels in {model.channels}:
                        blocks += [
                            nn.Conv2d(in_channels, out_channels, {conv_args}),{norm}
                            {act}(),
                            nn.MaxPool2d(2),
                        ]
                        in_channels, height, width = out_channels, height // 2, width // 2
                    self.features = nn.Sequential(*blocks)
                    self.head = nn.Sequential(
                        nn.Flatten(),
                        nn.Linear(in_channels * height * width, {model.fc}),
                        {act}(),
                        nn.Dropout({model.dropout}),
                        nn.Linear({model.fc}, num_outputs),
                    )

                def forward(self, x):
                    return self.head(self.features(x))
            '''
    raise _unsupported(f"model '{model.name}'", "model.name")


def _refuse_what_it_cannot_write(cfg: Config) -> None:
    """The train settings the script cannot do as the run does are refused, never dropped in silence."""
    train = cfg.train
    refused = [
        ("train.accumulate", train.accumulate != 1, f"accumulate: {train.accumulate}", "train.accumulate=1"),
        ("train.early_stopping", train.early_stopping is not None, "early_stopping", "train.early_stopping=null"),
        ("train.precision", train.precision == "fp16", "precision: fp16 (CUDA only)", "train.precision=bf16"),
    ]
    for key, present, what, instead in refused:
        if present:
            raise UserError(
                f"eject writes a plain loop without {what}: the script would not train as the run does",
                fix=f"eject with {instead} to see the loop (python -m trainer eject CONFIG {instead}); "
                "the framework runs the config as it is",
                key=key,
            )


def _loop(cfg: Config) -> str:
    from trainer.components.losses import _find
    from trainer.components.optim import _optimizer_class, _scheduler_args, steps_every_batch

    _refuse_what_it_cannot_write(cfg)

    loss = _find(cfg.loss)
    if not isinstance(loss, type):
        raise _unsupported(f"the loss function '{cfg.loss.name}'", "loss.name")
    loss_line = f"nn.{loss.__name__}({_kwargs(cfg.loss.args)})"
    optimizer = _optimizer_class(cfg.optimizer)
    assert optimizer is not None
    optimizer_line = (
        f"torch.optim.{optimizer.__name__}(model.parameters(), lr={cfg.optimizer.lr!r}{_more(cfg.optimizer.args)})"
    )
    scheduler, args = _scheduler_args(cfg.scheduler, cfg.optimizer.lr, TOTAL_STEPS)
    per_batch = steps_every_batch(cfg.scheduler)
    if scheduler is None:
        scheduler_line = "None"
    else:
        length = "EPOCHS * steps_per_epoch" if per_batch else "EPOCHS"
        kwargs = _kwargs(args).replace(str(TOTAL_STEPS), length)
        scheduler_line = f"torch.optim.lr_scheduler.{scheduler.__name__}(optimizer, {kwargs})"
    plateau = scheduler is not None and scheduler.__name__ == "ReduceLROnPlateau"
    epoch_step = "scheduler.step(val_loss)" if plateau else "scheduler.step()"
    classification = takes_class_indices(loss)
    accuracy = "(outputs.argmax(dim=1) == y).sum().item()" if classification else "0"
    model_input = "tuple(train_x.shape[1:])" if isinstance(cfg.model, CNNModel) else "train_x[0].numel()"
    val_accuracy_text = "  val/accuracy {val_accuracy:.4f}" if classification else ""
    # The settings of train: each written where the run applies it, and only when it is on.
    body = " " * 20  # the indentation of the loop's body in the template below, before it is dedented
    train_layout = eval_layout = place = compiled = ""
    if cfg.train.channels_last:  # as the run has it
        layout = "x = x.contiguous(memory_format=torch.channels_last)  # the layout conv kernels run fastest on"
        train_layout, eval_layout = f"\n{body}{layout}", f"\n{' ' * 16}{layout}"
        place = ", memory_format=torch.channels_last"
    if cfg.train.compile:
        mode = f", mode={cfg.train.compile!r}" if isinstance(cfg.train.compile, str) else ""
        compiled = f"\n{' ' * 12}model = torch.compile(model{mode}, dynamic=False)  # compiled once per input shape"
    autocast = ""
    if cfg.train.precision == "bf16":
        autocast = 'with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16: float32\'s range, half its bytes'
    forward_train = _forward(autocast, "outputs = model(x)", "loss = loss_fn(outputs, y)", indent=20)
    forward_eval = _forward(autocast, "outputs = model(x)", "loss = loss_fn(outputs, y)", indent=16)
    clip = ""
    if cfg.train.grad_clip is not None:
        clip = f"\n{body}nn.utils.clip_grad_norm_(model.parameters(), {cfg.train.grad_clip!r})  # train.grad_clip"
    batch_step = f"\n{body}scheduler.step()  # the learning rate for the next step" if per_batch and scheduler else ""
    epoch_line = f"\n{' ' * 16}{epoch_step}  # once an epoch" if scheduler is not None and not per_batch else ""
    return f'''
        @torch.no_grad()
        def evaluate(model, loss_fn, inputs, targets):
            """Mean loss{" and accuracy" if classification else ""} over a split, in batches, without gradients."""
            model.eval()
            loss_sum, right = 0.0, 0
            for start in range(0, len(targets), BATCH_SIZE * 4):
                x, y = inputs[start : start + BATCH_SIZE * 4], targets[start : start + BATCH_SIZE * 4]{eval_layout}
{forward_eval}
                loss_sum += loss.item() * len(y)
                right += {accuracy}
            return loss_sum / len(targets), right / len(targets)


        def main():
            random.seed(SEED)
            torch.manual_seed(SEED)  # the same seed: the same first weights, the same dropout
            train_x, train_y, test_x, test_y = load_data()
            # Hold out VAL_SPLIT of the training samples for validation, always the same ones for the same seed.
            order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(SEED))
            n_val = int(len(train_y) * VAL_SPLIT)
            val_x, val_y = train_x[order[:n_val]], train_y[order[:n_val]]
            train_x, train_y = train_x[order[n_val:]], train_y[order[n_val:]]

            model = Model({model_input}, NUM_CLASSES).to(DEVICE{place}){compiled}
            loss_fn = {loss_line}
            optimizer = {optimizer_line}
            steps_per_epoch = math.ceil(len(train_y) / BATCH_SIZE)
            scheduler = {scheduler_line}
            shuffle = torch.Generator().manual_seed(SEED)  # a new order of the training samples each epoch

            for epoch in range(1, EPOCHS + 1):
                model.train()
                loss_sum, right = 0.0, 0
                for index in torch.randperm(len(train_y), generator=shuffle).split(BATCH_SIZE):
                    x, y = train_x[index].to(DEVICE), train_y[index].to(DEVICE){train_layout}
{forward_train}
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # autograd: the gradient of the loss for every parameter{clip}
                    optimizer.step()  # each parameter moves a little against its gradient{batch_step}
                    loss_sum += loss.item() * len(y)
                    right += {accuracy}
                train_loss = loss_sum / len(train_y)
                line = f"epoch {{epoch}}/{{EPOCHS}}  train/loss {{train_loss:.6f}}"
                if n_val:
                    val_loss, val_accuracy = evaluate(model, loss_fn, val_x.to(DEVICE), val_y.to(DEVICE))
                    line += f"  val/loss {{val_loss:.6f}}{val_accuracy_text}"{epoch_line}
                print(line)

            test_loss, test_accuracy = evaluate(model, loss_fn, test_x.to(DEVICE), test_y.to(DEVICE))
            print(f"test/loss {{test_loss:.6f}}{"  test/accuracy {test_accuracy:.4f}" if classification else ""}")


        if __name__ == "__main__":
            main()
        '''


def _forward(autocast: str, *lines: str, indent: int) -> str:
    """The forward lines at `indent` spaces (as the dedented template has them), under autocast when it is on."""
    pad = " " * indent
    if not autocast:
        return "\n".join(pad + line for line in lines)
    return "\n".join([pad + autocast, *(pad + "    " + line for line in lines)])


def _kwargs(args: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in args.items())


def _more(args: dict[str, Any]) -> str:
    return f", {_kwargs(args)}" if args else ""
