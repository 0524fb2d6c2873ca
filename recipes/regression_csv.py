"""Recipe: regression on a real table (diabetes progression), with an MLP, and a check against least squares.

    python recipes/regression_csv.py            # about 10 seconds
    python recipes/regression_csv.py --quick    # a few seconds (what CI runs)

Predicting a number instead of a class changes two things: the model has one output and no softmax, and the
loss is the mean squared error. The Trainer then reports MAE, RMSE and R² instead of accuracy. To know whether
the network learned anything worth having, compare it with the simplest model there is: a straight line
(linear regression) fitted in one step by least squares on the same rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from trainer import Trainer
from trainer.components.splits import DataSplits
from trainer.components.tables import build_table
from trainer.config import CsvData
from trainer.logger import new_run_dir

# Found from this file's place, so the recipe runs from any folder.
DIABETES = Path(__file__).resolve().parents[1] / "configs" / "tables" / "diabetes.csv"


def all_rows(loader: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (inputs, targets) batch of a loader, joined back into two tensors."""
    batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def regression_metrics(predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """MAE, RMSE and R², as the Trainer computes them: R² = 1 - (squared error) / (spread of the targets)."""
    errors = predictions.flatten() - targets.flatten()
    spread = ((targets - targets.mean()) ** 2).sum()
    return {
        "mae": errors.abs().mean().item(),
        "rmse": errors.square().mean().sqrt().item(),
        "r2": (1 - errors.square().sum() / spread).item(),
    }


def least_squares(data: DataSplits) -> dict[str, float]:
    """A straight line through the training rows, fitted exactly by torch.linalg.lstsq; its test metrics."""
    assert data.test is not None  # test_split > 0 above
    x, y = all_rows(data.train)  # already standardized by build_table, with the training rows' mean and std
    ones = torch.ones(len(x), 1)
    # y ≈ [x, 1] @ w: the last weight is the intercept. lstsq finds the w with the smallest squared error.
    w = torch.linalg.lstsq(torch.cat([x, ones], dim=1).double(), y.reshape(len(y), -1).double()).solution
    test_x, test_y = all_rows(data.test)
    predictions = torch.cat([test_x, torch.ones(len(test_x), 1)], dim=1).double() @ w
    return regression_metrics(predictions.float(), test_y)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=str(DIABETES), help="the table (default: configs/tables/diabetes.csv)")
    parser.add_argument("--target", default="progression", help="the column to predict")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="fewer epochs: a few seconds (for CI)")
    parser.add_argument("--runs", default="runs", help="run folders go in RUNS/recipe-regression/<date-time>/")
    args = parser.parse_args(argv)
    epochs = 15 if args.quick else args.epochs

    # leaptrain's table reader: splits the rows (seeded), standardizes every feature with the training rows'
    # mean and std, and holds the tensors in memory. The target keeps its own units (progression points).
    cfg = CsvData(
        dataset="csv",
        path=args.csv,
        target=args.target,
        task="regression",
        test_split=0.2,
        val_split=0.2,
        batch_size=32,
    )
    data = build_table(cfg, torch.device("cpu"), seed=0)
    print(data.description)

    torch.manual_seed(0)
    features = data.input_shape[0]
    model = nn.Sequential(nn.Linear(features, 8), nn.ReLU(), nn.Linear(8, 1))  # one output: the predicted number
    # Adam moves each weight by about lr per step; the targets are around 150, so the output needs big steps.
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)  # settle down at the end
    out_dir = new_run_dir(args.runs, "recipe-regression")
    trainer = Trainer(model, nn.MSELoss(), optimizer, scheduler=scheduler, epochs=epochs, out_dir=out_dir, log_every=5)
    metrics = trainer.fit(data.train, data.val, data.test)

    line = least_squares(data)
    print(
        f"test  MLP: MAE {metrics['test/mae']:.1f}  RMSE {metrics['test/rmse']:.1f}  R² {metrics['test/r2']:.3f}   "
        f"least squares: MAE {line['mae']:.1f}  RMSE {line['rmse']:.1f}  R² {line['r2']:.3f}"
    )
    return {**metrics, **{f"least_squares/test/{name}": value for name, value in line.items()}}


if __name__ == "__main__":
    main()
