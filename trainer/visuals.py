"""Pictures of a model's results for TensorBoard's Images tab: the confusion matrix and a grid of sample predictions,
drawn with Pillow alone and returned as C x H x W uint8 tensors, as `SummaryWriter.add_image` takes them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

TEXT, AXIS, FAINT = (40, 40, 40), (110, 110, 110), (185, 185, 185)
WRONG, RIGHT = (214, 39, 40), (30, 140, 45)
# The colour scale from 0 to 1, white to dark blue through mid blue (close to matplotlib's "Blues").
SCALE_STOPS = ((247, 251, 255), (107, 174, 214), (8, 48, 107))
# TensorBoard draws a picture at most about 360 pixels wide on its cards, shrinking wider ones, text and all; the
# pictures are drawn for that width, so their text stays legible at the default card size.
CARD_WIDTH = 360
MAX_CELL = 40  # the side of a confusion matrix cell, for few classes
COUNTS_UP_TO = 20  # classes; beyond that the cells are too small to write the counts in
TILE, COLUMNS = 64, 4  # the side of each sample's image in the grid, and samples per row
MAX_NAME = 16  # characters of a class name shown; longer names are cut


def confusion_matrix_image(matrix: torch.Tensor, class_names: list[str] | None = None) -> torch.Tensor:
    """A heat map of a C x C confusion matrix (rows: true class, columns: predicted class) as a 3 x H x W image.

    Each row is coloured by its share of the true class, so that a rare class's mistakes show as plainly as a
    common one's; the raw counts are written in the cells when there are at most COUNTS_UP_TO classes.
    """
    counts = matrix.detach().cpu().long()
    c = counts.shape[0]
    if counts.shape != (c, c) or c == 0:
        raise ValueError(f"a confusion matrix is C x C with C >= 1, got {list(counts.shape)}")
    names = _class_names(class_names, c)
    shares = (counts / counts.sum(dim=1, keepdim=True).clamp(min=1)).tolist()
    total, right = int(counts.sum()), int(counts.trace())

    font_size = 12
    font = ImageFont.load_default(size=font_size)
    # The row labels' width is known once their font is, and that depends on the cell: guess 12 pixels, then fit.
    bar_width = 10 + 14 + 4 + int(font.getlength("100%")) + 8  # gap, bar, tick, "100%", margin
    for label_size in (12, 11, 10, 9):
        label_font = ImageFont.load_default(size=label_size)
        label_width = int(max(label_font.getlength(name) for name in names))
        left = 8 + font_size + 6 + label_width + 6  # axis title "true", row labels, gap
        cell = min(max((CARD_WIDTH - left - bar_width) // c, 2), MAX_CELL)
        if label_size <= cell - 2 or label_size == 9:
            break
    grid = cell * c
    step = math.ceil((label_size + 2) / cell)  # with many classes label every step-th one, so labels never touch
    labelled = range(0, c, step)
    column_width = int(max(label_font.getlength(names[i]) for i in labelled))
    upright = column_width <= cell * step - 2  # column labels that fit across their column stay horizontal
    column_labels_height = label_size + 2 if upright else column_width

    top = 50
    bottom = top + grid + 6 + column_labels_height + 8 + font_size + 10
    bar_left = left + grid + 10
    accuracy = f", {right / total:.1%} right" if total else ""
    title = f"Confusion matrix: {total:,} samples{accuracy}"
    subtitle = "colour: share of the true class (rows add up to 100%)"
    small = ImageFont.load_default(size=11)
    title_font = ImageFont.load_default(size=14)
    width = max(bar_left + bar_width - 10, int(title_font.getlength(title)) + 16, int(small.getlength(subtitle)) + 16)
    image = Image.new("RGB", (width, bottom), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill=TEXT, font=title_font)
    draw.text((8, 28), subtitle, fill=AXIS, font=small)

    count_font = _count_font(counts, cell) if c <= COUNTS_UP_TO else None
    gap = 1 if cell >= 6 else 0  # thin white lines between cells, while cells are big enough to spare them
    for i in range(c):
        for j in range(c):
            x, y = left + j * cell, top + i * cell
            color = _scale_color(shares[i][j])
            draw.rectangle((x, y, x + cell - 1 - gap, y + cell - 1 - gap), fill=color)
            if count_font is not None:
                value = int(counts[i, j])
                ink = "white" if shares[i][j] > 0.5 else (TEXT if value else FAINT)
                center = (x + (cell - gap) / 2, y + (cell - gap) / 2)
                draw.text(center, str(value), fill=ink, font=count_font, anchor="mm")

    for i in labelled:
        middle = i * cell + (cell * min(step, c - i) - gap) / 2  # the middle of the step classes it stands for
        draw.text((left - 8, top + middle), names[i], fill=TEXT, font=label_font, anchor="rm")
        if upright:
            draw.text((left + middle, top + grid + 6), names[i], fill=TEXT, font=label_font, anchor="ma")
        else:
            _paste_vertical_text(image, names[i], label_font, (int(left + middle), top + grid + 8), align_top=True)
    draw.text((left + grid / 2, bottom - 12), "predicted", fill=TEXT, font=font, anchor="md")
    _paste_vertical_text(image, "true", font, (8 + font_size // 2, top + grid // 2))
    _draw_color_bar(image, bar_left, top, grid, font)
    return _to_tensor(image)


def sample_grid_image(
    inputs: torch.Tensor,
    predictions: torch.Tensor,
    targets: torch.Tensor,
    class_names: list[str] | None = None,
    limit: int = 16,
    split: tuple[str, int, int] | None = None,
) -> torch.Tensor | None:
    """Up to `limit` input images with what the model predicted, wrong ones first, as a 3 x H x W image.

    `inputs` are the batch the model saw (N x C x H x W, C 1 or 3, normalized or not: each image is stretched to
    full contrast on its own); `predictions` are class indices (N,) or logits (N, classes); `targets` class
    indices. `split`: (name, samples, wrong) of the whole split these samples were kept from, so that the heading
    counts the split and not the kept few. Returns None when the inputs are not images (or there are none).
    """
    if inputs.dim() != 4 or inputs.shape[1] not in (1, 3) or len(inputs) == 0:
        return None
    predicted, true = _as_classes(predictions), _as_classes(targets)
    labelled = true >= 0  # a negative target is the loss's ignore_index: a sample without a class to show
    if not labelled.all():
        inputs, predicted, true = inputs[labelled.to(inputs.device)], predicted[labelled], true[labelled]
        if len(true) == 0:
            return None
    order = sample_order(predicted, true, limit)
    wrong = int((predicted != true).sum())
    pairs = list(zip(predicted[order].tolist(), true[order].tolist(), strict=True))  # (predicted, true) per sample
    names = _class_names(class_names, 1 + max(max(pair) for pair in pairs))

    images = inputs.detach()[order].float().cpu()
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    images = (images - low) / (high - low).clamp(min=1e-12) * 255  # each image by its own range, as the eye needs
    images = images.round().to(torch.uint8).expand(-1, 3, -1, -1)  # grey images: the same value in R, G and B
    pixels = images.permute(0, 2, 3, 1).numpy()

    font_size = 11
    font = ImageFont.load_default(size=font_size)
    cell_width = TILE + 20
    captions = [(f"pred {names[p]}", f"true {names[t]}") for p, t in pairs]
    # One line "pred X / true Y" when every caption fits in it, else the two halves on two lines.
    one_line = all(font.getlength(f"{a} / {b}") <= cell_width - 6 for a, b in captions)
    lines = [[f"{a} / {b}"] if one_line else [a, b] for a, b in captions]
    line_height = font_size + 3
    cell_height = TILE + 20 + len(lines[0]) * line_height  # the image, its frame and its caption
    columns = min(COLUMNS, len(order))
    rows = math.ceil(len(order) / columns)
    top = 50
    image = Image.new("RGB", (max(columns * cell_width + 16, CARD_WIDTH - 8), top + rows * cell_height + 6), "white")
    draw = ImageDraw.Draw(image)
    wrong_first = ", wrong first" if wrong and len(order) > 1 else ""
    if split is not None:
        name, total, wrong_in_split = split
        share = f" ({wrong_in_split / total:.1%})" if total else ""
        heading = f"{name}: {total:,} samples, {wrong_in_split:,} predicted wrong{share}"
    else:
        heading = f"{len(inputs)} samples, {wrong} predicted wrong"
    shown = f"{len(order)} shown{wrong_first}; red: wrong, green: right"
    heading_font = ImageFont.load_default(size=14)
    draw.text((8, 8), _fit_text(heading, heading_font, image.width - 16), fill=TEXT, font=heading_font)
    draw.text((8, 28), shown, fill=AXIS, font=font)

    for k, (sample, (p, t), caption) in enumerate(zip(pixels, pairs, lines, strict=True)):
        x, y = 8 + (k % columns) * cell_width, top + (k // columns) * cell_height
        color = RIGHT if p == t else WRONG
        tile = _fit_tile(Image.fromarray(sample))
        frame = (x + (cell_width - TILE) // 2 - 3, y + 3)  # a 3-pixel frame in the caption's colour
        draw.rectangle((frame[0], frame[1], frame[0] + TILE + 5, frame[1] + TILE + 5), fill=color)
        draw.rectangle((frame[0] + 3, frame[1] + 3, frame[0] + TILE + 2, frame[1] + TILE + 2), fill="white")
        image.paste(tile, (frame[0] + 3 + (TILE - tile.width) // 2, frame[1] + 3 + (TILE - tile.height) // 2))
        for row, text in enumerate(caption):
            text = _fit_text(text, font, cell_width - 6)
            draw.text((x + cell_width / 2, y + TILE + 14 + row * line_height), text, fill=color, font=font, anchor="ma")
    return _to_tensor(image)


def sample_order(predictions: torch.Tensor, targets: torch.Tensor, limit: int = 16) -> list[int]:
    """The indices of the samples to show: the wrongly predicted ones first, each group in batch order."""
    wrong = (_as_classes(predictions) != _as_classes(targets)).tolist()
    order = [i for i, w in enumerate(wrong) if w] + [i for i, w in enumerate(wrong) if not w]
    return order[:limit]


def _as_classes(values: torch.Tensor) -> torch.Tensor:
    """Class indices from class indices, or from scores or probabilities (N, classes) by their largest entry."""
    values = values.detach()
    return (values.argmax(dim=1) if values.dim() == 2 else values.reshape(-1)).long().cpu()


def _class_names(class_names: list[str] | None, count: int) -> list[str]:
    """Names to write for classes 0..count-1: the given ones, else the numbers.

    A name longer than MAX_NAME characters loses its middle rather than its end, since names that differ
    only at the end ("layer_1", "layer_2") are common.
    """
    names = [str(i) for i in range(count)]
    for i, name in enumerate((class_names or [])[:count]):
        half = (MAX_NAME - 1) // 2
        names[i] = name if len(name) <= MAX_NAME else f"{name[:half]}…{name[-half:]}"
    return names


def _scale_color(share: float) -> tuple[int, int, int]:
    """The colour of a share from 0 to 1, between the stops of SCALE_STOPS."""
    position = min(max(share, 0.0), 1.0) * (len(SCALE_STOPS) - 1)
    k = min(int(position), len(SCALE_STOPS) - 2)
    start, end, t = SCALE_STOPS[k], SCALE_STOPS[k + 1], position - k
    return tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))  # type: ignore[return-value]


def _count_font(counts: torch.Tensor, cell: int) -> Any:
    """The largest font, up to 15 pixels, in which the widest count fits its cell."""
    widest = str(int(counts.max()))
    for size in range(min(15, cell // 2), 6, -1):
        font = ImageFont.load_default(size=size)
        if font.getlength(widest) <= cell - 6:
            return font
    return ImageFont.load_default(size=7)


def _draw_color_bar(image: Image.Image, x: int, top: int, height: int, font: Any) -> None:
    """A vertical bar of the colour scale, 100% at the top, with 0%, 50% and 100% marked."""
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(x, top + y), (x + 13, top + y)], fill=_scale_color(1 - y / max(height - 1, 1)))
    draw.rectangle((x, top, x + 13, top + height - 1), outline=FAINT)
    for share in (0.0, 0.5, 1.0):
        y = top + round((1 - share) * (height - 1))
        draw.line([(x + 14, y), (x + 17, y)], fill=AXIS)
        draw.text((x + 20, y), f"{share:.0%}", fill=TEXT, font=font, anchor="lm")


def _fit_tile(sample: Image.Image) -> Image.Image:
    """The sample scaled to fit TILE x TILE: small images by whole multiples, so their pixels stay sharp squares."""
    longest = max(sample.size)
    if longest <= TILE:
        factor = TILE // longest
        return sample.resize((sample.width * factor, sample.height * factor), Image.Resampling.NEAREST)
    size = (max(1, sample.width * TILE // longest), max(1, sample.height * TILE // longest))
    return sample.resize(size, Image.Resampling.LANCZOS)


def _fit_text(text: str, font: Any, width: float) -> str:
    """`text`, cut with '…' when it is wider than `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while len(text) > 1 and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _paste_vertical_text(
    image: Image.Image, text: str, font: Any, anchor: tuple[int, int], align_top: bool = False
) -> None:
    """Pillow writes only horizontally, so write on a strip of its own and turn it a quarter turn (reading upwards).

    The strip is centred on `anchor`, or with `align_top` centred across and hanging down from it.
    """
    box = font.getbbox(text)
    strip = Image.new("RGB", (box[2] + 4, box[3] + 4), "white")
    ImageDraw.Draw(strip).text((2, 2), text, fill=TEXT, font=font)
    strip = strip.rotate(90, expand=True)
    y = anchor[1] if align_top else anchor[1] - strip.height // 2
    image.paste(strip, (anchor[0] - strip.width // 2, y))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """A Pillow RGB image as the 3 x H x W uint8 tensor TensorBoard's add_image takes (dataformats "CHW")."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


# Region colours (light) and point colours (dark) of up to 10 classes; more classes reuse them.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
PLOT = 480  # pixels of the plotting area's side
MARGIN = 40


def _plot_box(values: torch.Tensor) -> tuple[float, float]:
    """The range to plot: that of the values, widened by 10% on each side."""
    low, high = float(values.min()), float(values.max())
    pad = 0.1 * (high - low) or 1.0
    return low - pad, high + pad


def region_map_image(
    predict: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The class the model gives every place of the plane (light colours) with the samples on it (dark dots).

    `predict` maps an (N, 2) tensor of points to (N, classes) scores; `points` (N, 2), `targets` (N,) classes.
    """
    (x0, x1), (y0, y1) = _plot_box(points[:, 0]), _plot_box(points[:, 1])
    side = PLOT // 2  # the model is asked at every second pixel; the map is then scaled up
    xs, ys = torch.linspace(x0, x1, side), torch.linspace(y1, y0, side)  # top row is the largest y
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
    regions = predict(grid).argmax(dim=1).reshape(side, side) % len(PALETTE)
    light = torch.tensor([[255 - (255 - v) * 0.35 for v in colour] for colour in PALETTE]).round().to(torch.uint8)
    pixels = light[regions].numpy()
    image = Image.new("RGB", (PLOT + 2 * MARGIN, PLOT + 2 * MARGIN), "white")
    image.paste(Image.fromarray(pixels).resize((PLOT, PLOT), Image.Resampling.NEAREST), (MARGIN, MARGIN))
    draw = ImageDraw.Draw(image)
    for (x, y), label in zip(points.tolist(), targets.tolist(), strict=True):
        px = MARGIN + (x - x0) / (x1 - x0) * PLOT
        py = MARGIN + (y1 - y) / (y1 - y0) * PLOT
        draw.ellipse((px - 2.5, py - 2.5, px + 2.5, py + 2.5), fill=PALETTE[int(label) % len(PALETTE)], outline="white")
    font = ImageFont.load_default(size=14)
    title = f"Predicted class (colour) and {len(points)} samples (dots, true class)"
    draw.text((MARGIN, 12), title, fill=TEXT, font=font)
    draw.rectangle((MARGIN, MARGIN, MARGIN + PLOT, MARGIN + PLOT), outline=AXIS)
    _axis_labels(draw, (x0, x1), (y0, y1), font)
    return _to_tensor(image)


def fitted_curve_image(
    predict: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The samples (dots) and the model's answer for every x (a line), for a problem with one input feature."""
    x = inputs.reshape(-1)
    y = targets.reshape(len(x), -1)[:, 0]
    xs = torch.linspace(*_plot_box(x), PLOT)
    curve = predict(xs[:, None]).reshape(PLOT, -1)[:, 0]
    (x0, x1), (y0, y1) = (float(xs[0]), float(xs[-1])), _plot_box(torch.cat([y, curve]))
    image = Image.new("RGB", (PLOT + 2 * MARGIN, PLOT + 2 * MARGIN), "white")
    draw = ImageDraw.Draw(image)

    def at(px: float, py: float) -> tuple[float, float]:
        return MARGIN + (px - x0) / (x1 - x0) * PLOT, MARGIN + (y1 - py) / (y1 - y0) * PLOT

    for px, py in zip(x.tolist(), y.tolist(), strict=True):
        cx, cy = at(px, py)
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=PALETTE[0])
    draw.line([at(px, py) for px, py in zip(xs.tolist(), curve.tolist(), strict=True)], fill=PALETTE[3], width=3)
    font = ImageFont.load_default(size=14)
    draw.text((MARGIN, 12), f"Fitted curve (red) and {len(x)} samples (blue)", fill=TEXT, font=font)
    draw.rectangle((MARGIN, MARGIN, MARGIN + PLOT, MARGIN + PLOT), outline=AXIS)
    _axis_labels(draw, (x0, x1), (y0, y1), font)
    return _to_tensor(image)


def _axis_labels(draw: Any, xs: tuple[float, float], ys: tuple[float, float], font: Any) -> None:
    """The values at the ends of both axes."""
    bottom, right = MARGIN + PLOT, MARGIN + PLOT
    draw.text((MARGIN, bottom + 6), f"{xs[0]:.3g}", fill=AXIS, font=font)
    draw.text((right, bottom + 6), f"{xs[1]:.3g}", fill=AXIS, font=font, anchor="ra")
    draw.text((MARGIN - 4, bottom), f"{ys[0]:.3g}", fill=AXIS, font=font, anchor="rd")
    draw.text((MARGIN - 4, MARGIN), f"{ys[1]:.3g}", fill=AXIS, font=font, anchor="ra")
