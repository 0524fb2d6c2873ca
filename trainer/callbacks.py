"""The Trainer's hooks, and the observers built on them: early stopping, pictures, the watchdog, the loggers.

A callback is any object with some of these methods; `Callback` offers them all as no-ops to subclass. `Trainer.fit`
calls them in plain sight, in this order:

    on_fit_start(trainer)                     before the first epoch (after a resume too: trainer.state says where)
    on_step_log(trainer, step, values)        every log.every_n_steps optimizer steps: {"train/loss": ..., "lr": ...}
    on_epoch_end(trainer, epoch, metrics)     after each epoch's validation; may return a reason to stop
    on_warning(trainer, text)                 a diagnosis for the run (the preflight's, the watchdog's, ...)
    on_fit_end(trainer, metrics)              after the test evaluation: the final metrics
    on_exception(trainer, error)              the run failed or was stopped: close what is open
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, UserError, closest, did_you_mean
from trainer.metric_names import higher_is_better
from trainer.run_files import RunFiles

# Each hook's parameters after self: the one list both the calls and the checks of a learner's callback follow.
HOOK_PARAMETERS = {
    "on_fit_start": ("trainer",),
    "on_step_log": ("trainer", "step", "values"),
    "on_epoch_end": ("trainer", "epoch", "metrics"),
    "on_warning": ("trainer", "text"),
    "on_fit_end": ("trainer", "metrics"),
    "on_exception": ("trainer", "error"),
}
HOOKS = tuple(HOOK_PARAMETERS)
HOOK_ARGUMENTS = {hook: tuple(None for _ in parameters) for hook, parameters in HOOK_PARAMETERS.items()}


class Callback:
    """A base to subclass (optional): every hook, doing nothing."""

    def on_fit_start(self, trainer: Any) -> None:
        pass

    def on_step_log(self, trainer: Any, step: int, values: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> str | None:
        return None

    def on_warning(self, trainer: Any, text: str) -> None:
        pass

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        pass

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when the monitored metric (the Trainer's `monitor`, which best.pt follows) has not improved for
    `patience` epochs. The count of epochs without improvement is the Trainer's own (kept in checkpoints), so a
    resumed run stops where the uninterrupted one would."""

    def __init__(self, patience: int = 3):
        if patience < 1:
            raise ValueError(f"EarlyStopping(patience={patience}): patience counts epochs. Try: 1 or more")
        self.patience = patience

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> str | None:
        if trainer.state.bad_epochs < self.patience:
            return None
        epochs = f"{self.patience} epoch{'s' if self.patience != 1 else ''}"
        return f"early stop: {trainer.monitor.name} has not improved for {epochs}"


class StopAt(Callback):
    """Stop as soon as `metric` reaches `value` (higher or lower, the way the metric improves): `val/accuracy`
    at 0.99 is good enough, say."""

    def __init__(self, metric: str, value: float):
        self.metric, self.value = metric, value

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> str | None:
        if self.metric not in metrics:
            raise UserError(
                f"stop_at: {self.metric!r} is not a metric of this run{did_you_mean(self.metric, metrics)}",
                fix=f"metric: one of {', '.join(metrics)}",
                key="callbacks",
            )
        reached = (
            metrics[self.metric] >= self.value if higher_is_better(self.metric) else metrics[self.metric] <= self.value
        )
        return f"stopped: {self.metric} reached {self.value:g}" if reached else None


BUILT_IN = {"early_stopping": EarlyStopping, "stop_at": StopAt}


class HookMistake(ValueError):
    """A callback's method that would never be called as the learner meant."""


def check_hooks(callback: Any) -> None:
    """A method named like a hook but not one (`on_epoch_ends`) would never be called: refused, with the hook
    meant; a hook that takes other arguments than the Trainer passes is refused before training too."""
    name = type(callback).__name__
    for attr in dir(type(callback)):
        # Looked up on the class without calling properties: a property may do work (make a writer, a folder).
        if attr.startswith("_") or attr in HOOKS or not callable(inspect.getattr_static(callback, attr, None)):
            continue
        meant = closest(attr, HOOKS, cutoff=0.8)
        if meant is not None or attr.startswith("on_"):
            # Another library's hook (on_validation_epoch_end) is named after the nearest of ours, arguments too.
            meant = meant or closest(attr, HOOKS)
            instead = (
                f"rename it {meant}: def {meant}({', '.join(['self', *HOOK_PARAMETERS[meant]])})"
                if meant
                else f"name it after one of the hooks: {', '.join(HOOKS)}"
            )
            raise HookMistake(
                f"{_place(getattr(callback, attr))}the callback {name} has a method {attr}(), which is not a hook"
                f"{did_you_mean(attr, HOOKS)}: the Trainer would never call it. Try: {instead}"
            )
    for hook, arguments in HOOK_ARGUMENTS.items():
        method = getattr(callback, hook, None)
        if method is None:
            continue
        try:
            inspect.signature(method).bind(*arguments)
        except TypeError:
            expected = ", ".join(["self", *HOOK_PARAMETERS[hook]])
            raise HookMistake(
                f"{_place(method)}the callback {name}'s {hook}{inspect.signature(method)} takes other arguments "
                f"than the Trainer passes. Try: def {hook}({expected})"
            ) from None
        except ValueError:  # a builtin without a signature: nothing to check
            continue


def _place(method: Any) -> str:
    """'recorder.py:12: ' where a method is defined, or ''."""
    try:
        path, line = inspect.getsourcefile(method), inspect.getsourcelines(method)[1]
    except (OSError, TypeError):
        return ""
    if path is None:
        return ""
    with contextlib.suppress(ValueError):
        path = str(Path(path).resolve().relative_to(Path.cwd()))
    return f"{path}:{line}: "


class CallbackFailed(UserError):
    """A learner's callback raised: its place and hook are named; what was saved before stays."""


def call_hook(callback: Any, hook: str, trainer: Any, *arguments: Any) -> Any:
    """Call one callback's hook, if it has it. An exception from a callback the learner wrote stops the run with
    the place in their file and the hook, and what the Trainer passed; so does a hook that returns what the Trainer
    cannot read or sets a flag on the Trainer that nothing reads. leaptrain's own callbacks' errors pass as they are."""
    method = getattr(callback, hook, None)
    if method is None:
        return None
    if type(callback).__module__.startswith("trainer."):
        return method(trainer, *arguments)
    attributes = set(getattr(trainer, "__dict__", {}))
    try:
        returned = method(trainer, *arguments)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as err:
        from trainer.failure import user_location

        where = user_location(err.__traceback__) or type(callback).__module__
        first = (str(err).strip().splitlines() or [""])[0]
        said, fix = _what_was_passed(method, hook, arguments, err)
        raise CallbackFailed(
            f"{where}: {type(err).__name__} in the callback {type(callback).__name__}.{hook}(): {first}{said}"
            f"{_checkpoint_kept(trainer)}",
            fix=fix or f"fix {hook} in that file, or take the callback out of `callbacks`",
            key="callbacks",
        ) from err
    name = f"the callback {type(callback).__name__}.{hook}()"
    if hook == "on_epoch_end" and returned is not None and not isinstance(returned, str):
        # Other libraries stop on True (or on False): here a text is the reason to stop, printed as the run ends.
        raise UserError(
            f"{_place(method)}{name} returned {returned!r}: the Trainer stops the run when on_epoch_end returns "
            f"a text (the reason it prints) and goes on when it returns None{_checkpoint_kept(trainer)}",
            fix='return the reason to stop as a text, e.g. return f"stopped: val/accuracy is {value:.3f}", and None '
            "to go on",
            key="callbacks",
        )
    if added := sorted(set(getattr(trainer, "__dict__", {})) - attributes):
        # `trainer.should_stop = True` (Lightning) or `stop_training` (Keras) would be kept and never read.
        raise UserError(
            f"{_place(method)}{name} set trainer.{added[0]}, which the Trainer does not have: nothing reads it"
            f"{_checkpoint_kept(trainer)}",
            fix=f"to stop the run, return the reason from on_epoch_end; to keep a value, keep it on the callback "
            f"(self.{added[0]})",
            key="callbacks",
        )
    return returned


def _checkpoint_kept(trainer: Any) -> str:
    """'; the last checkpoint is kept: python -m trainer resume RUN' where the run has one, or ''."""
    out_dir = getattr(trainer, "out_dir", None)
    if out_dir is not None and RunFiles(out_dir).last.exists():
        return f"; the last checkpoint is kept: python -m trainer resume {out_dir}"
    return ""


def _what_was_passed(method: Any, hook: str, arguments: tuple[Any, ...], err: Exception) -> tuple[str, str]:
    """What the Trainer passed, where the error is likely about it: the names a missing key could be, or the
    arguments a hook written for another library's order received. (' ...', fix) or ('', '')."""
    expected = HOOK_PARAMETERS.get(hook, ())[1:]
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        key = err.args[0]
        for name, given in zip(_parameter_names(method)[1:] or expected, arguments, strict=False):
            if isinstance(given, dict) and key not in given and all(isinstance(k, str) for k in given):
                meant = _metric_meant(key, given)
                suggestion = f" (did you mean '{meant}'?)" if meant else ""
                said = f" is not in {name}{suggestion}; {name} holds {', '.join(given) or 'nothing'}"
                return said, f"write {name}[{meant!r}]" if meant else f"use one of the names {name} holds"
    names = _parameter_names(method)
    wrong_kind = isinstance(err, (AttributeError, TypeError, KeyError, IndexError))
    if wrong_kind and names and names[: len(expected) + 1] != ["trainer", *expected]:
        # A hook written for another library's arguments (args, state, control) gets ours in their places.
        passed = [
            "the trainer",
            *(f"the {what} ({type(value).__name__})" for what, value in zip(expected, arguments, strict=False)),
        ]
        got = ", ".join(f"{name} is {what}" for name, what in zip(names, passed, strict=False))
        signature = ", ".join(["self", *HOOK_PARAMETERS[hook]])
        return f"; the Trainer passes {', '.join(HOOK_PARAMETERS[hook])}: here {got}", f"def {hook}({signature})"
    return "", ""


def _metric_meant(key: str, names: Iterable[str]) -> str | None:
    """The name `key` stands for, also as other libraries write it: 'val_loss' (Keras, Lightning) is val/loss,
    'loss' and 'acc' (Keras's training metrics, abbreviated) are train/loss and train/accuracy."""
    forms: dict[str, str] = {}
    for name in names:
        split, _, metric = name.rpartition("/")
        for form in (name, f"{split}_{metric}" if split else name, metric):
            forms.setdefault(form, name)
    meant = closest(key, forms) or next((form for form in forms if len(key) >= 3 and form.startswith(key)), None)
    return forms[meant] if meant else None


def _parameter_names(method: Any) -> list[str]:
    """The names of a bound method's positional parameters (after self), or [] where it takes *args."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return []
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def callback_kind() -> Any:
    """What `callbacks:` may name in a file: a class (its methods are the hooks it implements)."""
    from trainer.components.resolve import Kind

    class CallbackClass(Kind):
        def accepts(self, target: Any) -> bool:
            return isinstance(target, type)

    return CallbackClass("a class", "name a class of your own file, e.g. recorder.py:Recorder", functions=False)


def callbacks_from_config(items: list[Any], key: str = "callbacks") -> list[Any]:
    """The `callbacks:` section's objects: built-in names, or file.py:Class, each made with its other keys as
    keyword arguments (checked against its __init__ first), and its hooks checked."""
    from trainer.components.resolve import check_arguments, is_path_reference, load_reference

    made = []
    for index, item in enumerate(items):
        where = f"{key}.{index}"
        if is_path_reference(item.name):
            cls = load_reference(item.name, f"{where}.name", callback_kind())
        elif item.name in BUILT_IN:
            cls = BUILT_IN[item.name]
        else:
            raise UserError(
                f"{where}.name: no callback '{item.name}'{did_you_mean(item.name, BUILT_IN)}",
                fix=f"a built-in callback ({', '.join(BUILT_IN)}) or file.py:Class",
                key=f"{where}.name",
            )
        if problems := check_arguments(cls, item.args, where):
            raise ConfigError(problems)
        try:
            callback = cls(**item.args)
            check_hooks(callback)
        except (UserError, ConfigError):
            raise
        except HookMistake as err:
            text, _, fix = str(err).partition(" Try: ")
            raise UserError(text, fix=fix, key=f"{where}.name") from err
        except Exception as err:
            from trainer.failure import user_location

            at = user_location(err.__traceback__)
            raise UserError(
                f"{at + ': ' if at else ''}the callback {item.name} could not be made: {type(err).__name__}: {err}",
                fix="fix its arguments in the config, or its __init__",
                key=where,
            ) from err
        made.append(callback)
    return made
