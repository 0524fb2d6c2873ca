"""Training in a Jupyter notebook: real notebooks run by a real kernel, as a learner runs them.

A cell that trains with the Python API shows one bar that updates in place, with or without ipywidgets and
never with tqdm's warning; a cell that runs `!python -m trainer config.yaml` keeps a handful of bar frames in the
saved notebook, not one per redraw, and the line per epoch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SYNTHETIC
from trainer.progress import NOTEBOOK_COMMAND_REDRAW_SECONDS, progress_bar

REPO = Path(__file__).resolve().parents[1]

TRAIN_IN_THE_KERNEL = """
import torch
from torch import nn
from trainer import Trainer

torch.manual_seed(0)
batches = [(torch.randn(8, 3), torch.randint(0, 3, (8,))) for _ in range(6)]
model = nn.Linear(3, 3)
trainer = Trainer(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, device="cpu")
trainer.fit(batches)
"""

# Enough batches that a bar redrawn every tenth of a second (tqdm's default) writes dozens of frames.
MANY_BATCHES = SYNTHETIC.replace("samples: 400", "samples: 40000").replace("batch_size: 32", "batch_size: 8")


def kernel_of_this_python(tmp_path: Path) -> str:
    """A kernel spec that runs this interpreter (so `import trainer` finds this checkout), not whichever `python`
    a kernel spec found elsewhere on the machine names."""
    name = "leaptrain-test"
    folder = tmp_path / "jupyter" / "kernels" / name
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec))
    return name


def run_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *sources: str) -> list[list[dict[str, Any]]]:
    """Execute the cells in a fresh kernel started in tmp_path; each cell's outputs as the saved notebook keeps them."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat (in the dev extra) is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (in the dev extra) is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel (in the dev extra) is not installed")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # where the kernel spec above is found
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)  # this process is no kernel's child, whoever ran pytest
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=kernel_of_this_python(tmp_path),
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    path = tmp_path / "trained.ipynb"
    nbformat.write(notebook, path)  # what the learner's notebook file would hold
    return [cell["outputs"] for cell in nbformat.read(path, as_version=4).cells]


def everything_shown(outputs: list[dict[str, Any]]) -> str:
    shown = []
    for output in outputs:
        shown.append(output.get("text", ""))
        shown.extend(str(value) for value in output.get("data", {}).values())
        shown.extend(output.get("traceback", []))
    return "\n".join(shown)


def stream(outputs: list[dict[str, Any]], name: str) -> str:
    return "".join(output["text"] for output in outputs if output["output_type"] == "stream" and output["name"] == name)


def bar_frames(text: str) -> int:
    """Each drawing of a bar shows its percentage followed by the bar: `epoch 1/2:  42%|████▏     | 5/12 ...`."""
    return text.count("%|")


def no_warning_and_no_error(outputs: list[dict[str, Any]]) -> None:
    shown = everything_shown(outputs)
    assert "TqdmWarning" not in shown and "IProgress" not in shown, shown
    assert not [output for output in outputs if output["output_type"] == "error"], shown


def one_line_per_epoch(text: str) -> bool:
    return text.count("epoch 1/2  ") == 1 and text.count("epoch 2/2  ") == 1


@pytest.mark.skipif(
    importlib.util.find_spec("ipywidgets") is not None, reason="ipywidgets is installed: the bar is a widget"
)
@pytest.mark.slow  # a kernel starts and imports torch
def test_without_widgets_the_python_api_in_a_notebook_shows_a_bar_redrawn_in_place_and_no_warning(
    tmp_path, monkeypatch
):
    (api,) = run_notebook(tmp_path, monkeypatch, TRAIN_IN_THE_KERNEL)
    no_warning_and_no_error(api)
    bar = stream(api, "stderr")  # a plain bar on stderr, redrawn on its line with `\r`
    assert "epoch 1/2" in bar and "epoch 2/2" in bar and "%|" in bar and "\r" in bar, api
    assert one_line_per_epoch(stream(api, "stdout")), api


@pytest.mark.slow  # a kernel starts, then a command that imports torch and trains
def test_a_shell_command_in_a_notebook_keeps_a_few_bar_frames_and_the_line_per_epoch(
    tmp_path, monkeypatch, write_config
):
    write_config(MANY_BATCHES)
    (command,) = run_notebook(tmp_path, monkeypatch, "import sys\n!{sys.executable} -m trainer config.yaml")
    no_warning_and_no_error(command)
    shown = stream(command, "stdout")  # the command's terminal: its stdout and stderr as one stream
    frames = bar_frames(shown)
    assert 1 <= frames <= 3 * 2, f"{frames} bar frames kept in the notebook: {shown!r}"  # a few per epoch
    assert one_line_per_epoch(shown) and "run saved in" in shown, shown


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is None, reason="ipywidgets is not installed")
def test_a_notebook_with_widgets_shows_the_bar_as_a_widget(tmp_path, monkeypatch):
    (api,) = run_notebook(tmp_path, monkeypatch, TRAIN_IN_THE_KERNEL)
    no_warning_and_no_error(api)
    shown = everything_shown(api)
    widgets = [output for output in api if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert len(widgets) == 2, shown  # one bar per epoch
    assert "%|" not in stream(api, "stderr"), shown  # and no text bar beside it
    assert one_line_per_epoch(stream(api, "stdout")), api


def test_a_command_started_by_a_notebook_redraws_its_bar_only_every_half_minute(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the pseudo-terminal a cell's `!` runs commands in
    monkeypatch.setenv("JPY_PARENT_PID", "1")  # what a kernel leaves to the processes it starts
    with progress_bar(total=3, desc="epoch 1/1") as bar:
        assert not bar.disable and bar.mininterval == NOTEBOOK_COMMAND_REDRAW_SECONDS == bar.maxinterval
    monkeypatch.delenv("JPY_PARENT_PID")
    with progress_bar(total=3, desc="epoch 1/1") as bar:  # a terminal a person watches: redrawn as often as usual
        assert not bar.disable and bar.mininterval < 1


def test_no_bar_in_a_log_file_even_from_a_notebook_nor_when_turned_off(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    with progress_bar(total=3) as bar:
        assert bar.disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_bar(total=3, enabled=False) as bar:
        assert bar.disable
