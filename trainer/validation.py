"""Turn pydantic's validation errors into plain problems that name the key and suggest the fix."""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

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
        problems = _problems(err.errors(include_url=False), data)
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


def _problems(errors: list[Any], data: dict[str, Any]) -> list[Problem]:
    """One problem per mistake. pydantic reports a value a union refused once per member it tried (`workers: many`
    is neither an int nor 'auto'): those are one mistake, unless a member took the value's kind and found something
    wrong inside it (a distribution's unknown key), which is then the mistake."""
    placed = [(error, _locate(error["loc"], data)) for error in errors]
    tried: dict[KeyPath, list[tuple[Any, Place]]] = {}
    for error, place in placed:
        if place.union is not None:
            tried.setdefault(place.union.path, []).append((error, place))
    problems = []
    for error, place in placed:
        group = tried[place.union.path] if place.union is not None else [(error, place)]
        fitted = [e for e, p in group if not _wrong_kind(e, p)]
        if place.union is None or any(e is error for e in fitted):
            problems.append(_problem(error, place, data))
        elif not fitted and group[0][0] is error:
            value = next((e["input"] for e, p in group if not p.inside), error["input"])  # the value, not an item
            problems.append(_refused(value, place.union))
    return problems


def _wrong_kind(error: Any, place: Place) -> bool:
    """True when the union's member refused the value for its kind (text for a number, a number for a list, a
    list of 3 or of 1 for a pair), not for something a value of its kind can get wrong (0 where it must be above 0,
    an unknown key in a distribution)."""
    kind = error["type"]
    pair = typing.get_origin(_base(place.union.member if place.union else None)) is tuple
    if place.inside:
        return pair and kind == "missing" and len(place.path) == len(place.union.path) + 1  # [64] for a pair
    return (
        kind.endswith(("_type", "_parsing"))
        or kind in ("literal_error", "int_from_float", "union_tag_invalid", "union_tag_not_found")
        or (pair and kind in ("too_short", "too_long"))
    )


def _refused(value: Any, union: UnionKey) -> Problem:
    """`data.workers: 'many' is not allowed here: give a whole number or auto`: what each member of the union takes."""
    key = join_key(union.path)
    accepted = list(dict.fromkeys(_words(member) for member in union.members))
    takes = ", ".join(accepted[:-1]) + f" or {accepted[-1]}" if len(accepted) > 1 else accepted[0]
    literals = [_base(member) for member in union.members if typing.get_origin(_base(member)) is Literal]
    choices = [str(choice) for literal in literals for choice in typing.get_args(literal)]
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    listed = any(typing.get_origin(_base(m)) in (list, tuple) for m in union.members)
    if isinstance(value, str) and "," in value and not listed:  # workers=0,2 outside a sweep
        return Problem(
            key,
            f"takes one value ({takes}), not the list {value!r}. Try: one value; to train with each, "
            f"python -m trainer sweep CONFIG {key}={value}",
        )
    fix = ""
    if listed and isinstance(value, str) and "," in value:
        fix = f"[{value}]"
    elif listed and any(typing.get_origin(_base(m)) is list for m in union.members) and _scalar(value):
        fix = f"[{_yaml(value)}] (a list of one)"
    elif union.field is not None and union.field.default not in (None, PydanticUndefined):
        fix = f"{_yaml(union.field.default)} (the default)"
    wrong = "is empty" if value is None else f"{value!r} is not allowed here{hint}"  # `workers:` and nothing after
    return Problem(key, f"{wrong}: give {takes}" + (f". Try: {fix}" if fix else ""))


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _yaml(value: Any) -> str:
    """A value as it is written in YAML: auto, 0.1, [64, 64], true."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _words(kind: Any, plural: bool = False) -> str:
    """What a type takes, in the learner's words: int -> 'a whole number', Literal['auto'] -> 'auto'."""
    base, bounds = _base(kind), _bounds(kind)
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is Literal:
        return ", ".join(str(arg) for arg in args[:-1]) + f" or {args[-1]}" if len(args) > 1 else str(args[0])
    if origin is tuple and args and args[-1] is not Ellipsis:
        items = list(dict.fromkeys(_words(arg, plural=True) for arg in args))
        if len(items) == 1:
            return f"a list of {len(args)} {items[0]}"
        return f"a list [{', '.join(_words(arg) for arg in args)}]"
    if origin in (list, tuple):
        return "a list of values" if not args or args[0] is Any else f"a list of {_words(args[0], plural=True)}"
    if origin is dict:
        return "a section of `key: value` lines"
    if isinstance(base, type) and issubclass(base, BaseModel):
        shown = [name for name, field in base.model_fields.items() if field.is_required()] or list(base.model_fields)
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base.__name__).lower()  # EarlyStopping -> early stopping
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name} {{" + ", ".join(f"{key}: ..." for key in shown) + "}"
    nouns = {bool: ("true or false", "true or false"), int: ("a whole number", "whole numbers")}
    nouns |= {float: ("a number", "numbers"), str: ("text", "texts"), type(None): ("nothing", "nothing")}
    singular, many = nouns.get(base, (f"a {getattr(base, '__name__', base)}", f"{getattr(base, '__name__', base)}s"))
    return (many if plural else singular) + bounds


def _bounds(kind: Any) -> str:
    """' above 0' for Field(gt=0), ' of 0 or more' for ge=0: the limits an Annotated number carries."""
    limits = []
    for meta in _metadata(kind):
        for attr, words in (("gt", "above {}"), ("ge", "of {} or more"), ("lt", "below {}"), ("le", "of {} or less")):
            if getattr(meta, attr, None) is not None:
                limits.append(words.format(getattr(meta, attr)))
    return "".join(f" {limit}" for limit in limits[:1]) + "".join(f" and {limit}" for limit in limits[1:])


def _metadata(kind: Any) -> list[Any]:
    found = []
    while typing.get_origin(kind) is typing.Annotated:
        kind, *meta = typing.get_args(kind)
        for item in meta:
            found.extend([item, *getattr(item, "metadata", [])])
    return found


def _problem(error: Any, place: Place, data: dict[str, Any]) -> Problem:
    path, parent = place.path, place.holder
    key = join_key(path)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden" and place.in_value:  # a key of a value's section (a distribution): its own keys only
        allowed = list(parent.model_fields) if parent else []
        listed = f". Keys allowed in {join_key(path[:-1])}: {', '.join(allowed)}" if allowed else ""
        return Problem(key, f"unknown key{did_you_mean(str(path[-1]), allowed)}{listed}")
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


@dataclass
class UnionKey:
    """A union-typed place pydantic tried a member of: data.workers (int or 'auto'), a sweep's values."""

    path: KeyPath  # the user's key holding the union
    members: list[Any]  # its alternatives, as annotated (None left out)
    member: Any  # the one this error came from
    field: FieldInfo | None  # the schema field whose type the union is (None for a dict's or list's values)


@dataclass
class Place:
    """Where a pydantic error is, in the user's words."""

    path: KeyPath  # the key as written: no labels of union members in it
    holder: type[BaseModel] | None  # the schema section holding its last key (to list the keys allowed there)
    in_value: bool = False  # the key is inside a list or dict value (a sweep's distribution), not a config section
    union: UnionKey | None = None  # the last union on the way, when pydantic tried one of its members
    inside: bool = False  # the error is about a key or item inside that member's value, not the value itself


def _locate(loc: tuple[Any, ...], data: dict[str, Any]) -> Place:
    """The user's key in pydantic's `loc`, following the schema along it. Where the type at a point is a union, the
    next part of `loc` is pydantic's label for the member it tried (the data set or model tag, `int`,
    `literal['auto']`, `list[any]`, `Distribution`): it is recognised as one of that union's members and left out."""
    path: list[Any] = []
    kind: Any = Config
    place = Place((), None)
    field: FieldInfo | None = None
    for part in loc:
        members = _union_members(kind)
        if members and str(part) in (labels := _labels(_base(kind))):
            place.union = UnionKey(tuple(path), members, labels[str(part)], field)
            place.inside = False
            kind, field = labels[str(part)], None
            continue
        path.append(part)
        place.inside = place.union is not None
        base = _base(kind)
        origin, args = typing.get_origin(base), typing.get_args(base)
        place.holder, field = None, None
        if isinstance(base, type) and issubclass(base, BaseModel):
            place.holder = base
            field = base.model_fields.get(str(part))
            kind = field.annotation if field is not None else None
        elif origin is dict and len(args) == 2:
            kind, place.in_value = args[1], True
        elif origin in (list, tuple) and args and isinstance(part, int):
            fixed = origin is tuple and args[-1] is not Ellipsis  # tuple[int, int]: each item its own type
            kind, place.in_value = (args[min(part, len(args) - 1)] if fixed else args[0]), True
        else:
            kind = None
    if place.holder is None and len(path) > 1:  # off the schema's types: the section the config chose
        holder = keys.field_at(tuple(path[:-1]), data)
        place.holder = holder.model if holder is not None else None
    place.path = tuple(path)
    return place


def _base(kind: Any) -> Any:
    """The type without its Annotated wrappers, and without None when it is the one other choice (`str | None`)."""
    while True:
        if typing.get_origin(kind) is typing.Annotated:
            kind = typing.get_args(kind)[0]
        elif typing.get_origin(kind) in (typing.Union, types.UnionType) and len(_not_none(kind)) == 1:
            kind = _not_none(kind)[0]
        else:
            return kind


def _union_members(kind: Any) -> list[Any]:
    """The alternatives of a union of two or more (None aside), as annotated; [] for any other type."""
    kind = _base(kind)
    return _not_none(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else []


def _not_none(union: Any) -> list[Any]:
    return [member for member in typing.get_args(union) if member is not type(None)]


@functools.lru_cache(maxsize=64)
def _labels(union: Any) -> dict[str, Any]:
    """pydantic's label for each member of a union, as its error locations carry it: the tag of a data set or model
    alternative, else the name of the member's own validator (int, constrained-int, literal['auto'], Distribution)."""
    labels = {TypeAdapter(member).validator.title: member for member in _union_members(union)}
    return labels | keys.tagged_models(union)
