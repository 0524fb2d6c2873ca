"""The command line: parse arguments, load and check the config, run the command, turn known errors into messages."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from trainer import __version__
from trainer.config import Config
from trainer.errors import ConfigError, Problem, UserError
from trainer.validation import validate_config
from trainer.yamlio import Source, apply_overrides, load_config_file

EXAMPLES = """examples:
  python -m trainer configs/mnist.yaml                             train (train is the default command)
  python -m trainer configs/mnist.yaml optimizer.lr=3e-4 train.epochs=5   change keys for this run
  python -m trainer train configs/mnist.yaml data.root=~/datasets  where the data set lives
  tensorboard --logdir runs                                        look at the curves

Every key, its default and its meaning: trainer/config.py."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train PyTorch models from a YAML config.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"leaptrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train the model a config describes (the default command)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", help="a YAML config, e.g. configs/mnist.yaml")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optimizer.lr=3e-4")
    train.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    train.set_defaults(run=run_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in ("train",):
        argv.insert(0, "train")  # `python -m trainer configs/x.yaml` means train
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ConfigError, UserError) as err:
        if args.debug:
            raise
        print(format_error(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C", file=sys.stderr)
        return 130


def load_config(path: str, overrides: list[str]) -> tuple[Config, Source]:
    """Read, override and validate a config; a ConfigError carries the Source to point at lines."""
    data, source = load_config_file(path)
    with located(source):
        data.setdefault("name", re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem))
        apply_overrides(data, overrides, source)
        try:
            return validate_config(data), source
        except ConfigError as err:
            from trainer.run import problems_in_valid_sections  # imports torch, to check names and arguments

            raise ConfigError(err.problems + problems_in_valid_sections(data), source) from None


@contextlib.contextmanager
def located(source: Source) -> Iterator[None]:
    """Give errors raised inside the source of the config, so their message can name file and line."""
    try:
        yield
    except (ConfigError, UserError) as err:
        err.source = err.source or source
        raise


def run_train(args: argparse.Namespace) -> int:
    cfg, source = load_config(args.config, args.overrides)
    with located(source):
        from trainer.run import train_from_config  # imports torch: only once the config is known to be valid

        train_from_config(cfg)
    return 0


def format_error(err: ConfigError | UserError) -> str:
    source: Source = err.source or Source("<config>")
    if isinstance(err, UserError):
        where = f"{source.where(err.key)}: {err.key}: " if err.key else ""
        fix = f"\n  Try: {err.fix}" if err.fix else ""
        return f"error: {where}{err.message}{fix}\n(add --debug to see the traceback)"

    def order(problem: Problem) -> tuple[int, int]:
        where = source.where(problem.key)
        line = where.rpartition(":")[2]
        return (where.startswith("command line"), int(line) if line.isdigit() else 0)

    problems = sorted(err.problems, key=order)
    lines = [f"{source.where(p.key)}: {p.key + ': ' if p.key else ''}{p.message}" for p in problems]
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    return (
        f"error: {count} in the config:\n"
        + "\n".join(f"  {line}" for line in lines)
        + f"\nFix {'them' if len(problems) > 1 else 'it'} and run again (add --debug to see the traceback)."
    )
