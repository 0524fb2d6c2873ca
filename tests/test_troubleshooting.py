"""Every example in docs/troubleshooting.md gives the message the page shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import make_fake_mnist

PAGE = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def examples() -> list[tuple[str, dict[str, list[str]]]]:
    found = []
    for section in PAGE.read_text().split("\n## ")[1:]:
        title = section.splitlines()[0]
        blocks: dict[str, list[str]] = {}
        for kind, body in FENCE.findall(section):
            blocks.setdefault(kind, []).append(body)
        found.append((title, blocks))
    return found


def appears(expected: str, output: str) -> bool:
    """`expected` is in one line of the output; '...' in it stands for any text."""
    pieces = [re.escape(piece) for piece in expected.strip().split("...")]
    pattern = re.compile(".*?".join(pieces))
    return any(pattern.search(line) for line in output.splitlines())


def test_the_page_has_examples():
    assert len(examples()) >= 15


@pytest.mark.parametrize(("title", "blocks"), examples(), ids=[title for title, _ in examples()])
def test_example_gives_its_message(title, blocks, tmp_path, run_cli):
    make_fake_mnist(tmp_path / "data")
    for body in blocks["yaml"] + blocks.get("python", []):
        name, _, text = body.partition("\n")
        (tmp_path / name.removeprefix("# ").strip()).write_text(text)
    command = shlex.split(blocks["console"][0].removeprefix("$ ")) if "console" in blocks else ["config.yaml"]
    args = command[3:] if command[:3] == ["python", "-m", "trainer"] else command
    code, out, err = run_cli(*args)
    (expected,) = blocks["text"]
    assert code == (2 if expected.startswith("error") else 0), err
    for line in expected.strip().splitlines():
        assert appears(line, out + err), f"missing: {line}\n--- output ---\n{out}{err}"
