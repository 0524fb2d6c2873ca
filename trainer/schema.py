"""The config's JSON Schema, from the pydantic models: editors (VS Code's YAML extension and others that speak
yaml-language-server) use it to complete keys, show each key's description and flag typos as you type."""

from __future__ import annotations

import json
from typing import Any

from trainer.config import COMPONENT_SECTIONS, Config

SCHEMA_FILE = "leaptrain.schema.json"  # shipped beside the configs; they point at it in their first line
SCHEMA_COMMENT = f"# yaml-language-server: $schema={SCHEMA_FILE}"

# Names an editor can offer for the sections that accept any torch class by name (the schema cannot list them
# all: the reference is the installed torch, checked when the config is loaded).
NAME_EXAMPLES = {
    "LossConfig": ["cross_entropy", "mse", "l1", "smooth_l1", "bce_with_logits", "nll", "huber"],
    "OptimizerConfig": ["adamw", "adam", "sgd", "rmsprop"],
    "SchedulerConfig": ["none", "one_cycle", "cosine", "step", "plateau"],
    "OtherModel": ["resnet18", "resnet34", "mobilenet_v3_small", "efficientnet_b0", "path/to/file.py:ClassName"],
}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file, with examples for the names of components."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leaptrain config"
    for name, examples in NAME_EXAMPLES.items():
        schema["$defs"][name]["properties"]["name"]["examples"] = examples
    # A built-in model's name picks its own section; any other name is a torchvision model or a file's class.
    schema["$defs"]["OtherModel"]["properties"]["name"]["not"] = {"enum": ["mlp", "cnn", "resnet"]}
    for section in COMPONENT_SECTIONS:  # `loss: mse` is short for `loss: {name: mse}`
        schema["properties"][section] = {"anyOf": [schema["properties"][section], {"type": "string"}]}
    return schema


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2) + "\n"


def reference_markdown() -> str:
    """docs/config.md: every section and key with its type, default and meaning, from the config classes."""
    from pydantic import BaseModel

    from trainer import config as classes

    lines = [
        "# Config reference",
        "",
        "Generated from `trainer/config.py` by `python -m trainer schema --reference -o docs/config.md`; a test",
        "fails when it is out of date. Component sections (`model` other than mlp/cnn/resnet, `loss`, `optimizer`,",
        "`scheduler`) also take the arguments of the torch class they name, checked against its signature.",
    ]
    sections: list[tuple[str, type[BaseModel]]] = [("(top level)", Config)]
    data_classes = (classes.VisionData, classes.CifarData, classes.ImageFolderData, classes.CsvData)
    for cls in (*data_classes, classes.SyntheticData):
        names = cls.model_fields["dataset"].annotation.__args__  # type: ignore[union-attr]
        sections.append((f"data (dataset: {' or '.join(names)})", cls))
    sections += [
        ("model: mlp", classes.MLPModel),
        ("model: cnn", classes.CNNModel),
        ("model: resnet", classes.ResNetModel),
        ("model: any other name", classes.OtherModel),
        ("loss", classes.LossConfig),
        ("optimizer", classes.OptimizerConfig),
        ("scheduler", classes.SchedulerConfig),
        ("train", classes.TrainConfig),
        ("train.early_stopping", classes.EarlyStopping),
        ("log", classes.LogConfig),
        ("sweep", classes.SweepConfig),
        ("sweep.params: a range", classes.Distribution),
    ]
    for title, cls in sections:
        doc = (cls.__doc__ or "").strip().replace("\n", " ")
        lines += ["", f"## {title}", ""]
        if doc and cls is not Config:
            lines += [" ".join(doc.split()), ""]
        lines += ["| key | default | meaning |", "|---|---|---|"]
        for key, info in cls.model_fields.items():
            lines.append(f"| `{key}` | {_default_text(info)} | {(info.description or '').replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _default_text(info: Any) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(its section below)"
    return f"`{json.dumps(value)}`"
