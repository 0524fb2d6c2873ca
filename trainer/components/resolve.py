"""Find a class by the name a user wrote, import user code by path (or read it without running it), check that
what a reference names is the kind of thing its section needs before anything calls it, and check arguments
against signatures. What a config or a checkpoint may make leaptrain import: docs/trust.md."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, Problem, UserError, closest, did_you_mean, did_you_mean_path, fold, one_of


@dataclass(frozen=True)
class Signature:
    """What a constructor accepts, as plain data: the catalog keeps these so configs are checked without torch."""

    name: str  # the class or function, for messages: 'AdamW'
    args: tuple[str, ...]  # the names it can be given
    required: tuple[str, ...]  # those without a default
    takes_any: bool  # it has **kwargs, so any name is accepted


def signature_of(target: Callable[..., Any]) -> Signature:
    """The Signature of a class or function (one that cannot be inspected accepts anything)."""
    name = getattr(target, "__name__", str(target))
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return Signature(name, (), (), takes_any=True)
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return Signature(
        name,
        tuple(p.name for p in named),
        tuple(p.name for p in named if p.default is p.empty),
        any(p.kind == p.VAR_KEYWORD for p in parameters),
    )


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


@dataclass(frozen=True)
class Kind:
    """What a section needs a reference to name; the object is checked against it before anything calls it."""

    needs: str  # for messages: 'a subclass of torch.nn.Module'
    fix: str  # what to name instead, with an example
    functions: bool  # whether a plain function will do (told from the file's source before it runs)

    def accepts(self, target: Any) -> bool:
        from torch import nn  # the object was imported, so torch was too

        is_module_class = isinstance(target, type) and issubclass(target, nn.Module)
        return is_module_class or (self.functions and inspect.isfunction(target))


MODEL = Kind(
    "a subclass of torch.nn.Module",
    "name a class of your own file that subclasses nn.Module, e.g. net.py:Net",
    functions=False,
)
LOSS = Kind(
    "a subclass of torch.nn.Module or a function (logits, targets)",
    "name a loss class (an nn.Module) or a function (logits, targets) of your own file, e.g. loss.py:my_loss",
    functions=True,
)
# The sections whose name may be a reference to code: those a saved config is checked for (trust_saved_references).
KINDS = {"model.name": MODEL, "loss.name": LOSS}


def check_reference(reference: str, key: str, kind: Kind | None = None) -> list[Problem]:
    """What can be told of `file.py:Name` without running the file (it imports torch): that the file exists,
    that Python can read it, that it defines Name, and (for a `kind` that takes no functions) that Name is not a
    function. Of `package.module:Name`, only that it is not the standard library; the rest is `load_reference`'s."""
    target, _, attr = reference.rpartition(":")
    if not target.endswith(".py"):
        refused = _standard_library(reference, key, kind)
        return [_problem(refused)] if refused else []
    if missing := _missing_file(target, key):
        return [_problem(missing)]
    try:
        tree = ast.parse(Path(target).read_bytes(), filename=target)
    except SyntaxError as err:
        return [_problem(_unreadable(target, err, key))]
    except (OSError, ValueError):
        return []  # unreadable for another reason: importing it will say why
    bound = _bound_names(tree)
    if bound is not None and attr not in bound:
        return [_problem(_not_defined(target, attr, _top_level_names(tree), key))]
    if kind is not None and not kind.functions and isinstance(definition_in_file(reference), ast.FunctionDef):
        return [_problem(_wrong_kind(reference, "a function", key, kind))]
    return []


def _standard_library(reference: str, key: str, kind: Kind | None) -> UserError | None:
    """No section takes anything from Python's standard library (os, subprocess, builtins ...): refused before
    anything is imported, since naming one is how a config would run a command."""
    target = reference.rpartition(":")[0]
    top = target.partition(".")[0]
    if target.endswith(".py") or (top not in sys.stdlib_module_names and not top.startswith("__")):
        return None  # a file is the learner's, whatever its name (code.py, test.py)
    needs = f"; {key} needs {kind.needs}" if kind else ""
    return UserError(
        f"'{reference}' is in Python's standard library ('{top}'), not a model or loss of yours{needs}",
        fix=(kind or MODEL).fix,
        key=key,
    )


def _wrong_kind(reference: str, what: str, key: str, kind: Kind) -> UserError:
    return UserError(f"'{reference}' is {what}; {key} needs {kind.needs}", fix=kind.fix, key=key)


def _what_it_is(target: Any) -> str:
    """'a built-in function', 'the class subprocess.Popen' ...: what a reference named, for a message."""
    if inspect.ismodule(target):
        return f"the module {target.__name__}"
    if inspect.isbuiltin(target):
        return "a built-in function"
    if inspect.isfunction(target) or inspect.ismethod(target):
        return "a function"
    if isinstance(target, type):
        own = target.__module__.startswith("user_")  # a learner's file: the reference names it already
        return f"the class {'' if own else target.__module__ + '.'}{target.__qualname__}, not a torch.nn.Module"
    return f"an object of type {type(target).__name__} (made already: name its class instead)"


def _problem(err: UserError) -> Problem:
    return Problem(err.key, f"{err.message}. Try: {err.fix}")


def definition_in_file(reference: str) -> ast.ClassDef | ast.FunctionDef | None:
    """The class or function `file.py:Name` stands for, read off the file without running it; None unless that is
    sure: Name is defined once, at the top level, undecorated (a class by an __init__ of its own)."""
    target, _, attr = reference.rpartition(":")
    try:
        tree = ast.parse(Path(target).read_bytes(), filename=target)
    except (OSError, ValueError, SyntaxError):
        return None
    if _bound_names(tree) is None:
        return None
    binding = [node for node in tree.body if attr in (_bound_names(ast.Module([node], [])) or set())]
    if len(binding) != 1 or not isinstance(binding[0], ast.ClassDef | ast.FunctionDef) or binding[0].decorator_list:
        return None
    node = binding[0]
    if isinstance(node, ast.FunctionDef):
        return node
    methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    init = methods.get("__init__")
    if node.keywords or "__new__" in methods or not isinstance(init, ast.FunctionDef) or init.decorator_list:
        return None  # a metaclass, __new__ or an inherited __init__ decide what it takes
    return node


def signature_in_file(node: ast.ClassDef | ast.FunctionDef) -> Signature:
    """The Signature of a class or function read off its source, the same as `signature_of` gives once it runs."""
    function = (
        node
        if isinstance(node, ast.FunctionDef)
        else next(item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__")
    )
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    without_default = {p.arg for p in positional[: len(positional) - len(arguments.defaults)]}
    named = list(arguments.args)
    if isinstance(node, ast.ClassDef):  # `self` is not given by the caller
        named = named[1:] if not arguments.posonlyargs else named
    keyword_only = list(zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True))
    return Signature(
        node.name,
        tuple([p.arg for p in named] + [p.arg for p, _ in keyword_only]),
        tuple([p.arg for p in named if p.arg in without_default] + [p.arg for p, d in keyword_only if d is None]),
        arguments.kwarg is not None,
    )


def _bound_names(tree: ast.Module) -> set[str] | None:
    """Every name the file binds anywhere (more than it defines at its top level, never fewer), or None when it
    may define names that cannot be read off: a star import, globals(), exec or a module __getattr__."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return None
        if isinstance(node, ast.Name) and node.id in ("globals", "exec"):
            return None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Global):
            names |= set(node.names)
    return None if "__getattr__" in names else names


def _top_level_names(tree: ast.Module) -> list[str]:
    """The public classes, functions and imports at the file's top level: the names to suggest."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [(alias.asname or alias.name).partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.Assign):
            names += [n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)]
    return [name for name in dict.fromkeys(names) if not name.startswith("_")]


def _missing_file(target: str, key: str) -> UserError | None:
    if Path(target).is_file():
        return None
    return UserError(
        f"the file '{target}' does not exist{did_you_mean_path(target)} (looked in {Path.cwd()})",
        fix="give the path relative to the folder you run from, e.g. models/my_net.py:MyNet",
        key=key,
    )


def _unreadable(target: str, err: SyntaxError, key: str) -> UserError:
    return UserError(
        f"{target}:{err.lineno}: Python cannot read this line: {err.msg}",
        fix="fix the line (a missing ':', bracket or quote is the usual cause)",
        key=key,
    )


def _not_defined(target: str, attr: str, names: list[str], key: str) -> UserError:
    return UserError(
        f"'{target}' has no '{attr}'{did_you_mean(attr, names)}", fix=f"names defined there: {one_of(names)}", key=key
    )


def load_reference(reference: str, key: str, kind: Kind | None = None) -> Any:
    """Import `file.py:Name` (relative to the current folder) or `package.module:Name` and return Name, refused
    unless it is the `kind` its section needs: every caller that will call or instantiate Name gives its kind, so
    nothing is called that is not. The standard library is refused before anything is imported."""
    target, _, attr = reference.rpartition(":")
    if refused := _standard_library(reference, key, kind):
        raise refused
    if target.endswith(".py"):
        path = Path(target)
        if missing := _missing_file(target, key):
            raise missing
        module_name = f"user_{path.stem}_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look the module up here
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            raise _unreadable(target, err, key) from err
        except Exception as err:
            from trainer.failure import user_location  # only when the learner's file fails

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
        raise _not_defined(target, attr, [n for n in vars(module) if not n.startswith("_")], key)
    found = getattr(module, attr)
    if kind is not None and not kind.accepts(found):
        raise _wrong_kind(reference, _what_it_is(found), key, kind)
    return found


def check_arguments(
    target: Signature | Callable[..., Any], args: dict[str, Any], section: str, filled: Iterable[str] = ()
) -> list[Problem]:
    """Problems with `args` for calling `target`: unknown names (with a suggestion) and missing required ones.

    `filled` are the arguments leaptrain passes itself (the parameters for an optimizer, say).
    """
    signature = target if isinstance(target, Signature) else signature_of(target)
    filled = set(filled)
    problems = []
    for arg in args:
        if arg in filled:
            problems.append(Problem(f"{section}.{arg}", f"leaptrain sets '{arg}' itself. Try: remove this key"))
        elif arg not in signature.args and not signature.takes_any:
            choices = [n for n in signature.args if n not in filled]
            if (meant := closest(arg, [*choices, *filled])) in filled:  # num_class: leaptrain gives num_classes
                message = f"{signature.name} has no argument '{arg}' (did you mean '{meant}'?); leaptrain sets"
                problems.append(Problem(f"{section}.{arg}", f"{message} '{meant}' itself. Try: remove this key"))
                continue
            problems.append(
                Problem(
                    f"{section}.{arg}",
                    f"{signature.name} has no argument '{arg}'{did_you_mean(arg, choices)}. "
                    f"Its arguments: {one_of(choices, 20) or 'none'}",
                )
            )
    for name in signature.required:
        if name not in args and name not in filled:
            problems.append(Problem(section, f"{signature.name} needs the argument '{name}'. Try: add `{name}: ...`"))
    return problems


# Names the modules or files a user allows a run's or a checkpoint's config to import (for commands that take no
# overrides, such as predict): a comma-separated list, e.g. LEAPTRAIN_ALLOW_IMPORT=my_package.models
ALLOW_IMPORT = "LEAPTRAIN_ALLOW_IMPORT"


def _inside_current_folder(target: str) -> bool:
    """A relative path that stays in the current folder (no absolute path, no '..' out of it, no odd bytes)."""
    try:
        return not Path(target).is_absolute() and Path(target).resolve().is_relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return False


def saved_references(cfg: Any) -> dict[str, str]:
    """The references to code a config holds, by key: {'model.name': 'net.py:Net'}."""
    names = {key: getattr(getattr(cfg, key.partition(".")[0]), "name", "") for key in KINDS}
    return {key: name for key, name in names.items() if is_path_reference(name)}


def trust_saved_references(cfg: Any, source: Any, run: Path, command: str, takes_overrides: bool = True) -> None:
    """A config read from a run or a checkpoint, which may come from someone else, may make leaptrain import only
    the learner's own files, given relative to the current folder: says in a line which file it imports, and
    refuses anything else (a package, a file elsewhere) before anything is imported. A reference typed on the
    command line, or allowed in $LEAPTRAIN_ALLOW_IMPORT, is the user's own. `command` is the line that was typed."""
    allowed = {name.strip() for name in os.environ.get(ALLOW_IMPORT, "").split(",") if name.strip()}
    problems: list[Problem] = []
    notes: dict[str, list[str]] = {}
    for key, reference in saved_references(cfg).items():
        path = tuple(key.split("."))
        target = reference.rpartition(":")[0]
        if path in source.overrides or path[:-1] in source.overrides or target in allowed:
            continue
        typed = shlex.quote(f"{key}={reference}")
        allow = f"{command} {typed}" if takes_overrides else f"{ALLOW_IMPORT}={shlex.quote(target)} {command}"
        if refused := _standard_library(reference, key, KINDS[key]):
            problems.append(_problem(refused))
        elif not target.endswith(".py"):
            problems.append(
                Problem(
                    key,
                    f"the run's config names the package module '{target}': a run or checkpoint cannot make "
                    f"leaptrain import a package, since it may come from someone else. Try: if you trust "
                    f"'{target}', allow it yourself: {allow}",
                )
            )
        elif not _inside_current_folder(target):
            problems.append(
                Problem(
                    key,
                    f"the run's config names '{target}', outside the current folder: a run or checkpoint may only "
                    f"name files of the folder you run from. Try: copy your own file here, or if you trust it, "
                    f"allow it yourself: {allow}",
                )
            )
        elif not Path(target).is_file():
            beside = next((folder for folder in run.resolve().parents[:5] if (folder / target).is_file()), None)
            if beside is None:
                problems.append(_problem(_missing_file(target, key) or UserError(target)))
            else:
                problems.append(
                    Problem(
                        key,
                        f"the run's config names '{target}', which is not in the current folder but in {beside}, "
                        f"beside the run. Try: run the command from there (cd {beside})",
                    )
                )
        else:
            notes.setdefault(target, []).append(key)
    if problems:
        raise ConfigError(problems, source)
    for target, keys in notes.items():
        print(f"note: importing {target} (named by the run's config: {', '.join(keys)})", file=sys.stderr)
