"""Errors a user can fix: each carries the config key it is about and what to try, so the CLI can point at it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, found before training starts."""

    key: str  # dotted config key, e.g. "optimizer.lr" ("" for the whole file)
    message: str


class ConfigError(Exception):
    """Every problem found in a config, reported together."""

    def __init__(self, problems: list[Problem], source: Any = None, shown: int = 0):
        super().__init__("\n".join(f"{p.key}: {p.message}" for p in problems))
        self.problems = problems
        self.source = source  # a yamlio.Source, to point at file lines; the CLI fills it in when missing
        self.shown = shown  # how many of the problems were printed already


class UserError(Exception):
    """A mistake the user can fix (missing files, a bad model file, ...), with the fix.

    `key` names the config key the problem is about, when there is one, so the message can
    point at its line in the config file.
    """

    def __init__(self, message: str, *, fix: str = "", key: str = ""):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.key = key
        self.source: Any = None


class StoppedByUser(UserError):
    """Ctrl-C stopped the run after a step, and it was saved: not a mistake, so no fix and no traceback."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = closest(word, choices)
    return f" (did you mean '{close}'?)" if close else ""


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice `word` was most likely meant to be: the same name written otherwise, else the nearest spelling."""
    choices = list(choices)
    by_folded = {fold(c): c for c in choices}
    if fold(word) in by_folded:
        return by_folded[fold(word)]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    if not close:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=cutoff)
        close = [c for c in choices if c.lower() in close][:1]
    return close[0] if close else None


def fold(name: str) -> str:
    """The form names are compared in: 'cross_entropy', 'CrossEntropy' and 'cross-entropy' are one name."""
    return name.lower().replace("_", "").replace("-", "")


def one_of(choices: Iterable[str], limit: int = 12) -> str:
    """'a, b, c' (shortened with '...' after `limit` names) for listing valid choices."""
    choices = list(choices)
    shown = ", ".join(choices[:limit])
    return shown + (f", ... ({len(choices)} in all)" if len(choices) > limit else "")


def close_paths(path: Path) -> list[Path]:
    """Existing paths close to a mistyped one: each part that is not there replaced by the closest names beside it."""
    parts = path.parts
    beams = [Path(parts[0])] if path.is_absolute() else [Path(".")]
    for part in parts[1:] if path.is_absolute() else parts:
        following = []
        for beam in beams:
            if (beam / part).exists():
                following.append(beam / part)
                continue
            try:
                names = [child.name for child in beam.iterdir()] if beam.is_dir() else []
            except OSError:
                names = []
            following += [beam / name for name in difflib.get_close_matches(part, names, n=3, cutoff=0.6)]
        beams = following[:6]
    return [beam for beam in beams if beam != path]


def did_you_mean_path(path: str | Path) -> str:
    """ " (did you mean 'data/train.csv'?)" for a path that does not exist but is close to one that does, or ''."""
    close = close_paths(Path(path).expanduser())
    return f" (did you mean '{close[0]}'?)" if close else ""
