"""Looking back at runs: what a run or sweep folder is and what state it is in, a list of them, and a diff of two."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer.errors import UserError
from trainer.run_files import CHECKPOINTS, CONFIG, LOG, METRICS, MODEL, SUMMARY, RunFiles

SWEEP_PLAN = "sweep.json"  # the plan a sweep folder holds (trainer/sweep.py Plan)
RUNNING_WITHIN_S = 180  # a run that wrote nothing for this long is not training (see training_now)
# Files a run writes beside its config.yaml: one of them tells a run folder from a folder that holds a config.
RUN_FILES = (METRICS, SUMMARY, MODEL, CHECKPOINTS, LOG)


def is_run_folder(path: Path) -> bool:
    """A folder a run (or a sweep's trial) wrote: its config.yaml and at least one of the files a run adds."""
    if not path.is_dir():
        return False
    if RunFiles(path).config.is_file() and any((path / name).exists() for name in RUN_FILES):
        return True
    return is_sweep_folder(path.parent) and path.name.startswith("trial-")  # a trial whose config failed


def is_sweep_folder(path: Path) -> bool:
    return (path / SWEEP_PLAN).is_file()


def run_folders(folder: Path) -> list[Path]:
    """Every run folder under `folder` (itself included), sweeps' trials too, oldest first."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder", fix="give the folder runs are saved in (log.dir, default runs)")
    found = {p.parent for p in folder.rglob(CONFIG) if is_run_folder(p.parent)}
    found |= {p for p in folder.rglob("trial-*") if is_run_folder(p)}
    return sorted(found, key=started)


def started(run_dir: Path) -> datetime:
    """When a run (or sweep) began: the time in its folder's name (YYYYmmdd-HHMMSS), else its first file's."""
    stamp = re.search(r"(\d{8}-\d{6})(?:-(\d+))?$", run_dir.name)
    if stamp:
        when = datetime.strptime(stamp[1], "%Y%m%d-%H%M%S")
        return when.replace(microsecond=int(stamp[2] or 1))  # -2, -3: runs begun in the same second, in order
    files = [p for p in (RunFiles(run_dir).config, RunFiles(run_dir).log, run_dir) if p.exists()]
    return datetime.fromtimestamp(min(p.stat().st_mtime for p in files))


def seconds_since_written(run_dir: Path) -> float:
    """How long ago the run last wrote its config, metrics, last checkpoint or TensorBoard events."""
    files = [RunFiles(run_dir).config, RunFiles(run_dir).metrics, RunFiles(run_dir).last]
    times = [p.stat().st_mtime for p in [*files, *run_dir.glob("events.out.tfevents*")] if p.exists()]
    return time.time() - max(times) if times else math.inf


def training_now(run_dir: Path) -> bool:
    """Whether a leaptrain process seems to be training in this run folder now (Linux only; elsewhere: never).

    File times alone cannot tell: a copied or checked-out run folder has fresh times too. So a run counts as
    running when it wrote a file in the last few minutes (TensorBoard flushes its events at least every two
    minutes while a run trains) and a `trainer` process, or a sweep's worker, works in a folder above it.
    """
    if seconds_since_written(run_dir) > RUNNING_WITHIN_S:
        return False
    folder = run_dir.resolve()
    for process in Path("/proc").glob("[0-9]*"):
        if process.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):  # processes end while we look, and others' may not be ours to read
            words = (process / "cmdline").read_bytes().split(b"\0")
            ours = any(w == b"trainer" or w.endswith(b"/trainer") or b"spawn_main" in w for w in words)
            cwd = Path(os.readlink(process / "cwd"))
            # log.dir/name/date (a trial one deeper) below where it runs: not any process started from / or ~
            if ours and folder.is_relative_to(cwd) and len(folder.relative_to(cwd).parts) <= 5:
                return True
    return False


def status_of(run_dir: Path) -> dict[str, Any]:
    """What a run folder says about its run: status, epochs, best metric, wall time, final metrics.

    The status is one of: finished, stopped early, pruned (a sweep stopped it), stopped: resumable (Ctrl-C or
    killed, with a checkpoint to carry on from), failed (no checkpoint: it stopped before its first epoch ended),
    running? (no summary yet, and a trainer process is at work on it: see `training_now`).
    """
    summary_path = RunFiles(run_dir).summary
    rows = _metric_rows(run_dir)
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        status = "pruned" if (run_dir / "pruned").exists() else summary["status"]
        return {
            "status": status,
            "epochs": summary["epochs"],
            "monitor": summary.get("monitor", ""),
            "best": summary.get("best_metric"),
            "seconds": summary.get("wall_seconds"),
            "metrics": summary["metrics"],
        }
    if training_now(run_dir):
        status = "running?"
    else:
        status = "stopped: resumable" if RunFiles(run_dir).last.is_file() else "failed"
    return {
        "status": status,
        "epochs": rows[-1]["epoch"] if rows else 0,
        "monitor": "",
        "best": None,
        "seconds": None,
        "metrics": {k: v for k, v in (rows[-1] if rows else {}).items() if "/" in k},
    }


def sweep_status(sweep_dir: Path) -> str:
    """'finished: 4 trials' or 'stopped: 2 of 4 trials finished', from the plan and the trials' folders."""
    try:
        plan = json.loads((sweep_dir / SWEEP_PLAN).read_text())
        planned = len(plan.get("trials") or []) or int(plan.get("settings", {}).get("trials") or 0)
    except (OSError, ValueError):
        planned = 0
    done = sum(RunFiles(trial).summary.is_file() for trial in sweep_dir.glob("trial-*"))
    if planned and done >= planned:
        return f"finished: {done} trials"
    return f"stopped: {done} of {planned or '?'} trials finished"


def _metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = RunFiles(run_dir).metrics
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def list_runs(folder: Path) -> str:
    """A table of the runs under `folder`, oldest first."""
    if not folder.exists():
        return f"no runs yet ({folder} does not exist): train a config first, e.g. python -m trainer CONFIG.yaml"
    runs = run_folders(folder)
    if not runs:
        return f"no runs in {folder} (a run folder holds config.yaml, metrics.jsonl and checkpoints/)"
    table = [["run", "date", "status", "epochs", "best metric", "time"]]
    for run_dir in runs:
        state = status_of(run_dir)
        best = state["best"]
        shown = f"{state['monitor']} {best:.4g}" if isinstance(best, float) and math.isfinite(best) else ""
        seconds = state["seconds"]
        table.append(
            [
                str(run_dir.relative_to(folder)) if run_dir != folder else run_dir.name,
                started(run_dir).strftime("%Y-%m-%d %H:%M"),
                state["status"],
                str(state["epochs"]),
                shown,
                f"{seconds:.1f}s" if seconds is not None else "",
            ]
        )
    return aligned(table) + f"\n\n{len(runs)} run(s). Compare two: python -m trainer diff RUN_A RUN_B"


def flat_config(run_dir: Path) -> dict[str, Any]:
    from trainer.yamlio import flatten, load_config_file

    path = RunFiles(run_dir).config
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder (it has no config.yaml)", fix="give two run folders")
    data, _ = load_config_file(path)
    return flatten(data)


def diff_runs(a: Path, b: Path) -> str:
    """The config keys that differ, then the final metrics side by side."""
    config_a, config_b = flat_config(a), flat_config(b)
    keys = [k for k in sorted(set(config_a) | set(config_b)) if config_a.get(k) != config_b.get(k) and k != "name"]
    lines = [f"A: {a}", f"B: {b}", ""]
    if keys:
        lines.append(aligned([["key", "A", "B"], *([k, _show(config_a.get(k)), _show(config_b.get(k))] for k in keys)]))
    else:
        lines.append("the configs are the same (but for the name)")
    metrics_a, metrics_b = status_of(a)["metrics"], status_of(b)["metrics"]
    names = sorted(
        set(metrics_a) | set(metrics_b), key=lambda n: ({"val": 0, "test": 1, "train": 2}.get(n.split("/")[0], 3), n)
    )
    if names:
        rows = [["metric", "A", "B"], *([n, _show(metrics_a.get(n)), _show(metrics_b.get(n))] for n in names)]
        lines += ["", aligned(rows)]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as text columns, with a rule under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
