"""Random mutations of valid configs never end in a traceback: always a config error that names a key or line."""

from __future__ import annotations

import copy
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
def mutated_configs(draw: Any) -> dict[str, Any]:
    config = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in leaf_paths(config) if p]
        path = draw(st.sampled_from(paths))
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["value", "delete", "misspell", "number"]))
        if action == "value":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "misspell":
            key = misspell(str(path[-1]), draw(st.integers(0, 20)), draw(st.integers(0, 2)))
            parent[key] = parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(st.sampled_from([-1, 0, 1e30, -0.5, 10**9]))
    return config


def load_and_check(text: str) -> None:
    """What the CLI does before training: any failure must be a ConfigError or UserError with a location."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        try:
            cfg, _ = load_config(str(path), [])
            check_components(cfg)
        except (ConfigError, UserError) as err:
            message = format_error(err)
            assert message.startswith("error:") and "Traceback" not in message
            if isinstance(err, ConfigError):
                for problem in err.problems:
                    assert problem.key or "config.yaml:" in message, message


@FUZZ
@given(mutated_configs())
def test_mutated_configs_give_messages_not_tracebacks(config):
    load_and_check(yaml.safe_dump(config, sort_keys=False))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abc:- \n\t[]{}#'\"1e.0=&*!|>%@`,?")), max_size=60))
def test_random_yaml_gives_messages_not_tracebacks(text):
    load_and_check(text)
