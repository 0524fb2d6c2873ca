"""The gallery of mistakes (tests/mistakes/): every case gives a message with the place and the fix.

Each folder holds a learner's files as they would write them and `mistake.toml` saying which command to run
and what the message must name. The command runs in-process in a temporary copy of the folder, as a learner
would run it from that folder; docs/troubleshooting.md is generated from the same cases.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import write_fake_data
from trainer.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "tests" / "mistakes"
PAGE = ROOT / "docs" / "troubleshooting.md"
KINDS = ("config", "cli", "code", "data", "folders", "numbers")
REQUIRED = {"title", "kind", "seen_in", "command", "must_show", "explain"}
OPTIONAL = {"data", "before", "exit", "must_not_show", "writes_nothing", "slow"}
FAKE_DATA = ("mnist", "fashion_mnist", "cifar10", "cifar100")
NOT_COPIED = shutil.ignore_patterns("mistake.toml", "__pycache__")


def read_case(folder: Path) -> dict[str, Any]:
    with open(folder / "mistake.toml", "rb") as file:
        return tomllib.load(file)


def case_folders() -> list[Path]:
    return sorted(path.parent for path in GALLERY.glob("*/mistake.toml"))


def gallery_params() -> list[Any]:
    params = []
    for folder in case_folders():
        try:
            slow = bool(read_case(folder).get("slow", False))
        except tomllib.TOMLDecodeError:
            slow = False  # test_every_case_is_well_formed names the broken file
        params.append(pytest.param(folder, id=folder.name, marks=[pytest.mark.slow] if slow else []))
    return params


def trainer_args(command: str) -> list[str] | None:
    """`python -m trainer train x.yaml` or `trainer train x.yaml` -> ['train', 'x.yaml']; None for other commands."""
    words = shlex.split(command)
    for prefix in (["python", "-m", "trainer"], ["trainer"]):
        if words[: len(prefix)] == prefix:
            return words[len(prefix) :]
    return None


def snapshot(folder: Path) -> dict[str, tuple[int, int] | str]:
    """Every file and folder below `folder`: a refused command must leave all of them as they were."""
    state: dict[str, tuple[int, int] | str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_dir():
            state[name] = "folder"
        else:
            info = path.stat()
            state[name] = (info.st_size, info.st_mtime_ns)
    return state


def run_in_process(args: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main(args) as `python -m trainer` would run it: its exit code and everything it printed.

    Warnings are printed as an interpreter would print them (pytest would otherwise keep them to itself).
    An exception escaping main is a traceback the learner would see, so the test fails on it.
    """
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        try:
            code = main(args)
        except SystemExit as stop:  # argparse's own errors exit this way, with no traceback
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
            code = 1 if isinstance(stop.code, str) else stop.code or 0
        except Exception:
            out, err = capfd.readouterr()
            pytest.fail(f"main({args}) raised instead of returning:\n{out}{err}{traceback.format_exc()}")
    out, err = capfd.readouterr()
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return code, out + err + shown


@pytest.fixture
def clean_process(tmp_path):
    """Undo what one case may leave behind in this process: user modules, sys.path, environment, torch flags."""
    modules, path, environ = set(sys.modules), list(sys.path), dict(os.environ)
    dtype, threads, anomaly, grad = (
        torch.get_default_dtype(),
        torch.get_num_threads(),
        torch.is_anomaly_enabled(),
        torch.is_grad_enabled(),
    )
    yield
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]  # the learner's own files, imported from the temporary copy
    sys.path[:] = path
    os.environ.clear()
    os.environ.update(environ)
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    torch.autograd.set_detect_anomaly(anomaly)
    torch.set_grad_enabled(grad)


def prepared(folder: Path, tmp_path: Path, monkeypatch, capfd) -> tuple[dict, Path]:
    """A copy of the case's folder, with its fake data written and its `before` commands run (the cwd is the
    copy): ready for the case's own command."""
    case = read_case(folder)
    work = tmp_path / folder.name
    shutil.copytree(folder, work, ignore=NOT_COPIED)
    if "data" in case:
        write_fake_data(case["data"], work / "data", monkeypatch)
    monkeypatch.chdir(work)
    for command in case.get("before", []):
        args = trainer_args(command)
        if args is None:  # a plain `python -c ...` step: run by this interpreter, whatever PATH holds
            words = shlex.split(command)
            words = [sys.executable, *words[1:]] if words[0] == "python" else words
            done = subprocess.run(words, capture_output=True, text=True, timeout=120)
            code, output = done.returncode, done.stdout + done.stderr
        else:
            code, output = run_in_process(args, capfd)
        assert code == 0, f"`{command}` (before the case) failed with exit code {code}:\n{output}"
    return case, work


@pytest.mark.parametrize("folder", gallery_params())
def test_mistake_gives_a_message_with_place_and_fix(folder: Path, tmp_path, monkeypatch, capfd, clean_process):
    case, work = prepared(folder, tmp_path, monkeypatch, capfd)
    args = trainer_args(case["command"])
    assert args is not None, f"command must start with `python -m trainer`: {case['command']}"
    files_before = snapshot(work)
    code, output = run_in_process(args, capfd)

    shown = f"\n--- `{case['command']}` printed (exit code {code}) ---\n{output}"
    assert code == case.get("exit", 2), f"exit code {code}, expected {case.get('exit', 2)}{shown}"
    missing = [piece for piece in case["must_show"] if piece not in output]
    assert not missing, f"the message does not name {missing}{shown}"
    unwanted = [piece for piece in ["Traceback", *case.get("must_not_show", [])] if piece in output]
    assert not unwanted, f"the output shows {unwanted}{shown}"
    if code == 2:
        assert "Try" in output or "did you mean" in output, f"an error without a fix{shown}"
    if case.get("writes_nothing", False):
        files_after = snapshot(work)
        changed = sorted(
            name for name in files_before.keys() | files_after.keys() if files_before.get(name) != files_after.get(name)
        )
        assert not changed, f"a refused command changed {changed}{shown}"


def test_every_case_is_well_formed():
    problems = []
    titles: Counter[str] = Counter()
    for folder in case_folders():
        name = folder.name
        if not (name[:3].isdigit() and name[3:4] == "_" and len(name) > 4):
            problems.append(f"{name}: the folder is named NNN_short_name")
        try:
            case = read_case(folder)
        except tomllib.TOMLDecodeError as err:
            problems.append(f"{name}/mistake.toml: {err}")
            continue
        if missing := REQUIRED - case.keys():
            problems.append(f"{name}: missing {sorted(missing)}")
        if unknown := case.keys() - REQUIRED - OPTIONAL:
            problems.append(f"{name}: unknown keys {sorted(unknown)} (known: {sorted(REQUIRED | OPTIONAL)})")
        if case.get("kind") not in KINDS:
            problems.append(f"{name}: kind {case.get('kind')!r} is not one of {KINDS}")
        if not str(case.get("seen_in", "")).startswith("https://"):
            problems.append(f"{name}: seen_in must be the https:// address of a public thread")
        if not isinstance(case.get("must_show"), list) or not case.get("must_show"):
            problems.append(f"{name}: must_show is a list of what the message must name")
        if "data" in case and case["data"] not in FAKE_DATA:
            problems.append(f"{name}: data {case['data']!r} is not one of {FAKE_DATA}")
        if trainer_args(str(case.get("command", ""))) is None:
            problems.append(f"{name}: the command starts with `python -m trainer`")
        titles[str(case.get("title"))] += 1
    problems += [
        f"two cases are titled {title!r} (titles are the headings of the docs)" for title, n in titles.items() if n > 1
    ]
    assert not problems, "\n".join(problems)


def test_the_gallery_holds_150_cases_of_every_kind():
    kinds = Counter(read_case(folder).get("kind") for folder in case_folders())
    assert sum(kinds.values()) >= 150, f"{sum(kinds.values())} cases: {dict(kinds)}"
    assert not set(KINDS) - kinds.keys(), f"no case of kind {sorted(set(KINDS) - kinds.keys())}: {dict(kinds)}"


def test_troubleshooting_page_is_generated_from_the_gallery():
    spec = importlib.util.spec_from_file_location("make_troubleshooting", ROOT / "docs" / "make_troubleshooting.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert PAGE.read_text() == module.render(GALLERY), "run: python docs/make_troubleshooting.py"
