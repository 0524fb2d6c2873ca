"""The learning-rate range test (Leslie Smith, 2015): raise the lr step by step and watch the loss, to choose an lr
before training. The model and optimizer are left exactly as they were."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from trainer.atomic import write_atomic

LossFn = Callable[[Tensor, Tensor], Tensor]
MIN_POINTS = 10  # a curve with fewer steps says too little to suggest anything

# The plot is drawn at twice its size and then shrunk, because Pillow draws lines without anti-aliasing.
WIDTH, HEIGHT, SCALE = 800, 480, 2
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 56, 58  # margins around the plot area, in pixels of the final image
TEXT, AXIS, GRID = (40, 40, 40), (110, 110, 110), (232, 232, 232)
RAW, SMOOTHED, MARKER = (190, 208, 230), (31, 119, 180), (214, 39, 40)


@dataclass
class LRFindResult:
    lrs: list[float]  # the lr of each recorded step
    losses: list[float]  # the loss of each step, smoothed: the curve to read
    raw_losses: list[float]  # the loss of each step as it came
    suggestion: float | None
    reason: str  # one sentence: how the suggestion was chosen, or why there is none


def lr_find(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 200,
    device: torch.device | str = "cpu",
    diverge_factor: float = 4.0,
    smoothing: float = 0.05,
    rule: str = "minimum/10",
) -> LRFindResult:
    """Train for up to `steps` batches while the lr grows exponentially from `start_lr` to `end_lr`.

    The loss first barely moves (lr too small), then falls, then blows up (lr too large). The search stops once
    the smoothed loss exceeds `diverge_factor` times its best (losses are taken to be positive, as cross entropy
    and MSE are). `smoothing` is the weight of each new loss in the moving average. The suggestion follows `rule`
    (see `suggest_lr`); train with it, or read the curve yourself with `save_plot_png`.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if steps < 2 or not 0 < smoothing <= 1:
        raise ValueError(f"lr_find needs steps >= 2 and 0 < smoothing <= 1, got steps={steps}, smoothing={smoothing}")
    device = torch.device(device)
    params = list(model.parameters())
    home = params[0].device if params else device
    # Deep copies: state_dict() returns the live tensors, which the steps below overwrite in place.
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    was_training = model.training

    lrs: list[float] = []
    losses: list[float] = []
    raw_losses: list[float] = []
    stop = f"the search ran all {steps} steps up to lr {end_lr:.1e}"
    try:
        model.to(device).train()
        batches = _forever(loader)
        average, best = 0.0, math.inf
        for step in range(steps):
            lr = start_lr * (end_lr / start_lr) ** (step / (steps - 1))  # equal steps on a log scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, targets = next(batches)
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            raw = loss.item()  # the stop test needs the value now, so this waits for the device every step
            # A moving average starts at 0; dividing by 1 - (1 - smoothing)^n removes that pull towards 0.
            average = (1 - smoothing) * average + smoothing * raw
            smoothed = average / (1 - (1 - smoothing) ** (step + 1))
            if not math.isfinite(smoothed):
                stop = f"the search stopped at lr {lr:.1e} where the loss became {raw}"
                break
            lrs.append(lr)
            losses.append(smoothed)
            raw_losses.append(raw)
            if smoothed > diverge_factor * best:
                stop = f"the search stopped at lr {lr:.1e} where the loss diverged"
                break
            best = min(best, smoothed)
    finally:  # also after an error: the model and optimizer must come back as they were
        model.to(home)
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)  # this also puts back each param group's lr
        for param, grad in zip(params, saved_grads, strict=True):
            param.grad = grad
        model.train(was_training)

    suggestion, reason = suggest_lr(lrs, losses, rule)
    return LRFindResult(lrs, losses, raw_losses, suggestion, f"{reason}; {stop}.")


def _forever(loader: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
    """The loader's batches, starting it over when it runs out, so that a short loader still gives every step."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError(
                "lr_find: the loader gave no batches (a generator or iterator runs out after one pass). "
                "Try: pass a DataLoader, an InMemoryLoader or a list of batches"
            )


def suggest_lr(lrs: list[float], losses: list[float], rule: str = "minimum/10") -> tuple[float | None, str]:
    """The suggested lr of a smoothed range-test curve, by one of RULES, and a sentence saying how it was found.

    "minimum/10" is the default. bench/lr_find_rules.py trains one epoch at each rule's suggestion: on the shipped
    MNIST configs (AdamW with one_cycle) "minimum/10" suggests 1.2-2.4e-3 and ends within 1.0-1.1x of the best
    val/loss, where "steepest" suggests 3-9x less (1.3-1.8x the loss) and fastai's "valley" 10-20x less (2-3x).
    """
    n = len(losses)
    if n < MIN_POINTS:
        return None, f"No suggestion: only {n} steps were recorded ({MIN_POINTS} needed), try a smaller start_lr"
    lowest = min(range(n), key=losses.__getitem__)
    if lowest == 0:
        return None, "No suggestion: the loss never fell below its first value, try a smaller start_lr"
    if rule not in RULES:
        raise ValueError(f"unknown lr-find rule {rule!r}; the rules: {', '.join(RULES)}")
    index, how = RULES[rule](lrs, losses, lowest)
    lr = lrs[index] if index is not None else lrs[lowest] / 10  # a rule that finds nothing falls back to this
    return lr, f"suggestion: {lr:.1e} {how}"


def _valley(lrs: list[float], losses: list[float], lowest: int) -> tuple[int | None, str]:
    """Halfway along the longest valley of the curve (fastai's "valley" rule, from ESRI's suggester).

    The valley's length is the longest run of ever lower losses (a decreasing subsequence: noise may interrupt
    it, a rise may not), counted back from where it ends. On a curve with a long flat start (many steps, light
    smoothing, as here) the valley reaches far into the flat part, and its middle lies well below the steepest point.
    """
    n = len(losses)
    first = n // 10  # the first tenth of an average of a few batches is still noisy
    length = [1] * n  # length[i]: the most steps of ever lower losses that end at step i
    for i in range(first, n):
        length[i] = 1 + max((length[j] for j in range(first, i) if losses[j] > losses[i]), default=0)
    end = max(range(first, n), key=length.__getitem__)  # the first step where the longest run ends
    start = max(end - length[end], first)
    if end - start < 3:
        return None, (
            '(a tenth of the lr at the loss minimum: the loss fell too briefly to measure the "valley" rule\'s '
            f"valley; minimum at lr {lrs[lowest]:.1e})"
        )
    return start + (end - start) // 2, (
        f'(the "valley" rule: halfway along the longest stretch where the loss keeps falling, '
        f"lr {lrs[start]:.1e} to {lrs[end]:.1e})"
    )


def _steepest(lrs: list[float], losses: list[float], lowest: int) -> tuple[int | None, str]:
    """The lr where the smoothed loss falls fastest against log10(lr), looking only before its minimum."""
    n = len(losses)
    # Each slope spans a few steps on either side, so that one noisy step cannot make the steepest descent.
    span = max(1, n // 40)
    log_lrs = [math.log10(lr) for lr in lrs]
    slopes = {}
    for i in range(min(n // 10, lowest - 1), lowest):
        before, after = max(i - span, 0), min(i + span, lowest)
        slopes[i] = (losses[after] - losses[before]) / (log_lrs[after] - log_lrs[before])
    steepest = min(slopes, key=slopes.__getitem__)
    if slopes[steepest] < 0 and lowest >= 3:
        minimum = f"before its minimum at lr {lrs[lowest]:.1e}"
        return steepest, f'(the "steepest" rule: where the loss falls fastest, {minimum})'
    return None, "(a tenth of the lr at the loss minimum: the loss fell too briefly to measure its steepest descent)"


def _minimum(lrs: list[float], losses: list[float], lowest: int) -> tuple[int | None, str]:
    """A tenth of the lr at the lowest loss: at the minimum itself the loss is about to blow up."""
    ended = lowest == len(losses) - 1
    still = "; the loss was still falling when the search ended: a larger --end may suggest more" if ended else ""
    return None, f'(the "minimum/10" rule: a tenth of the lr {lrs[lowest]:.1e} where the loss was lowest{still})'


RULES: dict[str, Callable[[list[float], list[float], int], tuple[int | None, str]]] = {
    "valley": _valley,
    "steepest": _steepest,
    "minimum/10": _minimum,
}


def save_plot_png(result: LRFindResult, path: str | Path) -> None:
    """Draw the loss against the lr (log scale) with the suggestion marked, as a PNG at `path`."""
    buffer = io.BytesIO()
    render_plot(result).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def log_to_tensorboard(result: LRFindResult, writer: Any) -> None:
    """The curve as scalars (step = index of the step; TensorBoard has no log-scale x axis) and as an image."""
    for step, (lr, loss) in enumerate(zip(result.lrs, result.losses, strict=True)):
        writer.add_scalar("lr_find/loss", loss, step)
        writer.add_scalar("lr_find/lr", lr, step)
    pixels = torch.from_numpy(np.array(render_plot(result))).permute(2, 0, 1)  # height, width, RGB -> C, H, W
    writer.add_image("lr_find/curve", pixels, 0)
    writer.flush()


def render_plot(result: LRFindResult) -> Image.Image:
    """The plot as an RGB image of WIDTH x HEIGHT pixels, drawn with Pillow alone."""
    s = SCALE
    image = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13 * s)  # Pillow's own font, scalable since Pillow 10.1
    title_font = ImageFont.load_default(size=16 * s)
    left, top, right, bottom = LEFT * s, TOP * s, (WIDTH - RIGHT) * s, (HEIGHT - BOTTOM) * s
    width, height = right - left, bottom - top

    suggested = "no suggestion" if result.suggestion is None else f"suggested lr {result.suggestion:.1e}"
    title = f"Learning-rate range test: {suggested}"
    draw.text((left, 16 * s), title, fill=TEXT, font=title_font)
    _draw_legend(draw, right, 22 * s, font)
    draw.text(((left + right) // 2, (HEIGHT - 8) * s), "learning rate (log scale)", fill=TEXT, font=font, anchor="md")
    _draw_vertical_text(image, "loss", (14 * s, (top + bottom) // 2), font)

    if len(result.lrs) < 2:
        draw.rectangle((left, top, right, bottom), outline=AXIS, width=s)
        message = f"Too few steps to draw ({len(result.lrs)})"
        draw.text(((left + right) // 2, (top + bottom) // 2), message, fill=TEXT, font=font, anchor="mm")
        return image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)

    first_decade = math.floor(math.log10(min(result.lrs)))
    last_decade = max(math.ceil(math.log10(max(result.lrs))), first_decade + 1)
    y_low, y_high = _loss_range(result.losses)

    def x_of(lr: float) -> float:
        return (math.log10(lr) - first_decade) / (last_decade - first_decade) * width

    def y_of(loss: float) -> float:
        y = (y_high - loss) / (y_high - y_low) * height
        return min(max(y, -10 * height), 11 * height)  # a huge raw loss far off the plot is cut anyway

    # Grid, curves and marker go on their own image, whose edges cut off whatever runs beyond the axes.
    area = Image.new("RGB", (width, height), "white")
    area_draw = ImageDraw.Draw(area)
    decade_step = 1 if last_decade - first_decade <= 10 else 2
    decades = range(first_decade, last_decade + 1, decade_step)
    y_ticks, y_step = _nice_ticks(y_low, y_high)
    for decade in decades:
        x = x_of(10.0**decade)
        area_draw.line([(x, 0), (x, height)], fill=GRID, width=s)
    for tick in y_ticks:
        y = y_of(tick)
        area_draw.line([(0, y), (width, y)], fill=GRID, width=s)
    raw_curve = [(x_of(lr), y_of(loss)) for lr, loss in zip(result.lrs, result.raw_losses, strict=True)]
    area_draw.line(raw_curve, fill=RAW, width=s)
    curve = [(x_of(lr), y_of(loss)) for lr, loss in zip(result.lrs, result.losses, strict=True)]
    area_draw.line(curve, fill=SMOOTHED, width=2 * s, joint="curve")
    if result.suggestion is not None:
        _draw_marker(area_draw, x_of(result.suggestion), width, height, result.suggestion, font)
    image.paste(area, (left, top))

    draw.rectangle((left, top, right, bottom), outline=AXIS, width=s)
    for decade in decades:
        x = left + x_of(10.0**decade)
        draw.line([(x, bottom), (x, bottom + 6 * s)], fill=AXIS, width=s)
        draw.text((x, bottom + 9 * s), f"1e{decade}", fill=TEXT, font=font, anchor="ma")
    for decade in range(first_decade, last_decade):
        for multiple in range(2, 10):  # short ticks at 2e.., 3e.., ... 9e.. show the scale is logarithmic
            x = left + x_of(multiple * 10.0**decade)
            draw.line([(x, bottom), (x, bottom + 3 * s)], fill=AXIS, width=s)
    decimals = max(0, -math.floor(math.log10(y_step)))
    for tick in y_ticks:
        y = top + y_of(tick)
        draw.line([(left - 6 * s, y), (left, y)], fill=AXIS, width=s)
        draw.text((left - 9 * s, y), f"{tick:.{decimals}f}", fill=TEXT, font=font, anchor="rm")
    return image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)


def _loss_range(losses: list[float]) -> tuple[float, float]:
    """The y range: the whole fall of the loss, and its rise after the minimum up to as high again."""
    low = min(losses)
    fall_top = max(losses[: losses.index(low) + 1])
    high = min(max(losses), fall_top + (fall_top - low))
    if high - low < 1e-12:  # a flat curve still needs a range to draw in
        high, low = high + max(abs(high), 1.0) * 0.5, low - max(abs(low), 1.0) * 0.5
    margin = (high - low) * 0.05
    return low - margin, high + margin


def _nice_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], float]:
    """About `count` ticks between low and high, a round step apart (1, 2 or 5 times a power of ten)."""
    rough = (high - low) / count
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    first = math.ceil(low / step)
    ticks = [k * step for k in range(first, math.floor(high / step) + 1)]
    return ticks, step


def _draw_legend(draw: ImageDraw.ImageDraw, right: int, y: int, font: Any) -> None:
    s = SCALE
    x = right
    for label, color, line_width in (("raw loss", RAW, s), ("smoothed loss", SMOOTHED, 2 * s)):
        x -= int(draw.textlength(label, font=font))
        draw.text((x, y), label, fill=TEXT, font=font, anchor="lm")
        draw.line([(x - 26 * s, y), (x - 6 * s, y)], fill=color, width=line_width)
        x -= 44 * s


def _draw_marker(draw: ImageDraw.ImageDraw, x: float, width: int, height: int, lr: float, font: Any) -> None:
    """A dashed vertical line at the suggested lr, with its value beside it."""
    s = SCALE
    for y in range(0, height, 10 * s):
        draw.line([(x, y), (x, min(y + 6 * s, height))], fill=MARKER, width=2 * s)
    label = f"{lr:.1e}"
    if x + 8 * s + draw.textlength(label, font=font) < width:
        draw.text((x + 6 * s, 8 * s), label, fill=MARKER, font=font, anchor="la")
    else:  # no room on the right: write it on the left of the line
        draw.text((x - 6 * s, 8 * s), label, fill=MARKER, font=font, anchor="ra")


def _draw_vertical_text(image: Image.Image, text: str, center: tuple[int, int], font: Any) -> None:
    """Pillow writes only horizontally, so write on a strip of its own and turn it a quarter turn."""
    box = font.getbbox(text)
    strip = Image.new("RGB", (box[2] + 4, box[3] + 4), "white")
    ImageDraw.Draw(strip).text((2, 2), text, fill=TEXT, font=font)
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (center[0] - strip.width // 2, center[1] - strip.height // 2))
