"""The config's JSON Schema, from the pydantic models: editors (VS Code's YAML extension and others that speak
yaml-language-server) use it to complete keys, show each key's description and flag typos as you type."""

from __future__ import annotations

import json
from pathlib import Path
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


def write_schema(path: Path) -> None:
    from trainer.checkpoint import write_atomic

    write_atomic(path, schema_text())
