"""Which progress bar to show, decided in one place: a terminal, a notebook, a notebook's `!` command, a log file.

- In a terminal: tqdm's bar, redrawn up to ten times a second.
- In a Jupyter kernel (the Python API in a notebook): tqdm's widget when ipywidgets is installed; otherwise a
  plain bar on stderr that the notebook redraws in place (it honours `\\r`), never tqdm's "IProgress not found"
  warning. It is drawn at most once a second: a person watching sees it move, and a notebook executed by
  nbconvert or papermill, which keeps every drawing in the file, stays small.
- In a process started by a cell's `!python -m trainer ...`: the kernel runs it in a pseudo-terminal, so it looks
  like a terminal, but the notebook saves every redraw. The bar is kept, since a long epoch would otherwise show
  nothing for minutes, but it is redrawn every 30 seconds only: two lines a minute in the saved notebook instead
  of hundreds, beside the line per epoch that the console logger prints.
- When the output is not a terminal (a log file, CI, a pipe): no bar, whose redraws would fill the log; the line
  per epoch says the same once.
- `enabled=False` turns the bar off everywhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

KERNEL_REDRAW_SECONDS = 1.0
NOTEBOOK_COMMAND_REDRAW_SECONDS = 30.0


def in_a_kernel() -> bool:
    """True inside a Jupyter kernel (notebook, JupyterLab, VS Code, Colab); IPython is not imported to find out."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None  # a terminal IPython has a shell but no kernel


def started_by_a_notebook() -> bool:
    """True in a process a kernel started, such as `!python -m trainer cfg.yaml` in a cell.

    jupyter_client sets JPY_PARENT_PID for the kernels it starts, and their children inherit it."""
    return "JPY_PARENT_PID" in os.environ and not in_a_kernel()


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
    **settings: Any,
) -> tqdm:
    """A tqdm bar suited to where the output goes (see the module's docstring); `settings` are tqdm's arguments."""
    settings = {"total": total, "desc": desc, "unit": unit, **settings}
    if not enabled:
        return tqdm(iterable, **{**settings, "disable": True})
    if in_a_kernel():
        return _kernel_bar(iterable, settings)
    if started_by_a_notebook():
        settings.setdefault("mininterval", NOTEBOOK_COMMAND_REDRAW_SECONDS)
        # tqdm's monitor redraws a bar silent for `maxinterval` (10 s by default): not sooner than the above
        settings.setdefault("maxinterval", settings["mininterval"])
    return tqdm(iterable, **{**settings, "disable": None})  # None: no bar when the output is not a terminal


def _kernel_bar(iterable: Iterable[Any] | None, settings: dict[str, Any]) -> tqdm:
    # Looked up, not imported: importing tqdm.notebook without ipywidgets is what warns "IProgress not found".
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm import notebook

        if notebook.IProgress is not None:  # None when ipywidgets is there but too old or broken
            return notebook.tqdm(iterable, **settings)
    settings.pop("dynamic_ncols", None)  # the kernel's stderr has no width of its own to follow
    settings.setdefault("ncols", 100)
    settings.setdefault("mininterval", KERNEL_REDRAW_SECONDS)
    # disable=False: the kernel's stderr is no terminal, yet a person watches it
    return tqdm(iterable, **{**settings, "file": sys.stderr, "disable": False})
