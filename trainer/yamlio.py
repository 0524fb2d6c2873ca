"""Read a YAML config keeping the line of every key, apply dotted command-line overrides, save the result."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer import keys
from trainer.config import COMPONENT_SECTIONS, KEPT_WHEN_RENAMED
from trainer.errors import ConfigError, Problem, fold

KeyPath = tuple[str | int, ...]


# A config is a few kilobytes. These bound what a file can make the loader do: the bytes read, the nodes built
# once aliases are expanded (a few hundred bytes of nested aliases can stand for billions), and how deep.
MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 1_000
MAX_NODES = 100_000
MAX_DEPTH = 50


class _TooBig(yaml.YAMLError):
    """What a config file holds too much of, and the line where the loader stopped (a YAMLError, so that
    parse_value keeps such an override as text)."""

    def __init__(self, what: str, fix: str, line: int = 0):
        super().__init__(what)
        self.what, self.fix, self.line = what, fix, line


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a number (YAML 1.1 wants a dot in floats) and only true/false as booleans,
    and refuses nesting deeper than MAX_DEPTH and more than MAX_ALIASES aliases while it composes."""

    depth = 0
    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        line = self.peek_event().start_mark.line + 1
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooBig(f"more than {MAX_ALIASES:,} aliases (*name)", "write the values out", line)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooBig(f"sections nested more than {MAX_DEPTH} deep", "write a flatter config", line)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def merge_once(self, node: yaml.MappingNode) -> int:
        """Apply the mapping's merge keys (<<: *defaults) once, however often aliases reach it; how many of its
        pairs came from them (they come first), which the keys written in the mapping itself may override."""
        merged: dict[int, int] = self.__dict__.setdefault("merged", {})
        if id(node) not in merged:
            own = sum(key.tag != "tag:yaml.org,2002:merge" for key, _ in node.value)
            self.flatten_mapping(node)
            merged[id(node)] = len(node.value) - own
        return merged[id(node)]


_REPLACED = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Only true/false are booleans (as in YAML 1.2): `name: on` or `kind: no` stay words. Boolean keys still accept
# yes/no/on/off, because pydantic reads those words as booleans.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass
class Source:
    """Where each key of a config came from: a line of the file or an override on the command line."""

    path: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overrides: dict[KeyPath, str] = field(default_factory=dict)

    def where(self, key: str | KeyPath) -> str:
        """'configs/x.yaml:12' or "command line 'optimizer.lr=1'" for the key or its nearest parent."""
        path = split_key(key) if isinstance(key, str) else key
        for n in range(len(path), -1, -1):
            for prefix in _spellings(path[:n]):
                if prefix in self.overrides:
                    return f"command line '{self.overrides[prefix]}'"
                if prefix in self.lines:
                    return f"{self.path}:{self.lines[prefix]}"
        return self.path


def _spellings(path: KeyPath) -> list[KeyPath]:
    """The key as split, then with one run of its parts as one key written with its dots, as sweep.params has
    them: sweep.params.optimizer.lr.low is also ('sweep', 'params', 'optimizer.lr', 'low')."""
    joined = [
        (*path[:i], join_key(path[i:j]), *path[j:]) for i in range(len(path)) for j in range(len(path), i + 1, -1)
    ]
    return [path, *joined]


def split_key(key: str) -> KeyPath:
    return tuple(int(part) if part.isdigit() else part for part in key.split(".")) if key else ()


def join_key(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)


def run_name(path: str | Path) -> str:
    """The run name a config without `name:` gets from its file's name (configs/my mnist.yaml: my-mnist), made to
    fit config.py's pattern for names."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem).lstrip("._-") or "run"


def load_config_file(path: str | Path) -> tuple[dict[str, Any], Source]:
    """The config as plain data, and the line of every key in it."""
    path = Path(path)
    source = Source(str(path))

    def refuse(message: str, line: int = 0) -> ConfigError:
        if line:
            source.lines[()] = line
        return ConfigError([Problem("", message)], source)

    if not path.is_file():
        hint = "it is a folder" if path.is_dir() else "no such file" if not path.exists() else "not a regular file"
        raise refuse(f"cannot read the config: {hint}. Try: check the path (shipped configs are in configs/)")
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise refuse(f"cannot read the config: {err.strerror or err}. Try: check the file's permissions") from err
    if len(raw) > MAX_CONFIG_BYTES:
        size = path.stat().st_size
        raise refuse(
            f"the config is {size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a config may have (configs are a few "
            "kilobytes). Try: check that this is the config you meant; keep large lists (sweeps, features) short"
        )
    text, problem = _decode_config(raw)
    if problem:
        raise refuse(*problem)
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks every character first
        node = loader.get_single_node()
        if node is not None:
            _check_size(node)
        data = {} if node is None else _construct(node, (), loader, source)
    except yaml.MarkedYAMLError as err:
        line, message = yaml_problem(err, text.splitlines())
        raise refuse(message, line) from err
    except yaml.reader.ReaderError as err:  # a control character the YAML reader refuses
        line = text[: err.position].count("\n") + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise refuse(
            f"line {line} holds the control character 0x{code:02x}, which YAML does not allow. "
            "Try: delete it (it is invisible in most editors; retype the line)",
            line,
        ) from err
    except _TooBig as err:
        raise refuse(f"the config holds {err.what}, the most a config may hold. Try: {err.fix}", err.line) from err
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError([Problem("", _not_a_mapping(data))], source)
    return data, source


# The first bytes of files given as a config by mistake, and what they are.
SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive (a PyTorch checkpoint .pt is one)",
    b"\x1f\x8b": "a gzip archive",
    b"\x7fELF": "a program",
    b"\x93NUMPY": "a NumPy array",
    b"\x80\x02": "a pickle (an old PyTorch checkpoint)",
    b"\x80\x04": "a pickle (an old PyTorch checkpoint)",
    b"\x80\x05": "a pickle (an old PyTorch checkpoint)",
}


def _decode_config(raw: bytes) -> tuple[str, tuple[str, int] | None]:
    """The file's text (UTF-8, or UTF-16 with its byte-order mark), or what is wrong and its line."""
    fix = "Try: give the YAML config (python -m trainer init writes one); checkpoints go to eval, resume or predict"
    for signature, what in SIGNATURES.items():
        if raw.startswith(signature):
            return "", (f"this is {what}, not a YAML config. {fix}", 0)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows' "Unicode" is UTF-16 with a byte-order mark
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError:
            return "", ("the file starts as UTF-16 text but is not. Try: save it as UTF-8", 0)
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        return "", (f"this is a binary file (a zero byte on line {line}), not a YAML config. {fix}", line)
    try:
        return raw.decode("utf-8-sig"), None  # an editor's UTF-8 byte-order mark is no part of the first key
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        start = raw.rfind(b"\n", 0, err.start) + 1
        end = raw.find(b"\n", err.start)
        shown = raw[start : end if end >= 0 else len(raw)].decode("cp1252", errors="replace").strip()[:60]
        return "", (
            f"line {line} is not UTF-8 text: byte 0x{raw[err.start]:02x} (column {err.start - start + 1}) cannot "
            f"be read; as Windows text the line reads {shown!r}. Try: save the file as UTF-8 (most editors: "
            "Save with encoding, UTF-8), or retype that character",
            line,
        )


def _check_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_NODES nodes, counted without expanding them:
    each node's size is computed once, however many aliases point at it."""
    sizes: dict[int, int] = {}
    order, stack = [], [root]
    while stack:  # the nodes, parents before children, each once
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]
    for node in reversed(order):  # children before parents
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else []
        )
        sizes[id(node)] = min(1 + sum(sizes[id(child)] for child in children), MAX_NODES + 1)
    if sizes[id(root)] > MAX_NODES:
        what = f"more than {MAX_NODES:,} values once its aliases (*name) are expanded"
        raise _TooBig(what, "write the values out instead of aliasing aliases", root.start_mark.line + 1)


def _not_a_mapping(data: Any) -> str:
    if isinstance(data, str) and (match := re.match(r"^([A-Za-z_][\w.-]*)\s*=\s*(\S*)", data)):
        return f"YAML keys take ':', not '='. Try: {match[1]}: {match[2]}"
    if isinstance(data, list):
        return "the file is a list (its lines start with '- '); a config is `key: value` lines. Try: data:, model: ..."
    return "the file must hold `key: value` lines at the top level. Try: start from python -m trainer init"


OPENERS = {"flow sequence": "[", "flow mapping": "{"}


def yaml_problem(err: yaml.MarkedYAMLError, lines: list[str]) -> tuple[int, str]:
    """The line to point at and what is wrong, in plain words. Where a construct was opened and never closed
    (a bracket, a brace, a quote), that is the line where it began, not the one where the parser gave up."""
    problem, context = err.problem or str(err), err.context or ""
    start = err.context_mark.line + 1 if err.context_mark else 0
    end = err.problem_mark.line + 1 if err.problem_mark else start
    column = err.problem_mark.column if err.problem_mark else 0
    gave_up = f" (the parser gave up on line {end})" if end and end != start else ""

    def text(line: int) -> str:
        return lines[line - 1].rstrip() if 0 < line <= len(lines) else ""

    if "unknown escape character" in problem:
        char = problem.rpartition("'")[0].rpartition("'")[2]
        return end, (
            f"inside double quotes a backslash starts an escape (\\n, \\t), and '\\{char}' is none: "
            f"`{text(end).strip()}`. Try: single quotes ('C:\\data'), or forward slashes (C:/data)"
        )
    for kind, opener in OPENERS.items():
        if kind in context:
            closer = "]" if opener == "[" else "}"
            return start, (
                f"the '{opener}' opened on line {start} is never closed{gave_up}: `{text(start).strip()}`. "
                f"Try: end it with '{closer}' on the same line, and separate its items with ', '"
            )
    if "quoted scalar" in context:
        quote = text(start)[err.context_mark.column] if err.context_mark else "'"
        return start, (
            f"the quote {quote} opened on line {start} is never closed{gave_up}: `{text(start).strip()}`. "
            f"Try: close it with {quote} on the same line (or remove it: most values need no quotes)"
        )
    if "\\t" in problem or "'\t'" in problem or "tab" in problem:
        return end, f"line {end} is indented with a tab. Try: indent with spaces, not tabs (two per level)"
    if "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "?"
        return end, f"a value cannot start with '{char}' in YAML: `{text(end).strip()}`. Try: put the value in quotes"
    if "undefined alias" in problem:
        return end, f"`{text(end).strip()}` refers to an anchor (&name) defined nowhere above. Try: define it first"
    if "another document" in problem:
        return end, "a config is one YAML document. Try: remove the `---` line"
    if "mapping values are not allowed" in problem:
        return _stray_colon(lines, end, column, text)
    if "could not find expected ':'" in problem:
        return start or end, _line_without_colon(text(start or end), start or end)
    if "expected <block end>" in problem and "'-'" in problem:
        return end, (
            f"line {end} starts a list item ('- ') among `key: value` lines of the section begun on line {start}: "
            "a section holds either keys or list items. Try: give the list a key (`hidden:` then `  - 64`), "
            "or write it in brackets: hidden: [64, 32]"
        )
    if "expected <block end>" in problem and "'?'" in problem:
        return end, (
            f"line {end} is a `key: value` line inside the list begun on line {start}. "
            "Try: indent it less, to line up with the key that holds the list"
        )
    if "expected <block end>" in problem:
        return end, _indentation(lines, end, text)
    return end or start, (
        f"not valid YAML: {problem}. Try: check the indentation and the ':' after each key on this line "
        "and the one above"
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _stray_colon(lines: list[str], end: int, column: int, text: Any) -> tuple[int, str]:
    """A ':' where YAML cannot take one: a second ':' on a line, or a line that continues the one above
    because that one lacks its ': ' (a missing space, an '=') or is indented differently."""
    line = text(end)
    before = line[:column]
    if ": " in before.lstrip(" -") or before.rstrip().endswith(":"):
        key, _, value = line.strip().partition(": ")
        second = before.rstrip(": ").rpartition(" ")[2]
        if fold(second) in keys.schema_keys() or fold(second) in keys.FOREIGN_FOLDED:
            first = value.partition(f" {second}")[0]
            return end, (
                f"line {end} holds two keys, `{key}` and `{second}`: `{line.strip()}`. Try: one key a line, or "
                f"write the section in braces: {key}: {{name: {first}, {second}: {value.partition(': ')[2]}}}"
            )
        return end, (
            f"line {end} has a second ': ' in one value: `{line.strip()}`. "
            f"Try: put the value in quotes: {key}: '{value}'"
        )
    above = next((n for n in range(end - 1, 0, -1) if text(n).strip() and not text(n).lstrip().startswith("#")), 0)
    if above:
        upper = text(above)
        if re.match(r"^\s*[A-Za-z_][\w.-]*:\S", upper) or re.match(r"^\s*[A-Za-z_][\w.-]*\s*=", upper):
            return above, _line_without_colon(upper, above)
        if _indent(line) > _indent(upper) and not upper.rstrip().endswith(":"):
            return end, (
                f"line {end} is indented more than the key above it (line {above}), which holds a value, not a "
                "section. Try: line up the keys of one section"
            )
    return end, (
        f"a ':' YAML cannot take on line {end}: `{line.strip()}`. Try: put a value holding ': ' in quotes, and put "
        "a space after the ':' of each key"
    )


def _line_without_colon(line: str, number: int) -> str:
    stripped = line.strip()
    if match := re.match(r"^([A-Za-z_][\w.-]*)\s*=\s*(.*)$", stripped):
        return f"line {number} uses '=': `{stripped}`. Try: YAML keys take ': ': {match[1]}: {match[2]}"
    if match := re.match(r"^([A-Za-z_][\w.-]*):(\S.*)$", stripped):
        return f"line {number} needs a space after ':': `{stripped}`. Try: {match[1]}: {match[2]}"
    return f"line {number} is not a `key: value` line: `{stripped}`. Try: write it as key: value"


def _indentation(lines: list[str], end: int, text: Any) -> str:
    line = text(end)
    above = next((n for n in range(end - 1, 0, -1) if text(n).strip() and not text(n).lstrip().startswith("#")), 0)
    return (
        f"line {end} is indented differently from the key above it (line {above}: `{text(above).strip()}`). "
        f"Try: indent `{line.strip()}` exactly as far as the other keys of its section"
    )


def _construct(node: yaml.Node, path: KeyPath, loader: _Loader, source: Source) -> Any:
    if isinstance(node, yaml.MappingNode):
        merged = loader.merge_once(node)
        mapping: dict[Any, Any] = {}
        inherited: set[Any] = set()  # keys merged in and not yet overridden
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, list | dict | set):  # `? [a, b]` or `{[a]: 1}`: no dotted key can name it
                message = f"line {line} uses a {type(key).__name__} as a key. Try: a key is a word: `name: value`"
                raise ConfigError([Problem(join_key(path), message)], source)
            if key in mapping and key not in inherited:
                first = source.lines[(*path, key)]
                source.lines[(*path, key)] = line
                message = f"appears twice (first on line {first}); only one can count. Try: delete one of them"
                raise ConfigError([Problem(join_key((*path, key)), message)], source)
            if index < merged:
                inherited.add(key)
            else:
                inherited.discard(key)  # written here: it overrides what was merged in
            source.lines[(*path, key)] = line
            mapping[key] = _construct(value_node, (*path, key), loader, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            source.lines[(*path, index)] = item_node.start_mark.line + 1
            items.append(_construct(item_node, (*path, index), loader, source))
        return items
    return loader.construct_object(node, deep=True)


def parse_value(text: str) -> Any:
    """A command-line value read as YAML: `3e-4` is a number, `[16,32]` a list, `adam` a string."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], source: Source) -> None:
    """Apply `a.b.c=value` overrides in place, remembering each so messages can name it.

    A key that belongs elsewhere (`train.lr=0.1`, `max_epochs=3`) is refused with the override to type instead,
    and so is an override written with a space or a colon (`optimizer.lr 0.1`, `optimizer.lr:0.1`)."""
    problems, written = [], []
    for override, joined in _joined(overrides):
        key, sep, text = (joined or override).partition("=")
        path = split_key(key.strip())
        source.overrides[path] = override
        if joined:
            problems.append(Problem(key, f"an override is one word, key=value: '=' and no spaces. Try: {joined}"))
        elif key.startswith(("+", "~")):  # Hydra's add (+key=) and delete (~key) marks
            plain = override.lstrip("+~")
            problems.append(
                Problem(key, f"needs no '{key[0]}': any key of the schema can be set as it is. Try: {plain}")
            )
        elif not sep or not path:
            problems.append(Problem(key, "an override must look like key=value. Try: optimizer.lr=3e-4"))
        elif text.strip() == "":
            problems.append(Problem(key, f"has no value after '='. Try: {key}=VALUE"))
        elif problem := _set(data, path, parse_value(text)):
            problems.append(Problem(key, problem))
        else:
            written.append((path, parse_value(text)))
    for path, value in written:  # checked once all are set: `data.path=x data.dataset=csv` is fine
        if not keys.is_known(path, data) and keys.homes_of(path, data, value):
            problems.append(Problem(join_key(path), keys.message(path, data, [], value, override=True)))
    if problems:
        raise ConfigError(problems)


def _joined(words: list[str]) -> list[tuple[str, str]]:
    """Each override, with the key=value it was meant to be when it was written `key value`, `key: value`,
    `key:value` or `key = value` ('' when it is written right)."""
    out, i = [], 0
    while i < len(words):
        word = words[i]
        key_like = re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*:?", word)
        if key_like and i + 1 < len(words) and words[i + 1] in ("=", ":") and i + 2 < len(words):
            out.append((" ".join(words[i : i + 3]), f"{word.rstrip(':')}={words[i + 2]}"))
            i += 3
            continue
        if key_like and i + 1 < len(words) and "=" not in words[i + 1] and ("." in word or word.endswith(":")):
            out.append((f"{word} {words[i + 1]}", f"{word.rstrip(':')}={words[i + 1].lstrip('=')}"))
            i += 2
            continue
        if (match := re.fullmatch(r"([A-Za-z_][\w-]*(?:\.[\w-]+)+):(\S.*)", word)) and "=" not in word:
            out.append((word, f"{match[1]}={match[2]}"))
        else:
            out.append((word, ""))
        i += 1
    return out


def _set(data: dict[str, Any], path: KeyPath, value: Any) -> str:
    """Put `value` at `path`, making sections on the way; what went wrong, or ''."""
    section = path[0]
    if section in COMPONENT_SECTIONS and isinstance(data.get(section), str):
        data[section] = {"name": data[section]}  # `loss: mse` then `loss.reduction=sum`
    old = data.get(section)
    if len(path) == 1 and section in COMPONENT_SECTIONS and isinstance(old, dict) and isinstance(value, str):
        # `optimizer=sgd` picks another class: its arguments go, but the learning rate stays
        data[section] = {"name": value, **{k: old[k] for k in KEPT_WHEN_RENAMED.get(section, ()) if k in old}}
        return ""
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}  # a new section; the schema says whether it may exist
        child = _child(node, part)
        if not isinstance(child, dict | list):
            return f"{join_key(path[: depth + 1])} holds a value, not a section"
        node = child
    last = path[-1]
    if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
        return f"{join_key(path[:-1])} has {len(node)} items (0 to {len(node) - 1}). Try: {join_key(path[:-1])}=[...]"
    node[last] = value
    return ""


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}: dotted keys, as overrides and HParams name them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat
