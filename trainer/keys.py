"""One lookup for config keys: where a key written in the wrong place, or under another tool's name, belongs.

Every place a key is written asks it: the YAML file (trainer/validation.py), dotted overrides
(trainer/yamlio.py), a sweep's keys, `try`, and command-line flags (`--lr 0.01`, trainer/arguments.py).
It knows the whole schema (every section and every data set and model alternative, from trainer/config.py; one
walk follows it: field_at), the names other tools use for the same things, and the arguments of the torch class a
section names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from trainer.config import COMPONENT_SECTIONS, Component, Config, model_kind
from trainer.errors import did_you_mean, fold

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Home:
    """Where a key belongs: its dotted key, and the value to write there when the other tool spells it otherwise."""

    key: str  # "train.epochs"; "" when leaptrain has no such setting (then `why` says what it does instead)
    why: str = ""  # "PyTorch Lightning's name", "an argument of SGD", "with data.dataset: image_folder"
    value: Any = None
    converted: bool = False  # True when `value` replaces the value the user wrote (gpus: 1 -> device: cuda)
    needs: tuple[str, Any] | None = None  # another key to set with it: ("optimizer.name", "sgd") for momentum

    @property
    def section(self) -> str:
        return self.key.rpartition(".")[0] or "the top level"


# The names other tools give to leaptrain's keys. Value converters turn their values into ours
# (None when the value has no equivalent, so the message shows the key alone).
def _device(value: Any) -> Any:
    if isinstance(value, bool):
        return "cuda" if value else "cpu"
    if isinstance(value, int):
        return "cpu" if value == 0 else "cuda"
    text = str(value).lower()
    return {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu", "mps": "mps", "auto": "auto"}.get(
        text, "cuda" if text else None
    )


def device_value(value: Any) -> Any:
    """A device written as other tools write it: 0 -> cuda:0, gpu -> cuda, gpu:1 -> cuda:1."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"cuda:{value}" if value >= 0 else "cpu"
    text = str(value).lower().strip()
    number = text.removeprefix("gpu").removeprefix("cuda").strip(": ")
    if text.startswith(("gpu", "cuda")) and number.isdigit():
        return f"cuda:{number}"
    return {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu", "mps": "mps", "auto": "auto"}.get(text)


def precision_value(value: Any) -> Any:
    """A precision written as other tools write it: 16 -> fp16, bf16-mixed -> bf16, 32 -> fp32 (None: no match)."""
    text = str(value).lower().replace("_", "-")
    if text in ("true", "1", "16", "16-mixed", "fp16", "half", "mixed", "amp", "o1", "o2"):
        return "fp16"
    if text in ("bf16", "bf16-mixed", "bfloat16"):
        return "bf16"
    if text in ("false", "0", "32", "32-true", "fp32", "no", "none", "full"):
        return "fp32"
    return None


def _bf16(value: Any) -> Any:
    return "bf16" if value is True or str(value).lower() in ("true", "1") else "fp32"


def _not_cuda(value: Any) -> Any:
    return "cpu" if value is True or str(value).lower() in ("true", "1") else "auto"


LIGHTNING, HF, KERAS, FASTAI, LUDWIG, TORCHVISION = (
    "PyTorch Lightning",
    "Hugging Face Trainer",
    "Keras",
    "fastai",
    "Ludwig",
    "torchvision's training scripts",
)
FOREIGN: dict[str, tuple[str, str, Callable[[Any], Any] | None]] = {
    # name other tools use -> (leaptrain's key, who uses that name, value converter)
    "max_epochs": ("train.epochs", LIGHTNING, None),
    "num_epochs": ("train.epochs", "", None),
    "n_epochs": ("train.epochs", "", None),
    "nb_epoch": ("train.epochs", KERAS, None),
    "epoch": ("train.epochs", "", None),
    "num_train_epochs": ("train.epochs", HF, None),
    "epochs": ("train.epochs", "", None),
    "learning_rate": ("optimizer.lr", HF, None),
    "lr_rate": ("optimizer.lr", "", None),
    "base_lr": ("optimizer.lr", "", None),
    "init_lr": ("optimizer.lr", "", None),
    "initial_lr": ("optimizer.lr", "", None),
    "lr0": ("optimizer.lr", "", None),
    "lr": ("optimizer.lr", "", None),
    "gpus": ("train.device", LIGHTNING, _device),
    "gpu": ("train.device", "", _device),
    "accelerator": ("train.device", LIGHTNING, _device),
    "cuda": ("train.device", "", _device),
    "use_cuda": ("train.device", "", _device),
    "use_gpu": ("train.device", "", _device),
    "no_cuda": ("train.device", HF, _not_cuda),
    "cpu": ("train.device", "", _not_cuda),
    "device": ("train.device", "", None),
    "precision": ("train.precision", LIGHTNING, precision_value),
    "amp": ("train.precision", TORCHVISION, precision_value),
    "use_amp": ("train.precision", "", precision_value),
    "fp16": ("train.precision", HF, precision_value),
    "half": ("train.precision", "", precision_value),
    "bf16": ("train.precision", HF, _bf16),
    "mixed_precision": ("train.precision", "", precision_value),
    "batch_size": ("data.batch_size", "", None),
    "bs": ("data.batch_size", FASTAI, None),
    "batch": ("data.batch_size", "", None),
    "batchsize": ("data.batch_size", "", None),
    "train_batch_size": ("data.batch_size", "", None),
    "per_device_train_batch_size": ("data.batch_size", HF, None),
    "workers": ("data.workers", TORCHVISION, None),
    "num_workers": ("data.workers", "DataLoader", None),
    "dataloader_num_workers": ("data.workers", HF, None),
    "validation_split": ("data.val_split", KERAS, None),
    "valid_pct": ("data.val_split", FASTAI, None),
    "val_size": ("data.val_split", "", None),
    "val_ratio": ("data.val_split", "", None),
    "val_fraction": ("data.val_split", "", None),
    "test_size": ("data.test_split", "scikit-learn", None),
    "data_dir": ("data.root", "", None),
    "data_path": ("data.root", TORCHVISION, None),
    "dataset_path": ("data.root", "", None),
    "data_root": ("data.root", "", None),
    "root_dir": ("data.root", "", None),
    "img_size": ("data.image_size", "", None),
    "input_size": ("data.image_size", "", None),
    "resize": ("data.image_size", "", None),
    "target_column": ("data.target", "", None),
    "label_column": ("data.target", "", None),
    "label": ("data.target", "", None),
    "wd": ("optimizer.weight_decay", TORCHVISION, None),
    "opt": ("optimizer", TORCHVISION, None),
    "optim": ("optimizer", "", None),
    "optimiser": ("optimizer", "", None),
    "optimizer_name": ("optimizer.name", "", None),
    "optimizer_type": ("optimizer.name", "", None),
    "loss_fn": ("loss", "", None),
    "loss_function": ("loss", "", None),
    "criterion": ("loss", "", None),
    "objective": ("loss", "", None),
    "lr_scheduler": ("scheduler", TORCHVISION, None),
    "schedule": ("scheduler", "", None),
    "sched": ("scheduler", "", None),
    "lr_scheduler_type": ("scheduler.name", HF, None),
    "model_name": ("model.name", "", None),
    "arch": ("model.name", "", None),
    "architecture": ("model.name", "", None),
    "backbone": ("model.name", "", None),
    "network": ("model", "", None),
    "net": ("model", "", None),
    "hidden_size": ("model.hidden", "", None),
    "hidden_sizes": ("model.hidden", "", None),
    "hidden_units": ("model.hidden", "", None),
    "hidden_layers": ("model.hidden", "", None),
    "layers": ("model.hidden", "", None),
    "filters": ("model.channels", "", None),
    "dropout": ("model.dropout", "", None),
    "dropout_rate": ("model.dropout", "", None),
    "gradient_clip_val": ("train.grad_clip", LIGHTNING, None),
    "max_grad_norm": ("train.grad_clip", HF, None),
    "clip_grad_norm": ("train.grad_clip", "", None),
    "clip_grad": ("train.grad_clip", "", None),
    "grad_clip_norm": ("train.grad_clip", "", None),
    "accumulate_grad_batches": ("train.accumulate", LIGHTNING, None),
    "gradient_accumulation_steps": ("train.accumulate", HF, None),
    "grad_accum": ("train.accumulate", "", None),
    "patience": ("train.early_stopping.patience", KERAS, None),
    "early_stopping_patience": ("train.early_stopping.patience", HF, None),
    "early_stop": ("train.early_stopping", "", None),
    "earlystopping": ("train.early_stopping", "", None),
    "monitor": ("train.early_stopping.monitor", KERAS, None),
    "torch_compile": ("train.compile", HF, None),
    "seed": ("seed", "", None),
    "random_seed": ("seed", "", None),
    "manual_seed": ("seed", "", None),
    "random_state": ("seed", "scikit-learn", None),
    "run_name": ("name", HF, None),
    "experiment_name": ("name", "", None),
    "exp_name": ("name", "", None),
    "logdir": ("log.dir", "TensorBoard", None),
    "log_dir": ("log.dir", "", None),
    "output_dir": ("log.dir", HF, None),
    "save_dir": ("log.dir", "", None),
    "default_root_dir": ("log.dir", LIGHTNING, None),
    "checkpoint_dir": ("log.dir", "", None),
    "logging_dir": ("log.dir", HF, None),
    "log_every_n_steps": ("log.every_n_steps", LIGHTNING, None),
    "logging_steps": ("log.every_n_steps", HF, None),
    "log_interval": ("log.every_n_steps", "the PyTorch examples", None),
    "print_freq": ("log.every_n_steps", TORCHVISION, None),
    "trainer": ("train", "LightningCLI and Ludwig", None),
    "training": ("train", "", None),
    "training_args": ("train", HF, None),
    "dataset": ("data", "", None),
    "logging": ("log", "", None),
    "logger": ("log", "", None),
    "hyperopt": ("sweep", LUDWIG, None),
    "tune": ("sweep", "", None),
}
# Settings other tools have that leaptrain does for you: what to do instead.
NOT_NEEDED = {
    "num_classes": "leaptrain counts the classes in the data and sizes the last layer to them; remove it",
    "n_classes": "leaptrain counts the classes in the data and sizes the last layer to them; remove it",
    "output_size": "leaptrain sizes the last layer from the data; remove it",
    "input_shape": "leaptrain reads the input shape from the data; remove it",
    "in_channels": "leaptrain reads the input channels from the data; remove it",
    "shuffle": "the training split is shuffled every epoch, the others never; remove it",
    "pin_memory": "small data sets are held in memory (on the GPU when there is one); remove it",
    "devices": "one process uses one device; for several GPUs start it with torchrun --nproc_per_node=N -m trainer",
    "num_nodes": "for several machines start it with torchrun (--nnodes); remove it",
    "strategy": "several GPUs use DistributedDataParallel when started with torchrun; remove it",
    "check_val_every_n_epoch": "the validation split is evaluated after every epoch; remove it",
    "val_check_interval": "the validation split is evaluated after every epoch; remove it",
    "evaluation_strategy": "the validation split is evaluated after every epoch; remove it",
    "eval_strategy": "the validation split is evaluated after every epoch; remove it",
    "save_steps": "checkpoints/last.pt and best.pt are written every epoch; remove it",
    "save_top_k": "checkpoints/best.pt follows the best epoch (train.early_stopping.monitor); remove it",
    "verbose": "progress bars show in a terminal (log.progress); remove it",
    "fast_dev_run": "one batch and a checklist is a command of its own; python -m trainer check CONFIG",
    "dry_run": "one batch and a checklist is a command of its own; python -m trainer check CONFIG",
    "pretrained": "torchvision's old flag: model.weights=DEFAULT, with a torchvision model such as model.name=resnet18",
    "weights": "trained weights are for torchvision's models: model.name=resnet18 (or another), model.weights=DEFAULT",
}


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (or the one type), with Annotated wrappers kept for their tags."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner = typing.get_args(annotation)[0]
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            return _members(inner)
        return [annotation]
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def tagged_models(annotation: Any) -> dict[str, type[BaseModel]]:
    """tag -> model for each alternative: its Tag(...) or the values of its `dataset` literal."""
    tagged = {}
    for member in _members(annotation):
        model, tag_names = member, []
        if typing.get_origin(member) is typing.Annotated:
            model, *meta = typing.get_args(member)
            tag_names = [m.tag for m in meta if hasattr(m, "tag")]
        if isinstance(model, type) and issubclass(model, BaseModel):
            if not tag_names and "dataset" in model.model_fields:
                tag_names = list(typing.get_args(model.model_fields["dataset"].annotation))
            for tag in tag_names or [model.__name__]:
                tagged[tag] = model
    return tagged


@dataclasses.dataclass(frozen=True)
class Spot:
    """What a dotted key lands on in the schema (trainer/config.py), for one config's choice of data set and model."""

    field: FieldInfo | None  # the key's field; None at the top level and for an argument of a component class
    model: type[BaseModel] | None = None  # the section the key opens, as the config chose it (data: VisionData)
    alternatives: dict[str, type[BaseModel]] = dataclasses.field(default_factory=dict)  # each it may open, by tag
    argument: bool = False  # a key of a component section passed to the class it names (momentum for SGD)


def field_at(path: str | Path, data: dict[str, Any] | None = None) -> Spot | None:
    """What a key ('data.root' or ('data', 'root')) lands on in the schema, in the data set and model alternatives
    `data` chose; where it chose none, in the first alternative that has the next key. A key inside a list or dict
    value (model.channels.0, sweep.params.lr) lands on that value's field. None when the schema has no such key."""
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    spot = Spot(None, Config)
    for depth, part in enumerate(parts):
        if spot.model is None:
            return None if spot.argument else spot
        field = spot.model.model_fields.get(str(part))
        if field is None:  # every other key of a component section goes to its class (torch's signature decides)
            last = depth == len(parts) - 1
            return Spot(None, argument=True) if last and issubclass(spot.model, Component) else None
        alternatives = tagged_models(field.annotation)
        section = str(part) if depth == 0 else ""
        spot = Spot(field, _alternative(alternatives, section, parts[depth + 1 :], data or {}), alternatives)
    return spot


def _alternative(
    alternatives: dict[str, type[BaseModel]], section: str, rest: Path, data: dict[str, Any]
) -> type[BaseModel] | None:
    """The section a field opens: its only model, the data set or model the config chose, or else the first
    alternative that has the next key."""
    models = list(dict.fromkeys(alternatives.values()))
    if len(models) <= 1:
        return models[0] if models else None
    chosen = _chosen(data, section) if section in ("data", "model") else ""
    if section == "model" and chosen:
        chosen = model_kind({"name": chosen})
    if chosen in alternatives:
        return alternatives[chosen]
    return next((model for model in models if rest and str(rest[0]) in model.model_fields), models[0])


@functools.cache
def schema_keys() -> dict[str, list[tuple[str, str]]]:
    """Every key of the schema by its folded last name: 'batchsize' -> [('data.batch_size', '')], and for keys
    only some alternatives have, the condition: 'imagesize' -> [('data.image_size', 'data.dataset: image_folder')]."""
    found: dict[str, list[tuple[str, str]]] = {}

    def walk(prefix: Path, condition: str) -> None:  # the keys of the section at `prefix`, as `condition` chose it
        choices = _choosing(condition)
        section = field_at(prefix, choices)
        for name in section.model.model_fields if section and section.model else []:
            path = (*prefix, name)
            key = _join(path)
            if (key, condition) not in (entries := found.setdefault(fold(name), [])):
                entries.append((key, condition))
            spot = field_at(path, choices)
            by_model: dict[type[BaseModel], list[str]] = {}
            for tag, child in (spot.alternatives if spot else {}).items():
                by_model.setdefault(child, []).append(tag)
            choice = _choice_key(key)
            for tags in by_model.values():
                walk(path, f"{choice}: {' or '.join(tags)}" if len(by_model) > 1 and choice else condition)

    walk((), "")
    return found


def _choice_key(section: str) -> str:
    return {"data": "data.dataset", "model": "model.name"}.get(section, "")


def _choosing(condition: str) -> dict[str, Any]:
    """The smallest config making the choice a condition names: 'model.name: cnn or resnet' -> {model: {name: cnn}}."""
    if not condition:
        return {}
    choice, _, tags = condition.partition(": ")
    section, _, key = choice.partition(".")
    return {section: {key: tags.split(" or ")[0]}}


def _join(path: Path) -> str:
    return ".".join(str(part) for part in path)


def _chosen(data: dict[str, Any], section: str) -> str:
    """The data set or model name the config chose ('' when it has not)."""
    value = data.get(section) if isinstance(data, dict) else None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("dataset" if section == "data" else "name", ""))
    return ""


def _condition_met(condition: str, data: dict[str, Any]) -> bool:
    if not condition:
        return True
    choice, _, tags = condition.partition(": ")
    chosen = _chosen(data, choice.split(".")[0])
    if choice == "model.name":
        chosen = model_kind({"name": chosen})  # as pydantic chooses: a model without a name is `other` too
    return not chosen or chosen in tags.split(" or ")


def is_known(path: Path, data: dict[str, Any]) -> bool:
    """True when `path` names a key the schema has for this config's choices (or an argument of the component
    class a section names, which torch checks later; or a key inside a list or dict value, checked elsewhere);
    False when it surely does not."""
    spot = field_at(path, data)
    return spot is not None and not (spot.argument and _misplaced_argument(path, data))


def _misplaced_argument(path: Path, data: dict[str, Any]) -> bool:
    """A key in a component section that is another section's key (optimizer.epochs) and not an argument of
    the class the section names: torch's signature decides (OneCycleLR does take `epochs`)."""
    section, leaf = str(path[0]), str(path[-1])
    if fold(leaf) in (*CLASS_WORDS, "initargs"):
        return True  # another config system's way to name the class, whatever the class
    elsewhere = [h for h in _named_homes(path, data) if h.key and h.key != _join(path)]
    if not elsewhere:
        return False
    arguments = component_arguments(section, _chosen(data, section) or default_name(section))
    return arguments is not None and leaf not in arguments


def default_name(section: str) -> str:
    """The class a component section names when the config leaves `name` out (adamw; '' for the model)."""
    field = Config.model_fields[section].default
    return str(getattr(field, "name", ""))


def component_arguments(section: str, name: str) -> list[str] | None:
    """The constructor arguments of the torch class a component section names (None when unknown: the
    user's own code, a class taking **kwargs, or a name torch does not have). Read from the catalog of torch's
    signatures (trainer/components/catalog.py), so asking does not import torch."""
    if not name or ":" in name or section not in COMPONENT_SECTIONS or name.lower() == "none":
        return None
    if section == "model" and model_kind({"name": name}) != "other":
        return None  # a built-in model: its keys are the schema's
    signature = _signature(section, name)
    if signature is None or signature.takes_any:
        return None
    return list(signature.args)


def _signature(section: str, name: str) -> Any:
    from trainer.components.optim import SCHEDULER_ALIASES
    from trainer.components.resolve import find_by_name

    known = _signatures(section)
    if section == "scheduler":
        return find_by_name(name, known, SCHEDULER_ALIASES, suffix="LR")
    if section == "loss":
        return find_by_name(name, known, {}, suffix="Loss")
    if section == "model":
        return known.get(name)
    return find_by_name(name, known, {})


@functools.cache
def _signatures(section: str) -> dict[str, Any]:
    from trainer.components.catalog import load_catalog

    catalog = load_catalog()
    kinds = {"optimizer": "optimizers", "scheduler": "schedulers", "loss": "losses", "model": "models"}
    return dict(getattr(catalog, kinds[section]))


def _named_homes(path: Path, data: dict[str, Any]) -> list[Home]:
    """Homes found by name alone: the schema's keys of that name elsewhere, then other tools' names."""
    here, leaf = _join(path), str(path[-1])
    if len(path) == 2 and fold(leaf) in CLASS_WORDS and str(path[0]) in (*COMPONENT_SECTIONS, "data"):
        tool = CLASS_WORDS[fold(leaf)]
        name = "data.dataset" if path[0] == "data" else f"{path[0]}.name"
        return [Home(name, f"{leaf} is how {tool} names the class" if tool else "")]
    homes = []
    if fold(leaf) != "name":  # every component has a name: too many homes to mean anything
        entries = schema_keys().get(fold(leaf), [])
        for key, condition in sorted(entries, key=lambda e: not _condition_met(e[1], data)):
            if key == here and _condition_met(condition, data):
                continue  # known here; not misplaced (a wrong alternative is, e.g. data.image_size for mnist)
            why = f"with {condition}" if condition else ""
            homes.append(Home(key, why))
    if not homes and fold(leaf) in FOREIGN_FOLDED:
        key, tool, _ = FOREIGN_FOLDED[fold(leaf)]
        if key != here:
            homes.append(Home(key, f"{leaf} is a name from {tool}" if tool else ""))
    return homes


FOREIGN_FOLDED = {fold(name): entry for name, entry in FOREIGN.items()}
# How other config systems name the class a section builds: `type: SGD` (mmcv), `class_path:` (LightningCLI),
# `_target_: torch.optim.SGD` (Hydra). Here it is the section's `name` (`dataset` for data).
CLASS_WORDS = {"type": "mmcv", "classpath": "LightningCLI", "target": "Hydra", "cls": "", "class": ""}
_NOT_NEEDED_FOLDED = {fold(name): why for name, why in NOT_NEEDED.items()}


def homes_of(path: Path, data: dict[str, Any], value: Any = None) -> list[Home]:
    """Where an unknown key belongs, best first: the schema's own keys, other tools' names, then the arguments
    of the torch classes the config names (momentum under train -> optimizer.momentum for SGD)."""
    if not path:
        return []
    leaf = str(path[-1])
    translated = _translated_path(path, data)
    if translated != path and is_known(translated, data):
        return [_with_value(Home(_join(translated), _tools_note(path)), leaf, value, data)]
    homes = [_with_value(home, leaf, value, data) for home in _named_homes(path, data)]
    homes = [home for home in homes if home.key != _join(path) or home.why]
    if homes:
        return _prefer_known(homes, data)
    if fold(leaf) in _NOT_NEEDED_FOLDED:
        return [Home("", _NOT_NEEDED_FOLDED[fold(leaf)])]
    if fold(leaf) == "initargs" and len(path) == 2:
        return [
            Home(
                "",
                f"LightningCLI's init_args; here a section takes its arguments directly; move them up into {path[0]}:",
            )
        ]
    return [_with_value(home, leaf, value) for home in _argument_homes(path, data)]


def _prefer_known(homes: list[Home], data: dict[str, Any]) -> list[Home]:
    """Homes that exist for this config's choices first; a home the config cannot have (data.workers for mnist)
    still comes, so the message can say which choice has it."""
    return sorted(homes, key=lambda home: not (home.key and is_known(tuple(home.key.split(".")), data)))


def _translated_path(path: Path, data: dict[str, Any]) -> Path:
    """Each part put in leaptrain's words: ('trainer', 'max_epochs') -> ('train', 'epochs')."""
    parts: list[str | int] = []
    for part in path:
        if isinstance(part, int) or is_known((*parts, part), data):
            parts.append(part)
            continue
        entry = FOREIGN_FOLDED.get(fold(part))
        home = entry[0].split(".") if entry else []
        if home and home[: len(parts)] == [str(p) for p in parts]:
            parts = [*parts, *home[len(parts) :]]  # another tool's name for a key of this section
            continue
        same = [k for k, c in schema_keys().get(fold(part), []) if k.rpartition(".")[0] == _join(parts)]
        parts.append(same[0].rpartition(".")[2] if same else part)  # batchSize -> batch_size
    return tuple(parts)


def _tools_note(path: Path) -> str:
    return "; ".join(note for part in path if (note := _tool(str(part))))


def _tool(name: str) -> str:
    if fold(name) in schema_keys():
        return ""  # leaptrain's own word too (precision): no other tool to name
    entry = FOREIGN_FOLDED.get(fold(name))
    return f"{name} is a name from {entry[1]}" if entry and entry[1] else ""


def _with_value(home: Home, leaf: str, value: Any, data: dict[str, Any] | None = None) -> Home:
    if fold(leaf) in CLASS_WORDS and isinstance(value, str) and "." in value:  # torch.optim.SGD -> SGD
        return Home(home.key, home.why, value.rpartition(".")[2], True)
    if isinstance(value, dict) and home.key and data is not None:  # a whole section: put its keys in our words too
        value = dict(_child_home(home.key, str(k), v, data) for k, v in value.items())
        return Home(home.key, home.why, value, True)
    entry = FOREIGN_FOLDED.get(fold(leaf))
    if entry and entry[2] is not None and entry[0] == home.key and value is not None:
        converted = entry[2](value)
        if converted is not None:
            return Home(home.key, home.why, converted, converted != value, home.needs)
    return Home(home.key, home.why, value, needs=home.needs)


def _child_home(section: str, key: str, value: Any, data: dict[str, Any]) -> tuple[str, Any]:
    path = (*section.split("."), key)
    if is_known(path, data):
        return key, value
    homes = homes_of(path, data, value)
    if homes and homes[0].key.startswith(f"{section}."):
        return homes[0].key.removeprefix(f"{section}."), homes[0].value
    return key, value


def _argument_homes(path: Path, data: dict[str, Any]) -> list[Home]:
    """The key is an argument of a torch class this config names (or could name, for optimizers)."""
    leaf, section = str(path[-1]), str(path[0])
    if len(leaf) < 3 or len(path) > 2 or (len(path) == 2 and section not in Config.model_fields):
        return []  # `d` or `a.b.c.d` would match some class's argument by chance
    homes = []
    for other in COMPONENT_SECTIONS:
        if other == section and len(path) == 2:
            continue
        name = _chosen(data, other) or default_name(other)
        if leaf in (component_arguments(other, name) or []):
            homes.append(Home(f"{other}.{leaf}", f"an argument of {_signature(other, name).name}"))
    if homes or section == "optimizer":
        return homes
    takers = [cls for cls, signature in _signatures("optimizer").items() if leaf in signature.args]
    common = ["SGD", "RMSprop", "AdamW", "Adam"]  # the one to suggest first, when several take the key
    takers.sort(key=lambda name: common.index(name) if name in common else len(common))
    if takers:
        chosen = _chosen(data, "optimizer") or default_name("optimizer")
        why = f"an argument of {', '.join(takers[:4])}, not of your optimizer {chosen}"
        homes.append(Home(f"optimizer.{leaf}", why, needs=("optimizer.name", takers[0].lower())))
    return homes


def other_takers(section: str, leaf: str, data: dict[str, Any]) -> tuple[str, list[str]]:
    """(the chosen class, the other classes of the section that take `leaf`) when the chosen one does not:
    `momentum` for Adam -> ('Adam', ['SGD', 'RMSprop', ...]). Empty when the key is a typo or the class unknown."""
    name = _chosen(data, section) or default_name(section)
    arguments = component_arguments(section, name)
    if arguments is None or leaf in arguments or section not in ("optimizer", "scheduler", "loss"):
        return "", []
    takers = [cls for cls, signature in _signatures(section).items() if leaf in signature.args]
    common = ["SGD", "RMSprop", "AdamW", "Adam", "StepLR", "ReduceLROnPlateau", "CrossEntropyLoss"]
    takers.sort(key=lambda cls: common.index(cls) if cls in common else len(common))
    return _signature(section, name).name, takers


def message(path: Path, data: dict[str, Any], allowed: list[str], value: Any = None, override: bool = False) -> str:
    """What to say about an unknown key: where it belongs with the line to write, or the closest allowed key.

    `override` words the fix as a command-line override (optimizer.lr=0.1) instead of a line of the file."""
    homes = homes_of(path, data, value)
    if not homes:
        section = _join(path[:-1]) or "the top level"
        hint = did_you_mean(str(path[-1]), allowed)
        elsewhere = "" if hint else _close_elsewhere(str(path[-1]))
        listed = f"Keys allowed in {section}: {', '.join(allowed[:20])}" if allowed else ""
        return f"unknown key{hint}{elsewhere}" + (f". {listed}" if listed else "")
    home = homes[0]
    if not home.key:
        reason, _, what = home.why.rpartition("; ")
        return f"unknown key: {reason}. Try: {what}" if reason else f"unknown key: {what}"
    where = placement(path, home, data)
    if unmet := unmet_condition(home.key, data):
        sep = ":" if home.key == _join(path) else ";"
        return f"unknown key{sep} {where}. Try: remove it, or choose {unmet.split(' (')[0]}"
    return f"unknown key; {where}{_also(homes)}. Try: {fix(home, override)}"


def placement(path: Path, home: Home, data: dict[str, Any]) -> str:
    here = _join(path[:-1])
    note = f" ({home.why})" if home.why and not home.why.startswith("with ") else ""
    unmet = unmet_condition(home.key, data)
    if home.key == _join(path):  # the right place, but only another data set or model has it
        return f"only {unmet} has {home.key}" if unmet else f"{home.key} is not used here"
    only = f", which only {unmet} has" if unmet else ""
    if home.section == (here or "the top level"):
        return f"here it is called {home.key}{note}{only}"
    if "." not in home.key:
        return f"it belongs at the top level: {home.key}{note}{only}"
    return f"it belongs in {home.section}: {home.key}{note}{only}"


def unmet_condition(key: str, data: dict[str, Any]) -> str:
    """'data.dataset: image_folder (yours is mnist)' when `key` exists only for choices this config did not make."""
    leaf = key.rpartition(".")[2]
    conditions = [c for k, c in schema_keys().get(fold(leaf), []) if k == key]
    if not conditions or any(_condition_met(c, data) for c in conditions):
        return ""
    choice = conditions[0].partition(": ")[0]
    tags = " or ".join(TAG_WORDS.get(c, c.partition(": ")[2]) for c in conditions)
    return f"{choice}: {tags} (yours is {_chosen(data, choice.split('.')[0])})"


# A union's tag as a learner would write its choice: no model is named "other".
TAG_WORDS = {"model.name: other": "resnet18 (or another torchvision model)"}


def _also(homes: list[Home]) -> str:
    others = [h.key for h in homes[1:4] if h.key and h.key != homes[0].key]
    return f" (or {', '.join(others)})" if others else ""


def fix(home: Home, override: bool) -> str:
    """The line to write: `train.epochs=3` on the command line, or `epochs: 3` under `train:` in the file."""
    value = home.value
    if value is not None and not isinstance(value, list | dict) and _is_list_key(home.key):
        value = [value]  # hidden_size: 128 -> hidden: [128]
    if override:
        also = f"{home.needs[0]}={home.needs[1]} " if home.needs else ""
        return f"{also}{home.key}={_text(value) if value is not None else 'VALUE'}"
    section, _, leaf = home.key.rpartition(".")
    line = f"{leaf}: {_text(value) if value is not None else '...'}"
    also = f" with `{home.needs[0].rpartition('.')[2]}: {home.needs[1]}`" if home.needs else ""
    return f"`{line}` under `{section}:`{also}" if section else f"`{line}` at the top level"


def _is_list_key(key: str) -> bool:
    """True when the key holds a list in some alternative of its section (model.hidden, model.channels)."""
    for dotted, condition in schema_keys().get(fold(key.rpartition(".")[2]), []):
        spot = field_at(dotted, _choosing(condition)) if dotted == key else None
        if spot is not None and spot.field is not None and typing.get_origin(spot.field.annotation) is list:
            return True
    return False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _close_elsewhere(leaf: str) -> str:
    """A typo of a key of another section: ' (did you mean train.epochs?)'."""
    names = {name: entries[0][0] for name, entries in schema_keys().items() if name != "name"}
    hint = did_you_mean(fold(leaf), list(names))
    if not hint:
        return ""
    closest = hint.split("'")[1]
    return f" (did you mean {names[closest]}?)"
