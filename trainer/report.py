"""report: one HTML page of a run or a sweep, to open, send or keep, with no server and nothing fetched: the
learning curves, the confusion matrix, the worst predictions, the diagnosis and the config; for a sweep, the trials
ranked and each swept value against the metric. Pictures are embedded, charts are inline SVG (trainer/charts.py).

`Report(folder)` shows it in a notebook."""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from trainer.charts import Series, line_chart, points_chart
from trainer.run_files import REPORT, RunFiles

WORST = 12  # predictions shown
STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 24px auto; max-width: 1000px;
       color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; } .charts { display: flex; flex-wrap: wrap; gap: 12px; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 3px 8px; border: 1px solid #ddd; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.confusion td { width: 34px; text-align: center; } .worst { display: flex; flex-wrap: wrap; gap: 10px; }
.worst figure { margin: 0; width: 112px; font-size: 12px; text-align: center; }
.worst img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
pre { background: #f7f7f7; padding: 10px; font-size: 12px; overflow-x: auto; } .best { background: #fff3c4; }
ul.diagnosis li { margin-bottom: 4px; }
"""


@dataclass
class Worst:
    """A prediction among the worst: its picture (a data: URL) or its row's cells, the truth and the guess."""

    truth: str
    predicted: str
    confidence: float | None  # the probability of the predicted class; None for regression
    picture: str | None = None
    cells: list[str] = field(default_factory=list)


@dataclass
class Predictions:
    """What the best checkpoint does on one split."""

    split: str
    count: int
    class_names: list[str] | None
    confusion: list[list[int]] | None
    per_class: list[float] | None
    worst: list[Worst]
    columns: list[str]  # of the rows in `worst`, for a table (or points)


# --- a run ------------------------------------------------------------------------------------------------------


def run_page(run_dir: Path, predictions: Predictions | str) -> str:
    """The page of one run; `predictions` is what its checkpoint does, or why that is not shown."""
    files = RunFiles(run_dir)
    summary = _json(files.summary) or {}
    epochs = _epoch_lines(files.metrics)
    title = f"{run_dir.parent.name} / {run_dir.name}"
    status = summary.get("status", "not finished (no summary.json yet)")
    facts = [f"status: {status}", f"epochs: {summary.get('epochs', len(epochs))}"]
    if summary.get("best_epoch"):
        facts.append(f"best epoch: {summary['best_epoch']} by {summary.get('monitor', 'val/loss')}")
    if summary.get("wall_seconds") is not None:
        facts.append(f"time: {summary['wall_seconds']:.1f} s")
    final = summary.get("metrics") or (epochs[-1] if epochs else {})
    body = [f"<h1>{escape(title)}</h1>", f'<p class="sub">{escape(" · ".join(facts))}</p>']
    body += ["<h2>Results</h2>", _metrics_table(final)]
    body += ["<h2>Learning curves</h2>", _curves(epochs)]
    body += _predictions_section(predictions)
    body += ["<h2>Diagnosis</h2>", _diagnosis(files.diagnosis)]
    if files.model.is_file():
        body += [
            "<h2>Model</h2>",
            f"<details><summary>the layers</summary><pre>{escape(files.model.read_text())}</pre></details>",
        ]
    body += ["<h2>Config</h2>", f"<pre>{escape(_read(files.config))}</pre>"]
    return _page(title, body)


def _epoch_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in _read(path).splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:  # a line cut short by a crash: the others still count
            continue
    return [line for line in lines if isinstance(line, dict) and "epoch" in line]


def _curves(epochs: list[dict[str, Any]]) -> str:
    """A chart per metric with every split on it (train and val loss together), then the learning rate."""
    if not epochs:
        return "<p>No epoch has ended yet: metrics.jsonl is empty.</p>"
    by_metric: dict[str, dict[str, Series]] = {}
    for line in epochs:
        for key, value in line.items():
            if "/" not in key or not isinstance(value, int | float):
                continue
            split, metric = key.split("/", 1)
            series = by_metric.setdefault(metric, {}).setdefault(split, Series(split, [], []))
            series.xs.append(line["epoch"])
            series.ys.append(float(value))
    order = sorted(by_metric, key=lambda metric: (metric != "loss", metric))
    charts = [line_chart(metric, list(by_metric[metric].values()), "epoch") for metric in order]
    rates = [(line["epoch"], line["lr"]) for line in epochs if isinstance(line.get("lr"), int | float)]
    if rates:
        lr = Series("lr", [x for x, _ in rates], [float(y) for _, y in rates])
        charts.append(line_chart("learning rate (at the end of each epoch)", [lr], "epoch"))
    return f'<div class="charts">{"".join(charts)}</div>'


def _metrics_table(metrics: dict[str, Any]) -> str:
    """A row per metric, a column per split: train, val, test."""
    table: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "/" in key and isinstance(value, int | float):
            split, metric = key.split("/", 1)
            table.setdefault(metric, {})[split] = value
    if not table:
        return "<p>No metrics yet.</p>"
    splits = [s for s in ("train", "val", "test") if any(s in row for row in table.values())]
    splits += sorted({s for row in table.values() for s in row} - set(splits))
    head = "<tr><th>metric</th>" + "".join(f"<th>{escape(s)}</th>" for s in splits) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape(metric)}</td>"
        + "".join(f"<td class='n'>{_number(row.get(s))}</td>" for s in splits)
        + "</tr>"
        for metric, row in sorted(table.items(), key=lambda item: (item[0] != "loss", item[0]))
    )
    return f"<table>{head}{rows}</table>"


def _predictions_section(predictions: Predictions | str) -> list[str]:
    if isinstance(predictions, str):
        return ["<h2>Predictions</h2>", f"<p>{escape(predictions)}</p>"]
    where = f"the best checkpoint on the {predictions.split} split ({predictions.count} samples)"
    parts = []
    if predictions.confusion is not None and predictions.class_names is not None:
        parts += [
            f"<h2>Confusion matrix</h2><p class='sub'>{escape(where)}: rows the true class, columns the "
            "predicted one; the last column is each class's accuracy.</p>",
            _confusion(predictions),
        ]
    kind = "largest errors first"
    if predictions.class_names:
        wrong = sum(w.truth != w.predicted for w in predictions.worst)
        kind = "the wrong ones the model was surest of first" + (
            ", then the right ones it was least sure of" if wrong < len(predictions.worst) else ""
        )
    parts.append(f"<h2>Worst predictions</h2><p class='sub'>{escape(where)}: {kind}.</p>")
    if not predictions.worst:
        parts.append("<p>None: the split is empty.</p>")
    elif predictions.worst[0].picture is not None:
        figures = "".join(
            f'<figure><img src="{w.picture}" alt="true {escape(w.truth)}, predicted {escape(w.predicted)}">'
            f"<figcaption>true <b>{escape(w.truth)}</b><br>predicted <b>{escape(w.predicted)}</b>"
            f"{_share(w.confidence)}</figcaption></figure>"
            for w in predictions.worst
        )
        parts.append(f'<div class="worst">{figures}</div>')
    else:
        head = "".join(f"<th>{escape(c)}</th>" for c in [*predictions.columns, "true", "predicted"])
        rows = "".join(
            "<tr>"
            + "".join(f"<td>{escape(c)}</td>" for c in w.cells)
            + f"<td><b>{escape(w.truth)}</b></td><td><b>{escape(w.predicted)}</b>{_share(w.confidence)}</td></tr>"
            for w in predictions.worst
        )
        parts.append(f"<table><tr>{head}</tr>{rows}</table>")
    return parts


def _confusion(predictions: Predictions) -> str:
    names, matrix = predictions.class_names or [], predictions.confusion or []
    per_class = predictions.per_class or [math.nan] * len(names)
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "<th>accuracy</th></tr>"
    rows = []
    for i, (name, counts, accuracy) in enumerate(zip(names, matrix, per_class, strict=True)):
        total = sum(counts) or 1
        cells = []
        for j, count in enumerate(counts):  # shaded by the share of the true class's samples: right blue, wrong red
            rgb = "31,119,180" if i == j else "214,39,40"
            cells.append(f'<td style="background:rgba({rgb},{0.7 * count / total:.2f})">{count}</td>')
        rows.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}<td class='n'>{_number(accuracy)}</td></tr>")
    return f'<table class="confusion">{head}{"".join(rows)}</table>'


def _diagnosis(path: Path) -> str:
    lines = [line.removeprefix("- ") for line in _read(path).splitlines() if line.strip()]
    if not lines:
        return "<p>The checks found nothing to warn about.</p>"
    return '<ul class="diagnosis">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


# --- what the checkpoint predicts ----------------------------------------------------------------------------------


def predictions_for(cfg: Any, checkpoint: dict[str, Any]) -> Predictions | str:
    """What the checkpoint predicts on the test split (else val): the data are read again and the model run once."""
    import torch

    from trainer.components.data import build_data, data_section
    from trainer.errors import UserError
    from trainer.inference import model_forward
    from trainer.progress import progress_bar

    try:
        data = build_data(data_section(cfg), torch.device("cpu"), cfg.seed)
    except UserError as err:
        reason = str(err).splitlines()[0]
        return f"Not shown: the run's data could not be read here ({reason}). {err.fix or ''}".strip()
    split, loader = next(((s, lo) for s, lo in (("test", data.test), ("val", data.val)) if lo is not None), ("", None))
    if loader is None:
        return "Not shown: the data set has no val or test split to look at."
    info = {**data.info, **(checkpoint.get("data") or {})}
    batches = progress_bar(loader, total=len(loader), desc=f"report: the {split} split", unit="batch", leave=False)
    return predictions_of(model_forward(cfg, checkpoint), batches, split, info, data.task)


def predictions_of(forward: Any, loader: Iterable[Any], split: str, info: dict[str, Any], task: str) -> Predictions:
    """One pass of the model over a split: the confusion matrix and the worst predictions, with their inputs."""
    import torch

    from trainer.metrics import Metrics

    class_names = info.get("class_names")
    metrics = Metrics(task, len(class_names) if class_names else None)
    kept: list[tuple[float, Any, Any, Any]] = []  # (badness, input, target, output), the worst so far
    count = 0
    for inputs, targets in loader:
        outputs = forward(inputs)
        metrics.update(outputs, targets)
        count += len(inputs)
        if task == "classification":
            probabilities = outputs.softmax(dim=1)
            confidence, predicted = probabilities.max(dim=1)
            wrong = predicted != targets
            # the wrong ones by how sure the model was of its guess (above 1), then the right ones it was least sure of
            badness = torch.where(wrong, 1 + confidence, 1 - probabilities.gather(1, targets[:, None])[:, 0])
        else:
            badness = (outputs - targets).abs().reshape(len(inputs), -1).amax(dim=1)
        top = badness.topk(min(WORST, len(badness))).indices
        kept += [(float(badness[i]), inputs[i].cpu(), targets[i].cpu(), outputs[i].cpu()) for i in top]
        kept = sorted(kept, key=lambda item: -item[0])[:WORST]
    worst = [_worst(x, y, out, info, task) for _, x, y, out in kept]
    confusion = metrics.confusion_matrix()
    return Predictions(
        split,
        count,
        class_names,
        confusion.tolist() if confusion is not None else None,
        metrics.per_class_accuracy(),
        worst,
        _columns(info, kept[0][1] if kept else None),
    )


def _worst(x: Any, target: Any, output: Any, info: dict[str, Any], task: str) -> Worst:
    if task == "classification":
        names = info.get("class_names") or [str(i) for i in range(len(output))]
        probabilities = output.softmax(dim=0)
        best = int(probabilities.argmax())
        found = Worst(names[int(target)], names[best], float(probabilities[best]))
    else:
        found = Worst(_values(target), _values(output), None)
    if x.dim() == 3:
        found.picture = _picture(x, info)
    else:
        found.cells = _cells(x, info)
    return found


def _picture(x: Any, info: dict[str, Any]) -> str:
    """An input image as a PNG data: URL, in its own colours again (the normalization undone)."""
    import torch
    from PIL import Image

    channels = x.shape[0]
    mean = torch.tensor(info.get("mean", [0.0] * channels), dtype=torch.float32)[:, None, None]
    std = torch.tensor(info.get("std", [1.0] * channels), dtype=torch.float32)[:, None, None]
    pixels = ((x.float() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    array = pixels[0].numpy() if channels == 1 else pixels[:3].permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _columns(info: dict[str, Any], example: Any) -> list[str]:
    """The names over a table's cells: its number and category columns, then its text columns (as encoded)."""
    if "features" in info:
        text = info.get("text", {})
        return [name for name in info["features"] if name not in text] + list(text)
    width = example.numel() if example is not None else 0
    return [f"x{i + 1}" for i in range(width)] if example is None or example.dim() < 3 else []


def _cells(x: Any, info: dict[str, Any]) -> list[str]:
    """A table's row as it was in the CSV: the encoding undone (the numbers unstandardized, the category named, the
    words read back, a word the vocabulary lacks as '?')."""
    values = x.reshape(-1).tolist()
    if "features" not in info:
        return [f"{v:.4g}" for v in values]
    cells, at, text = [], 0, info.get("text", {})
    for name in info["features"]:
        if name in text:
            continue
        if name in info["mean"]:
            cells.append(f"{values[at] * info['std'][name] + info['mean'][name]:.4g}")
            at += 1
        else:
            categories = info["categories"][name]
            one_hot = values[at : at + len(categories)]
            cells.append(categories[one_hot.index(max(one_hot))] if max(one_hot, default=0) > 0 else "(another)")
            at += len(categories)
    for column in text.values():
        ids = [int(v) for v in values[at : at + column["max_words"]] if v > 0]
        cells.append(" ".join(column["vocabulary"][i - 2] if i > 1 else "?" for i in ids))
        at += column["max_words"]
    return cells


def _values(tensor: Any) -> str:
    return ", ".join(f"{v:.4g}" for v in tensor.reshape(-1).tolist())


# --- a sweep ----------------------------------------------------------------------------------------------------


def sweep_page(sweep_dir: Path) -> str:
    from trainer.sweep import Plan, ranking_of

    plan = Plan.load(sweep_dir)
    ranking = ranking_of(sweep_dir, plan)
    title = f"{sweep_dir.parent.name} / {sweep_dir.name}"
    better = "higher" if ranking.higher_is_better else "lower"
    facts = [
        f"{len(ranking.outcomes)} trials",
        f"{ranking.usable} with a result",
        f"ranked by {ranking.monitor} ({better} is better)",
        f"method: {plan.sweep.method}",
    ]
    body = [f"<h1>{escape(title)}</h1>", f'<p class="sub">{escape(" · ".join(facts))}</p>']
    head = "".join(f"<th>{escape(h)}</th>" for h in ranking.header)
    rows = []
    for i, row in enumerate(ranking.rows):
        report = sweep_dir / row[0] / REPORT
        name = f'<a href="{escape(row[0])}/{REPORT}">{escape(row[0])}</a>' if report.is_file() else escape(row[0])
        cells = [name, *(escape(c) for c in row[1:])]
        marked = ' class="best"' if i == 0 and ranking.best is not None else ""
        rows.append(f"<tr{marked}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body += ["<h2>The trials, best first</h2>", f"<table><tr>{head}</tr>{''.join(rows)}</table>"]
    scores = [o.metrics.get(ranking.monitor, math.nan) for o in ranking.outcomes]
    usable = [i < ranking.usable for i in range(len(ranking.outcomes))]
    charts = []
    for key in plan.sweep.params:
        xs = [_plain(o.values.get(key)) for o in ranking.outcomes]
        ys = [s if ok else math.nan for s, ok in zip(scores, usable, strict=True)]
        charts.append(points_chart(key, xs, ys, key, ranking.monitor, best=0 if ranking.best else None))
    body += [
        f"<h2>Each swept value against {escape(ranking.monitor)}</h2>",
        '<p class="sub">a point per trial; the best in red</p>',
        f'<div class="charts">{"".join(charts)}</div>',
    ]
    curves = []
    for outcome in ranking.outcomes[: min(8, ranking.usable)]:
        epochs = _epoch_lines(RunFiles(sweep_dir / outcome.name).metrics)
        points = [(line["epoch"], line[ranking.monitor]) for line in epochs if ranking.monitor in line]
        curves.append(Series(outcome.name, [x for x, _ in points], [float(y) for _, y in points]))
    if curves:
        body += [
            f"<h2>{escape(ranking.monitor)} by epoch, the best {len(curves)} trials</h2>",
            line_chart(ranking.monitor, curves, "epoch"),
        ]
    body += [
        "<h2>The config every trial starts from</h2>",
        f"<pre>{escape(_yaml(plan.base))}</pre>",
        "<h2>What was swept</h2>",
        f"<pre>{escape(_yaml(plan.settings))}</pre>",
    ]
    return _page(title, body)


def _plain(value: Any) -> float | str:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else json.dumps(value)


# --- the page ---------------------------------------------------------------------------------------------------


def _page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · leaptrain report</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + '\n<p class="sub">Written by leaptrain: python -m trainer report FOLDER</p>\n</body></html>\n'
    )


def _number(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _share(confidence: float | None) -> str:
    return "" if confidence is None else f" ({confidence:.0%})"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


class Report:
    """A report in a notebook: `Report("runs/mnist-cnn/20260101-120000")` writes it if need be and shows it inline."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder if self.folder.suffix == ".html" else self.folder / REPORT
        if not self.path.is_file():
            from trainer.cli import main
            from trainer.errors import UserError

            if main(["report", str(self.folder)]) != 0:
                raise UserError(f"no report of {self.folder}: the message above says why")

    def _repr_html_(self) -> str:
        # In an iframe, the page keeps its own style and the notebook's stays as it was.
        page = escape(self.path.read_text(), quote=True)
        return f'<iframe srcdoc="{page}" style="width:100%;height:900px;border:1px solid #ddd"></iframe>'
