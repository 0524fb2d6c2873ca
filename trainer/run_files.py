"""The names of the files in a run folder, in one place: what a run writes and what `resume`, `eval`, `runs` and the
sweeps read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.yaml"  # the resolved config: rerun it to repeat the run
METRICS = "metrics.jsonl"  # one line per epoch
SUMMARY = "summary.json"  # written when the run ends
DIAGNOSIS = "diagnosis.txt"  # the warnings of the checks
MODEL = "model.txt"  # the layer table
METRICS_CSV = "metrics.csv"  # the same as metrics.jsonl, for a spreadsheet (log.loggers: [csv])
REPORT = "report.html"  # `report` writes it into a run or a sweep folder
LOG = "log.txt"  # a sweep trial's printed output
CHECKPOINTS = "checkpoints"  # the folder of last.pt and best.pt
LAST = "last.pt"  # after every epoch: resume carries on from it
BEST = "best.pt"  # the epoch with the best monitored metric
EXPORT = "export"  # the folder `export` writes into, by default
EXPORT_SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".torchscript"}  # by format: what predict accepts


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run folder's files: `RunFiles(run_dir).last` is its checkpoints/last.pt."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / CONFIG

    @property
    def metrics(self) -> Path:
        return self.folder / METRICS

    @property
    def summary(self) -> Path:
        return self.folder / SUMMARY

    @property
    def metrics_csv(self) -> Path:
        return self.folder / METRICS_CSV

    @property
    def diagnosis(self) -> Path:
        return self.folder / DIAGNOSIS

    @property
    def model(self) -> Path:
        return self.folder / MODEL

    @property
    def log(self) -> Path:
        return self.folder / LOG

    @property
    def checkpoints(self) -> Path:
        return self.folder / CHECKPOINTS

    @property
    def last(self) -> Path:
        return self.folder / CHECKPOINTS / LAST

    @property
    def best(self) -> Path:
        return self.folder / CHECKPOINTS / BEST

    @property
    def export(self) -> Path:
        return self.folder / EXPORT


def run_of(checkpoint: Path) -> Path:
    """The run folder of a checkpoint in its checkpoints/ folder (else the checkpoint's own folder)."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent
