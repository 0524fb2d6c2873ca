"""bench/peers.py runs end to end: each peer it can import gets a row, each other one says how to install it."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = 'pip install "leaptrain[bench]"'
ROW = r"\s+\d+\.\d{3}\s+\d+\.\d{2}\s+\d\.\d{4}\s+\["  # s/epoch, ratio to the hand loop, val accuracy, the runs


def run_peers(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "bench/peers.py", "--quick", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(output: str, label: str) -> list[str]:
    return re.findall(rf"^  {re.escape(label)}[^\n]*?{ROW}", output, flags=re.MULTILINE)


@pytest.mark.slow
def test_peers_quick_run_times_every_installed_peer_and_names_the_missing_ones():
    output = run_peers()
    for model in ("mlp", "cnn"):
        assert f"\n{model}: " in output
    assert len(rows(output, "hand loop")) == 2, output
    assert len(rows(output, "leaptrain Trainer")) == 2, output
    # The hand loop is the yardstick: its own ratio is 1 in every table.
    assert all(re.search(r"\s1\.00\s", row) for row in rows(output, "hand loop")), output
    for peer, label in (("lightning", "Lightning "), ("keras", "Keras ")):
        if importlib.util.find_spec(peer) is None:  # looked up, not imported: the dev extra does not install it
            assert f"{peer}: skipped, not installed" in output and INSTALL in output, output
            assert not rows(output, label), output
        else:
            assert len(rows(output, label)) == 2, output


@pytest.mark.slow
def test_peers_without_lightning_and_keras_skip_them_and_still_time_the_hand_loop_and_trainer(tmp_path):
    # A package of each name that fails to import hides the installed one, as if it were not installed.
    for peer in ("lightning", "keras"):
        (tmp_path / peer).mkdir()
        (tmp_path / peer / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{peer}'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    output = run_peers("--models", "mlp", env=env)
    for peer in ("lightning", "keras"):
        assert f"{peer}: skipped, not installed (No module named '{peer}'). Try: {INSTALL}" in output, output
    assert len(rows(output, "hand loop")) == 1, output
    assert len(rows(output, "leaptrain Trainer")) == 1, output
    assert not rows(output, "Lightning ") and not rows(output, "Keras "), output
