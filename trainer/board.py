"""What TensorBoard shows beyond the raw curves: train and val of each metric on one chart (the Custom Scalars tab),
the HParams table of the settings that matter and vary, and the Text tab's config and diagnosis.

HParams reads its columns (the "experiment") from one run of the folder it shows and a row (a "session") from each.
So every run names as columns the important keys and every key in which the runs beside it differ: the swept keys
of a sweep, a data set or a model changed between two runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from trainer.yamlio import flatten

# The settings a learner changes most, most telling first: the HParams columns, after the keys that vary between
# the runs of one folder (a sweep's swept keys, a data set changed between two runs), up to SHOWN columns in all.
IMPORTANT_KEYS = (
    "model.name",
    "optimizer.lr",
    "data.batch_size",
    "train.epochs",
    "optimizer.name",
    "data.dataset",
    "optimizer.weight_decay",
    "scheduler.name",
)
SHOWN = 5  # TensorBoard ticks the first five columns (by name) and hides the others until ticked
NOT_RESULTS = ("lr", "epoch")  # curves, not results: the final lr says nothing about how well a run did
SPLITS = ("train", "val")


def chart_layout(metric_names: Iterable[str]) -> dict[str, dict[str, list[Any]]]:
    """The Custom Scalars layout: one chart per metric with its train and val curves (the sub-runs train/ and val/
    of each run, in two colours), the loss first, then the lr and the epoch. In the form that
    `SummaryWriter.add_custom_scalars` takes; the tags are regular expressions."""
    measured = []
    for name in metric_names:
        split, _, metric = name.partition("/")
        if split in SPLITS and metric and metric not in measured:
            measured.append(metric)
    measured.sort(key=lambda metric: metric != "loss")  # a stable sort: the others keep their order
    together = {metric: ["Multiline", [rf"^{metric}$"]] for metric in measured}  # in the sub-runs train/ and val/
    return {"train and val": together, "schedule": {name: ["Multiline", [rf"^{name}$"]] for name in NOT_RESULTS}}


def hparam_columns(own: dict[str, Any], siblings: Iterable[dict[str, Any]]) -> list[str]:
    """The HParams columns for a run with flat config `own` among runs with flat configs `siblings`: every key whose
    value is not the same in all of them, then the important keys they have, up to SHOWN columns."""
    configs = [own, *siblings]
    every_key = {key: None for config in configs for key in config}  # in order of first appearance
    keys = [key for key in every_key if len({_column_value(config.get(key)) for config in configs}) > 1]
    for key in IMPORTANT_KEYS:
        if len(keys) >= SHOWN:
            break
        if key not in keys and any(key in config for config in configs):
            keys.append(key)
    return keys


def hparam_row(flat: dict[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """A run's values in `columns`, with their real types (numbers stay numbers); a key the run lacks is left out,
    which TensorBoard shows as an empty cell."""
    return {key: _column_value(flat[key]) for key in columns if key in flat}


def result_metrics(final: dict[str, float]) -> dict[str, float]:
    """The final metrics HParams shows: the run's results, not its schedule; only finite numbers."""
    return {name: value for name, value in final.items() if name not in NOT_RESULTS and value == value}


SIBLINGS_READ = 50  # the newest runs beside this one whose configs are compared: a long sweep reads no more


def sibling_configs(run_dir: Path) -> list[dict[str, Any]]:
    """The flat configs of the other runs in the folder above `run_dir` (their config.yaml), oldest first: the
    newest SIBLINGS_READ of them."""
    configs = []
    paths = [path for path in sorted(run_dir.parent.glob("*/config.yaml")) if path.parent != run_dir]
    for path in paths[-SIBLINGS_READ:]:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # a broken or unreadable sibling only loses its columns
        if isinstance(data, dict):
            configs.append(flatten(data))
    return configs


def experiment_summary(rows: list[dict[str, Any]], metric_names: Iterable[str]) -> Any:
    """HParams' columns for the runs with hparam rows `rows` (this run's last): each key with its type, and whether
    its value differs among them (TensorBoard's server lists those first when it lists only some)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    columns = {key: None for row in rows for key in row}
    infos = []
    for key in columns:
        values = [row[key] for row in rows if key in row]
        kind = _column_type(values[-1])
        if any(_column_type(value) != kind for value in values):
            kind = api_pb2.DATA_TYPE_STRING  # as TensorBoard reads a column of mixed values
        differs = len({str(value) for value in values}) > 1 or len(values) < len(rows)
        infos.append(api_pb2.HParamInfo(name=key, type=kind, differs=differs))
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name)) for name in metric_names]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=time.time())
    described = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment))
    value = Summary.Value(tag=metadata.EXPERIMENT_TAG, metadata=described, tensor=metadata.NULL_TENSOR)
    return Summary(value=[value])


def config_text(config: dict[str, Any]) -> str:
    """The resolved config for the Text tab (Markdown): what this run really used, defaults included."""
    from trainer.yamlio import dump_yaml

    body = dump_yaml(config) if config else "(no config: a run of the Python API)\n"
    return "The resolved config of this run, defaults included:\n\n```yaml\n" + body + "```"


def diagnosis_text(warnings: list[str]) -> str:
    """The Text tab's diagnosis (Markdown): the run's warnings, or a line saying that there were none."""
    if not warnings:
        return "No warnings: the checks during training found nothing to report."
    return "\n".join(f"- {warning}" for warning in warnings)


def _column_type(value: Any) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    return api_pb2.DATA_TYPE_FLOAT64 if isinstance(value, int | float) else api_pb2.DATA_TYPE_STRING


def _column_value(value: Any) -> Any:
    """A config value as an HParams cell: numbers, text and truth values as they are, lists and the like as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip()
