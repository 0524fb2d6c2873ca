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
    _add_known_names(schema)
    schema["properties"]["data"] = _data_by_dataset(schema["properties"]["data"])
    for section in COMPONENT_SECTIONS:  # `loss: mse` is short for `loss: {name: mse}`
        name_def = {"model": "OtherModel", "loss": "LossConfig", "optimizer": "OptimizerConfig"}
        name_def["scheduler"] = "SchedulerConfig"
        short = {"type": "string", "anyOf": schema["$defs"][name_def[section]]["properties"]["name"]["anyOf"]}
        if section == "model":  # the built-in models by name too; `not` stays on the object form only
            short = {"type": "string", "anyOf": [{"enum": ["mlp", "cnn", "resnet"]}, *short["anyOf"]]}
        schema["properties"][section] = {"anyOf": [schema["properties"][section], short]}
    return schema


# A name naming code instead of a torch class: `path/to/file.py:Name` or `package.module:Name` (resolve.py).
REFERENCE_PATTERN = r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$"


def _spellings(names: dict[str, Any], suffix: str = "") -> list[str]:
    """The ways a config may write each class name (find_by_name folds case and a suffix such as 'Loss'); an
    enum cannot fold case, so the usual spellings are listed: 'AdamW', 'adamw'."""
    found: list[str] = []
    for name in names:
        found += [name, name.lower()]
        if suffix and name.endswith(suffix) and name != suffix:
            found.append(name[: -len(suffix)].lower())
    return list(dict.fromkeys(found))


def _add_known_names(schema: dict[str, Any]) -> None:
    """Each component's `name` an enum of what the CLI accepts (so a typo is flagged as you type), each optimizer
    its own arguments: from the catalog of the installed torch (trainer/components/catalog.py)."""
    from trainer.components import losses, optim
    from trainer.components.catalog import load_catalog

    catalog = load_catalog()
    defs = schema["$defs"]
    known = {
        "OptimizerConfig": ([*optim.OPTIMIZER_SHORT_NAMES, *_spellings(catalog.optimizers)], False),
        "SchedulerConfig": (
            [*optim.SCHEDULER_SHORT_NAMES, *_spellings(catalog.schedulers, "LR")],
            False,
        ),
        "LossConfig": ([*losses.SHORT_NAMES, *_spellings(catalog.losses, "Loss")], True),
        "OtherModel": (_spellings(catalog.models), True),
    }
    for section, (names, takes_code) in known.items():
        field = defs[section]["properties"]["name"]
        choices: list[dict[str, Any]] = [{"enum": list(dict.fromkeys(names))}]
        if takes_code:
            choices.append({"pattern": REFERENCE_PATTERN, "description": "your own code: path/to/file.py:Name"})
        field.pop("type", None)
        field["anyOf"] = choices
    # Each optimizer takes the arguments of its torch class and no other (the CLI refuses the rest).
    branches = []
    for class_name, signature in catalog.optimizers.items():
        spellings = [n for n in _spellings({class_name: None})]
        spellings += [short for short in optim.OPTIMIZER_SHORT_NAMES if short == class_name.lower()]
        args = [a for a in signature.args if a != "params"]  # leaptrain passes the model's parameters
        then: dict[str, Any] = {"properties": {"name": True, **{a: True for a in args}}}
        if not signature.takes_any:
            then["additionalProperties"] = False
        branches.append({"if": {"properties": {"name": {"enum": sorted(set(spellings))}}}, "then": then})
    defs["OptimizerConfig"]["allOf"] = branches


def _data_by_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """The data section's shape chosen by `dataset` with if/then: yaml-language-server ignores OpenAPI's
    `discriminator`, so under oneOf a wrong dataset lists the choices of only some branches."""
    mapping: dict[str, str] = data["discriminator"]["mapping"]
    by_shape: dict[str, list[str]] = {}
    for dataset, ref in mapping.items():
        by_shape.setdefault(ref, []).append(dataset)
    return {
        "description": data["description"],
        "title": data.get("title", "Data"),
        "type": "object",
        "required": ["dataset"],
        "properties": {"dataset": {"enum": list(mapping), "description": "which data set", "examples": ["mnist"]}},
        "allOf": [
            {"if": {"properties": {"dataset": {"enum": names}}, "required": ["dataset"]}, "then": {"$ref": ref}}
            for ref, names in by_shape.items()
        ],
    }


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
