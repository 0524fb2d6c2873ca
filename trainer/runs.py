"""Looking back at runs: list them with their status and results, and compare two of them."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer.errors import UserError


def run_folders(folder: Path) -> list[Path]:
    """Every run folder (one holding config.yaml and anything a run writes) under `folder`, sweeps included."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder", fix="give the folder runs are saved in (log.dir, default runs)")
    found = [
        p.parent
        for p in folder.rglob("config.yaml")
        if (p.parent / "metrics.jsonl").exists()
        or (p.parent / "checkpoints").is_dir()
        or (p.parent / "summary.json").exists()
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def status_of(run_dir: Path) -> dict[str, Any]:
    """What a run folder says about its run: status, epochs, best metric, wall time, final metrics."""
    summary_path = run_dir / "summary.json"
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
    # No summary: stopped (Ctrl-C, killed; resumable when it has a checkpoint) or failed before its first epoch.
    stopped = (run_dir / "checkpoints" / "last.pt").is_file()
    return {
        "status": "stopped" if stopped else "failed",
        "epochs": rows[-1]["epoch"] if rows else 0,
        "monitor": "",
        "best": None,
        "seconds": None,
        "metrics": {k: v for k, v in (rows[-1] if rows else {}).items() if "/" in k},
    }


def _metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def list_runs(folder: Path) -> str:
    """A table of the runs under `folder`, oldest first."""
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
                datetime.fromtimestamp((run_dir / "config.yaml").stat().st_mtime).strftime("%Y-%m-%d %H:%M"),
                state["status"],
                str(state["epochs"]),
                shown,
                f"{seconds:.1f}s" if seconds is not None else "",
            ]
        )
    return aligned(table) + f"\n\n{len(runs)} run(s). Compare two: python -m trainer diff RUN_A RUN_B"


def flat_config(run_dir: Path) -> dict[str, Any]:
    from trainer.yamlio import flatten, load_config_file

    path = run_dir / "config.yaml"
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
