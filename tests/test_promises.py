"""Every promise of the README and docs/ has a test that checks it (tests/promises.py lists them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import promises


def test_every_promise_of_the_docs_has_a_test():
    found, problems = promises.check()
    assert not problems, "\n".join(problems)
    # The pages were read: their command lines, table rows and config keys are all there.
    assert "README.md: python -m trainer eval runs/mnist-cnn/<date-time>" in found
    assert "README.md: python -m trainer --help" in found and "README.md: tensorboard --logdir runs" in found
    assert any(p.startswith("docs/distributed.md: OMP_NUM_THREADS=1 torchrun --standalone") for p in found)
    assert {"README.md: csv", "README.md: diagnosis.txt", "docs/getting-started.md: HParams"} <= set(found)
    assert {"docs/config.md: train.grad_clip", "docs/config.md: sweep.params.low", "docs/config.md: seed"} <= set(found)
    assert len(found) > 140


@pytest.fixture
def docs_copy(tmp_path: Path, monkeypatch) -> Path:
    """The README and docs/ copied to tmp_path, which promises.py then reads instead of the real ones."""
    shutil.copy(promises.REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(promises.REPO / "docs", tmp_path / "docs")
    monkeypatch.setattr(promises, "REPO", tmp_path)
    return tmp_path


def add_after(path: Path, line: str, new: str) -> None:
    text = path.read_text()
    assert line in text
    path.write_text(text.replace(line, f"{line}\n{new}", 1))


def test_a_command_a_row_or_a_key_added_to_the_docs_without_a_test_is_named(docs_copy: Path):
    readme, config = docs_copy / "README.md", docs_copy / "docs" / "config.md"
    add_after(readme, "python -m trainer --help", "python -m trainer serve runs/mnist-cnn/<date-time>  # an HTTP API")
    add_after(readme, "| `csv` | a table", "| `parquet` | a columnar table | `taxi.yaml` |")
    add_after(config, "| `channels_last` |", "| `deterministic` | `false` | torch's deterministic algorithms |")
    add_after(
        docs_copy / "docs" / "getting-started.md", "python train_mnist.py", "tensorboard --logdir runs --port 7000"
    )
    _, problems = promises.check()
    assert problems == [
        f"no test checks {promise!r}: write one and name it in tests/promises.py CHECKED_BY"
        for promise in (
            "README.md: python -m trainer serve runs/mnist-cnn/<date-time>",
            "README.md: parquet",
            "docs/config.md: train.deterministic",
            "docs/getting-started.md: tensorboard --logdir runs --port 7000",
        )
    ]


def test_a_promise_taken_out_of_the_docs_or_a_renamed_test_is_named(docs_copy: Path, monkeypatch):
    readme = docs_copy / "README.md"
    readme.write_text(readme.read_text().replace("python -m trainer runs  ", "python -m trainer runs --all  "))
    renamed = {**promises.CHECKED_BY, "README.md: csv": ["test_tables.py::test_iris_trains"]}
    monkeypatch.setattr(promises, "CHECKED_BY", renamed)
    _, problems = promises.check()
    assert problems == [
        "no test checks 'README.md: python -m trainer runs --all': write one and name it in tests/promises.py "
        "CHECKED_BY",
        "'README.md: csv': test_tables.py::test_iris_trains does not exist (renamed?): update tests/promises.py",
        "CHECKED_BY names 'README.md: python -m trainer runs', which no page says any more",
    ]


def test_the_script_prints_each_promise_with_its_tests():
    done = subprocess.run(
        [sys.executable, str(promises.REPO / "tests" / "promises.py")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index("README.md: python -m trainer --help")
    assert lines[at + 1] == "    test_promised_features.py::test_help_lists_every_command_with_examples_and_exits_0"
    assert "docs/config.md: train.grad_clip" in lines
    assert lines[-1].endswith(" with a test") and done.stderr == ""
