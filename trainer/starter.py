"""`init`: a starter config with every key written out and a comment saying what it means."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from trainer.config import Config

TEMPLATES: dict[str, dict[str, Any]] = {
    "mnist": {"data": {"dataset": "mnist"}, "model": {"name": "cnn"}, "scheduler": {"name": "one_cycle"}},
    "cifar10": {"data": {"dataset": "cifar10"}, "model": {"name": "resnet"}, "scheduler": {"name": "one_cycle"}},
    "image_folder": {"data": {"dataset": "image_folder", "root": "data/my_images"}, "model": {"name": "cnn"}},
    "csv": {"data": {"dataset": "csv", "path": "my_table.csv", "target": "label"}, "model": {"name": "mlp"}},
    "synthetic": {"data": {"dataset": "synthetic", "kind": "spirals"}, "model": {"name": "mlp"}},
}
# What a component section's other keys do, with an example that fits that section.
COMPONENT_NOTES = {
    "model": "other keys are passed to the model it names (e.g. dropout for mlp)",
    "loss": "other keys are passed to the torch class it names (e.g. label_smoothing for cross_entropy)",
    "optimizer": "other keys are passed to the torch class it names (e.g. weight_decay for adamw)",
    "scheduler": "other keys are passed to the torch class it names (e.g. step_size for step)",
    "callbacks": "other keys are passed to its __init__",
}


def starter_config(template: str, name: str) -> str:
    """The template's config with every default filled in, one key a line, each with its description."""
    cfg = Config.model_validate({"name": name, **TEMPLATES[template]})
    lines = [
        f"# A starter config ({template}). Every key is written out with what it means; delete what you do not need.",
        "# Run it: python -m trainer THIS_FILE      Check it first: python -m trainer check THIS_FILE",
    ]
    values = cfg.model_dump(mode="json", exclude={"sweep"})
    lines += _section(cfg, values, indent="", section="")
    return "\n".join(lines) + "\n"


def _section(model: BaseModel, values: dict[str, Any], indent: str, section: str) -> list[str]:
    lines = []
    fields = type(model).model_fields
    for key, value in values.items():
        child = getattr(model, key, None)
        description = fields[key].description if key in fields else ""
        if isinstance(child, BaseModel) and isinstance(value, dict):
            about = (type(child).__doc__ or "").strip().splitlines()[0] if type(child).__doc__ else description
            lines.append(f"{indent}{key}:{_comment(about or '')}")
            lines += _section(child, value, indent + "  ", section or key)
        else:
            if key == "name" and section in COMPONENT_NOTES and type(model).model_config.get("extra") == "allow":
                description = f"{description}; {COMPONENT_NOTES[section]}"
            lines.append(f"{indent}{key}: {json.dumps(value)}{_comment(description or '')}")
    return lines


def _comment(text: str) -> str:
    return f"  # {text}" if text else ""
