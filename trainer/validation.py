"""Turn pydantic's validation errors into plain problems that name the key and suggest the fix."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from trainer import keys
from trainer.config import COMPONENT_SECTIONS, Config, expand_shorthands
from trainer.errors import ConfigError, Problem, did_you_mean, fold, one_of
from trainer.yamlio import KeyPath, join_key

# Values other tools write for a key leaptrain spells otherwise: `precision: 16` (Lightning) is fp16 here.
FOREIGN_VALUES = {"train.precision": keys.precision_value, "train.device": keys.device_value}


def validate_config(data: dict[str, Any]) -> Config:
    """The config as a Config, or a ConfigError listing every problem with its dotted key."""
    expand_shorthands(data)
    misplaced = _misplaced_arguments(data)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        problems = [_problem(error, data) for error in err.errors(include_url=False)]
        raise ConfigError(_unique(misplaced + problems)) from None
    if misplaced:
        raise ConfigError(misplaced)
    return cfg


def _misplaced_arguments(data: dict[str, Any]) -> list[Problem]:
    """Keys of component sections that belong to another section (optimizer.epochs) or to another class of the
    section (momentum for Adam), found before the arguments are checked against the class. Each is taken out of
    `data`, so that check does not report it again as a misspelled argument (`eps`?); the config is refused."""
    problems = []
    for section in COMPONENT_SECTIONS:
        args = data.get(section)
        if not isinstance(args, dict):
            continue
        # Only keys the section's schema lacks can be misplaced, and only they need the class's arguments: the
        # catalog of torch's signatures is not read (nor made, importing torch) for a config of schema keys alone.
        outside = [key for key in args if not _in_schema((section, str(key)), data)]
        name = str(args.get("name") or keys.default_name(section))
        taken = keys.component_arguments(section, name) if outside else None
        for key in outside:
            path = (section, str(key))
            suspect = not keys.is_known(path, data) or (taken is not None and key not in taken)
            homes = keys.homes_of(path, data, args[key]) if suspect else []
            if homes and homes[0].key:
                message = keys.message(path, data, [], args.pop(key))
                if takers := keys.other_takers(section, str(key), data)[1]:  # scheduler.patience: plateau has one
                    message += f" (or `name: {takers[0]}` in {section}, which takes {key})"
                problems.append(Problem(join_key(path), message))
            elif homes:  # a setting leaptrain has no key for (init_args, num_classes): what to do instead
                problems.append(Problem(join_key(path), keys.message(path, data, [], args.pop(key))))
            elif (found := keys.other_takers(section, str(key), data))[1]:
                chosen, takers = found
                args.pop(key)
                they = f"{', '.join(takers[:4])} take" if len(takers) > 1 else f"{takers[0]} takes"
                fix = f"`name: {takers[0].lower()}` to use {takers[0]}, or remove {key}"
                problems.append(Problem(join_key(path), f"{chosen} has no argument '{key}'; {they} it. Try: {fix}"))
    return problems


def _in_schema(path: KeyPath, data: dict[str, Any]) -> bool:
    """True for a key of the section's own schema (name, optimizer.lr, model.hidden for mlp), not a class argument."""
    spot = keys.field_at(path, data)
    return spot is not None and not spot.argument


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _problem(error: Any, data: dict[str, Any]) -> Problem:
    path, parent = _locate(error["loc"], data)
    key = join_key(path)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden":
        allowed = list(parent.model_fields) if parent else []
        return Problem(key, keys.message(path, data, allowed, value))
    if kind == "number_role":  # trainer/numbers.py's own message says what the number is for, and what to try
        return Problem(key, error["msg"])
    if kind == "missing":
        return Problem(key, "is required but missing. Try: add it (trainer/config.py says what each key means)")
    if kind in ("union_tag_invalid", "literal_error"):
        expected = str(ctx.get("expected_tags") or ctx.get("expected", "")).replace(" or ", ", ").split(",")
        choices = [choice.strip(" '") for choice in expected if choice.strip(" '")]
        given = ctx.get("tag", value)
        if kind == "union_tag_invalid":
            key = join_key((*path, str(ctx.get("discriminator", "")).strip("'")))
        if ours := _our_spelling(key, given, choices):
            return Problem(
                key, f"{given!r} is another tool's spelling of {ours}. Try: {ours} (one of: {one_of(choices)})"
            )
        hint = did_you_mean(str(given), choices)
        return Problem(key, f"'{given}' is not one of the choices{hint}. Choose one of: {one_of(choices)}")
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "")).strip("'")
        written = [k for k in (value if isinstance(value, dict) else {}) if fold(str(k)) in keys.CLASS_WORDS]
        if written:  # `type: mnist`, as mmcv writes it
            return Problem(
                key,
                f"needs a '{field}' key; '{written[0]}' is another tool's word for it. "
                f"Try: {field}: {value[written[0]]}",
            )
        return Problem(key, f"needs a '{field}' key saying which one to use")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return Problem(key, _not_a_section(value))
    if kind == "string_pattern_mismatch":
        if ours := _our_spelling(key, value, []):
            return Problem(key, f"{value!r} is another tool's spelling of {ours}. Try: {ours} ({_pattern_help(key)})")
        return Problem(key, f"{value!r} is not allowed here: {_pattern_help(key)}")
    if kind == "list_type" and isinstance(value, str) and re.match(r"^-\S", value):
        return Problem(key, f"must be a list, not {value!r}: a list item needs a space after '-'. Try: - 64")
    if ours := _our_spelling(key, value, []):  # `device: 0`
        return Problem(key, f"{value!r} is another tool's spelling of {ours}. Try: {ours}")
    message = error["msg"][0].lower() + error["msg"][1:]
    if kind == "list_type" and isinstance(value, str) and "," in value:  # `hidden: 64, 32`
        return Problem(key, f"{message} (got {value!r}): a list is written in brackets. Try: [{value}]")
    if kind == "list_type" and isinstance(value, int | float | str) and not isinstance(value, bool):
        return Problem(key, f"{message} (got {value!r}). Try: [{value}] (a list of one)")
    if kind.endswith("_parsing") and isinstance(value, str) and "," in value:  # lr=1e-3,3e-3 outside a sweep
        return Problem(
            key,
            f"takes one value, not the list {value!r}. Try: one value; to train with each, "
            f"python -m trainer sweep CONFIG {key}={value}",
        )
    return Problem(key, f"{message} (got {value!r})")


def _our_spelling(key: str, given: Any, choices: list[str]) -> str:
    """fp16 for `precision: 16`, cuda for `device: gpu`: the value in leaptrain's words, when it has one."""
    convert = FOREIGN_VALUES.get(key)
    ours = convert(given) if convert and not isinstance(given, dict) else None
    return ours if ours is not None and ours != given and (ours in choices or not choices) else ""


def _not_a_section(value: Any) -> str:
    """`train:` followed by nothing indented, or by `device:cpu` (no space after ':'), reads as a plain value."""
    if value is None:
        return "is empty: nothing is indented under it. Try: indent its keys by two spaces, or remove the line"
    if isinstance(value, str) and (match := re.match(r"^([A-Za-z_][\w.-]*):(\S.*)$", value)):
        return f"reads as the text {value!r}: a space is missing after ':'. Try: {match[1]}: {match[2]}"
    if isinstance(value, str) and (match := re.match(r"^([A-Za-z_][\w.-]*)\s*=\s*(.*)$", value)):
        return f"reads as the text {value!r}: YAML keys take ':', not '='. Try: {match[1]}: {match[2]}"
    return f"must be a section of `key: value` lines, not {value!r}"


def _pattern_help(key: str) -> str:
    if key == "train.device":
        return "use auto, cpu, cuda, cuda:N or mps"
    return "use letters, digits, '.', '_' or '-' (no spaces or slashes)"


def _locate(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[KeyPath, type[BaseModel] | None]:
    """The user's key path in pydantic's `loc` (without the tags pydantic adds for the alternative of a union it
    tried), and the schema model that holds its last key (to list the keys allowed there)."""
    path: list[Any] = []
    tags: dict[str, type[BaseModel]] = {}
    for part in loc:
        if str(part) in tags:  # pydantic's tag for the data set or model alternative: not a key the user wrote
            tags = {}
            continue
        path.append(part)
        spot = keys.field_at(tuple(path), data)
        tags = spot.alternatives if spot is not None and len(set(spot.alternatives.values())) > 1 else {}
    holder = keys.field_at(tuple(path[:-1]), data)
    return tuple(path), holder.model if holder is not None else None
