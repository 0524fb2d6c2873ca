"""The learning-rate range test finds a learning rate that trains, leaves the model as it was, and draws its curve."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from trainer.components.splits import InMemoryLoader
from trainer.lr_find import RULES, LRFindResult, log_to_tensorboard, lr_find, save_plot_png, suggest_lr


def two_blobs(n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 2-d points around (-1, -1) and (1, 1): a small MLP separates them in a few dozen steps."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(2, (n,), generator=generator)
    inputs = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])[targets] + 0.7 * torch.randn(n, 2, generator=generator)
    return inputs, targets


def new_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))


def blobs_loader() -> InMemoryLoader:
    inputs, targets = two_blobs()
    return InMemoryLoader(inputs, targets, batch_size=32, shuffle=True)  # 16 batches: lr_find cycles it


def train_loss(lr: float, epochs: int = 2) -> float:
    """The loss on the whole data set after a short run of plain SGD at `lr`."""
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = blobs_loader()
    for _ in range(epochs):
        for inputs, targets in loader:
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return nn.functional.cross_entropy(model(two_blobs()[0]), two_blobs()[1]).item()


@pytest.fixture(scope="module")
def result() -> LRFindResult:
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return lr_find(model, nn.CrossEntropyLoss(), optimizer, blobs_loader(), start_lr=1e-6, end_lr=1e3, steps=150)


def test_suggestion_is_a_tenth_of_the_lr_at_the_loss_minimum_and_trains_well(result):
    assert result.suggestion is not None
    assert result.reason.startswith(f'suggestion: {result.suggestion:.1e} (the "minimum/10" rule')
    assert "diverged" in result.reason
    lowest = min(range(len(result.losses)), key=result.losses.__getitem__)
    assert result.suggestion == pytest.approx(result.lrs[lowest] / 10)
    assert 1e-6 < result.suggestion < result.lrs[-1]
    # On this problem the search suggests about 0.9; plain SGD works from about 0.05 to 2.
    assert 0.05 < result.suggestion < 2
    assert train_loss(result.suggestion) < 0.5 * train_loss(result.suggestion / 100)


def sigmoid_curve(noisy_step: int | None = None) -> tuple[list[float], list[float]]:
    """A smoothed range-test curve: flat at 1.0, falling to 0.1 around lr 1e-2, then blowing up after lr 0.1."""
    lrs = [10 ** (-6 + 6 * i / 199) for i in range(200)]
    losses = [0.1 + 0.9 / (1 + math.exp(4 * (math.log10(lr) + 2))) for lr in lrs]
    losses = [loss + (50 * (math.log10(lr) + 1) ** 2 if lr > 0.1 else 0) for lr, loss in zip(lrs, losses, strict=True)]
    if noisy_step is not None:
        losses[noisy_step] -= 0.1
    return lrs, losses


def test_each_rule_reads_the_curve_its_own_way_and_says_which_it_is():
    lrs, losses = sigmoid_curve()
    lowest = min(range(len(losses)), key=losses.__getitem__)
    by_rule = {rule: suggest_lr(lrs, losses, rule) for rule in RULES}
    assert by_rule["minimum/10"][0] == pytest.approx(lrs[lowest] / 10)
    assert 10**-2.5 < by_rule["steepest"][0] < 10**-1.5  # the middle of the fall, at 1e-2
    assert 10**-5 < by_rule["valley"][0] < by_rule["steepest"][0]  # halfway along the long, slow start of the fall
    for rule, (_, reason) in by_rule.items():
        assert f'the "{rule}" rule' in reason
    assert suggest_lr(lrs, losses)[0] == by_rule["minimum/10"][0]  # the default rule
    with pytest.raises(ValueError, match="unknown lr-find rule 'fastest'"):
        suggest_lr(lrs, losses, "fastest")


def test_a_curve_still_falling_at_the_end_says_a_larger_end_may_suggest_more():
    lrs = [10 ** (-6 + 4 * i / 99) for i in range(100)]
    losses = [1.0 - 0.005 * i for i in range(100)]
    suggestion, reason = suggest_lr(lrs, losses)
    assert suggestion == pytest.approx(lrs[-1] / 10)
    assert "still falling when the search ended: a larger --end may suggest more" in reason


def test_lrs_grow_exponentially_from_start_lr(result):
    assert result.lrs[0] == pytest.approx(1e-6)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:], strict=False)]
    assert ratios == pytest.approx([(1e3 / 1e-6) ** (1 / 149)] * len(ratios))
    assert len(result.losses) == len(result.raw_losses) == len(result.lrs)


def test_search_stops_early_when_the_loss_diverges():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    found = lr_find(model, nn.CrossEntropyLoss(), optimizer, blobs_loader(), start_lr=1e-4, end_lr=1e6, steps=200)
    assert 10 < len(found.lrs) < 200
    assert found.lrs[-1] < 1e6
    assert found.losses[-1] > 4 * min(found.losses) or "became nan" in found.reason or "became inf" in found.reason
    assert "stopped at lr" in found.reason


def test_model_and_optimizer_are_left_exactly_as_they_were():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    for inputs, targets in list(blobs_loader())[:3]:  # a few real steps, so that there are momentum buffers
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    model.eval()
    weights = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())

    lr_find(model, nn.CrossEntropyLoss(), optimizer, blobs_loader(), start_lr=1e-4, end_lr=10, steps=50)

    assert all(torch.equal(model.state_dict()[name], value) for name, value in weights.items())
    assert all(torch.equal(p.grad, grad) for p, grad in zip(model.parameters(), grads, strict=True))
    assert not model.training
    after = optimizer.state_dict()
    assert after["param_groups"] == optimizer_state["param_groups"]
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert after["state"].keys() == optimizer_state["state"].keys()
    for index, state in optimizer_state["state"].items():
        assert torch.equal(after["state"][index]["momentum_buffer"], state["momentum_buffer"])


def test_model_is_restored_when_the_search_fails():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    weights = copy.deepcopy(model.state_dict())
    calls = 0

    def failing_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise RuntimeError("out of memory, say")
        return nn.functional.cross_entropy(logits, targets)

    with pytest.raises(RuntimeError, match="out of memory"):
        lr_find(model, failing_loss, optimizer, blobs_loader(), start_lr=1e-2, end_lr=10, steps=50)
    assert all(torch.equal(model.state_dict()[name], value) for name, value in weights.items())
    assert optimizer.param_groups[0]["lr"] == 0.05


def test_too_few_steps_give_no_suggestion_and_say_why():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    found = lr_find(model, nn.CrossEntropyLoss(), optimizer, blobs_loader(), steps=5)
    assert found.suggestion is None
    assert found.reason.startswith("No suggestion: only 5 steps were recorded")


def test_an_empty_loader_is_an_error_that_says_what_to_pass():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"the loader gave no batches.*Try: pass a DataLoader"):
        lr_find(model, nn.CrossEntropyLoss(), optimizer, iter([]), steps=20)


def test_one_noisy_step_does_not_make_the_steepest_descent_nor_the_minimum():
    lrs, losses = sigmoid_curve(noisy_step=33)  # a dip of 0.1 at lr 1e-5, on the flat part
    steepest, _ = suggest_lr(lrs, losses, "steepest")
    assert steepest is not None and 10**-2.5 < steepest < 10**-1.5
    lowest = min(range(len(losses)), key=losses.__getitem__)
    assert suggest_lr(lrs, losses)[0] == pytest.approx(lrs[lowest] / 10) and lrs[lowest] > 1e-2


def test_plot_is_a_readable_png(result, tmp_path):
    path = tmp_path / "plots" / "lr_find.png"
    save_plot_png(result, path)
    image = Image.open(path)
    assert image.format == "PNG"
    assert image.size == (800, 480)
    pixels = image.convert("RGB")
    colors = pixels.getcolors(maxcolors=800 * 480)
    assert len(colors) > 20  # curves, text, grid and marker, not a blank or one-colour image
    white = max(count for count, color in colors if color == (255, 255, 255))
    assert 0.5 < white / (800 * 480) < 0.98
    marker_red = sum(count for count, (r, g, b) in colors if r > 180 and g < 90 and b < 90)
    assert marker_red > 50  # the dashed line at the suggestion
    assert list(tmp_path.joinpath("plots").iterdir()) == [path]  # no temporary file left behind


def test_tensorboard_gets_the_curve_as_scalars_and_as_an_image(result, tmp_path):
    writer = SummaryWriter(str(tmp_path))
    log_to_tensorboard(result, writer)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    losses = events.Scalars("lr_find/loss")
    assert [s.step for s in losses] == list(range(len(result.lrs)))
    assert [s.value for s in losses] == pytest.approx(result.losses, rel=1e-6)
    assert [s.value for s in events.Scalars("lr_find/lr")] == pytest.approx(result.lrs, rel=1e-6)
    (curve,) = events.Images("lr_find/curve")
    assert (curve.width, curve.height) == (800, 480)
    image = Image.open(io.BytesIO(curve.encoded_image_string))
    assert len(image.convert("RGB").getcolors(maxcolors=800 * 480)) > 20


def test_lr_find_command_prints_a_suggestion_to_paste(tmp_path, monkeypatch, capsys):
    from tests.conftest import SYNTHETIC
    from trainer.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    assert main(["lr-find", "config.yaml", "--steps", "60", "--end", "100"]) == 0
    out = capsys.readouterr().out
    assert "Try: python -m trainer config.yaml optimizer.lr=" in out
    (png,) = (tmp_path / "runs" / "tiny-lr-find").glob("*/lr_find.png")
    assert png.stat().st_size > 5000


def test_a_run_folder_under_a_file_is_refused_before_the_search_starts(write_config, run_cli, tmp_path, monkeypatch):
    from tests.conftest import SYNTHETIC
    from trainer import run

    (tmp_path / "notes.txt").write_text("my notes")
    monkeypatch.setattr(run, "lr_find", lambda *args, **kwargs: pytest.fail("the search ran before the refusal"))
    code, _, err = run_cli("lr-find", write_config(SYNTHETIC), f"log.dir={tmp_path / 'notes.txt' / 'runs'}")
    assert code == 2
    assert f"cannot make the run folder {tmp_path / 'notes.txt' / 'runs'}: {tmp_path / 'notes.txt'} is a file" in err
    assert (tmp_path / "notes.txt").read_text() == "my notes"
