"""Read a YAML config keeping the line of every key, apply dotted command-line overrides, save the result."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.config import COMPONENT_SECTIONS, KEPT_WHEN_RENAMED
from trainer.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a number (YAML 1.1 wants a dot in floats) and only true/false as booleans."""


_REPLACED = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Only true/false are booleans (as in YAML 1.2): `name: on` or `kind: no` stay words. Boolean keys still accept
# yes/no/on/off, because pydantic reads those words as booleans.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass
class Source:
    """Where each key of a config came from: a line of the file or an override on the command line."""

    path: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overrides: dict[KeyPath, str] = field(default_factory=dict)

    def where(self, key: str | KeyPath) -> str:
        """'configs/x.yaml:12' or "command line 'optimizer.lr=1'" for the key or its nearest parent."""
        path = split_key(key) if isinstance(key, str) else key
        for n in range(len(path), -1, -1):
            prefix = path[:n]
            if prefix in self.overrides:
                return f"command line '{self.overrides[prefix]}'"
            if prefix in self.lines:
                return f"{self.path}:{self.lines[prefix]}"
        return self.path


def split_key(key: str) -> KeyPath:
    return tuple(int(part) if part.isdigit() else part for part in key.split(".")) if key else ()


def join_key(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)


def load_config_file(path: str | Path) -> tuple[dict[str, Any], Source]:
    """The config as plain data, and the line of every key in it."""
    path = Path(path)
    source = Source(str(path))
    if not path.is_file():
        hint = "it is a folder" if path.is_dir() else "no such file"
        raise ConfigError(
            [Problem("", f"cannot read the config: {hint}. Try: check the path (shipped configs are in configs/)")],
            source,
        )
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = {} if node is None else _construct(node, (), loader, source)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark:
            source.lines[()] = mark.line + 1
        raise ConfigError([Problem("", _yaml_message(err))], source) from err
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "the file must hold `key: value` lines at the top level")], source)
    return data, source


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    problem = err.problem or str(err)
    message = f"not valid YAML: {problem}"
    if "\\t" in problem or "tab" in problem:
        return message + ". Try: indent with spaces, not tabs"
    if "another document" in problem:
        return message + ". Try: a config is one document: remove the `---` line"
    return message + ". Try: check the indentation and the ':' after each key on this line and the one above"


def _construct(node: yaml.Node, path: KeyPath, loader: _Loader, source: Source) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<: *defaults)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in mapping:
                first = source.lines[(*path, key)]
                source.lines[(*path, key)] = line
                message = f"appears twice (first on line {first}); only one can count. Try: delete one of them"
                raise ConfigError([Problem(join_key((*path, key)), message)], source)
            source.lines[(*path, key)] = line
            mapping[key] = _construct(value_node, (*path, key), loader, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            source.lines[(*path, index)] = item_node.start_mark.line + 1
            items.append(_construct(item_node, (*path, index), loader, source))
        return items
    return loader.construct_object(node, deep=True)


def parse_value(text: str) -> Any:
    """A command-line value read as YAML: `3e-4` is a number, `[16,32]` a list, `adam` a string."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], source: Source) -> None:
    """Apply `a.b.c=value` overrides in place, remembering each so messages can name it."""
    problems = []
    for override in overrides:
        key, sep, text = override.partition("=")
        path = split_key(key.strip())
        source.overrides[path] = override
        if not sep or not path:
            problems.append(Problem(key, "an override must look like key=value. Try: optimizer.lr=3e-4"))
        elif text.strip() == "":
            problems.append(Problem(key, f"has no value after '='. Try: {key}=VALUE"))
        elif problem := _set(data, path, parse_value(text)):
            problems.append(Problem(key, problem))
    if problems:
        raise ConfigError(problems)


def _set(data: dict[str, Any], path: KeyPath, value: Any) -> str:
    """Put `value` at `path`, making sections on the way; what went wrong, or ''."""
    section = path[0]
    if section in COMPONENT_SECTIONS and isinstance(data.get(section), str):
        data[section] = {"name": data[section]}  # `loss: mse` then `loss.reduction=sum`
    old = data.get(section)
    if len(path) == 1 and section in COMPONENT_SECTIONS and isinstance(old, dict) and isinstance(value, str):
        # `optimizer=sgd` picks another class: its arguments go, but the learning rate stays
        data[section] = {"name": value, **{k: old[k] for k in KEPT_WHEN_RENAMED.get(section, ()) if k in old}}
        return ""
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}  # a new section; the schema says whether it may exist
        child = _child(node, part)
        if not isinstance(child, dict | list):
            return f"{join_key(path[: depth + 1])} holds a value, not a section"
        node = child
    last = path[-1]
    if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
        return f"{join_key(path[:-1])} has {len(node)} items (0 to {len(node) - 1}). Try: {join_key(path[:-1])}=[...]"
    node[last] = value
    return ""


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}: dotted keys, as overrides and HParams name them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat
