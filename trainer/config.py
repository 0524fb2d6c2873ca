"""The config schema: every key a config may hold, its default and what it means. This file is the reference.

Components chosen by name (model, loss, optimizer, scheduler) take their other keys as constructor
arguments; those are checked against the constructor's real signature before anything is built
(see trainer/components/), so the reference for `optimizer.betas` is torch's own AdamW.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from trainer.numbers import Role

COMPONENT_SECTIONS = ("model", "loss", "optimizer", "scheduler")
# Keys an override like `optimizer=sgd` keeps: they mean the same for every class of the section.
KEPT_WHEN_RENAMED = {"optimizer": ("lr",)}


class Section(BaseModel):
    """A config section whose keys are all known: a typo is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


class Component(BaseModel):
    """A class chosen by `name`; every other key is passed to its constructor (checked against its signature)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="short name (e.g. adamw), torch class name (e.g. AdamW) or file.py:Name")

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataCommon(Section):
    batch_size: Annotated[int, Role()] = Field(128, description="samples per training step")
    val_split: Annotated[float, Role()] = Field(
        0.1, description="fraction of the training set held out for validation (0.1 is 10%)"
    )


class VisionData(DataCommon):
    """MNIST-style data sets read with torchvision's own code and held in memory as normalized tensors."""

    dataset: Literal["mnist", "fashion_mnist"] = Field(description="which data set")
    root: str = Field("data", description="folder holding the data set (torchvision layout: <root>/MNIST/raw)")
    download: bool = Field(True, description="download the files when they are missing")


Augmentation = Literal["random_crop", "horizontal_flip"]


class CifarData(DataCommon):
    """CIFAR-10/100 read with torchvision's own code, kept in memory as uint8 and normalized and augmented on the
    training device a whole batch at a time."""

    dataset: Literal["cifar10", "cifar100"] = Field(description="which data set")
    root: str = Field(
        "data", description="folder holding the data set (torchvision layout: <root>/cifar-10-batches-py)"
    )
    download: bool = Field(True, description="download the files when they are missing")
    augment: list[Augmentation] = Field(
        ["random_crop", "horizontal_flip"], description="training-time changes to each image, drawn anew each epoch"
    )
    crop_padding: int = Field(4, ge=0, description="random_crop: pixels of padding around the image before cropping")


class ImageFolderData(DataCommon):
    """Your own images: <root>/<class>/*.jpg|png|..., or <root>/train/<class>/ and <root>/val/<class>/."""

    dataset: Literal["image_folder"] = Field(description="your own images, one folder per class")
    root: str = Field(description="folder with one sub-folder per class (or train/ and val/ sub-folders)")
    image_size: Annotated[int, Field(gt=0)] | tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] = Field(
        64, description="every image is resized to this (one number: square; or [height, width])"
    )
    grayscale: bool = Field(False, description="read the images as one grey channel instead of RGB")
    augment: list[Augmentation] = Field(
        ["random_crop", "horizontal_flip"], description="training-time changes to each image, drawn anew each epoch"
    )
    crop_padding: int = Field(4, ge=0, description="random_crop: pixels of padding around the image before cropping")
    cache: Literal["auto", "memory", "disk"] = Field(
        "auto",
        description="memory: decode every image once and keep the tensors; disk: decode in DataLoader workers "
        "each epoch; auto: memory when it fits in a quarter of the free memory",
    )
    workers: int | Literal["auto"] = Field(
        "auto",
        description="DataLoader worker processes when not cached (auto: the CPU count, 0 where unsafe); "
        "decoding into the memory cache uses one thread per core",
    )
    max_pixels: int = Field(
        90_000_000,
        gt=0,
        description="an image with more pixels (width x height) than this is skipped, by its header, before it is "
        "decoded: a small file can unpack into gigabytes; raise it for larger photos",
    )
    mean: list[Annotated[float, Field(ge=0, le=1)]] | None = Field(
        None,
        description="each channel's mean (0 to 1) to normalize with; by default measured on the training images, "
        "or the pretrained weights' own (model.weights)",
    )
    std: list[Annotated[float, Field(gt=0)]] | None = Field(
        None, description="each channel's standard deviation (0 to 1) to normalize with; by default as for mean"
    )


class CsvData(DataCommon):
    """A table: one row per sample, a target column, and numeric or text (categorical) feature columns."""

    dataset: Literal["csv"] = Field(description="a table in a CSV file")
    path: str = Field(description="the CSV file (with a header row); the validation split is taken out of it")
    val_path: str | None = Field(None, description="a separate CSV file for validation (then val_split is not used)")
    test_path: str | None = Field(None, description="a separate CSV file for the test split")
    target: str = Field(description="the column to predict")
    features: list[str] | None = Field(None, description="the input columns; by default every other column")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="auto: classification when the target holds text or a few whole numbers, else regression"
    )
    test_split: Annotated[float, Role()] = Field(
        0.0, description="fraction of the rows held out for the test split (when no test_path; 0.2 is 20%)"
    )
    text: list[str] | None = Field(
        None,
        description="columns of free text (reviews, messages, titles), read as words; by default every text column "
        "whose cells hold several words and mostly differ from each other. [] reads none as words",
    )
    vocab_size: int = Field(
        20000, gt=0, description="text: the most frequent words of the training rows the model learns a meaning for"
    )
    min_word_count: int = Field(
        2, gt=0, description="text: a word seen fewer times than this in the training rows counts as unknown"
    )
    max_words: int = Field(100, gt=0, description="text: the first words of each text that the model reads")


class SyntheticData(DataCommon):
    """Generated toy problems for learning and tests: classes of 2-D points, or a curve to fit."""

    dataset: Literal["synthetic"] = Field(description="generated toy problems")
    kind: Literal["blobs", "spirals", "moons", "circles", "sine"] = Field(
        "blobs",
        description="blobs, spirals, moons, circles: classes of points; sine: fit y = sin(x) plus noise (regression)",
    )
    samples: Annotated[int, Role()] = Field(2000, description="training samples (validation is taken out of these)")
    test_samples: Annotated[int, Role()] = Field(500, description="samples in the separate test split")
    features: int = Field(2, gt=0, description="input features of blobs (the other kinds have their own: 2, sine 1)")
    classes: int = Field(3, ge=2, description="number of classes (moons and circles always have 2)")
    noise: float = Field(0.5, ge=0, description="spread of the points around their class (or the curve)")


DataConfig = Annotated[
    VisionData | CifarData | ImageFolderData | CsvData | SyntheticData, Field(discriminator="dataset")
]


Activation = Literal["relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu"]


class MLPModel(Section):
    """Fully connected layers on the flattened input."""

    name: Literal["mlp"] = Field(description="the built-in fully connected network")
    hidden: list[Annotated[int, Field(gt=0)]] = Field([256, 128], description="units of each hidden layer")
    activation: Activation = Field("relu", description="the non-linearity after each layer")
    dropout: Annotated[float, Role()] = Field(
        0.0, description="dropout after each hidden layer: the share of units zeroed (0.1 is 10%)"
    )
    embedding_dim: int = Field(
        32, gt=0, description="a table's text columns: the size of the vector learned for each word"
    )


class CNNModel(Section):
    """Conv blocks (conv, [batch norm], activation, 2x2 max-pool), then one hidden fully connected layer."""

    name: Literal["cnn"] = Field(description="the built-in conv network")
    channels: list[Annotated[int, Field(gt=0)]] = Field([32, 64], description="output channels of each conv block")
    kernel_size: int = Field(3, gt=0, description="conv kernel size (odd sizes keep the image size)")
    fc: int = Field(128, gt=0, description="units of the hidden fully connected layer")
    dropout: Annotated[float, Role()] = Field(
        0.25, description="dropout before the last layer: the share of units zeroed (0.25 is 25%)"
    )
    batch_norm: bool = Field(True, description="batch norm after each conv")
    activation: Activation = Field("relu", description="the non-linearity after each layer")


class ResNetModel(Section):
    """A small residual conv net for images such as CIFAR: a stem conv, then per stage a conv, 2x2 max-pool and a
    residual block of two convs (the input added back to their output), then global max-pool and one linear layer."""

    name: Literal["resnet"] = Field(description="the built-in small residual network")
    stem: int = Field(32, gt=0, description="output channels of the first conv")
    channels: list[Annotated[int, Field(gt=0)]] = Field(
        [64, 128, 256], description="output channels of each stage; each stage halves the image"
    )
    dropout: Annotated[float, Role()] = Field(
        0.0, description="dropout before the last layer: the share of units zeroed (0.1 is 10%)"
    )


class OtherModel(Component):
    """Any torchvision.models builder (e.g. resnet18), with pretrained weights or not, or path/to/file.py:ClassName."""

    weights: str | None = Field(
        None,
        description="a torchvision model's trained weights: DEFAULT (the best torchvision has, downloaded once), a "
        "weights name such as IMAGENET1K_V1, or path/to/weights.pth; the last layer is replaced for your classes",
    )
    freeze: Literal["backbone", "none"] | None = Field(
        None,
        description="with weights: backbone (the default then) trains only the new last layer (few images, a CPU); "
        "none trains every layer (more images; see train.fine_tune for both in turn)",
    )


def model_kind(value: Any) -> str:
    """Which model section a model (a dict or a parsed section) is: mlp, cnn or resnet, else other."""
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return name if name in ("mlp", "cnn", "resnet") else "other"


ModelConfig = Annotated[
    Annotated[MLPModel, Tag("mlp")]
    | Annotated[CNNModel, Tag("cnn")]
    | Annotated[ResNetModel, Tag("resnet")]
    | Annotated[OtherModel, Tag("other")],
    Discriminator(model_kind),
]


class LossConfig(Component):
    """cross_entropy, mse, l1, smooth_l1, bce_with_logits, nll, any torch.nn loss by class name, or file.py:name."""

    name: str = Field("cross_entropy", description="the loss: a short name, a torch.nn class or file.py:name")


class OptimizerConfig(Component):
    """sgd, adam, adamw, rmsprop or any torch.optim class by name."""

    name: str = Field("adamw", description="the optimizer: a short name or a torch.optim class")
    lr: Annotated[float, Role()] = Field(
        1e-3, description="learning rate (about 1e-3 for Adam and AdamW, 1e-2 to 1e-1 for SGD)"
    )


class SchedulerConfig(Component):
    """none, step, cosine, one_cycle, plateau, or any torch.optim.lr_scheduler class by name.

    one_cycle and cosine fill in their lengths from the run and step every batch; other schedulers step
    once an epoch (ReduceLROnPlateau on val/loss).
    """

    name: str = Field("none", description="the learning-rate schedule: a short name or a torch class")


class EarlyStopping(Section):
    """Stop when the monitored metric has not improved for `patience` epochs; best.pt follows it too."""

    monitor: str = Field("val/loss", description="a metric of the run: val/loss, val/accuracy, train/loss, ...")
    mode: Literal["min", "max"] | None = Field(
        None, description="min when lower is better, max when higher is; by default max for accuracy, top5 and r2"
    )
    patience: Annotated[int, Role()] = Field(
        3, description="epochs without improvement before stopping (fewer than train.epochs)"
    )
    min_delta: float = Field(0.0, ge=0, description="a change smaller than this does not count as improvement")


class FineTune(Section):
    """Fine-tune a pretrained model in two phases, as fastai's fine_tune does: the new last layer alone with the
    backbone frozen, then every layer, the backbone at a lower learning rate."""

    head_epochs: int = Field(1, ge=1, description="epochs that train only the new last layer (fewer than train.epochs)")
    body_lr_factor: float = Field(
        0.1, gt=0, le=1, description="the backbone's learning rate once unfrozen, as a share of optimizer.lr"
    )


class TrainConfig(Section):
    """How to train: epochs, device, precision, gradient handling, early stopping."""

    epochs: Annotated[int, Role()] = Field(3, description="passes over the training set")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto picks CUDA when present")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="fp16 needs CUDA; bf16 works on CPU too")
    preflight: bool = Field(True, description="before training, check one batch through model, loss and backward")
    early_stopping: EarlyStopping | None = Field(None, description="stop when the monitored metric stalls")
    fine_tune: FineTune | None = Field(
        None, description="with model.weights: train the new last layer first, then unfreeze the backbone"
    )
    grad_clip: Annotated[float, Role()] | None = Field(
        None, description="cap the total gradient norm at this value (0.5 to 5 is usual)"
    )
    accumulate: Annotated[int, Role()] = Field(
        1, description="add up the gradients of this many batches before each step"
    )
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = Field(
        False,
        description="torch.compile the model (slow start, faster steps on a GPU); a name is torch.compile's mode: "
        "reduce-overhead (CUDA graphs, for small batches), max-autotune (the longest search, the fastest kernels)",
    )
    channels_last: bool = Field(False, description="channels-last memory layout for conv nets (faster on GPUs)")
    sync_batchnorm: bool = Field(
        False,
        description="torchrun on GPUs: batch norm statistics over the whole global batch, not each process's part",
    )


class LogConfig(Section):
    """What a run shows and keeps: where runs go, TensorBoard, metrics, pictures, progress bars."""

    dir: str = Field("runs", description="runs are saved in <dir>/<name>/<YYYYmmdd-HHMMSS>/")
    every_n_steps: Annotated[int, Role()] = Field(
        50, description="how often the training loss goes to TensorBoard (in optimizer steps)"
    )
    histograms: Annotated[int, Role()] = Field(0, description="weight and gradient histograms every N epochs (0: none)")
    metrics: list[str] | None = Field(
        None,
        description="what evaluation reports; by default accuracy, top5 (over 5 classes), per_class_accuracy and "
        "confusion_matrix for classes, mae, rmse and r2 for numbers",
    )
    graph: bool = Field(True, description="the model's graph in TensorBoard's Graphs tab")
    pictures: bool = Field(True, description="confusion matrix and sample predictions in TensorBoard's Images tab")
    progress: bool = Field(
        True, description="progress bars in a terminal or notebook (never in a log file: one line per epoch there)"
    )
    loggers: list[Literal["tensorboard", "csv", "mlflow"]] = Field(
        ["tensorboard"],
        description="where metrics go besides metrics.jsonl: tensorboard, csv (metrics.csv in the run folder), "
        "mlflow (pip install leaptrain[mlflow])",
    )
    mlflow_uri: str | None = Field(
        None, description="mlflow's tracking store: sqlite:///mlflow.db, http://host:5000, ...; default: under log.dir"
    )


class CallbackConfig(Component):
    """An observer called at the Trainer's hooks: a built-in name, or file.py:Class; other keys go to its __init__."""

    name: str = Field(description="a built-in callback (early_stopping, stop_at) or file.py:Class")


class Distribution(Section):
    """A range to draw a sweep's values from: {dist: log_uniform, low: 1e-4, high: 1e-1}."""

    dist: Literal["uniform", "log_uniform", "int_uniform"] = Field(
        description="uniform: any number in [low, high]; log_uniform: as likely in [1e-4, 1e-3] as in [1e-2, "
        "1e-1] (for learning rates); int_uniform: a whole number in [low, high]"
    )
    low: float
    high: float


class SweepConfig(Section):
    """Many runs of one config with some keys varied: every combination (grid), random draws, or Optuna's TPE."""

    method: Literal["grid", "random", "optuna"] = Field(
        "grid",
        description="grid: every combination of the listed values; random: `trials` random draws; "
        "optuna: `trials` chosen by Optuna's TPE sampler, poor ones stopped early (pip install leaptrain[sweep])",
    )
    params: dict[str, list[Any] | Distribution] = Field(
        default_factory=dict,
        description="config keys to vary: a list of values (e.g. optimizer.lr: [1e-3, 3e-3]) or a distribution",
    )
    trials: int | None = Field(None, gt=0, description="random and optuna: how many runs (default 10)")
    monitor: str | None = Field(
        None, description="the metric that ranks the trials; default: the run's early_stopping.monitor, else val/loss"
    )
    jobs: int = Field(1, gt=0, description="trials run at once, in separate processes sharing the CPU cores")
    storage: str | None = Field(
        None,
        description="optuna: the study's database URL (e.g. postgresql://...); default: a SQLite file in the "
        "sweep folder. Several processes or machines given the same storage work on one study",
    )
    prune: bool = Field(True, description="optuna: stop a trial whose epochs fall below the median of the others")


class Config(Section):
    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run name; defaults to the config file's name"
    )
    seed: int = Field(0, description="seeds python, numpy and torch: the same seed gives the same run")
    data: DataConfig = Field(description="the data set; its keys depend on data.dataset (sections below)")
    model: ModelConfig = Field(description="the network; its keys depend on model.name (sections below)")
    loss: LossConfig = Field(LossConfig(), description="what training minimizes")
    optimizer: OptimizerConfig = Field(OptimizerConfig(), description="how the weights move against the gradient")
    scheduler: SchedulerConfig = Field(SchedulerConfig(), description="how the learning rate changes over the run")
    train: TrainConfig = Field(TrainConfig(), description="how to train")
    log: LogConfig = Field(LogConfig(), description="what the run shows and keeps")
    sweep: SweepConfig | None = Field(None, description="used by `python -m trainer sweep`; ignored by a plain run")
    callbacks: list[CallbackConfig] = Field(
        default_factory=list,
        description="observers called every step log and epoch: [{name: recorder.py:Recorder, path: seen.txt}]",
    )


def expand_shorthands(data: dict[str, Any]) -> None:
    """`loss: mse` means `loss: {name: mse}` (overrides expand it themselves when they reach inside)."""
    for section in COMPONENT_SECTIONS:
        if isinstance(data.get(section), str):
            data[section] = {"name": data[section]}
    if isinstance(data.get("callbacks"), list):  # `callbacks: [early_stopping]` names them alone too
        data["callbacks"] = [{"name": item} if isinstance(item, str) else item for item in data["callbacks"]]
