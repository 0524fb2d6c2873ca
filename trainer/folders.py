"""What a path given to a command is, and which paths to give instead: the one inspector behind every command that
takes a run, a sweep or a checkpoint (resume, eval, predict, diff, runs, sweep --resume, train --resume).

A command asks for what it needs: `run_folder`, `checkpoint_file`, `sweep_folder` or `runs_folder`. Given a file
where its folder is meant (a run's config.yaml, summary.json, checkpoints/ or last.pt), it takes the folder and says
so in one line. Given anything else (a sweep where a run is meant, a trial where a sweep is meant, the folder above
the runs, a run with no checkpoint yet, a typo) it refuses before anything is written, naming the right paths with
their status, newest first, and the command to type.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import UserError, close_paths
from trainer.run_files import BEST, CHECKPOINTS, LAST, METRICS, SUMMARY, RunFiles, run_of
from trainer.runs import (
    RUNNING_WITHIN_S,
    is_run_folder,
    is_sweep_folder,
    seconds_since_written,
    started,
    status_of,
    sweep_status,
)

SHOWN = 5  # candidates named in one message
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")
CONFIG_SUFFIXES = (".yaml", ".yml")
NEVER_RUNS = {"checkpoints", "node_modules", "__pycache__", "site-packages"}  # folders a search skips
Again = Callable[[Path], str]  # the command to type, with a path in place of the one given
# The state of each run looked at during one call of a function below (see `_one_look`).
_STATES: ContextVar[dict[Path, dict] | None] = ContextVar("_STATES", default=None)


@dataclass(frozen=True)
class Given:
    """What a typed path is, and the run and the sweep it is (or lies inside)."""

    typed: str
    path: Path
    kind: str  # run, sweep, checkpoint, checkpoints, run file, sweep file, config, runs, folder, file, missing
    run: Path | None = None
    sweep: Path | None = None


def what_is(typed: str) -> Given:
    """What `typed` is on disk: a run (or trial), a sweep, a file of either, a config, a folder of runs, a typo."""
    path = Path(typed).expanduser()
    if not path.exists():  # inside a run folder that is there, the run is named: it may lack what was typed
        there = next((p for p in path.parents if p.is_dir()), Path("."))
        there = there.parent if there.name == CHECKPOINTS else there
        return Given(typed, path, "missing", run=there if is_run_folder(there) else None)
    if path.is_dir():
        if is_run_folder(path):
            return Given(typed, path, "run", run=path, sweep=_sweep_of(path))
        if is_sweep_folder(path):
            return Given(typed, path, "sweep", sweep=path)
        if path.name == CHECKPOINTS and is_run_folder(path.parent):
            return Given(typed, path, "checkpoints", run=path.parent, sweep=_sweep_of(path.parent))
        return Given(typed, path, "runs" if find_runs(path) else "folder")
    folder = run_of(path)
    run = folder if is_run_folder(folder) else None
    sweep = _sweep_of(run) if run else (path.parent if is_sweep_folder(path.parent) else None)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return Given(typed, path, "checkpoint", run=run, sweep=sweep)
    if run is not None:
        return Given(typed, path, "run file", run=run, sweep=sweep)
    if sweep is not None:
        return Given(typed, path, "sweep file", sweep=sweep)
    return Given(typed, path, "config" if path.suffix.lower() in CONFIG_SUFFIXES else "file")


def _sweep_of(run: Path) -> Path | None:
    return run.parent if is_sweep_folder(run.parent) else None


def _one_look(function: Callable) -> Callable:
    """Each run's state is read once per call: a refusal asks it of the run and of every candidate several times
    (what it lacks, which to pick, its row), and status_of reads summary.json and metrics.jsonl and may scan /proc."""

    @functools.wraps(function)
    def looking(*args, **kwargs):
        if _STATES.get() is not None:  # called from within another: share its states
            return function(*args, **kwargs)
        token = _STATES.set({})
        try:
            return function(*args, **kwargs)
        finally:
            _STATES.reset(token)

    return looking


# --- what each command asks for -------------------------------------------------------------------------------------


@_one_look
def run_folder(
    typed: str, command: str, again: Again, needs: str = "config", accept: bool = True, besides: Path | None = None
) -> Path:
    """The run folder `typed` names, or a UserError naming the runs to give instead.

    `needs`: "config" (its config.yaml: diff), "checkpoint" (best.pt or last.pt: eval, predict) or "last"
    (checkpoints/last.pt: resume). With `accept`, a file or checkpoints/ folder of a run stands for the run.
    `besides` is a run the command has already (diff's other run): it is not offered.
    """
    given = what_is(typed)
    run = given.run if given.kind != "missing" else None
    if run is not None and given.kind != "run":  # a file or the checkpoints/ of a run: the run is meant
        if not accept:
            raise UserError(f"'{typed}' is {describe_given(given)}, not the run folder", fix=again(run))
        uses = " (it carries on from checkpoints/last.pt)" if needs == "last" and given.path.name != LAST else ""
        print(f"note: '{typed}' is {describe_given(given)}: {command} uses that run{uses}", file=sys.stderr)
    if run is not None:
        missing = _lacks(run, needs)
        if not missing:
            return run
        others = [p for p in find_runs(run.parent) if p not in (run, besides) and not _lacks(p, needs)]
        resumable = [p for p in others if _state(p)["status"] == "stopped: resumable"]
        fix = again(_pick(others, needs)) if others and (resumable or needs != "last") else _start_again(run)
        if _state(run)["status"] == "running?":
            wait = "wait for epoch 1 to end"
            if needs == "last":  # the same test as the status': a run silent this long has ended
                silent = f"{RUNNING_WITHIN_S // 60} minutes without a write"
                wait = f"wait for it to end (or for {silent}), or stop it with Ctrl-C"
            fix = f"{wait}, then: {again(run)}"
        heading = f"Other runs in {run.parent} that have {_what(needs)}, newest first:" if others else ""
        raise UserError(_message(f"'{typed}' {missing}", heading, others), fix=fix)
    raise _refusal(given, command, again, needs, besides)


@_one_look
def checkpoint_file(typed: str, command: str, again: Again) -> Path:
    """The checkpoint `typed` names: a .pt file as given, or a run's best.pt (else its last.pt)."""
    given = what_is(typed)
    if given.kind == "checkpoint":
        return given.path
    run = run_folder(typed, command, again, needs="checkpoint")
    best = RunFiles(run).best
    return best if best.is_file() else RunFiles(run).last


@_one_look
def sweep_folder(typed: str, again: Again, accept: bool = True) -> Path:
    """The sweep folder `typed` names (a trial or a file of a sweep stands for it), or a UserError naming sweeps."""
    given = what_is(typed)
    if given.kind == "sweep":
        return given.path
    if given.sweep is not None:
        if not accept:
            raise UserError(f"'{typed}' is {describe_given(given)}, not the sweep folder", fix=again(given.sweep))
        print(f"note: '{typed}' is {describe_given(given)}: resuming that sweep", file=sys.stderr)
        return given.sweep
    raise _refusal(given, "sweep --resume", again, "sweep")


@_one_look
def runs_folder(typed: str, again: Again) -> Path:
    """A folder to list runs in: a folder of runs, a run, a sweep (a file of a run stands for the run)."""
    given = what_is(typed)
    if given.kind in ("runs", "run", "sweep"):
        return given.path
    home = given.run or given.sweep or _runs_of_config(given)
    if home is not None and home.exists() and given.kind != "missing":
        print(f"note: '{typed}' is {describe_given(given)}: listing {home}", file=sys.stderr)
        return home
    if given.kind in ("folder", "missing") and not find_runs(Path(".")):
        return given.path  # no runs there, and none anywhere below: nothing to list yet is no mistake
    raise _refusal(given, "runs", again, "runs")


# --- the refusal --------------------------------------------------------------------------------------------------


def _refusal(given: Given, command: str, again: Again, needs: str, besides: Path | None = None) -> UserError:
    """The message for a path that is not what `command` takes: what it is, what to give, the candidates."""
    wanted = {
        "config": f"{command} takes run folders",
        "checkpoint": f"{command} takes a run folder (it uses checkpoints/best.pt) or a .pt file",
        "last": f"{command} carries on one run folder from its checkpoints/last.pt",
        "sweep": "sweep --resume takes the folder a sweep printed when it started (it holds sweep.json)",
        "runs": "runs lists a folder that holds runs (log.dir, default runs)",
    }[needs]
    found = _close_to(given, needs, again) if given.kind == "missing" else _around(given, needs)
    what, heading, candidates, fix = found
    statement = f"'{given.typed}' {what}; {wanted}"
    candidates = [c for c in candidates if c != besides]
    if needs == "runs":  # name the folders that hold runs (log.dir), not each run
        runs = [p for p in candidates if _sweep_of(p) is None]
        homes = list(dict.fromkeys(p.parent.parent if is_run_folder(p) or is_sweep_folder(p) else p for p in runs))
        fix = fix or (again(homes[0]) if homes else "")
        statement += f". Runs are in: {', '.join(map(str, homes[:SHOWN]))}" if homes else ""
        candidates = []
    fix = fix or (again(_pick(candidates, needs)) if candidates else "")
    return UserError(_message(statement, heading, candidates), fix=fix or _nothing_to_give(needs))


Found = tuple[str, str, list[Path], str]  # what the path is, the heading of the candidates, the candidates, a fix


def _close_to(given: Given, needs: str, again: Again) -> Found:
    """For a path that is not there: the paths it was meant to be, looked for from close to far."""
    repairs = close_paths(given.path)
    what = f"does not exist (did you mean '{repairs[0]}'?)" if repairs else "does not exist"
    candidates = [c for repair in repairs for c in ([repair] if _fits(repair, needs) else _wanted_in(repair, needs))]
    if candidates:
        return what, "Close to it, the closest first:", candidates, ""
    if given.run is not None:  # a file the run does not have: say what the run has
        lacking = _lacks(given.run, needs) if needs != "runs" else ""
        if not lacking:
            return f"{what}. The run {given.run} is there ({_state(given.run)['status']})", "", [], again(given.run)
        others = [p for p in _wanted_in(given.run.parent, needs) if p != given.run]
        return (
            f"{what}. The run {given.run} is there, but it {lacking}",
            f"Other runs in {given.run.parent}, newest first:",
            others,
            "",
        )
    below = [p for p in find_runs(Path("."), depth=5) if _ends_with(p, given.path) and _fits(p, needs)]
    if below:  # typed from another folder, or without its runs/ in front
        return what, "Below this folder, newest first:", below, ""
    ancestor = next((p for p in given.path.parents if p.is_dir()), Path("."))
    if candidates := _wanted_in(ancestor, needs):
        return what, f"In {ancestor}, newest first:", candidates, ""
    return what, "In this folder, newest first:", _wanted_in(Path("."), needs), ""


def _around(given: Given, needs: str) -> Found:
    """For a path that is there but not what is needed: what it is, and the right paths in it or beside it."""
    fix = ""
    folder = given.sweep or (given.path if given.path.is_dir() else given.path.parent)
    if given.kind == "config":
        folder = _runs_of_config(given) or folder
    elif given.kind == "run" and needs == "sweep":
        folder = given.path.parent
        fix = f"python -m trainer resume {given.path}    (it is one run: resume carries it on)"
    candidates = _wanted_in(folder, needs)
    if not candidates and given.kind == "config" and needs != "sweep":
        fix = f"train it first: python -m trainer {given.typed}"
    if not candidates:
        folder = Path(".")
        candidates = _wanted_in(folder, needs)
    heading = f"In {'this folder' if folder == Path('.') else folder}, newest first:"
    if given.sweep is not None and needs != "sweep":
        heading = "Its trials, newest first:"
        best = _best_trial(given.sweep)
        if best is not None and best in candidates:
            candidates = [best, *(c for c in candidates if c != best)]
            heading = "Its trials, the best first, then newest first:"
        if needs == "last" and not sweep_status(given.sweep).startswith("finished"):
            fix = f"python -m trainer sweep --resume {given.sweep}    (train the trials not finished yet)"
    return f"is {describe_given(given)}", heading, candidates, fix


def _message(statement: str, heading: str, candidates: list[Path]) -> str:
    if not candidates:
        return statement
    rows = [_row(p) for p in candidates[:SHOWN]]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["    " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    more = f"\n    ... and {len(candidates) - SHOWN} more (python -m trainer runs)" if len(candidates) > SHOWN else ""
    return f"{statement}. {heading}\n" + "\n".join(lines) + more


def _row(path: Path) -> list[str]:
    if path.is_file():
        status = "checkpoint file"
    elif is_sweep_folder(path):
        status = sweep_status(path)
    else:
        state = _state(path)
        epochs = state.get("epochs", 0)
        status = state["status"] + (f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "")
    return [str(path), status, started(path).strftime("%Y-%m-%d %H:%M")]


def _state(run: Path) -> dict:
    states = _STATES.get()
    if states is not None and run in states:
        return states[run]
    try:
        state = status_of(run)
    except (OSError, ValueError, KeyError):  # a record cut short or edited by hand
        state = {"status": f"unreadable {_unreadable(run)}"}
    if states is not None:
        states[run] = state
    return state


def _unreadable(run: Path) -> str:
    """Which of the records status_of reads is damaged: metrics.jsonl (read first), else summary.json."""
    metrics = RunFiles(run).metrics
    try:
        for line in metrics.read_text().splitlines() if metrics.is_file() else []:
            json.loads(line)
    except (OSError, ValueError):
        return METRICS
    return SUMMARY


@_one_look
def describe_given(given: Given) -> str:
    """What a path is, in a few words: 'a sweep folder (stopped: 1 of 2 trials finished)'."""
    if given.kind == "run" and given.run is not None:
        status = _state(given.run)["status"]
        if given.sweep is not None:
            return f"{given.run.name} of the sweep {given.sweep} ({status})"
        return f"a run ({status})"
    if given.kind == "sweep":
        return f"a sweep folder ({sweep_status(given.path)}), not one run"
    if given.kind in ("run file", "checkpoint", "checkpoints") and given.run is not None:
        inside = given.path.relative_to(given.run)
        return f"{inside}{'/' if given.path.is_dir() else ''} of the run {given.run}"
    if given.kind == "checkpoint":
        return "a checkpoint file outside any run folder"
    if given.kind == "sweep file":
        return f"{given.path.name} of the sweep {given.sweep}"
    if given.kind == "runs":
        found = find_runs(given.path)
        sweeps = sum(map(is_sweep_folder, found))
        runs = sum(is_run_folder(p) and _sweep_of(p) is None for p in found)
        counted = [_count(runs, "run"), _count(sweeps, "sweep")]
        return f"a folder of {' and '.join(c for c in counted if c)}"
    return {
        "config": "a config file, not a run",
        "folder": "a folder with no runs in it",
        "file": "a file, not a run folder",
        "missing": "not there",
    }[given.kind]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}" if n else ""


# --- looking around -----------------------------------------------------------------------------------------------


def find_runs(top: Path, depth: int = 4, budget: int = 3000) -> list[Path]:
    """Run and sweep folders under `top` (a sweep's trials too), newest first.

    A bounded walk, breadth first: a data set of many thousand folders beside the runs never makes it slow.
    """
    found, queue, seen = [], [(top, 0)], 0
    while queue and seen < budget:
        folder, level = queue.pop(0)
        seen += 1
        if is_run_folder(folder) and folder != top:
            found.append(folder)
            continue
        if is_sweep_folder(folder):
            found += [folder] if folder != top else []
            found += [p for p in folder.glob("trial-*") if is_run_folder(p)]
            continue
        if level >= depth:
            continue
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        queue += [(child, level + 1) for child in children if child.name not in NEVER_RUNS]
    return sorted(found, key=started, reverse=True)


def _wanted_in(folder: Path, needs: str) -> list[Path]:
    """The runs (or sweeps) under `folder` that a command needing `needs` can take, newest first."""
    if not folder.is_dir():
        return []
    return [p for p in find_runs(folder) if _fits(p, needs)]


def _fits(path: Path, needs: str) -> bool:
    if path.is_file():
        return needs == "checkpoint" and path.suffix.lower() in CHECKPOINT_SUFFIXES
    if needs == "sweep":
        return is_sweep_folder(path)
    if needs == "runs":
        return path.is_dir() and (is_run_folder(path) or is_sweep_folder(path) or bool(find_runs(path)))
    return is_run_folder(path) and not _lacks(path, needs)


def _lacks(run: Path, needs: str) -> str:
    """'' when the run has what the command needs, else why not, in the learner's terms."""
    checkpoints = RunFiles(run).checkpoints
    if needs == "config" and not RunFiles(run).config.is_file():
        return "has no config.yaml: the trial failed before it began (see its log.txt)"
    if needs == "last" and (checkpoints / LAST).is_file():
        # Two processes training one run folder would overwrite each other's checkpoints. Under torchrun the
        # ranks of this very resume hold each other's files open, so only a lone process can tell.
        if int(os.environ.get("WORLD_SIZE", "1")) == 1 and _state(run)["status"] == "running?":
            ago = seconds_since_written(run)
            return f"seems to be still running: it wrote a file {ago:.0f} s ago, and a trainer process works here"
        return ""
    if needs == "config":
        return ""
    if needs == "checkpoint" and any((checkpoints / name).is_file() for name in (BEST, LAST)):
        return ""
    status = _state(run)["status"]
    if status == "running?":
        return "has no checkpoint yet: it is still running (its first is written when epoch 1 ends)"
    if not RunFiles(run).config.is_file():
        return "has no checkpoint: the trial failed before it began (see its log.txt)"
    if status == "failed":
        return "has no checkpoint: the run failed before its first epoch ended"
    return f"has no {_what(needs)}: the run {status}, and its checkpoints were deleted"


def _what(needs: str) -> str:
    return {"last": "checkpoints/last.pt", "checkpoint": "a checkpoint"}.get(needs, "a config")


def _pick(candidates: list[Path], needs: str) -> Path:
    """The candidate the Try line names: for resume the newest run it can carry on, else the newest."""
    if needs == "last":
        resumable = [p for p in candidates if _state(p)["status"] == "stopped: resumable"]
        return (resumable or candidates)[0]
    if needs == "sweep":
        unfinished = [p for p in candidates if not sweep_status(p).startswith("finished")]
        return (unfinished or candidates)[0]
    return candidates[0]


def _start_again(run: Path) -> str:
    if RunFiles(run).config.is_file():
        return f"train it again from its config: python -m trainer {run / 'config.yaml'}"
    return f"read {run / 'log.txt'}, fix the config, and run the sweep again"


def _nothing_to_give(needs: str) -> str:
    if needs == "runs":
        return "train a config first: python -m trainer CONFIG.yaml"
    if needs == "sweep":
        return "start a sweep: python -m trainer sweep CONFIG.yaml optimizer.lr=1e-3,3e-3"
    return "train a config first (python -m trainer CONFIG.yaml); it prints the run folder it saves in"


def _best_trial(sweep: Path) -> Path | None:
    """The trial best.yaml was copied from (its first line names it)."""
    best = sweep / "best.yaml"
    if not best.is_file():
        return None
    found = re.search(r"\((trial-\d+)\)", best.read_text().partition("\n")[0])
    return sweep / found[1] if found else None


def _runs_of_config(given: Given) -> Path | None:
    """Where a config's runs go: <log.dir>/<name>, read from the file (an unreadable one: None)."""
    if given.kind != "config":
        return None
    import yaml

    from trainer.config import LogConfig
    from trainer.yamlio import run_name

    try:
        data = yaml.safe_load(given.path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    name = data.get("name") or run_name(given.path)
    log = data.get("log") if isinstance(data.get("log"), dict) else {}
    return Path(str(log.get("dir", LogConfig.model_fields["dir"].default))) / str(name)


def _ends_with(path: Path, tail: Path) -> bool:
    return not tail.is_absolute() and path.parts[-len(tail.parts) :] == tail.parts
