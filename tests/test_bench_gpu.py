"""bench/gpu.py runs end to end on the CPU: a row per model and precision, its goals, and every figure in the JSON."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
ROW = r"^{model}\s+{precision}\s+eager\s+\d+\.\d{{3}}\s+\d+\.\d{{3}}\s+\d+\.\d{{3}}\s+n/a on cpu\s"


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "bench"))  # gpu.py imports its neighbour overhead.py, as a script does
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_cpu_run_prints_the_table_and_writes_a_ratio_per_model_and_precision(tmp_path):
    out = tmp_path / "g.json"
    done = subprocess.run(
        [sys.executable, "bench/gpu.py", "--device", "cpu", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert "hand ms" in output and "trainer ms" in output and "ratio" in output, output
    for model in ("mlp", "cnn"):
        for precision in ("fp32", "bf16"):
            assert re.search(ROW.format(model=model, precision=precision), output, flags=re.MULTILINE), output
            assert re.search(rf"  {model} {precision} eager: ratio trainer/hand \d+\.\d{{3}} \(goal <= 1\.05\)", output)
    assert "syncs/step n/a on cpu" in output
    assert re.search(r"mlp fp32 eager: hand \d+\.\d MB  trainer \d+\.\d MB", output), output

    report = json.loads(out.read_text())
    assert set(report["ratios"]) == {"mlp", "cnn"}
    for model in ("mlp", "cnn"):
        for precision in ("fp32", "bf16"):
            assert report["ratios"][model][precision]["eager"] > 0
    steps = report["plan"]["steps"]
    for row in report["results"]:
        hand, trainer = row["loops"]["hand"], row["loops"]["trainer"]
        assert row["ratio"] == pytest.approx(trainer["median_ms"] / hand["median_ms"])
        for loop in row["loops"].values():
            assert len(loop["step_ms"]) == steps and all(ms > 0 for ms in loop["step_ms"])
            assert loop["eval_ms"] > 0 and loop["syncs_per_step"] is None  # no CUDA here
    first = report["results"][0]["loops"]
    assert first["hand"]["peak_memory_mb"] > 0 and first["trainer"]["peak_memory_mb"] > 0


@pytest.mark.parametrize("steps", [4, 7, 8, 50, 99, 100, 200, 333])
def test_syncs_are_counted_after_the_timed_steps_in_a_window_without_a_log_step(monkeypatch, steps):
    bench = load_bench(monkeypatch)
    plan = bench.make_plan(steps, quick=False, count_syncs=True)
    window = range(plan.window_start + 1, plan.total + 1)  # the steps between the window's two marks
    assert len(window) == plan.window_steps >= 1
    assert window.start > plan.warmup + plan.steps  # the timed steps run without the sync counter's cost
    assert all(step % plan.log_every for step in window)  # a log step reads metrics: syncs that are allowed
    assert plan.window_start % plan.log_every == 0 and (plan.total + 1) % plan.log_every == 0  # log steps around it
