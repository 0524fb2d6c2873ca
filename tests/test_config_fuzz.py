"""Random mutations of valid configs never end in a traceback: always a config error that names a key or line."""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.cli import format_error, load_config
from trainer.errors import ConfigError, UserError
from trainer.run import check_components

ROOT = Path(__file__).resolve().parents[1]
BASES = [yaml.safe_load((ROOT / "configs" / name).read_text()) for name in ("mnist.yaml", "synthetic.yaml")]
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 300), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [prefix] + [p for key, value in node.items() for p in leaf_paths(value, (*prefix, key))]
    return [prefix]


def misspell(word: str, position: int, kind: int) -> str:
    position %= max(len(word), 1)
    if kind == 0:
        return word[:position] + word[position + 1 :] or "x"
    if kind == 1:
        return word[:position] + "x" + word[position:]
    return word[:position] + word[position:][::-1]


@st.composite
def mutated_configs(draw: Any) -> tuple[dict[str, Any], list[tuple]]:
    """A shipped config with one to three mistakes made in it, and the key paths the mistakes touched."""
    config = copy.deepcopy(draw(st.sampled_from(BASES)))
    touched: list[tuple] = []
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in leaf_paths(config) if p]
        path = draw(st.sampled_from(paths))
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["value", "delete", "misspell", "number"]))
        touched.append(path)
        if action == "value":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "misspell":
            key = misspell(str(path[-1]), draw(st.integers(0, 20)), draw(st.integers(0, 2)))
            parent[key] = parent.pop(path[-1])
            touched.append((*path[:-1], key))
        else:
            parent[path[-1]] = draw(st.sampled_from([-1, 0, 1e30, -0.5, 10**9]))
    return config, touched


def key_lines(text: str) -> dict[str, int]:
    """The line of every key of a YAML text, by its dotted path (list items by their index), read with PyYAML's
    own node marks: an account of where each key is that does not use leaptrain's."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}{key.value}" if isinstance(key, yaml.ScalarNode) else None
                if dotted is not None:
                    lines[dotted] = key.start_mark.line + 1  # a key written twice: the last one counts, as in YAML
                    walk(value, dotted + ".")
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[f"{prefix}{index}"] = item.start_mark.line + 1
                walk(item, f"{prefix}{index}.")

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, "")
    return lines


def expected_place(path: Path, key: str, lines: dict[str, int]) -> str:
    """'config.yaml:LINE' for the key, or for its nearest parent in the file; just the file when neither is there
    (a required key left out)."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in lines:
            return f"{path}:{lines['.'.join(parts[:n])]}"
    return str(path)


def yaml_error_line(text: str) -> int | None:
    """The line where PyYAML itself gives up on the text, or None when it reads it."""
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        return err.problem_mark.line + 1 if err.problem_mark else 1
    except yaml.YAMLError:
        return 1
    return None


def related(key: str, said: str, paths: list[tuple]) -> bool:
    """Whether a problem is about one of the touched paths: its key is one of them or inside one (a section given
    a wrong value), or it is the section holding one and names it ("data: needs a 'dataset' key")."""
    problem = key.split(".") if key else []
    for path in [[str(part) for part in path] for path in paths]:
        if problem[: len(path)] == path or (problem == path[:-1] and f"'{path[-1]}'" in said):
            return True
    return False


def load_and_check(text: str, touched: list[tuple] | None = None) -> None:
    """What the CLI does before training: any failure must be a ConfigError or UserError whose message points at
    the right place: each problem's key at its line in the file (or at its nearest parent's line), and a file that
    is no valid YAML at a line no later than the one where the YAML parser gave up."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        try:
            cfg, _ = load_config(str(path), [])
            check_components(cfg)
        except (ConfigError, UserError) as err:
            message = format_error(err)
            assert message.startswith("error:") and "Traceback" not in message
            broken_at = yaml_error_line(text)
            lines = key_lines(text) if broken_at is None else {}
            problems = (
                [(p.key, p.message) for p in err.problems] if isinstance(err, ConfigError) else [(err.key, err.message)]
            )
            for key, _ in problems:
                if key:
                    assert f"{expected_place(path, key, lines)}: {key}: " in message, message
                elif broken_at is not None:
                    said = re.search(rf"{re.escape(str(path))}:(\d+): ", message)
                    assert said and 1 <= int(said.group(1)) <= broken_at, (broken_at, message)
            if touched is not None:  # the mistakes made on purpose are what the message is about
                assert any(related(key, said, touched) for key, said in problems), (touched, message)


@FUZZ
@given(mutated_configs())
def test_mutated_configs_give_messages_not_tracebacks(mutated):
    config, touched = mutated
    load_and_check(yaml.safe_dump(config, sort_keys=False), touched)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abc:- \n\t[]{}#'\"1e.0=&*!|>%@`,?")), max_size=60))
def test_random_yaml_gives_messages_not_tracebacks(text):
    load_and_check(text)


def test_a_problem_is_placed_at_the_line_of_its_key_not_just_in_the_file():
    """The fuzz tests' own check of a place, on a config whose lines are known: a bad value deep in the file is
    named at its line, and a required key left out is named without one."""
    text = "name: t\nseed: 0\ndata:\n  dataset: synthetic\n  batch_size: -3\nmodel: {name: mlp}\n"
    assert expected_place(Path("config.yaml"), "data.batch_size", key_lines(text)) == "config.yaml:5"
    assert expected_place(Path("config.yaml"), "data.samples", key_lines(text)) == "config.yaml:3"
    assert expected_place(Path("config.yaml"), "optimizer", key_lines(text)) == "config.yaml"
    load_and_check(text, [("data", "batch_size")])
