"""What a command line argparse would refuse was meant to say: options from other tools (`--lr 0.01`,
`--config x.yaml`, `--gpus 1`), a misspelled command (`chek`), overrides before the config. Each gets the
exact command to type instead, from the same key lookup the config file uses (trainer/keys.py)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

from trainer import keys
from trainer.errors import ConfigError, UserError, did_you_mean, fold

PROGRAM = "python -m trainer"
# Other tools' words for our commands (Lightning's `fit`, `test`, ...).
COMMAND_WORDS = {
    "fit": "train",
    "run": "train",
    "start": "train",
    "test": "eval",
    "evaluate": "eval",
    "validate": "eval",
    "infer": "predict",
    "inference": "predict",
    "tune": "sweep",
    "search": "sweep",
    "hparams": "sweep",
    "list": "runs",
    "ls": "runs",
    "new": "init",
    "create": "init",
    "config": "show",
    "print": "show",
    "findlr": "lr-find",
    "lrfinder": "lr-find",
    "lrrangetest": "lr-find",
    "dryrun": "check",
    "validateconfig": "check",
    "continue": "resume",
}
TAKES_CONFIG = ("train", "check", "lr-find", "show", "eject", "try")
# One-letter options of torchvision's training scripts (-b 64, -j 8), as the names they stand for.
LETTERS = {"b": "batch_size", "j": "workers", "e": "epochs"}
CONFIG_FLAGS = ("config", "c", "cfg", "conf", "config_file", "config_path", "config_name", "yaml", "file", "f")
# Options of other tools that take no value: `--amp`, `--cpu`; any boolean key of the schema is one too.
NO_VALUE = {"amp", "use_amp", "fp16", "bf16", "half", "cpu", "no_cuda", "cuda", "use_cuda", "use_gpu", "verbose"}


def misread(argv: list[str], parser: argparse.ArgumentParser, commands: tuple[str, ...]) -> UserError | None:
    """The mistake in `argv` with the command to type instead, or None when argparse can take it."""
    options = _options(parser)
    positional = _positionals(argv, options, commands)
    command = positional[0][1] if positional else ""
    if command and command not in commands:
        if problem := _misspelled_command(argv, positional, commands):
            return problem
        command = "train"
    explicit = bool(command) and argv[positional[0][0]] == command
    if command not in options:
        return None
    if problem := _unknown_options(argv, command, explicit, options):
        return problem
    if explicit and command in TAKES_CONFIG and len(positional) == 1 and not {"-h", "--help"} & set(argv):
        return UserError(f"{command} needs a config file", fix=_command([command, "configs/mnist.yaml", *argv[1:]]))
    return None


def _misspelled_command(argv: list[str], positional: list[tuple[int, str]], commands: tuple[str, ...]) -> Any:
    """`chek configs/x.yaml`, `fit configs/x.yaml`: a word that is no file and names no config but is close to a
    command (or is another tool's word for one). Also overrides given before the config, or without one."""
    index, word = positional[0]
    later = [a for _, a in positional[1:] if a in commands]
    if later:  # `x.yaml check`: the command comes first
        words = [a for a in argv if a != later[0]]
        return UserError(
            f"'{later[0]}' is a command: it comes first, then the config", fix=_command([later[0], *words])
        )
    if Path(word).exists():
        return None
    rest = argv[index + 1 :]
    meant = COMMAND_WORDS.get(fold(word)) or COMMAND_WORDS.get(word.lower())
    if meant is None:
        hint = did_you_mean(word, commands)
        meant = hint.split("'")[1] if hint else ""
    looks_like_path = "/" in word or "\\" in word or word.endswith((".yaml", ".yml", ".json")) or "=" in word
    if meant and not looks_like_path:
        how = "" if word.lower() in commands else f" ({word} means {meant} here)" if fold(word) in COMMAND_WORDS else ""
        return UserError(
            f"'{word}' is not a command{how or f' (did you mean {meant!r}?)'}. Commands: {', '.join(commands)}",
            fix=_command([meant, *rest]),
        )
    if re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*=.*", word):
        configs = [a for _, a in positional if a.endswith((".yaml", ".yml")) and "=" not in a]
        others = [a for a in argv if a not in configs]
        config = configs[0] if configs else "configs/mnist.yaml"
        where = f"{config} comes" if configs else "a config file comes"
        return UserError(
            f"'{word}' is an override, but {where} first: the config, then its overrides",
            fix=_command([config, *others]),
        )
    return None


def positionals(argv: list[str], parser: argparse.ArgumentParser, commands: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index, word) of the command, the config and the overrides in `argv`: the words that are neither an option
    nor the value of one (`--resume runs/x` takes runs/x)."""
    return _positionals(argv, _options(parser), commands)


def _options(parser: argparse.ArgumentParser) -> dict[str, dict[str, bool]]:
    """Each command's option strings (--debug, --resume, ...), and whether each takes a value."""
    found: dict[str, dict[str, bool]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = {flag: a.nargs != 0 for flag, a in sub._option_string_actions.items()}
    return found


def _positionals(argv: list[str], options: dict[str, dict[str, bool]], commands: tuple[str, ...]) -> list[Any]:
    """(index, word) of each word that is not an option nor the value of one (`--resume runs` takes `runs`)."""
    found: list[tuple[int, str]] = []
    flags: dict[str, bool] = options.get("train", {})
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
        elif word.startswith("-") and not _is_number(word):
            flag = word.partition("=")[0]
            matches = [f for f in flags if f == flag] or [f for f in flags if f.startswith(flag) and flag[:2] == "--"]
            skip = "=" not in word and len(matches) == 1 and flags[matches[0]]
        else:
            if not found and word in commands:
                flags = options.get(word, {})
            found.append((i, word))
    return found


def _unknown_options(argv: list[str], command: str, explicit: bool, options: dict[str, dict[str, bool]]) -> Any:
    known = options[command]
    words = list(argv)
    if not any(_unknown(word, known) for word in words):
        return None  # the usual case: nothing to translate, and the config is read once, later
    data, config = _config_data(words, command, explicit)
    replaced: list[str] = []  # the override (or the note) each unknown option becomes
    notes: list[str] = []
    drop: set[int] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if not _unknown(word, known):
            i += 1
            continue
        name, has_value, value = word.lstrip("-").partition("=")
        key = LETTERS.get(name, name.replace("-", "_")) if not word.startswith("--") else name.replace("-", "_")
        takes_value = bool(has_value) or _takes_value(key, words, i)
        if not has_value and takes_value:
            value = words[i + 1]
            drop.add(i + 1)
        drop.add(i)
        typed = f"{word} {value}" if takes_value and not has_value else word
        if not takes_value:  # `--amp` switches something on; `--lr` alone has lost its value
            value = "true" if fold(key) in {fold(n) for n in NO_VALUE} or _is_boolean_key(key) else "VALUE"
        text = _override(key, value, data, command, options, notes, typed)
        if text.startswith("@config:"):
            config = text.removeprefix("@config:")
        elif text:
            replaced += text.split()
        i += 2 if takes_value and not has_value else 1
    if not drop:
        return None
    kept = [w for n, w in enumerate(words) if n not in drop]
    fixed = _rebuild(kept, command, explicit, config, replaced)
    return UserError("; ".join(notes), fix=fixed)


def _unknown(word: str, known: dict[str, bool]) -> bool:
    """An option (not a negative number, not `-` or `--`) that this command does not have."""
    return word.startswith("-") and not _is_number(word) and word not in ("-", "--") and not _accepted(word, known)


def _accepted(word: str, known: dict[str, bool]) -> bool:
    """argparse takes an option, `--option=value`, or a unique start of one (`--deb` for --debug)."""
    flag = word.partition("=")[0]
    return flag in known or (flag.startswith("--") and len([k for k in known if k.startswith(flag)]) == 1)


def _is_number(word: str) -> bool:
    return re.fullmatch(r"-\d[\d.eE+-]*", word) is not None


def _takes_value(key: str, words: list[str], i: int) -> bool:
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if not nxt or (nxt.startswith("-") and not _is_number(nxt)) or "=" in nxt:
        return False
    if fold(key) in {fold(n) for n in NO_VALUE} or _is_boolean_key(key):
        return nxt.lower() in ("true", "false", "0", "1")
    return True


def _is_boolean_key(key: str) -> bool:
    for dotted, _ in keys.schema_keys().get(fold(key.rpartition(".")[2]), []):
        spot = keys.field_at(dotted)
        if spot is not None and spot.field is not None and spot.field.annotation is bool:
            return True
    return False


def _override(
    key: str,
    value: str,
    data: dict[str, Any],
    command: str,
    options: dict[str, list[str]],
    notes: list[str],
    typed: str,
) -> str:
    """The override an unknown option stands for ('' when there is none; '@config:PATH' for --config PATH)."""
    if key.lower() in CONFIG_FLAGS:
        notes.append(f"{typed}: the config is not an option here; it is the first argument")
        return f"@config:{value}"
    elsewhere = [name for name, flags in options.items() if f"--{key.replace('_', '-')}" in flags and name != command]
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    homes = [] if keys.is_known(path, data) else keys.homes_of(path, data, value)
    if keys.is_known(path, data) and (len(path) > 1 or path[0] in ("seed", "name")):
        notes.append(f"{typed}: config keys are set as key=value, not as options: {key}={value}")
        return f"{key}={value}"
    if homes and homes[0].key:
        home = homes[0]
        written = keys.fix(home, override=True)
        why = f" ({home.why})" if home.why and not home.why.startswith("with ") else ""
        unmet = keys.unmet_condition(home.key, data)
        if unmet:
            notes.append(
                f"{typed} is not an option of {command}; its config key {home.key}{why} exists only with {unmet}"
            )
            return ""
        notes.append(f"{typed} is not an option of {command}; it is the config key {home.key}{why}: {written}")
        return written
    if homes:
        notes.append(f"{typed}: {homes[0].why}")
        return ""
    if elsewhere:
        usage = f"python -m trainer {elsewhere[0]} ... {typed}"
        notes.append(f"{typed} is an option of {' and '.join(elsewhere)}, not of {command} ({usage})")
        return ""
    hint = did_you_mean(f"--{key.replace('_', '-')}", [o for o in options[command] if o.startswith("--")])
    listed = ", ".join(o for o in options[command] if o.startswith("--") and o != "--help")
    notes.append(
        f"{typed} is not an option of {command}{hint}; its options: {listed or 'none'}, and config keys are set "
        "as key=value (e.g. optimizer.lr=3e-4)"
    )
    return ""


def _config_data(words: list[str], command: str, explicit: bool) -> tuple[dict[str, Any], str]:
    """The config the command line names (for the lookup to know its optimizer, data set, ...)."""
    from trainer.yamlio import load_config_file

    candidates = [w for w in words if w.endswith((".yaml", ".yml")) and not w.startswith("-")]
    for n, word in enumerate(words[:-1]):
        if word.lstrip("-").partition("=")[0].replace("-", "_").lower() in CONFIG_FLAGS and word.startswith("-"):
            candidates.insert(0, words[n + 1])
    for path in candidates:
        try:
            return load_config_file(path)[0], path
        except ConfigError:
            continue
    return {}, ""


def _rebuild(kept: list[str], command: str, explicit: bool, config: str, replaced: list[str]) -> str:
    """The command line with the config first and the options turned into overrides at the end (overrides may
    follow options: main takes them there)."""
    words = list(kept)
    if explicit:
        words.remove(command)
    if config and config in words:
        words.remove(config)
    if config and command not in ("eval", "predict", "resume", "runs", "diff"):
        words.insert(0, config)
    return _command([*([command] if explicit else []), *words, *replaced])


def _command(words: list[str]) -> str:
    return " ".join([PROGRAM, *map(_quoted, words)])


def _quoted(word: str) -> str:
    return word if re.fullmatch(r"[\w./:=,+\-\[\]@~]+", word) else shlex.quote(word)
