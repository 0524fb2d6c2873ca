"""Turn pydantic's validation errors into plain problems that name the key and suggest the fix."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from trainer.config import Config, expand_shorthands
from trainer.errors import ConfigError, Problem, did_you_mean, one_of
from trainer.yamlio import KeyPath, join_key


def validate_config(data: dict[str, Any]) -> Config:
    """The config as a Config, or a ConfigError listing every problem with its dotted key."""
    expand_shorthands(data)
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        problems = [_problem(error) for error in err.errors(include_url=False)]
        raise ConfigError(_unique(problems)) from None


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _problem(error: Any) -> Problem:
    path, parent = _locate(error["loc"])
    key = join_key(path)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden":
        allowed = list(parent.model_fields) if parent else []
        section = join_key(path[:-1]) or "the top level"
        hint = did_you_mean(str(path[-1]), allowed)
        return Problem(key, f"unknown key{hint}. Keys allowed in {section}: {one_of(allowed, 20)}")
    if kind == "missing":
        return Problem(key, "is required but missing. Try: add it (trainer/config.py says what each key means)")
    if kind in ("union_tag_invalid", "literal_error"):
        expected = str(ctx.get("expected_tags") or ctx.get("expected", "")).replace(" or ", ", ").split(",")
        choices = [choice.strip(" '") for choice in expected if choice.strip(" '")]
        given = ctx.get("tag", value)
        if kind == "union_tag_invalid":
            key = join_key((*path, str(ctx.get("discriminator", "")).strip("'")))
        hint = did_you_mean(str(given), choices)
        return Problem(key, f"'{given}' is not one of the choices{hint}. Choose one of: {one_of(choices)}")
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "")).strip("'")
        return Problem(key, f"needs a '{field}' key saying which one to use")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return Problem(key, f"must be a section of `key: value` lines, not {value!r}")
    if kind == "string_pattern_mismatch":
        return Problem(key, f"{value!r} is not allowed here: {_pattern_help(key)}")
    message = error["msg"][0].lower() + error["msg"][1:]
    return Problem(key, f"{message} (got {value!r})")


def _pattern_help(key: str) -> str:
    if key == "train.device":
        return "use auto, cpu, cuda, cuda:N or mps"
    return "use letters, digits, '.', '_' or '-' (no spaces or slashes)"


def _locate(loc: tuple[Any, ...]) -> tuple[KeyPath, type[BaseModel] | None]:
    """Follow pydantic's `loc` through the schema: the user's key path (union tags dropped), and the
    schema model that holds its last key (to list the keys allowed there)."""
    path: list[Any] = []
    model: type[BaseModel] | None = Config
    parent: type[BaseModel] | None = None
    union: dict[str, type[BaseModel]] = {}
    for part in loc:
        if str(part) in union:  # pydantic's tag for the alternative of a union it tried
            model, union = union[str(part)], {}
            continue
        parent, union = model, {}
        path.append(part)
        field = model.model_fields.get(part) if model and isinstance(part, str) else None
        tagged = _tagged_models(field.annotation) if field else {}
        model = next(iter(tagged.values())) if len(set(tagged.values())) == 1 else None
        if model is None:
            union = tagged
    return tuple(path), parent


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


def _tagged_models(annotation: Any) -> dict[str, type[BaseModel]]:
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
