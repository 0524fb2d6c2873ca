"""Mutation testing of leaptrain's core: does the suite notice when the code is subtly wrong?

For each core module, mutmut (a dev extra) makes hundreds of small changes to the code, one at a time (`<` for
`<=`, `and` for `or`, a number plus one, a dropped argument ...), and runs the tests that reach the changed
function. A change the tests notice is killed; one they do not notice survived: either a test is missing, or the
change does not alter behaviour (an equivalent mutant, explained in bench/mutation/explained.toml).

    pip install -e ".[dev]"
    python bench/mutants.py                      # every core module, one after the other (hours on 2 cores)
    python bench/mutants.py checkpoint metrics   # some of them
    python bench/mutants.py loop --show          # also print the diff of each surviving mutant

Each module runs in its own copy of the project under --workdir (default: a folder in the system's temp folder),
with the tests listed for it below (`-m "not slow"`: the slow tests start real processes and would make a run
take hours). It prints one line per module (mutants, killed, survived, explained, kill rate) and the names of the
survivors; `cd <workdir>/<module> && mutmut show NAME` shows one, `mutmut browse` all of them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The core module, and the tests that are meant to catch a mistake in it: fast ones, since a surviving mutant runs
# every test that reaches it (pytest's own options may follow the files, e.g. -k).
EVERY_SCHEDULE_ONCE = ["-k", "not every_schedule or middle"]  # each schedule stopped one way, not three
CORE = {
    "loop": ["tests/test_loop.py", "tests/test_guards.py", "tests/test_resume.py", *EVERY_SCHEDULE_ONCE],
    "checkpoint": ["tests/test_checkpoint.py", "tests/test_resume.py", "tests/test_faults.py"],
    "run": [
        "tests/test_run.py",
        "tests/test_resume.py",
        "tests/test_guards.py",
        "tests/test_trust.py",
        *EVERY_SCHEDULE_ONCE,
    ],
    "diagnostics": ["tests/test_diagnostics.py", "tests/test_guards.py", "tests/test_explain.py"],
    "metrics": ["tests/test_metrics.py", "tests/test_guards.py", "tests/test_loop.py"],
    "metric_names": ["tests/test_metrics.py", "tests/test_checkpoint.py"],
    "validation": [
        "tests/test_validation.py",
        "tests/test_config_errors.py",
        "tests/test_key_lookup.py",
        "tests/test_config_fuzz.py",
    ],
    "config": [
        "tests/test_config_sections.py",
        "tests/test_config_errors.py",
        "tests/test_numbers.py",
        "tests/test_schema.py",
    ],
}
NOT_COPIED = shutil.ignore_patterns(".git", "runs", "data", "mutants", "__pycache__", ".*_cache", "*.egg-info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"core modules to mutate: {', '.join(CORE)} (all)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "leaptrain-mutants")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tried at once")
    parser.add_argument("--show", action="store_true", help="print the diff of every surviving mutant")
    args = parser.parse_args(argv)
    unknown = [module for module in args.modules if module not in CORE]
    if unknown:
        parser.error(f"not a core module: {', '.join(unknown)} (choose from {', '.join(CORE)})")
    try:
        from mutmut.stats import status_by_exit_code
    except ImportError:
        sys.exit('mutmut is missing: pip install -e ".[dev]"')

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    explained = tomllib.loads((ROOT / "bench/mutation/explained.toml").read_text(encoding="utf-8"))
    rows = []
    for module in args.modules or CORE:
        folder = prepare(module, args.workdir / module)
        env = {**os.environ, "PYTHONPATH": f"{folder / 'mutants'}{os.pathsep}{ROOT / 'bench/mutation'}"}
        print(f"mutating trainer/{module}.py in {folder}", flush=True)
        with (folder / "mutmut.log").open("w") as log:
            subprocess.run(
                ["mutmut", "run", "--max-children", str(args.jobs)],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        statuses = read_statuses(folder / "mutants" / "trainer" / f"{module}.py.meta", status_by_exit_code)
        if not any(status != "not run" for status in statuses.values()):
            tail = (folder / "mutmut.log").read_text(errors="replace").replace("\r", "\n").splitlines()[-5:]
            print(f"  mutmut tried no mutant; the end of {folder / 'mutmut.log'}:", *tail, sep="\n    ")
        survivors = [name for name, status in statuses.items() if status == "survived"]
        text_only = set(only_text_changed(folder / "mutants" / "trainer" / f"{module}.py", survivors))
        why = {name: explained[name] for name in survivors if name in explained}
        rows.append((module, statuses, survivors, text_only, why))
        for name in survivors:
            note = (
                f"  (explained: {why[name]})"
                if name in why
                else "  (only a message's text)"
                if name in text_only
                else ""
            )
            print(f"  survived: {name}{note}")
            if args.show and name not in text_only:
                subprocess.run(["mutmut", "show", name], cwd=folder, env=env, check=False)
    print(table(rows))
    return 0


def prepare(module: str, folder: Path) -> Path:
    """A fresh copy of the project whose pyproject tells mutmut what to mutate and which tests to run."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT, folder, ignore=NOT_COPIED)
    tests = [test for test in CORE[module] if not test.startswith("tests/") or (ROOT / test).is_file()]
    settings = f"""
[tool.mutmut]
source_paths = ["trainer/"]
only_mutate = ["trainer/{module}.py"]
also_copy = ["configs/", "docs/", "recipes/", "bench/", "README.md"]
pytest_add_cli_args_test_selection = {tests!r}
pytest_add_cli_args = ["-m", "not slow", "-p", "no:cacheprovider", "-q"]
process_isolation = "forkserver"  # torch is not safe to fork once it has started threads
debug = true  # quiet, mutmut 3.8 fails to collect its statistics of this suite; the output goes to mutmut.log
"""
    with (folder / "pyproject.toml").open("a", encoding="utf-8") as file:
        file.write(settings)
    # On PYTHONPATH from the start (for the test's child processes): a folder missing then is never looked in again.
    (folder / "mutants").mkdir()
    return folder


def read_statuses(meta: Path, status_by_exit_code: dict) -> dict[str, str]:
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: "not run" if code is None else status_by_exit_code[code] for name, code in codes.items()}


def only_text_changed(source: Path, names: list[str]) -> list[str]:
    """The mutants that change nothing but the wording of a message, found by comparing each mutated function with
    the original one, the text of every message blanked. Text is a part of an f-string or a string with a space in
    it; a string without one ("mlp", "val/loss", "name") is a key or a name the code looks up, so changing it is a
    change of behaviour."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}

    def blanked(node: ast.AST) -> str:
        copy = ast.parse(ast.unparse(node))
        in_fstrings = {id(part) for item in ast.walk(copy) if isinstance(item, ast.JoinedStr) for part in item.values}
        for item in ast.walk(copy):
            is_text = isinstance(item, ast.Constant) and isinstance(item.value, str)
            if is_text and (id(item) in in_fstrings or any(c.isspace() for c in item.value)):
                item.value = ""
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                item.name = ""
        return ast.dump(copy)

    text_only = []
    for name in names:
        function = name.rpartition(".")[2]
        original = functions.get(function.rpartition("__mutmut_")[0] + "__mutmut_orig")
        if function in functions and original is not None and blanked(functions[function]) == blanked(original):
            text_only.append(name)
    return text_only


def table(rows: list[tuple[str, dict[str, str], list[str], set[str], dict[str, str]]]) -> str:
    """Kill rates of every mutant, and of those that change what the code does (not only a message's text)."""
    header = (
        "module",
        "mutants",
        "killed",
        "survived",
        "text only",
        "explained",
        "no tests",
        "kill rate",
        "kill rate (code)",
    )
    lines = ["  ".join(f"{h:>{max(len(h), 8)}}" for h in header)]
    for module, statuses, survivors, text_only, why in rows:
        counts = {status: list(statuses.values()).count(status) for status in set(statuses.values())}
        killed = counts.get("killed", 0) + counts.get("timeout", 0)
        tried = killed + len(survivors)
        code = killed + len([name for name in survivors if name not in text_only and name not in why])
        values = (
            module,
            len(statuses),
            killed,
            len(survivors),
            len(text_only),
            len(why),
            counts.get("no tests", 0),
            f"{killed / tried:.1%}" if tried else "-",
            f"{killed / code:.1%}" if code else "-",
        )
        lines.append("  ".join(f"{v:>{max(len(h), 8)}}" for v, h in zip(values, header, strict=True)))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
