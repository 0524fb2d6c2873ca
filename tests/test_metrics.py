"""Evaluation metrics match hand-computed values, add up over batches, and draw readable pictures."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from trainer.metric_names import check_metric_names, default_metrics
from trainer.metrics import Metrics, format_table
from trainer.visuals import RIGHT, WRONG, confusion_matrix_image, sample_grid_image, sample_order

# 7 samples of 4 classes; class 3 is never the true class (only once wrongly predicted, twice).
TARGETS = torch.tensor([0, 0, 1, 1, 1, 2, 2])
PREDICTED = torch.tensor([0, 0, 1, 3, 3, 0, 2])
CONFUSION = [
    [2, 0, 0, 0],  # class 0: both right
    [0, 1, 0, 2],  # class 1: one right, two taken for class 3
    [1, 0, 1, 0],  # class 2: one right, one taken for class 0
    [0, 0, 0, 0],  # class 3: no samples
]


def hand_example() -> Metrics:
    metrics = Metrics("classification", num_classes=4)
    metrics.update(F.one_hot(PREDICTED, 4).float(), TARGETS)
    return metrics


def colors(image: torch.Tensor) -> set[tuple[int, ...]]:
    return set(map(tuple, image.reshape(3, -1).T.tolist()))


def test_accuracy_per_class_accuracy_and_confusion_matrix_match_hand_counts():
    metrics = hand_example()
    assert metrics.compute("val") == {"val/accuracy": pytest.approx(4 / 7)}
    assert metrics.confusion_matrix().tolist() == CONFUSION
    assert metrics.confusion_matrix().dtype == torch.int64
    per_class = metrics.per_class_accuracy()
    assert per_class[:3] == pytest.approx([1.0, 1 / 3, 0.5])
    assert math.isnan(per_class[3])  # no samples: no accuracy, rather than a made-up 0%


def test_top5_counts_a_hit_when_the_true_class_is_among_the_five_highest_scores():
    logits = torch.tensor([[6.0, 5, 4, 3, 2, 1, 0]] * 4)  # class 0 scores highest, class 6 lowest
    targets = torch.tensor([0, 2, 4, 5])  # ranked 1st, 3rd, 5th and 6th
    metrics = Metrics("classification", num_classes=7)
    metrics.update(logits, targets)
    assert metrics.compute("test") == {"test/accuracy": 0.25, "test/top5": 0.75}


def test_metrics_over_several_batches_equal_those_of_one_big_batch():
    generator = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(100, 10, generator=generator), torch.randint(10, (100,), generator=generator)
    outputs, values = torch.randn(100, 3, generator=generator), torch.randn(100, 3, generator=generator)
    whole, batched = Metrics("classification", 10), Metrics("classification", 10)
    whole_r, batched_r = Metrics("regression", None), Metrics("regression", None)
    whole.update(logits, targets)
    whole_r.update(outputs, values)
    for start, end in ((0, 13), (13, 50), (50, 100)):
        batched.update(logits[start:end], targets[start:end])
        batched_r.update(outputs[start:end], values[start:end])
    assert batched.compute("val") == whole.compute("val")
    assert torch.equal(batched.confusion_matrix(), whole.confusion_matrix())
    assert batched.per_class_accuracy() == whole.per_class_accuracy()
    assert batched_r.compute("val") == pytest.approx(whole_r.compute("val"), rel=1e-12)


def direct_regression_metrics(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    outputs, targets = outputs.double().flatten(), targets.double().flatten()
    errors = outputs - targets
    r2 = 1 - errors.square().sum() / (targets - targets.mean()).square().sum()
    return {"mae": errors.abs().mean().item(), "rmse": errors.square().mean().sqrt().item(), "r2": r2.item()}


@pytest.mark.parametrize("offset", [0.0, 1e8])  # targets far from 0 must not lose R²'s digits to cancellation
def test_mae_rmse_and_r2_match_a_direct_computation(offset):
    generator = torch.Generator().manual_seed(1)
    targets = torch.randn(64, 2, generator=generator, dtype=torch.float64) + offset
    outputs = targets + 0.5 * torch.randn(64, 2, generator=generator, dtype=torch.float64)
    metrics = Metrics("regression", None)
    for start in range(0, 64, 16):
        metrics.update(outputs[start : start + 16], targets[start : start + 16])
    expected = {f"val/{name}": value for name, value in direct_regression_metrics(outputs, targets).items()}
    assert metrics.compute("val") == pytest.approx(expected, rel=1e-9)
    assert 0.5 < expected["val/r2"] < 1  # a real test: the outputs are good but not perfect


def test_r2_is_one_for_a_perfect_prediction_and_zero_for_predicting_the_mean():
    targets = torch.tensor([1.0, 2.0, 4.0, 7.0, 11.0])
    perfect, mean = Metrics("regression", None), Metrics("regression", None)
    perfect.update(targets.clone(), targets)
    mean.update(torch.full_like(targets, targets.mean().item()), targets)
    assert perfect.compute("val") == {"val/mae": 0.0, "val/rmse": 0.0, "val/r2": 1.0}
    assert mean.compute("val")["val/r2"] == pytest.approx(0.0, abs=1e-12)


def test_r2_of_constant_targets_is_finite():
    targets = torch.full((8,), 0.1)
    right, wrong = Metrics("regression", None, ["r2"]), Metrics("regression", None, ["r2"])
    right.update(targets.clone(), targets)
    wrong.update(targets + 1, targets)
    assert right.compute("val") == {"val/r2": 1.0}
    assert wrong.compute("val") == {"val/r2": 0.0}


def test_outputs_and_targets_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match=r"outputs are \[4, 2\] and the targets \[4\]"):
        Metrics("regression", None).update(torch.zeros(4, 2), torch.zeros(4))


def test_no_samples_gives_nan_not_zero():
    values = Metrics("classification", 3).compute("val")
    assert list(values) == ["val/accuracy"] and math.isnan(values["val/accuracy"])


def test_default_metrics_include_top5_only_with_more_than_five_classes():
    assert default_metrics("classification", 10) == ["accuracy", "top5", "per_class_accuracy", "confusion_matrix"]
    assert default_metrics("classification", 5) == ["accuracy", "per_class_accuracy", "confusion_matrix"]
    assert default_metrics("regression", None) == ["mae", "rmse", "r2"]


def test_number_of_classes_is_taken_from_the_logits_when_not_given():
    metrics = Metrics("classification", None)
    metrics.update(torch.eye(10), torch.arange(10))
    assert metrics.compute("val") == {"val/accuracy": 1.0, "val/top5": 1.0}
    assert metrics.confusion_matrix().shape == (10, 10)


def test_typo_in_metric_name_suggests_accuracy():
    [problem] = check_metric_names(["acuracy", "top5"], "classification")
    assert "did you mean 'accuracy'?" in problem


def test_regression_metric_is_refused_for_classification():
    [problem] = check_metric_names(["r2"], "classification")
    assert "'r2' is not a classification metric" in problem and "accuracy" in problem
    assert check_metric_names(["r2", "mae"], "regression") == []
    with pytest.raises(ValueError, match="'r2' is not a classification metric"):
        Metrics("classification", 10, ["accuracy", "r2"])


def test_format_table_shows_percentages_decimals_and_one_row_per_class():
    metrics = hand_example()
    table = format_table({"test/loss": 0.123456, **metrics.compute("test")}, metrics.per_class_accuracy())
    overall, per_class = table.split("\n\n")
    assert overall.splitlines()[2:] == ["test/loss      0.1235", "test/accuracy  57.14%"]
    assert per_class.splitlines()[2:] == [
        "0         100.00%",
        "1          33.33%",
        "2          50.00%",
        "3      no samples",
    ]
    assert len({len(line) for line in per_class.splitlines()}) == 1  # values right-aligned in one column
    named = format_table({"val/mae": 1.5}, [1.0, 0.25], ["cat", "dog"])
    assert named.splitlines()[2] == "val/mae  1.5000" and named.splitlines()[-1] == "dog      25.00%"
    assert named.splitlines()[:2] == ["metric    value", "-------  ------"]
    assert named.split("\n\n")[1].splitlines()[:2] == ["class  accuracy", "-----  --------"]


def test_format_table_writes_top5_as_a_percentage_and_the_lr_in_scientific_notation():
    table = format_table({"val/top5": 0.875, "lr": 0.00125, "val/loss": 0.5})
    assert table.splitlines()[2:] == ["val/top5    87.50%", "lr        1.25e-03", "val/loss    0.5000"]


@pytest.mark.parametrize("task, classes", [("classification", 10), ("regression", None)])
def test_metrics_of_no_samples_are_nan_under_the_same_names(task, classes):
    empty, seen = Metrics(task, classes), Metrics(task, classes)
    outputs = torch.randn(12, 10) if task == "classification" else torch.randn(12)
    seen.update(outputs, torch.arange(12) % 10 if task == "classification" else torch.randn(12))
    values = empty.compute("val")
    assert list(values) == list(seen.compute("val")) and len(values) >= 2
    assert all(math.isnan(value) for value in values.values())


def test_confusion_matrix_image_is_a_colored_chw_uint8_picture():
    image = confusion_matrix_image(torch.tensor(CONFUSION), ["zero", "one", "two", "three"])
    assert image.dtype == torch.uint8 and image.dim() == 3 and image.shape[0] == 3
    assert image.shape[1] > 200 and image.shape[2] > 200
    assert len(colors(image)) > 20  # a blank or one-colour picture would have 1 or 2


@pytest.mark.parametrize("classes", [1, 30, 150])  # one cell; too many classes for counts; labels every few classes
def test_confusion_matrix_image_of_any_size_draws(classes):
    image = confusion_matrix_image(torch.eye(classes, dtype=torch.int64) * 5 + 1)
    assert image.shape[0] == 3 and image.dtype == torch.uint8 and len(colors(image)) > 10


def test_sample_order_puts_the_misclassified_first():
    predictions = torch.tensor([0, 1, 2, 0, 1, 2])
    targets = torch.tensor([0, 2, 2, 1, 1, 2])
    assert sample_order(predictions, targets) == [1, 3, 0, 2, 4, 5]
    assert sample_order(predictions, targets, limit=3) == [1, 3, 0]


def test_sample_grid_draws_wrong_samples_first_in_red_and_right_ones_in_green():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, 1, 28, 28, generator=generator)  # normalized digits: negative values too
    targets = torch.arange(8) % 10
    logits = F.one_hot(torch.tensor([0, 1, 9, 3, 4, 2, 6, 1]), 10).float()  # samples 2, 5 and 7 wrong
    image = sample_grid_image(inputs, logits, targets, limit=4)  # one row: the 3 wrong ones and one right
    assert image.dtype == torch.uint8 and image.shape[0] == 3
    assert len(colors(image)) > 50
    columns = torch.arange(image.shape[2])
    red = (image == torch.tensor(WRONG)[:, None, None]).all(dim=0).any(dim=0)  # columns holding a red frame pixel
    green = (image == torch.tensor(RIGHT)[:, None, None]).all(dim=0).any(dim=0)
    assert red.any() and green.any()
    assert columns[red].max() < columns[green].min()  # 3 red tiles, then a green one


def test_sample_grid_takes_color_images_and_refuses_non_images():
    images = torch.rand(5, 3, 40, 30)
    image = sample_grid_image(images, torch.tensor([0, 1, 1, 0, 1]), torch.tensor([0, 1, 0, 0, 1]), ["cat", "dog"])
    assert image is not None and image.shape[0] == 3 and image.dtype == torch.uint8
    assert sample_grid_image(torch.randn(5, 20), torch.zeros(5), torch.zeros(5)) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_update_never_waits_for_the_gpu():
    logits = torch.randn(256, 10, device="cuda")
    targets = torch.randint(10, (256,), device="cuda")
    classification, regression = Metrics("classification", 10), Metrics("regression", None)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any wait for the device (.item(), bincount's max) raises
    try:
        for _ in range(3):
            classification.update(logits, targets)
            regression.update(logits[:, 0], logits[:, 1])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert classification.compute("val")["val/accuracy"] == pytest.approx((logits.argmax(1) == targets).float().mean())


# Two processes under torchrun (gloo, on the CPU), each with half of a split: after sum_across_processes both report
# the metrics of the whole split. The halves start with different targets, so that centring on rank 0's is needed.
TWO_HALVES = """
import json, sys
import torch
from trainer import distributed
from trainer.metrics import Metrics

distributed.start("cpu")
torch.manual_seed(0)
logits, labels = torch.randn(10, 3), torch.randint(0, 3, (10,))
outputs, values = torch.randn(10, 1) * 3, torch.randn(10, 1) * 3 + 100
mine = slice(0, 4) if distributed.rank() == 0 else slice(4, 10)  # halves of different sizes
names = ["accuracy", "top5", "per_class_accuracy", "confusion_matrix"]
classes = Metrics("classification", 3, names)
classes.update(logits[mine], labels[mine])
numbers = Metrics("regression", None)
numbers.update(outputs[mine], values[mine])
for metrics in (classes, numbers):
    metrics.sum_across_processes()
result = {**classes.compute("val"), **numbers.compute("val"), "per_class": classes.per_class_accuracy(),
          "confusion": classes.confusion_matrix().tolist()}
with open(f"rank{distributed.rank()}.json", "w") as file:  # a file each: the processes' prints may interleave
    json.dump(result, file)
distributed.stop()
"""


def test_two_processes_report_the_metrics_of_the_whole_split(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "halves.py").write_text(TWO_HALVES)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(tmp_path / "halves.py"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = {rank: json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    torch.manual_seed(0)
    logits, labels = torch.randn(10, 3), torch.randint(0, 3, (10,))
    outputs, values = torch.randn(10, 1) * 3, torch.randn(10, 1) * 3 + 100
    classes = Metrics("classification", 3, ["accuracy", "top5", "per_class_accuracy", "confusion_matrix"])
    classes.update(logits, labels)
    numbers = Metrics("regression", None)
    numbers.update(outputs, values)
    whole = {**classes.compute("val"), **numbers.compute("val")}
    for alone in (classes, numbers):  # one process: nothing to add up
        alone.sum_across_processes()
    assert {**classes.compute("val"), **numbers.compute("val")} == whole
    for rank in (0, 1):
        got = results[rank]
        assert {name: got[name] for name in whole} == pytest.approx(whole, rel=1e-6)
        assert got["per_class"] == pytest.approx(classes.per_class_accuracy(), nan_ok=True)
        assert got["confusion"] == classes.confusion_matrix().tolist()


@pytest.mark.parametrize(
    ("logits", "targets", "said"),
    [
        (torch.zeros(4), torch.zeros(4).long(), "classification metrics need logits of shape (N, C), got [4]"),
        (torch.zeros(4, 5), torch.zeros(4).long(), "the model outputs 5 scores, but the metrics count 3 classes"),
    ],
)
def test_outputs_that_do_not_fit_the_classes_are_named(logits, targets, said):
    with pytest.raises(ValueError) as failure:
        Metrics("classification", 3).update(logits, targets)
    assert str(failure.value) == said


def test_scores_per_position_are_counted_per_position():
    """Logits (N, C, L) against targets (N, L), as for a label per pixel or per token: C is the class axis."""
    logits = torch.zeros(2, 3, 4)
    logits[:, 2] = 1.0  # class 2 everywhere
    targets = torch.tensor([[2, 2, 0, 1], [2, 2, 2, 0]])
    metrics = Metrics("classification", 3, ["accuracy", "per_class_accuracy", "confusion_matrix"])
    metrics.update(logits, targets)
    assert metrics.compute("val")["val/accuracy"] == pytest.approx(5 / 8)
    assert metrics.per_class_accuracy() == pytest.approx([0.0, 0.0, 1.0])
    assert metrics.confusion_matrix().tolist() == [[0, 0, 2], [0, 0, 1], [0, 0, 5]]


def test_batches_of_one_sample_count_like_any_other():
    classes, numbers = Metrics("classification", 2), Metrics("regression", None)
    for x, y in [(torch.tensor([[1.0, 0.0]]), torch.tensor([0])), (torch.tensor([[1.0, 0.0]]), torch.tensor([1]))]:
        classes.update(x, y)
    assert classes.compute("val")["val/accuracy"] == 0.5
    for out, y in [(torch.tensor([[1.0]]), torch.tensor([[2.0]])), (torch.tensor([[5.0]]), torch.tensor([[3.0]]))]:
        numbers.update(out, y)
    assert numbers.compute("val") == pytest.approx({"val/mae": 1.5, "val/rmse": 1.5811388, "val/r2": -9.0})


def test_r2_of_targets_that_vary_little_is_still_computed():
    targets = torch.tensor([[0.1], [0.2], [0.3], [0.4]])  # their squared deviations add up to 0.05, below 1
    metrics = Metrics("regression", None)
    metrics.update(targets + 0.01, targets)
    assert metrics.compute("val")["val/r2"] == pytest.approx(1 - 4 * 0.01**2 / 0.05, rel=1e-4)


def test_only_the_metrics_asked_for_are_kept_and_none_seen_reads_as_nothing_yet():
    plain = Metrics("classification", 3, ["accuracy"])
    plain.update(torch.eye(3), torch.arange(3))
    assert plain.confusion_matrix() is None and plain.per_class_accuracy() is None
    empty = Metrics("classification", 3, ["accuracy", "per_class_accuracy", "confusion_matrix"])
    assert empty.confusion_matrix().tolist() == [[0] * 3] * 3 and empty.confusion_matrix().dtype == torch.int64
    per_class = empty.per_class_accuracy()
    assert len(per_class) == 3 and all(math.isnan(v) for v in per_class)


def test_a_table_with_class_names_of_the_wrong_number_is_refused():
    with pytest.raises(ValueError, match=r"^2 class names for 3 classes$"):
        format_table({"val/accuracy": 0.5}, [0.1, 0.2, 0.3], ["cat", "dog"])


def test_top5_is_a_default_from_six_classes_on():
    assert "top5" not in default_metrics("classification", 5) and "top5" in default_metrics("classification", 6)
    assert "top5" not in default_metrics("classification", None)


def test_a_classification_metric_named_for_a_regression_says_it_belongs_to_the_other_task():
    assert check_metric_names(["accuracy"], "regression") == [
        "'accuracy' is not a regression metric. Try one of: mae, rmse, r2"
    ]


def test_an_unknown_task_is_refused_with_a_suggestion():
    with pytest.raises(ValueError) as failure:
        default_metrics("clasification", 3)
    assert str(failure.value) == (
        "task must be 'classification' or 'regression', got 'clasification' (did you mean 'classification'?)"
    )


def test_class_probabilities_as_targets_count_their_likeliest_class():
    """Soft targets (label smoothing, mixup) of the logits' shape: accuracy is against their likeliest class."""
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    soft = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    metrics = Metrics("classification", 3, ["accuracy", "confusion_matrix"])
    metrics.update(logits, soft)
    assert metrics.compute("val")["val/accuracy"] == pytest.approx(2 / 3)
    assert metrics.confusion_matrix().tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    labels = Metrics("classification", 3)
    labels.update(logits, torch.tensor([0.0, 2.0, 2.0]))  # float labels, not of the logits' shape: labels still
    assert labels.compute("val")["val/accuracy"] == pytest.approx(2 / 3)


def test_samples_at_the_loss_ignore_index_count_for_no_metric():
    """Labels of -100 (cross entropy's ignore_index: unlabelled samples) are left out as the loss leaves them out."""
    names = ["accuracy", "top5", "per_class_accuracy", "confusion_matrix"]
    logits = F.one_hot(torch.tensor([0, 1, 2, 2, 1, 0]), 6).float()
    logits[3, :2] = torch.tensor([-1.0, 0.5])  # wrong, but the true class 1 is second: within the top 5
    metrics = Metrics("classification", 6, names)
    metrics.update(logits, torch.tensor([0, 1, -100, 1, -100, -100]))
    values = metrics.compute("val")
    assert values["val/accuracy"] == 2 / 3 and values["val/top5"] == 1.0
    assert metrics.confusion_matrix().sum() == 3 and metrics.confusion_matrix()[1].tolist() == [0, 1, 1, 0, 0, 0]
    assert metrics.per_class_accuracy()[:2] == [1.0, 0.5]
    only_ignored = Metrics("classification", 6, names)
    only_ignored.update(logits[:2], torch.tensor([-100, -100]))
    assert all(math.isnan(value) for value in only_ignored.compute("val").values())


def test_the_sample_grid_leaves_out_samples_without_a_label():
    images = torch.rand(4, 1, 8, 8)
    grid = sample_grid_image(images, torch.tensor([0, 1, 1, 0]), torch.tensor([0, -100, 1, -100]), ["a", "b"])
    alone = sample_grid_image(images[[0, 2]], torch.tensor([0, 1]), torch.tensor([0, 1]), ["a", "b"])
    assert grid is not None and torch.equal(grid, alone)
    assert sample_grid_image(images[:2], torch.tensor([0, 1]), torch.tensor([-100, -100]), ["a", "b"]) is None
