"""Sweeps: one config trained many times with some keys varied, and a table that compares the runs.

A sweep lives in runs/<name>/sweep-<YYYYmmdd-HHMMSS>/: `sweep.json` (the plan), one ordinary run folder per trial
(trial-000, trial-001, ...), and at the end `sweep_summary.csv`, `sweep_summary.md` and `best.yaml`. Every trial
is a normal run with its own resolved config, so `eval`, `predict`, `resume` and TensorBoard's HParams dashboard
work on it as on any run. `sweep --resume DIR` trains only the trials that have not finished.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from trainer import cores, keys
from trainer.atomic import write_atomic
from trainer.config import Config, Distribution, LogConfig, SweepConfig
from trainer.errors import ConfigError, Problem, StoppedByUser, UserError
from trainer.metric_names import Monitor
from trainer.run_files import RunFiles
from trainer.runs import SWEEP_PLAN, aligned
from trainer.validation import validate_config
from trainer.yamlio import Source, apply_overrides, parse_value, split_key

DEFAULT_TRIALS = 10


@dataclass
class Trial:
    name: str
    values: dict[str, Any]  # config key -> the value this trial uses


@dataclass
class Plan:
    """What a sweep trains; saved as sweep.json so that --resume knows it without the YAML."""

    base: dict[str, Any]  # the config every trial starts from, without its sweep section
    settings: dict[str, Any]  # the sweep section, with command-line lists merged in
    trials: list[Trial] = field(default_factory=list)  # grid and random: all of them, known in advance

    @property
    def sweep(self) -> SweepConfig:
        return SweepConfig.model_validate(self.settings)

    def save(self, sweep_dir: Path) -> None:
        write_atomic(sweep_dir / SWEEP_PLAN, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, sweep_dir: Path) -> Plan:
        """The plan a sweep folder holds. Anything else is refused with the sweeps to give."""
        from trainer.folders import sweep_folder

        sweep_folder(str(sweep_dir), lambda path: f"python -m trainer sweep --resume {path}", accept=False)
        raw = json.loads((sweep_dir / SWEEP_PLAN).read_text())
        return cls(raw["base"], raw["settings"], [Trial(**t) for t in raw["trials"]])


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[Any]]]:
    """Command-line overrides as (fixed ones, swept ones): `optimizer.lr=1e-3,3e-3` sweeps two values,
    `model.channels=[16,32],[32,64]` two lists; a value with no comma outside brackets is a plain override."""
    fixed, swept = [], {}
    for override in overrides:
        key, sep, text = override.partition("=")
        parts = split_top_level(text) if sep else [text]
        if len(parts) > 1:
            swept[key.strip()] = [parse_value(part) for part in parts]
        else:
            fixed.append(override)
    return fixed, swept


def split_top_level(text: str) -> list[str]:
    """'1,[2,3],{a: 4, b: 5}' -> ['1', '[2,3]', '{a: 4, b: 5}']: commas inside brackets, braces or quotes stay."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [part.strip() for part in [*parts, text[start:]]]


def make_plan(data: dict[str, Any], swept: dict[str, list[Any]], options: dict[str, Any]) -> Plan:
    """The plan of a new sweep from a config (as loaded, overrides applied) and the command line's lists."""
    settings = dict(data.pop("sweep", None) or {})
    check_swept_keys(data, settings.get("params") or {}, swept)
    settings["params"] = {**settings.get("params", {}), **swept}
    settings |= {key: value for key, value in options.items() if value is not None}
    try:
        sweep = SweepConfig.model_validate(settings)
    except ValidationError as err:  # a value given on the command line, e.g. --trials 0
        problems = [Problem(".".join(["sweep", *map(str, e["loc"])]), e["msg"]) for e in err.errors()]
        raise ConfigError(problems) from None
    if not sweep.params:
        raise UserError(
            "nothing to sweep: no key has more than one value",
            fix="give lists on the command line, e.g. optimizer.lr=1e-3,3e-3,1e-2, or a sweep: params: section",
        )
    plan = Plan(data, sweep.model_dump(mode="json"))
    if sweep.method != "optuna":
        plan.trials = draw_trials(sweep, data.get("seed", 0))
    return plan


def check_swept_keys(data: dict[str, Any], in_file: Any, on_command_line: dict[str, list[Any]]) -> None:
    """A swept key that belongs elsewhere (`lr` -> optimizer.lr, `train.max_epochs` -> train.epochs) is refused
    before any trial trains, with the key to write: the same lookup as for the config's own keys. Wrong keys in
    the file and on the command line are reported together."""
    problems, typed = [], []  # typed: (key, where it belongs, the override to type) of each command-line key
    for key, spec in {**(in_file if isinstance(in_file, dict) else {}), **on_command_line}.items():
        path = split_key(str(key))
        value = spec[0] if isinstance(spec, list) and spec else None
        if keys.is_known(path, data) or not (homes := keys.homes_of(path, data, value)):
            continue
        home = homes[0]
        where = keys.placement(path, home, data)
        if key in on_command_line:
            values = ",".join(keys.fix(keys.Home(home.key, value=v), override=True).partition("=")[2] for v in spec)
            typed.append((key, where, f"{home.key}={values}" if home.key else ""))
        elif home.key:
            fix = f"`{home.key}: {json.dumps(spec) if isinstance(spec, list) else '...'}` under sweep.params"
            problems.append(Problem(f"sweep.params.{key}", f"is not a config key; {where}. Try: {fix}"))
        else:
            problems.append(Problem(f"sweep.params.{key}", f"is not a config key: {home.why}"))
    if typed and not problems:  # only the command line is wrong: one line of it to type instead
        fixes = [fix for _, _, fix in typed if fix]
        raise UserError(
            "; ".join(f"{key} is not a config key; {where}" for key, where, _ in typed),
            fix=f"sweep {' '.join(fixes)} instead" if fixes else "leave these keys out",
        )
    for key, where, fix in typed:  # beside the file's problems, each command-line key is one more
        problems.append(Problem(key, f"is not a config key; {where}. Try: {f'sweep {fix}' if fix else 'leave it out'}"))
    if problems:
        raise ConfigError(problems)


def draw_trials(sweep: SweepConfig, seed: int) -> list[Trial]:
    """Grid: every combination, in order. Random: `trials` draws, from the seed (the same seed, the same plan)."""
    names = list(sweep.params)
    if sweep.method == "grid":
        ranges = [k for k, spec in sweep.params.items() if isinstance(spec, Distribution)]
        if ranges:
            raise UserError(
                f"a grid needs lists of values, but {', '.join(ranges)} is a range",
                fix="use sweep.method: random (or optuna) for ranges, or list the values",
                key="sweep.method",
            )
        combos = itertools.product(*(sweep.params[k] for k in names))
        value_sets = [dict(zip(names, combo, strict=True)) for combo in combos]
    else:
        rng = random.Random(seed)
        value_sets = [{k: draw(sweep.params[k], rng) for k in names} for _ in range(sweep.trials or DEFAULT_TRIALS)]
    return [Trial(f"trial-{i:03d}", values) for i, values in enumerate(value_sets)]


def draw(spec: list[Any] | Distribution, rng: random.Random) -> Any:
    if isinstance(spec, list):
        return rng.choice(spec)
    if spec.dist == "log_uniform":
        return float(f"{math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))):.4g}")
    if spec.dist == "int_uniform":
        return rng.randint(int(spec.low), int(spec.high))
    return float(f"{rng.uniform(spec.low, spec.high):.4g}")


def trial_config(base: dict[str, Any], values: dict[str, Any]) -> Config:
    """The base config with a trial's values set, validated like any config."""
    return validate_config(trial_data(base, values))


def trial_data(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    apply_overrides(data, [f"{key}={json.dumps(value)}" for key, value in values.items()], Source("sweep", {}))
    return data


def check_trials(plan: Plan) -> None:
    """Every trial's config is checked before the first one trains: a bad value fails now, not after an hour.
    First without torch, as one run's config is (names and arguments against the catalog, numbers); then what
    needs torch. A problem that several trials share is said once."""
    from trainer.components.catalog import problems_in_valid_sections
    from trainer.numbers import check_numbers

    def without_torch(data: dict[str, Any]) -> list[Problem]:
        return check_numbers(validate_config(data), problems_in_valid_sections(data))

    def with_torch(data: dict[str, Any]) -> list[Problem]:
        from trainer.run import check_components

        check_components(validate_config(data))
        return []

    def problems(check: Callable[[dict[str, Any]], list[Problem]], data: dict[str, Any]) -> list[Problem]:
        try:
            return check(data)
        except ConfigError as err:
            return err.problems

    checked = trials_to_check(plan)
    for check in (without_torch, with_torch):
        found: dict[Problem, list[str]] = {}  # each problem, and the trials it is in
        for trial in checked:
            for problem in problems(check, trial_data(plan.base, trial.values)):
                found.setdefault(problem, []).append(", ".join(f"{k}={v}" for k, v in trial.values.items()))
        if found:
            named = [Problem(p.key, f"{p.message} ({_trials_named(t, checked, plan)})") for p, t in found.items()]
            raise ConfigError(named)


def trials_to_check(plan: Plan) -> list[Trial]:
    """Grid's and random's trials, all known in advance. Optuna chooses its trials as it goes: in their place, trials
    that between them take every listed value and both ends of every range, so that a mistake every trial would
    share (a momentum of 9) is found before the first trains, as in the other methods."""
    sweep = plan.sweep
    if sweep.method != "optuna":
        return plan.trials
    choices = {key: spec if isinstance(spec, list) else _ends(spec) for key, spec in sweep.params.items()}
    count = max(map(len, choices.values()), default=0)
    return [Trial(f"check-{i}", {k: v[i % len(v)] for k, v in choices.items() if v}) for i in range(count)]


def _ends(spec: Distribution) -> list[Any]:
    if spec.dist == "int_uniform":
        return [int(spec.low), int(spec.high)]
    return [spec.low, spec.high]


def trial_count(plan: Plan) -> int:
    """How many trials the sweep runs: grid's and random's, listed in advance, or the `trials` Optuna is asked for."""
    return len(plan.trials) if plan.sweep.method != "optuna" else plan.sweep.trials or DEFAULT_TRIALS


def _trials_named(trials: list[str], checked: list[Trial], plan: Plan) -> str:
    total = trial_count(plan)
    if len(trials) == len(checked) and total > 1:
        return f"in all {total} trials"
    more = f" and {len(trials) - 2} more" if len(trials) > 2 else ""
    if plan.sweep.method == "optuna":
        return f"with {'; '.join(trials[:2])}{more}, which optuna may choose"
    return f"in the trial{'s' if len(trials) > 1 else ''} with {'; '.join(trials[:2])}{more}"


def new_sweep_dir(base: dict[str, Any]) -> Path:
    """runs/<name>/sweep-<YYYYmmdd-HHMMSS>/, under log.dir like a run's folder."""
    from trainer.logger import refuse_a_file_in_the_way

    folder = Path(base.get("log", {}).get("dir", LogConfig.model_fields["dir"].default)) / base.get("name", "run")
    path = folder / f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    refuse_a_file_in_the_way(path, "sweep folder")
    n = 1
    while path.exists():
        n += 1
        path = folder / f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{n}"
    path.mkdir(parents=True)
    return path


# --- running trials -----------------------------------------------------------------------------------------------

_DATA: dict[str, Any] = {}  # data sets this process has loaded, by data config: loaded once, used by many trials


def cached_data(cfg: Config) -> Any:
    """The trial's data, loaded once per process; its shufflers start again from the seed, as in a fresh load."""
    from trainer.components.data import build_data, data_section
    from trainer.loop import resolve_device

    device = resolve_device(cfg.train.device)
    key = json.dumps([data_section(cfg).model_dump(mode="json"), cfg.seed, str(device)])
    if key not in _DATA:
        _DATA[key] = build_data(data_section(cfg), device, cfg.seed)
    data = _DATA[key]
    for loader in (data.train, data.val, data.test):
        if getattr(loader, "generator", None) is not None:
            loader.generator.manual_seed(cfg.seed)
    return data


@dataclass
class Outcome:
    name: str
    status: str  # finished, stopped early, pruned, failed
    values: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    error: str = ""


class Pruning:
    """A callback: report each epoch's monitored metric to the Optuna trial, and stop a trial that falls behind."""

    def __init__(self, trial: Any, monitor: str):
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> str | None:
        if self.monitor not in metrics:
            return None
        self.trial.report(metrics[self.monitor], epoch)
        if self.trial.should_prune():
            return f"pruned by the sweep: {self.monitor} is behind the median of earlier trials at epoch {epoch}"
        return None


def run_trial(sweep_dir: Path, trial: Trial, base: dict[str, Any], callbacks: list[Any] | None = None) -> Outcome:
    """Train one trial in its own run folder, its console output in log.txt; a failure is recorded, not raised."""
    from trainer.run import train_from_config

    run_dir = sweep_dir / trial.name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished trial starts again from the beginning
    run_dir.mkdir(parents=True)
    started = time.perf_counter()
    with open(RunFiles(run_dir).log, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            cfg = trial_config(base, trial.values)
            train_from_config(cfg, run_dir=run_dir, data=cached_data(cfg), callbacks=callbacks or [])
        except StoppedByUser:
            raise  # Ctrl-C stops the sweep, not just this trial
        except (ConfigError, UserError) as err:
            print(f"error: {err}", file=log)
            return Outcome(trial.name, "failed", trial.values, {}, time.perf_counter() - started, str(err))
    outcome = outcome_of(run_dir, trial.values)
    outcome.seconds = time.perf_counter() - started  # the whole trial, set-up included, not only its training
    return outcome


def outcome_of(run_dir: Path, values: dict[str, Any]) -> Outcome:
    """What a trial's folder says about it."""
    summary_path = RunFiles(run_dir).summary
    if not summary_path.is_file():
        log = RunFiles(run_dir).log
        last = log.read_text().strip().splitlines()[-1:] if log.is_file() else []
        return Outcome(run_dir.name, "failed" if last else "not run", values, {}, 0.0, last[0] if last else "")
    summary = json.loads(summary_path.read_text())
    status = summary["status"]
    if (run_dir / "pruned").exists():
        status = "pruned"
    return Outcome(run_dir.name, status, values, summary["metrics"], summary["wall_seconds"])


LOCK = "sweep.lock"  # held by the process that trains the sweep; it holds who that is
WORKERS_LOCK = "workers.lock"  # held (shared) by each of its --jobs workers for as long as they live


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Only one process trains a grid or random sweep's trials: a second `sweep --resume` is refused while this one
    runs, naming it, and so is a resume that finds workers of an earlier sweep process still alive."""
    if fcntl is None:  # Windows: no flock; one sweep at a time is then up to the user
        yield
        return
    with open(sweep_dir / LOCK, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            pid = holder.split()[1] if holder.startswith("pid ") else "PID"
            raise UserError(
                f"{sweep_dir} is being trained by {holder}: two sweeps of one folder would train the same trials",
                fix=f"wait for it to end (or stop it: kill {pid}), then: python -m trainer sweep --resume {sweep_dir}",
            ) from None
        with open(sweep_dir / WORKERS_LOCK, "a+") as workers:
            try:  # free unless workers of an earlier sweep process outlived it
                fcntl.flock(workers, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"worker processes of an earlier run of this sweep are still training in {sweep_dir}",
                    fix=f"stop them (`fuser -k {sweep_dir / WORKERS_LOCK}` lists and ends them), then resume again",
                ) from None
        file.truncate(0)
        file.write(f"pid {os.getpid()} on {platform.node()} since {datetime.now():%Y-%m-%d %H:%M:%S}\n")
        file.flush()
        try:
            yield
        finally:
            file.truncate(0)  # the lock itself goes with the file's closing


_WORKERS_LOCK: Any = None  # a worker's open workers.lock: the shared lock lasts as long as the file is open


def worker_setup(threads: int, parent: int, workers_lock: str) -> None:
    """Each of --jobs worker processes gets its share of the cores, so they do not fight over them; it ends with
    the sweep's process, and holds the folder's workers.lock while it lives."""
    die_with_parent(parent)
    if fcntl is not None:
        global _WORKERS_LOCK
        _WORKERS_LOCK = open(workers_lock, "a+")  # noqa: SIM115 (held until the process ends)
        fcntl.flock(_WORKERS_LOCK, fcntl.LOCK_SH)
    import torch

    torch.set_num_threads(threads)
    os.environ[cores.CHOOSE] = str(threads)  # each trial's run keeps the sweep's split


def die_with_parent(parent: int) -> None:
    """A worker whose sweep process is killed (kill -9, out of memory) ends too, instead of training on unseen and
    racing a `sweep --resume`: Linux kills it (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watcher", daemon=True).start()


def worker_pool(jobs: int, sweep_dir: Path) -> ProcessPoolExecutor:
    """`jobs` worker processes that split the cores between them and end with this process."""
    threads = cores.threads_for(jobs)  # the split every run makes (trainer/cores.py), beside other runs here
    context = multiprocessing.get_context("spawn")  # fork would copy torch's threads in an unusable state
    setup = (threads, os.getpid(), str(sweep_dir / WORKERS_LOCK))
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=worker_setup, initargs=setup)


def run_grid_or_random(sweep_dir: Path, plan: Plan, say: Callable[[Outcome], None]) -> None:
    with sweep_lock(sweep_dir):  # the trials not finished are claimed by this process alone
        pending = [t for t in plan.trials if not RunFiles(sweep_dir / t.name).summary.is_file()]
        jobs = min(plan.sweep.jobs, len(pending))
        if jobs <= 1:
            for trial in pending:
                say(run_trial(sweep_dir, trial, plan.base))
            return
        with worker_pool(jobs, sweep_dir) as pool:
            futures = [pool.submit(run_trial, sweep_dir, trial, plan.base) for trial in pending]
            for future in as_completed(futures):
                say(future.result())


# --- optuna -------------------------------------------------------------------------------------------------------


def run_optuna(sweep_dir: Path, plan: Plan, say: Callable[[Outcome], None]) -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError(
            "sweep.method: optuna needs the optuna package",
            fix='pip install "leaptrain[sweep]" (or use sweep.method: random)',
            key="sweep.method",
        ) from None
    jobs = plan.sweep.jobs
    # No sweep_lock: the study's storage hands each trial to one process, so many may share a study (see below).
    if jobs <= 1:
        for outcome in optuna_worker(str(sweep_dir), plan):
            say(outcome)
        return
    open_study(sweep_dir, plan)  # made here once: workers making a new storage's tables at once would collide
    with worker_pool(jobs, sweep_dir) as pool:
        futures = [pool.submit(_optuna_outcomes, str(sweep_dir), plan, worker) for worker in range(jobs)]
        for future in as_completed(futures):
            for outcome in future.result():
                say(outcome)


def _optuna_outcomes(sweep_dir: str, plan: Plan, worker: int) -> list[Outcome]:
    return list(optuna_worker(sweep_dir, plan, worker))


def study_storage(sweep_dir: Path, sweep: SweepConfig) -> str:
    return sweep.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_study(sweep_dir: Path, plan: Plan, worker: int = 0) -> Any:
    """The sweep's Optuna study, made on first use. Each worker samples with a seed of its own (the config's seed
    plus its number), so that workers do not propose the same values; a study shared through sweep.storage, which
    other machines may also work on, samples unseeded."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = plan.sweep
    seed = None if sweep.storage else plan.base.get("seed", 0) + worker
    return optuna.create_study(
        study_name=plan.base.get("name", "sweep"),
        storage=study_storage(sweep_dir, sweep),
        load_if_exists=True,
        direction="maximize" if monitor_of(plan).mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
        if sweep.prune
        else optuna.pruners.NopPruner(),
    )


def optuna_worker(sweep_dir_name: str, plan: Plan, worker: int = 0) -> Iterator[Outcome]:
    """Trials chosen by Optuna's TPE sampler until the study holds `trials` that have ended: finished, pruned or
    failed (as Optuna's own n_trials counts them), so a mistake every trial makes ends the sweep instead of
    repeating for ever. Any number of these (processes, machines) may work on one study through its storage."""
    import optuna

    sweep_dir, sweep = Path(sweep_dir_name), plan.sweep
    monitor = monitor_of(plan).name
    study = open_study(sweep_dir, plan, worker)
    total = trial_count(plan)
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    while len(study.get_trials(deepcopy=False, states=ended)) < total:
        trial = study.ask()
        values = {key: suggest(trial, key, spec) for key, spec in sweep.params.items()}
        name = f"trial-{trial.number:03d}"

        outcome = run_trial(sweep_dir, Trial(name, values), plan.base, [Pruning(trial, monitor)])
        if outcome.status == "stopped early" and trial.should_prune():
            (sweep_dir / name / "pruned").touch()
            outcome.status = "pruned"
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif outcome.status == "failed" or monitor not in outcome.metrics:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, score(outcome, monitor))
        yield outcome


def suggest(trial: Any, key: str, spec: list[Any] | Distribution) -> Any:
    if isinstance(spec, list):
        index = trial.suggest_categorical(key, list(range(len(spec))))  # indices: optuna's choices must be scalars
        return spec[index]
    if spec.dist == "int_uniform":
        return trial.suggest_int(key, int(spec.low), int(spec.high))
    return trial.suggest_float(key, spec.low, spec.high, log=spec.dist == "log_uniform")


# --- the summary --------------------------------------------------------------------------------------------------


def monitor_of(plan: Plan) -> Monitor:
    """The metric that ranks the trials, and which way is better: sweep.monitor, else the early stopping's metric
    (with its mode), else val/loss."""
    stopping = plan.base.get("train", {}).get("early_stopping") or {}
    name = plan.sweep.monitor or stopping.get("monitor") or "val/loss"
    return Monitor(name, stopping.get("mode") if name == stopping.get("monitor") else None)


def score(outcome: Outcome, monitor: str) -> float:
    return outcome.metrics.get(monitor, math.nan)


def outcomes_of(sweep_dir: Path, plan: Plan) -> list[Outcome]:
    """Every trial the sweep has a folder or a plan for, in trial order."""
    if plan.sweep.method == "optuna":
        folders = sorted(p for p in sweep_dir.glob("trial-*") if p.is_dir())
        return [outcome_of(p, read_values(p, plan)) for p in folders]
    return [outcome_of(sweep_dir / t.name, t.values) for t in plan.trials]


def no_trial_finished(sweep_dir: Path, plan: Plan) -> UserError | None:
    """When no trial gave a result and some failed: the first failure, where its log is, how to go on. (Trials that
    were all pruned are a result too.)"""
    outcomes = outcomes_of(sweep_dir, plan)
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return None
    again = (
        "then start the sweep again (failed trials count toward sweep.trials)"
        if plan.sweep.method == "optuna"
        else f"then train the failed trials again: python -m trainer sweep --resume {sweep_dir}"
    )
    first = failed[0]
    return UserError(
        f"no trial of the sweep finished: {len(failed)} of {len(outcomes)} failed. The first, {first.name}: "
        f"{first.error.removeprefix('error: ').strip()}",
        fix=f"fix that (the whole output is in {sweep_dir / first.name / 'log.txt'}), {again}",
    )


@dataclass
class Ranking:
    """The trials best first by the monitored metric, as the table shows them."""

    monitor: str
    higher_is_better: bool
    outcomes: list[Outcome]  # best first; those without a result last
    usable: int  # how many have a result (finished or stopped early, with the metric)
    header: list[str]
    rows: list[list[str]]

    @property
    def best(self) -> Outcome | None:
        return self.outcomes[0] if self.usable else None


def ranking_of(sweep_dir: Path, plan: Plan) -> Ranking:
    ranking = monitor_of(plan)
    monitor, higher = ranking.name, ranking.mode == "max"
    outcomes = outcomes_of(sweep_dir, plan)

    def rank(outcome: Outcome) -> tuple[int, float]:
        value = score(outcome, monitor)
        usable = outcome.status in ("finished", "stopped early") and not math.isnan(value)
        return (0 if usable else 1, -value if higher else value) if usable else (1, 0.0)

    outcomes.sort(key=rank)
    swept = list(plan.sweep.params)
    metric_names = sorted({name for o in outcomes for name in o.metrics if name != "lr"}, key=_metric_order(monitor))
    header = ["trial", "status", *swept, *metric_names, "seconds"]
    rows = []
    for o in outcomes:
        values = [_cell(o.values.get(k)) for k in swept]
        metrics = [_cell(o.metrics.get(m)) for m in metric_names]
        rows.append([o.name, o.status, *values, *metrics, f"{o.seconds:.1f}"])
    usable = sum(rank(o)[0] == 0 for o in outcomes)
    return Ranking(monitor, higher, outcomes, usable, header, rows)


def summarize(sweep_dir: Path, plan: Plan) -> tuple[str, Path | None]:
    """The table of every trial, best first; written as CSV and Markdown. Returns (table, best config path)."""
    ranking = ranking_of(sweep_dir, plan)
    header, rows = ranking.header, ranking.rows
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    write_atomic(sweep_dir / "sweep_summary.csv", buffer.getvalue())
    markdown = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}", *(f"| {' | '.join(r)} |" for r in rows)]
    write_atomic(sweep_dir / "sweep_summary.md", "\n".join(markdown) + "\n")
    best = ranking.best
    best_path = None
    if best is not None:
        best_path = sweep_dir / "best.yaml"
        config = RunFiles(sweep_dir / best.name).config.read_text()
        note = (
            f"# The best trial of {sweep_dir} by {ranking.monitor} ({best.name}): rerun it with "
            f"python -m trainer {best_path}\n"
        )
        write_atomic(best_path, note + config)
    return aligned([header, *rows]), best_path


def read_values(run_dir: Path, plan: Plan) -> dict[str, Any]:
    """An optuna trial's values, read back from its resolved config."""
    from trainer.yamlio import load_config_file, split_key

    config = RunFiles(run_dir).config
    if not config.is_file():
        return {}
    data, _ = load_config_file(config)
    values = {}
    for key in plan.sweep.params:
        node: Any = data
        for part in split_key(key):
            node = node.get(part) if isinstance(node, dict) else None
        values[key] = node
    return values


def _metric_order(monitor: str) -> Callable[[str], tuple[int, str]]:
    splits = {"val": 1, "test": 2, "train": 3}
    return lambda name: (0 if name == monitor else splits.get(name.split("/")[0], 4), name)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value) if not isinstance(value, list | dict) else json.dumps(value)
