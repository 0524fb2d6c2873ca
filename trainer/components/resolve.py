"""Find a class by the name a user wrote, import user code by path, and check arguments against signatures."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from trainer.errors import Problem, UserError, did_you_mean, fold, one_of
from trainer.explain import user_location


def find_by_name(name: str, classes: dict[str, Any], aliases: dict[str, str], suffix: str = "") -> Any | None:
    """The class for `name`: an alias, a class name, or either without its suffix (e.g. 'Loss'), in any case."""
    if name in aliases:
        return classes[aliases[name]]
    if name in classes:
        return classes[name]
    folded = {fold(cls_name): cls for cls_name, cls in classes.items()}
    folded |= {fold(cls_name).removesuffix(suffix.lower()): cls for cls_name, cls in classes.items()}
    return folded.get(fold(name).removesuffix(suffix.lower()))


def unknown_name(name: str, kind: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    return f"unknown {kind} '{name}'{did_you_mean(name, choices)}. Choose one of: {one_of(choices)}"


def is_path_reference(name: str) -> bool:
    """True for 'models/net.py:Net' or 'my_package.models:Net' (user code the config asks for)."""
    return ":" in name and not name.startswith(":")


def load_reference(reference: str, key: str) -> Any:
    """Import `file.py:Name` (relative to the current folder) or `package.module:Name` and return Name."""
    target, _, attr = reference.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UserError(
                f"the file '{target}' does not exist (looked in {Path.cwd()})",
                fix="give the path relative to the folder you run from, e.g. models/my_net.py:MyNet",
                key=key,
            )
        module_name = f"user_{path.stem}_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look the module up here
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            raise UserError(
                f"{target}:{err.lineno}: Python cannot read this line: {err.msg}",
                fix="fix the line (a missing ':', bracket or quote is the usual cause)",
                key=key,
            ) from err
        except Exception as err:
            where = user_location(err.__traceback__) or target
            raise UserError(
                f"{where}: {type(err).__name__} while importing '{target}': {err}",
                fix="fix the error in that file (a misspelled import is the usual cause)",
                key=key,
            ) from err
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as err:
            raise UserError(
                f"cannot import '{target}': {err}",
                fix="write a file path ending in .py (models/net.py:Net) or install the package",
                key=key,
            ) from err
    if not hasattr(module, attr):
        names = [n for n in vars(module) if not n.startswith("_")]
        raise UserError(
            f"'{target}' has no '{attr}'{did_you_mean(attr, names)}",
            fix=f"names defined there: {one_of(names)}",
            key=key,
        )
    return getattr(module, attr)


def check_arguments(
    target: Callable[..., Any], args: dict[str, Any], section: str, filled: Iterable[str] = ()
) -> list[Problem]:
    """Problems with `args` for calling `target`: unknown names (with a suggestion) and missing required ones.

    `filled` are the arguments leaptrain passes itself (the parameters for an optimizer, say).
    """
    label = getattr(target, "__name__", str(target))
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters)
    filled = set(filled)
    problems = []
    for arg in args:
        if arg in filled:
            problems.append(Problem(f"{section}.{arg}", f"leaptrain sets '{arg}' itself. Try: remove this key"))
        elif arg not in named and not takes_any:
            choices = [n for n in named if n not in filled]
            problems.append(
                Problem(
                    f"{section}.{arg}",
                    f"{label} has no argument '{arg}'{did_you_mean(arg, choices)}. "
                    f"Its arguments: {one_of(choices, 20) or 'none'}",
                )
            )
    for p in parameters:
        required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and p.name not in args and p.name not in filled:
            problems.append(Problem(section, f"{label} needs the argument '{p.name}'. Try: add `{p.name}: ...`"))
    return problems
