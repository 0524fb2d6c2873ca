"""The command line: parse arguments, load and check the config, run the command, turn known errors into messages."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from trainer import __version__, arguments
from trainer.config import Config
from trainer.errors import ConfigError, Problem, StoppedByUser, UserError
from trainer.run_files import EXPORT_SUFFIXES, RunFiles, run_of
from trainer.validation import validate_config
from trainer.yamlio import Source, apply_overrides, load_config_file, run_name

EXAMPLES = """examples:
  python -m trainer configs/mnist.yaml                             train (train is the default command)
  python -m trainer configs/mnist.yaml optimizer.lr=3e-4 train.epochs=5   change keys for this run
  python -m trainer train configs/mnist.yaml data.root=~/datasets  where the data set lives
  python -m trainer check configs/mnist.yaml                       one batch, layer shapes, a checklist
  python -m trainer lr-find configs/mnist.yaml                     find a learning rate
  tensorboard --logdir runs                                        look at the curves

Every key, its default and its meaning: trainer/config.py."""


COMMANDS = (
    *("train", "check", "lr-find", "resume", "eval", "predict", "export"),
    *("sweep", "try", "runs", "diff", "show", "init", "schema", "eject", "report"),
)


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints said the way every other error is: what is wrong, then the command's own
    example as the fix (not the usage lines alone)."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r", KEY=VALUE\S*", "", message)  # argparse counts `nargs="*"` among the required
        wanted = [a.metavar or a.dest.upper() for a in self._actions if not a.option_strings and a.nargs is None]
        fix = " ".join([self.prog, *wanted]) if wanted else f"{self.prog} --help"
        if any("RUN" in name for name in wanted):  # a run folder: the command that lists them comes first
            fix = f"python -m trainer runs  (lists the run folders), then: {fix}"
        self.exit(2, f"error: {self.prog}: {message}\n  Try: {fix}   (every option: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m trainer",
        description="Train PyTorch models from a YAML config.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"leaptrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_command(commands, "train", "train the model a config describes (the default command)", EXAMPLES, run_train)
    add_command(
        commands,
        "check",
        "check a config in seconds: one batch through model, loss and backward, with a checklist",
        "example:\n  python -m trainer check configs/mnist.yaml model.channels=[8,16]",
        run_check,
    )
    add_command(
        commands,
        "resume",
        "carry on a stopped run in its own folder, from its last checkpoint",
        "examples:\n  python -m trainer resume runs/mnist-cnn/20260101-120000\n"
        "  python -m trainer resume runs/mnist-cnn/20260101-120000 train.epochs=10   (train longer)",
        run_resume,
    )
    evaluate = subcommand(
        commands,
        "eval",
        "evaluate a trained run (or checkpoint) on a split and save the metrics",
        "examples:\n  python -m trainer eval runs/mnist-cnn/20260101-120000\n"
        "  python -m trainer eval runs/mnist-cnn/20260101-120000/checkpoints/last.pt --split val data.root=~/data",
        run_eval,
    )
    evaluate.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a run folder (uses best.pt) or a .pt file")
    evaluate.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.root=~/datasets")
    evaluate.add_argument("--split", choices=["test", "val", "train"], default="test")

    predict = subcommand(
        commands,
        "predict",
        "predict with a trained run: the class of image files, or for a table run each row of CSV files",
        "examples:\n  python -m trainer predict runs/mnist-cnn/20260101-120000 my_digit.png\n"
        "  python -m trainer predict runs/mnist-cnn/20260101-120000 photos/ --out predictions.csv",
        run_predict,
    )
    predict.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a run folder (uses best.pt) or a .pt file")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders; CSV files for a table run")
    predict.add_argument("--out", metavar="CSV", help="also write file,class,probability rows to this CSV file")

    export = subcommand(
        commands,
        "export",
        "write a trained run's model as ONNX, a torch.export program (pt2) or TorchScript, checked against the run",
        "examples:\n  python -m trainer export runs/mnist-cnn/20260101-120000     (export/model.onnx in the run)\n"
        "  python -m trainer export runs/mnist-cnn/20260101-120000 --format pt2 -o mnist.pt2\n"
        "  python -m trainer predict runs/mnist-cnn/20260101-120000/export/model.onnx my_digit.png\n"
        "The .json written beside the model says its input (size, normalization) and output (the class names).",
        run_export,
    )
    export.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a run folder (uses best.pt) or a .pt file")
    export.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.root=~/datasets (for the check)")
    export.add_argument("--format", choices=["onnx", "pt2", "torchscript"], help="default: onnx, or -o's suffix")
    export.add_argument("-o", "--out", metavar="PATH", help="the file (or folder) to write; default RUN/export/")

    report = subcommand(
        commands,
        "report",
        "write report.html into a run or sweep folder: curves, confusion matrix, worst predictions, config",
        "examples:\n  python -m trainer report runs/mnist-cnn/20260101-120000\n"
        "  python -m trainer report runs/spirals-sweep/sweep-20260101-120000   (the trials ranked)\n"
        "One file, pictures inside, nothing fetched: open it in a browser, send it, or in a notebook:\n"
        "  from trainer.report import Report; Report('runs/mnist-cnn/20260101-120000')",
        run_report,
    )
    report.add_argument("folder", metavar="RUN_OR_SWEEP", help="a run folder, or a sweep folder")
    report.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.root=~/datasets")

    finder = add_command(
        commands,
        "lr-find",
        "find a good learning rate: raise it step by step and watch the loss (the range test)",
        "example:\n  python -m trainer lr-find configs/mnist.yaml --steps 200",
        run_lr_find,
    )
    finder.add_argument("--steps", type=int, default=200, help="most batches to try (default 200)")
    finder.add_argument("--start", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    finder.add_argument("--end", type=float, default=10.0, help="last learning rate (default 10)")

    sweep = subcommand(
        commands,
        "sweep",
        "train a config many times with some keys varied, and compare the runs in a table",
        "examples:\n  python -m trainer sweep configs/mnist.yaml optimizer.lr=1e-3,3e-3 model.channels=[16,32],[32,64]"
        "\n"
        "  python -m trainer sweep configs/mnist.yaml --jobs 2          (a config with a sweep: section)\n"
        "  python -m trainer sweep --resume runs/mnist-cnn/sweep-20260101-120000   (finish a stopped sweep)\n"
        "A value with commas is a list of values to try; every combination is trained (sweep.method: grid).",
        run_sweep,
    )
    sweep.add_argument("config", nargs="?", help="a YAML config (not needed with --resume)")
    sweep.add_argument("overrides", nargs="*", metavar="KEY=VALUE[,VALUE...]", help="fixed or swept keys")
    sweep.add_argument("--method", choices=["grid", "random", "optuna"], help="sets sweep.method")
    sweep.add_argument("--trials", type=int, help="sets sweep.trials (random, optuna)")
    sweep.add_argument("--jobs", type=int, help="trials at once, in separate processes (sets sweep.jobs)")
    sweep.add_argument("--storage", help="optuna: the study's database URL (sets sweep.storage)")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", help="train the trials of this sweep that have not finished")

    tryout = subcommand(
        commands,
        "try",
        "try a few values around the config's own: x0.3 is 0.3 times its value",
        "examples:\n  python -m trainer try configs/mnist.yaml optimizer.lr=x0.3,x3 --epochs 1\n"
        "  python -m trainer try configs/mnist.yaml data.batch_size=x0.5,x2\n"
        "The config's own value is always tried too; the runs are compared in a table at the end.",
        run_try,
    )
    tryout.add_argument("config", help="a YAML config, e.g. configs/mnist.yaml")
    tryout.add_argument("overrides", nargs="+", metavar="KEY=xF1,xF2", help="factors to try, or fixed overrides")
    tryout.add_argument("--epochs", type=int, help="train each try this many epochs (sets train.epochs)")

    listing = subcommand(
        commands,
        "runs",
        "list the runs in a folder: name, date, status, epochs, best metric, time",
        "examples:\n  python -m trainer runs\n  python -m trainer runs runs/mnist-cnn",
        run_runs,
    )
    listing.add_argument("folder", nargs="?", default="runs", help="where to look (default: runs)")

    diff = subcommand(
        commands,
        "diff",
        "show the config keys two runs differ in, and their final metrics side by side",
        "example:\n  python -m trainer diff runs/mnist-cnn/20260101-120000 runs/mnist-cnn/20260102-090000",
        run_diff,
    )
    diff.add_argument("run_a", metavar="RUN_A")
    diff.add_argument("run_b", metavar="RUN_B")

    add_command(
        commands,
        "show",
        "print the config as a run would use it, and where each value comes from (file, override, default)",
        "example:\n  python -m trainer show configs/mnist.yaml optimizer.lr=1e-3",
        run_show,
    )

    eject = add_command(
        commands,
        "eject",
        "write the plain PyTorch script a config stands for: the data, the model, the loop, no leaptrain",
        "examples:\n  python -m trainer eject configs/mnist.yaml -o train_mnist.py\n  python train_mnist.py",
        run_eject,
    )
    eject.add_argument("-o", "--out", default="train.py", help="the script to write (default train.py)")

    init = subcommand(
        commands,
        "init",
        "write a starter config with every key and a comment saying what it means",
        "examples:\n  python -m trainer init                        (my_config.yaml, for MNIST)\n"
        "  python -m trainer init --template csv -o tables.yaml",
        run_init,
    )
    init.add_argument("--template", default="mnist", help="mnist, cifar10, image_folder, csv or synthetic")
    init.add_argument("-o", "--out", default="my_config.yaml", help="the file to write (default my_config.yaml)")

    schema = subcommand(
        commands,
        "schema",
        "write the config's JSON Schema, for editors that complete keys and flag typos as you type",
        "examples:\n  python -m trainer schema -o my_configs/leaptrain.schema.json\n"
        "Then start a config with:  # yaml-language-server: $schema=leaptrain.schema.json",
        run_schema,
    )
    schema.add_argument("-o", "--out", metavar="FILE", help="write it to FILE (default: print it)")
    schema.add_argument("--reference", action="store_true", help="the Markdown reference of every key instead")
    return parser


def subcommand(commands: Any, name: str, summary: str, epilog: str, run: Any) -> argparse.ArgumentParser:
    """A subcommand with its help, examples and --debug."""
    command = commands.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    command.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    command.set_defaults(run_command=run)
    return command


def add_command(commands: Any, name: str, summary: str, epilog: str, run: Any) -> argparse.ArgumentParser:
    """A subcommand that takes a config (or, for resume, a run folder) and dotted overrides."""
    command = subcommand(commands, name, summary, epilog, run)
    if name == "resume":
        command.add_argument("config", metavar="RUN_DIR", help="a run folder, e.g. runs/mnist-cnn/20260101-120000")
    else:
        command.add_argument("config", help="a YAML config, e.g. configs/mnist.yaml")
    command.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optimizer.lr=3e-4")
    if name == "train":
        command.add_argument("--resume", metavar="RUN_DIR", help="carry on this run (its config must match)")
    return command


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if misread := arguments.misread(argv, parser, COMMANDS):  # `--lr 0.01`, `chek x.yaml`: say what to type
        print(format_error(misread), file=sys.stderr)
        return 2
    positional = arguments.positionals(argv, parser, COMMANDS)  # not option values: `--resume RUN train x.yaml`
    if positional and positional[0][1] not in COMMANDS:
        argv.insert(positional[0][0], "train")  # `python -m trainer configs/x.yaml` means train
    if positional:  # `--debug train x.yaml`: the command's options may come before it too
        at = positional[0][0]  # the command's place (the train put there, or the one typed)
        before = [a for a in argv[:at] if a not in ("-h", "--help", "--version")]
        argv = [a for a in argv[:at] if a not in before] + [argv[at], *before, *argv[at + 1 :]]
    args, extra = parser.parse_known_args(argv)
    if extra and all("=" in item and not item.startswith("-") for item in extra) and hasattr(args, "overrides"):
        args.overrides += extra  # overrides written after an option: `train x.yaml --resume RUN train.epochs=8`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run_command(args)
    except StoppedByUser as stopped:
        _close_progress_bars()
        print(stopped.message, file=sys.stderr)
        return getattr(stopped, "exit_code", 130)  # 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM
    except (ConfigError, UserError) as err:
        if args.debug:
            raise
        _close_progress_bars()
        # Under torchrun every process may speak: say which one, since the first to fail stops the others.
        rank = f"rank {os.environ['RANK']}: " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        print(rank + format_error(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C", file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """A bar left open by an error would share its line with the message."""
    if "tqdm" in sys.modules:
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", [])):
            bar.close()


def config_of_checkpoint(
    run_or_checkpoint: str, overrides: list[str], command: str = "eval", rest: str = ""
) -> tuple[Config, Source, Any, Path]:
    """The config a checkpoint was trained with, overridden (e.g. data.root); the checkpoint; its file.

    A path that is no run or checkpoint is refused with the ones to give: `python -m trainer COMMAND PATH REST`."""
    from trainer.folders import checkpoint_file

    # Found (or refused) before torch is imported: a wrong path is told in a fraction of a second.
    path = checkpoint_file(run_or_checkpoint, command, lambda found: f"python -m trainer {command} {found}{rest}")
    from trainer.components.resolve import trust_saved_references
    from trainer.inference import read_checkpoint

    checkpoint = read_checkpoint(path)
    source = Source(str(path))
    with located(source):
        data = dict(checkpoint["config"])
        apply_overrides(data, overrides, source)
        cfg = validate_config(data)
        # The checkpoint may come from someone else: its config imports only the learner's files found here.
        typed = f"python -m trainer {command} {run_or_checkpoint}{rest}"
        trust_saved_references(cfg, source, path, typed, takes_overrides=command != "predict")
        return cfg, source, checkpoint, path


def run_eval(args: argparse.Namespace) -> int:
    rest = "".join(f" {word}" for word in [*args.overrides, *(["--split", args.split] if args.split != "test" else [])])
    cfg, source, checkpoint, path = config_of_checkpoint(args.run, args.overrides, "eval", rest)
    with located(source), explained(args.debug):
        from trainer.inference import evaluate_checkpoint, save_eval
        from trainer.logger import format_metrics

        metrics = evaluate_checkpoint(cfg, checkpoint, args.split)
    saved = save_eval(metrics, run_of(path), args.split)
    print(f"{path}  {format_metrics(metrics)}")
    print(f"saved in {saved}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from trainer.folders import what_is

    given = what_is(args.run).kind
    if given in ("file", "config", "missing") and any(what_is(i).run for i in args.inputs):
        run = next(i for i in args.inputs if what_is(i).run)  # the run and the images given the other way round
        images = [*([args.run] if given != "config" else []), *(i for i in args.inputs if i != run)]
        raise UserError(
            f"'{args.run}' is not a run folder or checkpoint, but '{run}' is: the run comes first, then the images",
            fix=" ".join(["python -m trainer predict", run, *images]),
        )
    if Path(args.run).suffix.lower() in EXPORT_SUFFIXES.values() and Path(args.run).is_file():
        from trainer.export import load_for_predict
        from trainer.inference import predict_files

        forward, meta = load_for_predict(Path(args.run))
        predictions, failed = predict_files(forward, meta["data"], args.inputs, meta.get("dataset", "?"))
    else:
        rest = "".join(f" {word}" for word in [*args.inputs, *(["--out", args.out] if args.out else [])])
        cfg, source, checkpoint, _ = config_of_checkpoint(args.run, [], "predict", rest)
        with located(source), explained(args.debug):
            from trainer.inference import model_forward, predict_files

            info, max_pixels = checkpoint.get("data") or {}, getattr(cfg.data, "max_pixels", None)
            predictions, failed = predict_files(
                model_forward(cfg, checkpoint), info, args.inputs, cfg.data.dataset, max_pixels
            )
    width = max(len(p.file) for p in predictions) if predictions else 0
    for p in predictions:
        print(f"{p.file:{width}}  {p.label}" + ("" if p.probability is None else f"  ({p.probability:.1%})"))
    if failed:
        print(
            f"skipped {len(failed)} file(s) that could not be read as images: {', '.join(failed[:3])}"
            + (" ..." if len(failed) > 3 else ""),
            file=sys.stderr,
        )
    if args.out:
        from trainer.inference import save_predictions_csv

        save_predictions_csv(predictions, Path(args.out))
        print(f"saved {len(predictions)} predictions in {args.out}")
    return 0 if predictions else 2


def run_export(args: argparse.Namespace) -> int:
    rest = "".join(f" {word}" for word in [*args.overrides, *(["--format", args.format] if args.format else [])]) + (
        f" -o {args.out}" if args.out else ""
    )
    cfg, source, checkpoint, path = config_of_checkpoint(args.run, args.overrides, "export", rest)
    with located(source), explained(args.debug):
        from trainer import export

        export.SHOW_EXPORTER_OUTPUT = args.debug
        fmt = export.format_for(args.format, args.out)
        done = export.export_run(cfg, checkpoint, path, fmt, export.export_path(args.out, run_of(path), fmt))
    for warning in done.warnings:
        print(f"warning: the trace may hold only for inputs like the example: {warning}", file=sys.stderr)
    agreeing = f", the same class for {done.same_class[0]} of {done.same_class[1]}" if done.same_class else ""
    from trainer.atomic import size_text

    size = size_text(done.path.stat().st_size)
    print(f"exported {done.path} ({done.format.title}, {size}); {done.meta.name} beside it: inputs, outputs")
    print(f"checked on {done.inputs}: largest difference from the run's model {done.largest_difference:.2g}{agreeing}")
    print(f"use it: python -m trainer predict {done.path} INPUT...")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from trainer.atomic import write_atomic
    from trainer.folders import sweep_folder, what_is
    from trainer.run_files import REPORT

    given = what_is(args.folder)
    if given.kind in ("sweep", "sweep file"):
        folder = sweep_folder(args.folder, lambda path: f"python -m trainer report {path}")
        from trainer.report import sweep_page

        page = sweep_page(folder)
    else:
        rest = "".join(f" {word}" for word in args.overrides)
        cfg, source, checkpoint, path = config_of_checkpoint(args.folder, args.overrides, "report", rest)
        folder = run_of(path)
        with located(source), explained(args.debug):
            from trainer.report import predictions_for, run_page

            page = run_page(folder, predictions_for(cfg, checkpoint))
    written = folder / REPORT
    write_atomic(written, page)
    print(f"report: {written}  (one file with its pictures: open it in a browser, or send it)")
    return 0


def load_config(path: str, overrides: list[str], show_early: bool = False) -> tuple[Config, Source]:
    """Read, override and validate a config; a ConfigError carries the Source to point at lines.

    The schema, then the names and arguments of the components against the catalog of torch's signatures: a
    mistake in either is reported in full without importing torch. A config that passes goes on to the checks
    that need torch (values, the user's own files) when it is built: trainer/run.py check_components.
    With `show_early`, schema problems are printed at once, before the catalog is read (or, the first time, made).
    """
    from trainer.components.catalog import problems_in_valid_sections
    from trainer.numbers import check_numbers

    data, source = load_config_file(path)
    with located(source):
        data.setdefault("name", run_name(path))
        apply_overrides(data, overrides, source)
        try:
            cfg = validate_config(data)
        except ConfigError as err:
            err.source = source
            if show_early:
                print(format_error(err, footer=False), file=sys.stderr, flush=True)
            more = problems_in_valid_sections(data)
            raise ConfigError(err.problems + more, source, shown=len(err.problems) if show_early else 0) from None
        if problems := check_numbers(cfg, problems_in_valid_sections(data)):  # numbers need no torch either
            raise ConfigError(problems, source)
        return cfg, source


def run_sweep(args: argparse.Namespace) -> int:
    from trainer.folders import sweep_folder
    from trainer.yamlio import split_key

    if args.resume:  # the sweep folder is found (or refused) before the sweep's machinery is imported
        sweep_dir = sweep_folder(args.resume, lambda found: f"python -m trainer sweep --resume {found}")
    from trainer import sweep

    if args.resume:
        plan = sweep.Plan.load(sweep_dir)
        from trainer.components.resolve import trust_saved_references

        # A sweep folder may come from someone else: its config may make leaptrain import only the learner's files.
        source = Source(str(sweep_dir / "sweep.json"))
        base = validated(dict(plan.base), source)
        trust_saved_references(base, source, sweep_dir, f"python -m trainer sweep --resume {args.resume}", False)
        # More trials (random, optuna) or more processes may be asked for; the keys and values swept stay.
        plan.settings |= {key: value for key, value in {"trials": args.trials, "jobs": args.jobs}.items() if value}
        if plan.sweep.method == "random":  # the same seed draws the same first trials, then the new ones
            plan.trials = sweep.draw_trials(plan.sweep, plan.base.get("seed", 0))
            plan.save(sweep_dir)
        print(f"resuming the sweep in {sweep_dir}")
    else:
        if args.config is None:
            raise UserError(
                "sweep needs a config (or --resume SWEEP_DIR)",
                fix="python -m trainer runs  (lists the sweeps), then: python -m trainer sweep --resume SWEEP_DIR; "
                "to start one: python -m trainer sweep CONFIG.yaml optimizer.lr=1e-3,3e-3",
            )
        fixed, swept = sweep.split_overrides(args.overrides)
        data, source = config_data(args.config, fixed)
        # A problem with a swept key names the command line it was typed on, not the file.
        source.overrides |= {split_key(o.partition("=")[0].strip()): o for o in args.overrides if o not in fixed}
        options = {"method": args.method, "trials": args.trials, "jobs": args.jobs, "storage": args.storage}
        with located(source):
            plan = sweep.make_plan(data, swept, options)
        sweep_dir = start_sweep(plan, source)
    return finish_sweep(sweep_dir, plan)


def run_try(args: argparse.Namespace) -> int:
    """`try CONFIG key=x0.3,x3`: a grid sweep over the config's own value times each factor (and itself)."""
    from trainer import sweep

    fixed, factors = [], {}
    for override in args.overrides:
        key, _, text = override.partition("=")
        parts = sweep.split_top_level(text)
        if all(re.fullmatch(r"x[0-9.eE+-]+", part) for part in parts):
            factors[key] = [float(part[1:]) for part in parts]
        else:
            fixed.append(override)
    if not factors:
        raise UserError(
            "try needs at least one key with factors, like optimizer.lr=x0.3,x3",
            fix=f"python -m trainer try {args.config} optimizer.lr=x0.3,x3 --epochs 1",
        )
    if args.epochs is not None:
        fixed.append(f"train.epochs={args.epochs}")
    data, source = config_data(args.config, fixed)
    current = validated(data, source).model_dump(mode="json")
    swept = {}
    for key, multipliers in factors.items():
        value: Any = current
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _not_a_number(args, key, value, data, current)
        tried = {value * f for f in multipliers} | {value}
        swept[key] = sorted({round(v) if isinstance(value, int) else float(f"{v:.4g}") for v in tried})
    data.pop("sweep", None)
    with located(source):
        plan = sweep.make_plan(data, swept, {"method": "grid"})
    return finish_sweep(start_sweep(plan, source), plan)


def _not_a_number(args: argparse.Namespace, key: str, value: Any, data: dict[str, Any], current: Any) -> UserError:
    """`try` multiplies a number the config has: say where a key belongs, or which number keys there are."""
    from trainer import keys
    from trainer.errors import did_you_mean
    from trainer.yamlio import split_key

    path = split_key(key)
    homes = [] if keys.is_known(path, data) else keys.homes_of(path, data)
    if homes and homes[0].key:
        words = [f"{homes[0].key}={o.partition('=')[2]}" if o.startswith(f"{key}=") else o for o in args.overrides]
        return UserError(
            f"{key} is not a config key; {keys.placement(path, homes[0], data)}",
            fix=" ".join(["python -m trainer try", args.config, *words]),
        )
    numbers = [k for k, v in leaves(current) if isinstance(v, int | float) and not isinstance(v, bool)]
    if value is None:
        return UserError(
            f"{key} is not set in {args.config}{did_you_mean(key, numbers)}: try multiplies the config's own value",
            fix=f"set {key} in the config first, or list values to train: python -m trainer sweep {args.config} "
            f"{key}=VALUE1,VALUE2",
        )
    return UserError(f"{key} is {value!r} in {args.config}: try multiplies numbers", fix=f"one of {', '.join(numbers)}")


def config_data(path: str, overrides: list[str]) -> tuple[dict[str, Any], Source]:
    """A config file as plain data with its run name and the overrides applied, checked by the schema."""
    data, source = load_config_file(path)
    with located(source):
        data.setdefault("name", run_name(path))
        apply_overrides(data, overrides, source)
    validated(data, source)
    return data, source


def validated(data: dict[str, Any], source: Source) -> Config:
    try:
        return validate_config(data)
    except ConfigError as err:
        err.source = source
        raise


def start_sweep(plan: Any, source: Source) -> Path:
    """Check every trial's config, then make the sweep folder and save the plan."""
    from trainer import sweep

    with located(source):
        sweep.check_trials(plan)
        sweep_dir = sweep.new_sweep_dir(plan.base)
    plan.save(sweep_dir)
    return sweep_dir


def finish_sweep(sweep_dir: Path, plan: Any) -> int:
    """Train the sweep's trials (one line each as they end), then print and save the table."""
    from trainer import sweep
    from trainer.progress import progress_bar

    monitor = sweep.monitor_of(plan).name
    settings = plan.sweep
    count = sweep.trial_count(plan)
    jobs = f", {settings.jobs} at a time" if settings.jobs > 1 else ""
    print(f"sweep: {count} trials ({settings.method}{jobs}) in {sweep_dir}; each trial's output is in its log.txt")
    bar = progress_bar(total=count, unit="trial", leave=False)

    def say(outcome: Any) -> None:
        shown = "  ".join(f"{k}={sweep._cell(v)}" for k, v in outcome.values.items())
        value = outcome.metrics.get(monitor)
        result = f"{monitor} {value:.4g}" if value is not None else outcome.error[:120]
        bar.write(f"{outcome.name}  {shown}  {outcome.status}: {result}  ({outcome.seconds:.1f}s)")
        bar.update()

    try:
        if settings.method == "optuna":
            sweep.run_optuna(sweep_dir, plan, say)
        else:
            sweep.run_grid_or_random(sweep_dir, plan, say)
    except (StoppedByUser, KeyboardInterrupt):
        raise StoppedByUser(
            f"sweep stopped by Ctrl-C. Resume with: python -m trainer sweep --resume {sweep_dir}"
        ) from None
    finally:
        bar.close()
    table, best = sweep.summarize(sweep_dir, plan)
    print(f"\n{table}\n")
    print(f"table: {sweep_dir / 'sweep_summary.md'} (and .csv)")
    if best is None and (failure := sweep.no_trial_finished(sweep_dir, plan)):
        raise failure
    if best is not None:
        print(f"best config: {best}  (rerun it: python -m trainer {best})")
    print(f"compare the trials: tensorboard --logdir {sweep_dir}  (HParams tab)")
    print(f"one page of the sweep to open or send: python -m trainer report {sweep_dir}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Every key of the resolved config with its value and origin: a line of the file, an override, a default."""
    from trainer.runs import aligned
    from trainer.yamlio import split_key

    cfg, source = load_config(args.config, args.overrides, show_early=True)
    rows = [["key", "value", "from"]]
    for key, value in leaves(cfg.model_dump(mode="json")):
        path = split_key(key)
        if path[-1] == "name" and (path[:-1] in source.overrides or path[:-1] in source.lines):
            path = path[:-1]  # `loss: mse` names the loss in one line: its name comes from there
        if path in source.overrides:
            origin = f"command line '{source.overrides[path]}'"
        elif path in source.lines:
            origin = f"{source.path}:{source.lines[path]}"
        else:
            origin = "the file's name" if key == "name" else "default"
        rows.append([key, json.dumps(value), origin])
    print(aligned(rows))
    return 0


def leaves(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """('optimizer.lr', 0.001) for every value in nested sections, empty (null) ones included."""
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def run_eject(args: argparse.Namespace) -> int:
    cfg, source = load_config(args.config, args.overrides, show_early=True)
    out = Path(args.out)
    if out.exists():
        raise UserError(f"{out} exists already; eject does not overwrite files", fix=f"-o another name than {out}")
    with located(source):
        from trainer.atomic import write_atomic
        from trainer.eject import eject_script

        write_atomic(out, eject_script(cfg, " ".join([args.config, *args.overrides])))
    print(f"wrote {out}: plain PyTorch, no leaptrain. Run it: python {out}")
    return 0


def run_init(args: argparse.Namespace) -> int:
    from trainer.errors import did_you_mean, one_of
    from trainer.starter import TEMPLATES, starter_config

    if args.template not in TEMPLATES:
        raise UserError(
            f"no template '{args.template}'{did_you_mean(args.template, TEMPLATES)}",
            fix=f"--template {one_of(TEMPLATES).replace(', ', ' | ')}",
        )
    out = Path(args.out)
    if out.exists():
        raise UserError(f"{out} exists already; init does not overwrite files", fix=f"-o another name than {out}")
    from trainer.atomic import write_atomic

    write_atomic(out, starter_config(args.template, run_name(out)))
    print(f"wrote {out}. Check it: python -m trainer check {out}    Train: python -m trainer {out}")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from trainer.atomic import write_atomic
    from trainer.schema import SCHEMA_COMMENT, reference_markdown, schema_text

    text = reference_markdown() if args.reference else schema_text()
    if args.out is None:
        print(text, end="")
        return 0
    write_atomic(Path(args.out), text)
    print(
        f"wrote {args.out}" + ("" if args.reference else f"; point a config at it in its first line: {SCHEMA_COMMENT}")
    )
    return 0


def run_runs(args: argparse.Namespace) -> int:
    from trainer.folders import runs_folder
    from trainer.runs import list_runs

    print(list_runs(runs_folder(args.folder, lambda found: f"python -m trainer runs {found}")))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    from trainer.folders import run_folder
    from trainer.runs import diff_runs

    a = run_folder(args.run_a, "diff", lambda found: f"python -m trainer diff {found} {args.run_b}")
    b = run_folder(args.run_b, "diff", lambda found: f"python -m trainer diff {a} {found}", besides=a)
    print(diff_runs(a, b))
    return 0


@contextlib.contextmanager
def located(source: Source) -> Iterator[None]:
    """Give errors raised inside the source of the config, so their message can name file and line."""
    try:
        yield
    except (ConfigError, UserError) as err:
        err.source = err.source or source
        raise


def run_train(args: argparse.Namespace) -> int:
    from trainer.folders import run_folder

    resume = None
    if args.resume:  # a run to carry on: found (or refused) before the config is even read
        again = " ".join(["python -m trainer train", args.config, *args.overrides, "--resume"])
        resume = run_folder(args.resume, "train --resume", lambda found: f"{again} {found}", needs="last")
    cfg, source = load_config(args.config, args.overrides, show_early=True)
    with located(source), explained(args.debug):
        from trainer.run import train_from_config  # imports torch: only once the config is known to be valid

        train_from_config(cfg, resume=resume)
    return 0


def run_resume(args: argparse.Namespace) -> int:
    """`resume RUN_DIR`: the run's own resolved config, with the overrides given now."""
    from trainer.folders import run_folder

    rest = "".join(f" {override}" for override in args.overrides)
    run_dir = run_folder(args.config, "resume", lambda found: f"python -m trainer resume {found}{rest}", needs="last")
    cfg, source = load_config(str(RunFiles(run_dir).config), args.overrides, show_early=True)
    from trainer.components.resolve import trust_saved_references

    # The run folder may come from someone else: its config imports only the learner's files found here.
    trust_saved_references(cfg, source, run_dir, f"python -m trainer resume {args.config}{rest}")
    with located(source), explained(args.debug):
        from trainer.run import NothingToDo, train_from_config

        try:
            train_from_config(cfg, resume=run_dir)
        except NothingToDo as done:
            print(done)
    return 0


def run_check(args: argparse.Namespace) -> int:
    cfg, source = load_config(args.config, args.overrides, show_early=True)
    with located(source), explained(args.debug):
        from trainer.run import check_from_config

        report = check_from_config(cfg)
    print(report.layer_table())
    print()
    print("\n".join(check.line() for check in report.checks))
    config = " ".join([args.config, *args.overrides])
    if report.failures:  # nothing to train with yet: each [FAIL] above says what to fix
        fix = f"{len(report.failures)} problem(s) to fix first, then check again: python -m trainer check {config}"
        print(f"\n{len(report.checks)} checks: {fix}")
        return 2
    print(f"\n{len(report.checks)} checks: ready to train. Train with: python -m trainer {config}")
    return 0


def run_lr_find(args: argparse.Namespace) -> int:
    cfg, source = load_config(args.config, args.overrides, show_early=True)
    if not 0 < args.start < args.end or args.steps < 2:
        raise UserError("lr-find needs 0 < --start < --end and --steps of 2 or more", fix="--start 1e-7 --end 10")
    with located(source), explained(args.debug):
        from trainer.run import lr_find_from_config

        result, out_dir = lr_find_from_config(cfg, args.steps, args.start, args.end)
    print(result.reason)
    print(f"curve: {out_dir / 'lr_find.png'}  (and in TensorBoard: tensorboard --logdir {out_dir.parent})")
    if result.suggestion is None:
        return 0
    overrides = [o for o in args.overrides if not o.startswith("optimizer.lr=")]
    command = " ".join(["python -m trainer", args.config, *overrides, f"optimizer.lr={result.suggestion:.2g}"])
    print(f"Try: {command}")
    return 0


@contextlib.contextmanager
def explained(debug: bool) -> Iterator[None]:
    """An unexpected exception from torch or the user's code becomes a message (the traceback with --debug)."""
    try:
        yield
    except (ConfigError, UserError, KeyboardInterrupt):
        raise
    except Exception as err:
        if debug:
            raise
        from trainer.explain import explain

        raise explain(err) from err


def format_error(err: ConfigError | UserError, footer: bool = True) -> str:
    source: Source = err.source or Source("<config>")
    debug = "(add --debug to see the traceback)"
    if isinstance(err, UserError):
        where = f"{source.where(err.key)}: {err.key}: " if err.key else ""
        fix = f"\n  Try: {err.fix}" if err.fix else ""
        return f"error: {where}{err.message}{fix}\n{debug}"

    def order(problem: Problem) -> tuple[int, int]:
        where = source.where(problem.key)
        line = where.rpartition(":")[2]
        return (where.startswith("command line"), int(line) if line.isdigit() else 0)

    rest = sorted(err.problems[err.shown :], key=order)
    lines = [f"  {source.where(p.key)}: {p.key + ': ' if p.key else ''}{p.message}" for p in rest]
    if not footer:  # the first part, printed before the slower checks run
        return "\n".join(["error: the config has problems:", *lines])
    header = [] if err.shown else [f"error: {_count(rest)}"]
    them = "them" if len(err.problems) > 1 else "it"
    return "\n".join([*header, *lines, f"Fix {them} and run again {debug}."])


def _count(problems: list[Problem]) -> str:
    return f"{len(problems)} problems in the config:" if len(problems) > 1 else "1 problem in the config:"
