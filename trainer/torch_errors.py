"""What the errors torch and Python raise in a learner's code mean, one rule per family of messages.

Each rule is keyed on the exception's wording (and class) and turns a `Failure` into `Advice`: what is wrong in
plain words, with this model's and this batch's names and numbers, and the fix. `trainer.explain.explain` tries
them in order; the first that answers wins, and one that fails is skipped (the fallback still names the place).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import linecache
import operator
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.atomic import file_in_the_way
from trainer.errors import closest
from trainer.failure import (
    BACKWARD_CALLS,
    Advice,
    Failure,
    Place,
    forwards,
    graph_cuts,
    is_module,
    is_user_file,
    key_of,
    lines_matching,
    short_path,
    source_of,
)

Rule = Callable[[Failure, re.Match[str]], Advice | None]
Entry = tuple[tuple[type[BaseException], ...] | None, re.Pattern[str], Rule]


def rule(pattern: str, function: Rule, *classes: type[BaseException]) -> Entry:
    """One line of RULES: errors whose message matches `pattern` (and that are of one of `classes`) are turned
    into advice by `function(failure, match)`."""
    if list(inspect.signature(function).parameters) != ["failure", "match"]:
        raise TypeError(f"a rule takes (failure, match): {function.__name__}")
    return (classes or None, re.compile(pattern, re.S), function)


def swapped_arguments(failure: Failure) -> str:
    """'; the arguments look swapped ...' when the loss line passes (targets, scores), or the learner's loss names
    its parameters the other way round."""
    place = failure.place
    function = place.names.get(place.function) if place else None
    if failure.during != "the loss" or place is None:
        return ""
    call = re.search(r"([\w.]+)\(\s*(\w+)\s*,\s*(\w+)\s*[,)]", place.source)
    if call:
        first, second = place.local_names.get(call[2]), place.local_names.get(call[3])
        if _is_class_indices(first) and _is_scores(second):
            return f"; the arguments look swapped: it takes the scores first, {call[1]}({call[3]}, {call[2]})"
    if not callable(function):
        return ""
    with contextlib.suppress(TypeError, ValueError):
        first = next(iter(inspect.signature(function).parameters), "")
        if re.fullmatch(r"(y(_true)?|targets?|labels?|truth|ground_truth|gt)", first):
            return f"; your loss takes '{first}' first, but it is called as loss(outputs, targets): swap its parameters"
    return ""


def _is_class_indices(value: Any) -> bool:
    return hasattr(value, "dtype") and not value.is_floating_point() and value.dim() == 1


def _is_scores(value: Any) -> bool:
    return hasattr(value, "dtype") and value.is_floating_point() and value.dim() == 2


# ---- shapes -------------------------------------------------------------------------------------------------


def _linear_features(failure: Failure, match: re.Match[str]) -> Advice:
    got, expected = int(match[2]), int(match[3])
    at, name = failure.at, failure.layer_name
    if fixed := _hard_coded_batch(failure):
        return fixed
    if expected == got * got or (expected % got == 0 and expected // got in (got, 3 * got)):
        return Advice(  # a Linear layer got an image row by row: the image was never flattened
            f"{name} expects {expected} input features, but gets rows of {got}: the input was not flattened{at}",
            "flatten before the first Linear layer: x = x.flatten(1) (or nn.Flatten() in a Sequential)",
        )
    return Advice(
        f"{name} expects {expected} input features, but {got} arrive{at}",
        f"in_features: {expected} -> {got} for that layer (or change the layers before it)",
    )


def _conv_channels(failure: Failure, match: re.Match[str]) -> Advice:
    expected, got = int(match[2]), int(match[3])
    return Advice(
        f"{failure.layer_name} expects {expected} input channels, but the input has {got}{failure.at}",
        f"in_channels: {expected} -> {got} for that layer (grey images have 1 channel, colour 3)",
    )


def _conv_rank(failure: Failure, match: re.Match[str]) -> Advice:
    layer = match[3]
    layouts = {"1d": "(batch, channels, length)", "2d": "(batch, channels, height, width)"}
    layouts["3d"] = "(batch, channels, depth, height, width)"
    kind = type(failure.layer.module).__name__ if failure.layer else layer
    dims = re.search(r"[123]d", kind)
    layout = layouts.get(dims[0] if dims else "2d", layouts["2d"])
    got = match[4].count(",") + 1
    fix = "keep images as (batch, channels, height, width) before conv layers; flatten only before Linear layers "
    fix += "(or use model.name=mlp for flat vectors)"
    if dims and dims[0] == "1d" and got == 4:
        fix = f"images need the 2-D layer: nn.{kind.replace('1d', '2d')} instead of nn.{kind}"
    elif dims and dims[0] == "2d" and got == 3:
        fix = f"add the channel dimension (x.unsqueeze(1)), or use nn.{kind.replace('2d', '1d')} for sequences"
    return Advice(
        f"{failure.layer_name} needs {match[2]} input {layout}, but got a tensor of shape {match[4]}{failure.at}", fix
    )


RANK_WORDINGS = (
    r"Expected input to be (\d)D(?: or (\d)D)?, got (\d)D",  # LSTM, GRU, RNN
    r"input must have (\d) dimensions, got (\d)",
    r"input\.dim\(\) = (\d) is not equal to len\(dims\) = (\d)",  # permute
    r"Expected (\d)-dimensional input for (\d)-dimensional weight",
)
LAYOUTS = {
    "LSTM": "(batch, time, features) with batch_first=True",
    "GRU": "(batch, time, features) with batch_first=True",
    "RNN": "(batch, time, features) with batch_first=True",
    "Conv1d": "(batch, channels, length)",
    "Conv2d": "(batch, channels, height, width)",
}


def _rank(failure: Failure, match: re.Match[str]) -> Advice:
    numbers = [int(n) for n in match.groups() if n]
    got = numbers[-1] if "got" in match[0] or "Expected" in match[0] else numbers[0]
    expected = [n for n in numbers if n != got] or numbers[:1]
    if "permute" in failure.text or "len(dims)" in match[0]:
        got, expected = numbers[0], [numbers[1]]
    kind = type(failure.layer.module).__name__ if failure.layer and failure.layer.path != "(the model)" else ""
    layout = f": {kind} takes {LAYOUTS[kind]}" if kind in LAYOUTS else ""
    fix = "print the tensor's .shape before that line, and reshape it to the layout the call takes"
    if kind in ("LSTM", "GRU", "RNN") and got == 4:
        fix = "turn each image into a sequence of rows first: x = x.squeeze(1) (batch, 28, 28) for grey images"
    elif "len(dims)" in match[0]:
        fix = f"give permute one position per dimension: {got} of them for this tensor (e.g. x.permute(0, 2, 3, 1))"
    wanted = " or ".join(f"{n}-D" for n in expected)
    if "len(dims)" in match[0]:
        return Advice(f"permute lists {wanted[:-2]} positions, but the tensor has {got} dimensions{failure.at}", fix)
    return Advice(
        f"{failure.layer_name if kind else 'a call'} needs a {wanted} tensor, but got {got}-D{layout}{failure.at}",
        fix,
        key_of(failure),
    )


def _container_called(failure: Failure, match: re.Match[str]) -> Advice:
    called = re.search(r"self\.(\w+)\(", failure.place.source) if failure.place else None
    name = called[1] if called else "layers"
    return Advice(
        f"an nn.{match[1]} is called like a layer{failure.at}, but it is only a container: it has no forward",
        f"call its layers one by one (for layer in self.{name}: x = layer(x)), or make it nn.Sequential(...), which "
        "runs them in order",
    )


def _too_small(failure: Failure, match: re.Match[str]) -> Advice:
    left = _spatial(failure.layer.inputs) if failure.layer else ""
    start = _spatial(failure.model_input)
    size = f"the {start} input has shrunk to {left}" if left and start else "the image has become too small"
    return Advice(
        f"{failure.layer_name}: {size} by this layer, too small for it; each pooling or stride-2 layer halves the "
        f"image{failure.at}",
        "use fewer conv/pool blocks, padding=kernel_size//2 on the convs, a smaller kernel, or larger images",
    )


def _spatial(described: str) -> str:
    """'28x28' from '[32, 1, 28, 28] float32' (the height and width of an image batch), or ''."""
    dims = re.match(r"\[([\d, ]+)\]", described or "")
    sizes = [int(n) for n in dims[1].split(",")] if dims else []
    return "x".join(map(str, sizes[2:])) if len(sizes) >= 4 else ""


def _reshape_mixing_the_batch(failure: Failure) -> Advice | None:
    """`x.view(-1, 320)` on a tensor of 500 numbers per sample: the batch dimension is mixed with the others, and
    rows of 320 come out of samples of 500. Said with the numbers of this tensor."""
    place = failure.place
    call = re.search(r"(\w+)\.(?:view|reshape)\(\s*-1\s*,\s*(\d+)\s*\)", place.source) if place else None
    tensor = place.local_names.get(call[1]) if call and place else None
    if call is None or tensor is None or getattr(tensor, "dim", lambda: 0)() < 2:
        return None
    batch, per_sample, wanted = int(tensor.shape[0]), int(tensor[0].numel()), int(call[2])
    if wanted == per_sample:
        return None
    rows = f"{batch * per_sample / wanted:g}"
    return Advice(
        f"{call[0]} asks for rows of {wanted} numbers, but each of the {batch} samples has {per_sample}: it would "
        f"turn the batch of {batch} into {rows} rows{failure.at}",
        f"keep the batch: {call[1]} = {call[1]}.flatten(1), and give the next Linear layer in_features={per_sample}",
    )


def _view_size(failure: Failure, match: re.Match[str]) -> Advice:
    wanted = [int(n) for n in match[1].split(",")]
    size = int(match[2])
    batch = failure.batch_size or _batch_on_line(failure)
    if batch and wanted[0] not in (-1, batch) and size % batch == 0:
        return Advice(
            f"view/reshape to {wanted} fixes the batch at {wanted[0]} samples, but this batch has {batch} (the last "
            f"batch of an epoch, and evaluation, can be smaller){failure.at}",
            f"keep the batch size free: x.view(x.size(0), -1) or x.flatten(1) instead of x.view({wanted[0]}, ...)",
        )
    per_sample = f"; per sample that is {size // batch} numbers" if batch and size % batch == 0 else ""
    fixed = [n for n in wanted if n != -1]
    fix = "reshape with the batch size kept: x = x.flatten(1) (or x.view(x.size(0), -1))"
    if per_sample:
        fix += f", and give the next Linear layer in_features={size // batch}"
    return Advice(
        f"view/reshape to {wanted} does not fit a tensor of {size} numbers ({size} is not a multiple of "
        f"{_product(fixed)}){per_sample}{failure.at}",
        fix,
    )


def _batch_on_line(failure: Failure) -> int | None:
    """The batch size of the first tensor of images or features named on the failing line."""
    import torch

    for value in failure.place.local_names.values() if failure.place else ():
        if isinstance(value, torch.Tensor) and value.dim() >= 2:
            return int(value.shape[0])
    return None


def _product(numbers: list[int]) -> int:
    result = 1
    for n in numbers:
        result *= n
    return result


def _view_stride(failure: Failure, match: re.Match[str]) -> Advice:
    mixing = _reshape_mixing_the_batch(failure)
    if mixing is not None:
        return Advice(mixing.what, mixing.fix.replace(".flatten(1)", ".flatten(1) (flatten copies when it must)"))
    return Advice(
        f".view() cannot reshape this tensor without copying it (it was transposed or permuted before){failure.at}",
        "use .reshape(...) instead of .view(...), or .contiguous().view(...)",
    )


def _cat_sizes(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"torch.cat joins tensors along dimension {match[1]}, so all other dimensions must be equal, but tensor "
        f"number {match[4]} has size {match[3]} where the first has {match[2]}{failure.at}",
        f"make every tensor the same size outside dimension {match[1]} (print their .shape before the cat); joining "
        "features of one batch is torch.cat([a, b], dim=1)",
    )


def _stack_sizes(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"torch.stack needs tensors of one shape, but entry {match[2]} is {match[1]} and entry {match[4]} is "
        f"{match[3]}{failure.at}",
        "make them the same shape first, or use torch.cat to join tensors of different lengths along one dimension",
    )


def _broadcast(failure: Failure, match: re.Match[str]) -> Advice:
    key = key_of(failure)
    hint = ""
    if failure.during == "the loss":
        hint = "; in a loss this is usually the output against the targets: one score per class vs class labels"
        hint += swapped_arguments(failure)
    return Advice(
        f"two tensors of sizes {match[1]} and {match[2]} at dimension {match[3]} are combined element by element, "
        f"which needs equal sizes (or 1){hint}{failure.at}",
        "print both shapes before that line; for class labels use loss: cross_entropy; for one number per sample "
        "return output.squeeze(1)",
        key,
    )


def _expand(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a tensor of size {match[2]} at dimension {match[3]} cannot be expanded or assigned to size "
        f"{match[1]}{failure.at}",
        "print the shapes on both sides of that line; they must be equal where neither is 1",
        key_of(failure),
    )


def _batch_norm_features(failure: Failure, match: re.Match[str]) -> Advice:
    got, made = int(match[1]), int(match[2])  # torch names the input's channels first, then the layer's
    kind = type(failure.layer.module).__name__ if failure.layer else "BatchNorm"
    inputs = failure.layer.inputs if failure.layer else ""
    sizes = [int(n) for n in re.findall(r"\d+", inputs.split("]")[0])] if inputs else []
    if len(sizes) == 3 and sizes[-1] == made:
        return Advice(
            f"{failure.layer_name} normalizes dimension 1 of (batch, channels, length), but its input "
            f"[{', '.join(map(str, sizes))}] has its {made} features last{failure.at}",
            f"x.transpose(1, 2) before the layer and back after it, or nn.LayerNorm({made}), which normalizes the "
            "last dimension",
        )
    return Advice(
        f"{failure.layer_name} was made for {made} channels but gets {got}{failure.at}",
        f"{kind}({got}) (num_features {made} -> {got}): it must equal the out_channels or out_features of the "
        "layer before",
    )


def _layer_norm(failure: Failure, match: re.Match[str]) -> Advice:
    last = match[3].split(",")[-1].strip()
    return Advice(
        f"{failure.layer_name} normalizes the last {match[1]} numbers, but its input ends in {last}{failure.at}",
        f"normalized_shape: {match[1]} -> {last} (the size of the input's last dimension)",
    )


def _rnn_features(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"{failure.layer_name} was made for {match[1]} features per time step, but gets {match[2]}{failure.at}",
        f"input_size: {match[1]} -> {match[2]}; the input is (batch, time, features) with batch_first=True",
    )


def _rnn_hidden(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"{failure.layer_name} got a starting hidden state of shape [{match[2]}], not ({match[1]}){failure.at}",
        "make the hidden state inside forward from the input's batch size (torch.zeros(layers, x.size(0), hidden, "
        "device=x.device)), or leave it out and the layer starts from zeros",
    )


def _hard_coded_batch(failure: Failure) -> Advice | None:
    """`x.view(32, -1)` in forward breaks every batch of another size (the last one, evaluation, the summary)."""
    batch = failure.batch_size
    for forward in forwards(failure.model):
        for line, _ in lines_matching(forward, {r"\.(?:view|reshape)\(\s*\d+\s*,": ""}):
            fixed = re.search(r"(\w+)\.(?:view|reshape)\(\s*(\d+)\s*,", line)
            if fixed and batch and int(fixed[2]) != batch:
                return Advice(
                    f"{line} fixes the batch at {fixed[2]} samples, but this batch has {batch} (the last batch of an "
                    "epoch, and evaluation, can be smaller)",
                    f"keep the batch size free: {fixed[1]}.size(0) instead of {fixed[2]}, e.g. "
                    f"{fixed[1]}.view({fixed[1]}.size(0), -1)",
                )
    return None


def batch_mixing(model: Any, rows: int, batch: int) -> tuple[str, str] | None:
    """(what, fix) when the model gives `rows` rows for `batch` samples because a reshape in the learner's forward
    mixes the batch with the other dimensions (`x.view(-1, 320)`); worked out with this batch's numbers."""
    for forward in forwards(model):
        for line, _ in lines_matching(forward, {r"\.(?:view|reshape)\(\s*-1\s*,\s*\d+\s*\)": ""}):
            call = re.search(r"(\w+)\.(?:view|reshape)\(\s*-1\s*,\s*(\d+)\s*\)", line)
            if call is None:
                continue
            width = int(call[2])
            per_sample = rows * width / batch
            each = f", but each sample has {per_sample:g} numbers" if per_sample.is_integer() else ""
            return (
                f"the model gives {rows} rows of scores for a batch of {batch}: {line} makes rows of {width} "
                f"numbers{each}, so the batch is mixed with the other dimensions",
                f"keep the batch: {call[1]} = {call[1]}.flatten(1)"
                + (f", and give the next Linear layer in_features={per_sample:g}" if each else ""),
            )
    return None


def _batch_rows(failure: Failure, match: re.Match[str]) -> Advice:
    mixed = batch_mixing(failure.model, int(match[1]), int(match[2]))
    if mixed is not None:
        return Advice(*mixed)
    return Advice(
        f"the model gives {match[1]} rows of scores for a batch of {match[2]} targets: a view/reshape in forward "
        f"mixed the batch dimension with the others{failure.at}",
        "keep the batch dimension first: x.flatten(1) or x.view(x.size(0), -1), never x.view(-1, N)",
    )


def _bce_shapes(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"the loss compares output and targets element by element, but the targets are [{match[1]}] and the output "
        f"[{match[2]}]{failure.at}",
        "return output.squeeze(1) for one score per sample (or targets.unsqueeze(1)); for classes use cross_entropy",
        "loss",
    )


def _targets_with_extra_dim(failure: Failure, match: re.Match[str]) -> Advice:
    batch = failure.batch_size or _batch_on_line(failure)
    shape = f"[{batch}]" if batch else "[batch]"
    return Advice(
        f"cross entropy takes one class index per sample (targets of shape {shape}), but the targets have an extra "
        f"dimension{failure.at}",
        "targets.squeeze(1) (or .view(-1)) so they are [batch]; a data set's labels should be one number each",
        "loss",
    )


# ---- indices ------------------------------------------------------------------------------------------------


def _target_out_of_bounds(failure: Failure, match: re.Match[str]) -> Advice:
    if int(match[1]) < 0:  # no number of outputs fits a negative label: the labels are what to change
        return Advice(
            f"a target class is {match[1]}{failure.at}, but class labels are 0 .. classes-1: a negative label has "
            "no score",
            "number the classes from 0 (labels 1..K: subtract 1); to leave samples out, give them the label "
            f"{getattr(failure.loss_fn, 'ignore_index', -100)} (the loss's ignore_index) or drop them",
            "loss",
        )
    return Advice(
        f"a target class is {match[1]}, but the model's output has fewer classes{failure.at}",
        "make the last layer output as many scores as there are classes (targets must be 0 .. classes-1; "
        "labels numbered 1..K: subtract 1)",
        "loss",
    )


def _embedding_index(failure: Failure, match: re.Match[str]) -> Advice:
    module = failure.layer.module if failure.layer else None
    rows = getattr(module, "num_embeddings", None)
    if rows is None:
        return Advice(
            f"an index is past the end of the table it picks from (an nn.Embedding, usually){failure.at}",
            "give the embedding num_embeddings = the largest index + 1 (the vocabulary size), and check that indices "
            "are >= 0",
        )
    return Advice(
        f"{failure.layer_name} has {rows} rows (indices 0..{rows - 1}), but got a larger or negative index{failure.at}",
        f"num_embeddings: {rows} -> the largest index + 1 (the vocabulary size, padding and unknown tokens included)",
    )


def _dimension(failure: Failure, match: re.Match[str]) -> Advice:
    dims = int(match[2]) + 1
    return Advice(
        f"dimension {match[3]} was asked of a tensor with {dims} dimension{'s' if dims != 1 else ''} "
        f"(0..{dims - 1}){failure.at}",
        "print the tensor's .shape before that line: a batch of vectors is (batch, features), dim=1 for features; "
        "a flattened or single-sample tensor has fewer dimensions than you expect",
        key_of(failure),
    )


def _index_bounds(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"index {match[1]} is past the end of dimension {match[2]}, which has size {match[3]} (0..{int(match[3]) - 1})"
        f"{failure.at}",
        "print the tensor's shape and the index before that line; remember the last batch can be smaller",
        key_of(failure),
    )


def _too_many_indices(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a tensor with {match[1]} dimension(s) is indexed with more indices than it has{failure.at}",
        "print its shape before that line: targets are [batch], scores [batch, classes]",
        key_of(failure),
    )


# ---- dtypes and devices ------------------------------------------------------------------------------------


DTYPE_WORDS = r"(?:Float|Double|Half|BFloat16|Long|Int|Byte|Bool|float|double|half|long|int)"


def _dtypes(failure: Failure, match: re.Match[str]) -> Advice:
    text = failure.text
    if failure.during == "the loss" or "target" in text.lower() or "nll_loss" in text:
        return Advice(
            f"the loss got a tensor of the wrong type ({failure.first_line}){failure.at}{swapped_arguments(failure)}",
            "cross_entropy/nll take class indices as int64 (targets.long()); mse, l1 and bce take float targets "
            "(targets.float()) of the output's shape",
            "loss",
        )
    if "Long" in text or "long" in text or "Int" in text or "Byte" in text:
        fix = "convert integer inputs to float before layers that multiply (x = x.float()); for word or class ids use "
        fix += "an nn.Embedding first"
    else:
        fix = "keep one dtype: convert the input (x = x.float()) or the layer (.double()) so both match; data read "
        fix += "with numpy is float64 (double): torch.from_numpy(a).float()"
    return Advice(f"{failure.layer_name} got a tensor of another dtype than its weights{failure.at}", fix)


def _index_dtype(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"{failure.layer_name} takes integer {match[1]} ({match[2]}), but got {match[3]}{failure.at}",
        "an nn.Embedding picks rows by whole numbers: pass indices as int64 (x.long()); for pixels or measurements "
        "use nn.Linear instead",
    )


def _no_gpu(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"the code moves a tensor to the GPU (.cuda() or device='cuda'), but this machine has none{failure.at}",
        "make new tensors where the input is: torch.zeros(..., device=x.device) or .to(x.device); leaptrain moves "
        "the model and the batches itself (train.device)",
    )


def _devices(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"part of the model or a tensor it makes is not on the training device{failure.at}",
        "keep sub-layers in nn.ModuleList / nn.Sequential (a plain Python list hides them from .to() and "
        "from the optimizer), and create tensors inside forward with device=x.device",
    )


# ---- autograd ----------------------------------------------------------------------------------------------


def _inplace(failure: Failure, match: re.Match[str]) -> Advice:
    made = failure.forward_place
    changed = _inplace_change_after(made) if made else ""
    where = f", made at {made.where}," if made else ""
    later = f" at {changed}" if changed else ""
    rewritten = _out_of_place(changed.split(": ", 1)[-1]) if changed else ""
    fix = "write the change as a new tensor: x = x + 1 instead of x += 1, F.relu(x) instead of relu_(x) or "
    fix += "ReLU(inplace=True), torch.cat instead of assigning into x[...]"
    return Advice(
        f"autograd needs the output of {match[4]} (shape [{match[2]}]){where} as it was, but it is changed in place "
        f"before backward{later}",
        f"make a new tensor instead: {rewritten}" if rewritten else fix,
        key_of(failure) if failure.during != "backward" else "model",
    )


INPLACE = r"\b{name}\s*(?:\+|-|\*|/|\*\*|//|%|&|\|)=|\b{name}\[[^\]]*\]\s*=[^=]|\b{name}\.\w+_\("


def _out_of_place(code: str) -> str:
    """The same change as a new tensor: 'h += f(x)' -> 'h = h + f(x)', 'x.relu_()' -> 'x.relu()'; '' if unknown."""
    augmented = re.match(r"(\w+)\s*(\+|-|\*|/|\*\*|//|%)=\s*(.+)", code)
    if augmented:
        return f"{augmented[1]} = {augmented[1]} {augmented[2]} {augmented[3]}"
    method = re.search(r"\.(\w+)_\(", code)
    if method:
        return code.replace(f".{method[1]}_(", f".{method[1]}(")
    if re.search(r"\w+\[[^\]]*\]\s*=[^=]", code):
        return "x = x.clone() before the assignment, or build the new values with torch.where / torch.cat"
    return ""


def _inplace_change_after(made: Place) -> str:
    """'net.py:14: x += 1': the first in-place change of the variable assigned on the line `made`."""
    assigned = re.match(r"(\w+)\s*=", made.source)
    if not assigned:
        return ""
    pattern = re.compile(INPLACE.format(name=re.escape(assigned[1])))
    for number in range(made.line + 1, made.line + 60):
        text = linecache.getline(made.path, number)
        if not text or re.match(r"\s*def ", text):
            break
        if pattern.search(text):
            return f"{short_path(made.path)}:{number}: {text.strip()}"
    return ""


def _leaf_inplace(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a weight (a tensor that requires grad) is changed in place outside torch.no_grad(){failure.at}",
        "change weights inside `with torch.no_grad():`, or make a new tensor (w = w * 2) instead of w *= 2",
    )


def _backward_twice(failure: Failure, match: re.Match[str]) -> Advice:
    calls = [
        line for obj in (failure.loss_fn, *forwards(failure.model)) for line, _ in lines_matching(obj, BACKWARD_CALLS)
    ]
    if calls:
        return Advice(
            f"backward ran twice through the same graph: your code calls .backward() itself at {calls[0]}",
            "remove that call: the Trainer calls loss.backward() once per step (return the loss instead)",
            "loss"
            if source_of(failure.loss_fn) and calls[0].startswith(short_path(source_of(failure.loss_fn)[0]))
            else "model",
        )
    return Advice(
        f"backward ran twice through the same graph: the loss code calls .backward() itself, or a tensor from an "
        f"earlier batch (a hidden state, a running sum) is reused{failure.at}",
        "do not call .backward() in your loss (the Trainer does it); carry a state across batches as "
        "state.detach(); accumulate losses as numbers with loss.item()",
        key_of(failure) if failure.place else "loss",
    )


def _no_graph(failure: Failure, match: re.Match[str]) -> Advice:
    cut = graph_cuts(failure.loss_fn, *forwards(failure.model))
    return Advice(
        f"the loss is cut off from the model, so no gradient can flow back{failure.at}{cut}",
        "compute the loss from the model's output with torch operations only: no .item(), .detach(), "
        ".numpy(), argmax or torch.tensor(...) on the way",
        "loss",
    )


def _numpy_in_graph(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f".numpy() was called on a tensor autograd is following: numpy cannot carry gradients back{failure.at}",
        "stay with torch operations between the model's output and the loss (torch.log, torch.clamp ...); "
        "for logging only, use x.detach().cpu().numpy()",
        key_of(failure),
    )


def _not_scalar(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"the loss is a tensor of many numbers, not one{failure.at}",
        "end the loss with .mean() (or keep reduction: mean)",
        "loss",
    )


# ---- Python in the learner's code ------------------------------------------------------------------------


def _name(failure: Failure, match: re.Match[str]) -> Advice:
    name = match[1]
    place = failure.place
    names = [n for n in (place.names if place else {}) if not n.startswith("__")]
    where = f" in {place.where}" if place else ""
    importable = import_line(name)
    if importable:
        return Advice(f"'{name}' is used{where} but never imported", f"add at the top of the file: {importable}")
    close = closest(name, names, cutoff=0.7)
    fix = f"did you mean '{close}'? " if close else ""
    return Advice(
        f"'{name}' is not defined{where}: no variable, function or import of that name",
        fix + f"define '{name}' before that line, or import it; names defined there: {_some(names, place)}",
    )


def import_line(name: str) -> str:
    """The import that defines `name` the way PyTorch code usually writes it ('' when no import is known)."""
    common = {"F": "import torch.nn.functional as F", "nn": "from torch import nn", "np": "import numpy as np"}
    if name in common:
        return common[name]
    if name == "torch" or name in sys.stdlib_module_names:
        return f"import {name}"
    with contextlib.suppress(ImportError):
        import torch
        import torch.nn.functional as functional

        if isinstance(getattr(torch.nn, name, None), type):
            return f"from torch import nn  (and write nn.{name})"
        if callable(getattr(functional, name, None)):
            return f"import torch.nn.functional as F  (and write F.{name})"
        if callable(getattr(torch, name, None)):
            return f"import torch  (and write torch.{name})"
    return ""


def _some(names: list[str], place: Place | None) -> str:
    mine = [n for n in names if place and n in place.names and n not in vars(builtins)]
    return ", ".join(mine[:12]) or "none"


def _attribute(failure: Failure, match: re.Match[str]) -> Advice | None:
    owner, attr = (match[1], match[2]) if match[1] else (match[3], match[4])
    obj = getattr(failure.err, "obj", None)
    if obj is None and failure.place is not None and match[3]:
        obj = sys.modules.get(owner)
    if obj is None and failure.place is not None:
        candidate = failure.place.names.get("self")
        obj = candidate if type(candidate).__name__ == owner else None
    choices = [n for n in dir(obj) if not n.startswith("_")] if obj is not None else []
    if owner in KIND_HINTS and owner not in ("dict", "str"):
        return _wrong_kind(failure, owner, f"a {owner} is used where a tensor is expected ({owner}.{attr})")
    close = closest(attr, choices)
    if close and failure.place is not None and (alias := re.search(rf"([\w.]+)\.{attr}\b", failure.place.source)):
        close = f"{alias[1]}.{close}"  # as the learner writes it: nn.Conv2d
    if close:
        return Advice(
            f"'{owner}' has no '{attr}'{failure.at}",
            f"did you mean '{close}'? (names are case-sensitive)",
            key_of(failure),
        )
    hint = ""
    what = f"'{owner}' has no '{attr}'{failure.at}"
    if obj is not None and is_module(obj):
        layers = [name for name, _ in obj.named_children()]
        return Advice(
            what + f": the layers set in __init__ are {', '.join(layers) or 'none'}",
            hint + f"create it in __init__ (self.{attr} = ...) or use one of those names",
        )
    names = ", ".join(choices[:12]) or "none"
    return Advice(what, hint + f"check the spelling; names it has: {names}", key_of(failure))


def _no_super_init(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a layer is assigned before nn.Module's own __init__ ran{failure.at}",
        "call super().__init__() as the first line of your model's __init__",
    )


def _call_arguments(failure: Failure, match: re.Match[str]) -> Advice:
    name = match[1]
    function = name.rsplit(".", 1)[-1]
    callee = _callee(name, failure)
    declared = _declaration(callee, function)
    calls = {
        "forward": "the Trainer calls model(inputs) with one batch of inputs: define forward(self, x)",
        "__init__": "leaptrain builds the model with the keys of the model: section, plus num_classes, in_channels "
        "or input_shape when __init__ asks for them",
    }
    if failure.during == "the loss":
        calls[function] = "the loss is called as loss(outputs, targets): two tensors, in that order"
    if isinstance(callee, type) and callee.__module__.startswith("torch."):
        calls.pop("__init__")  # a layer of torch's own, not the learner's model that leaptrain builds
    if "*args, **kwargs" in declared:
        declared = ""  # a wrapper's signature says nothing about what it takes
    signature = declared.split(" (")[0].removeprefix("def ")
    fix = calls.get(function, f"give it what it declares: {signature}" if declared else "")
    fix = fix or _arguments_fix(failure.text, function) or "make the call on that line match the function's parameters"
    defined = f"; it is declared as {declared}" if declared else ""
    return Advice(f"{name}() is called with other arguments than it takes{defined}{failure.at}", fix, key_of(failure))


def _arguments_fix(text: str, function: str) -> str:
    """What Python's own words say to change: the missing arguments by name, or the unexpected one."""
    missing = re.search(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+)", text)
    if missing:
        names = re.findall(r"['\"](\w+)['\"]", missing[1])
        dim = " (dim=1 is the class dimension of a batch of scores)" if "dim" in names else ""
        return f"give {function}() its {', '.join(names)}: {function}({', '.join(n + '=...' for n in names)}){dim}"
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unexpected:
        return f"remove {unexpected[1]}= from the call, or spell it as {function}() names it"
    return ""


def _callee(name: str, failure: Failure) -> Any:
    """The class or function a message names ('Net.forward', 'Linear.__init__', 'block'): found among the model's
    layers, or through the dotted names on the failing line (nn.Linear) looked up in the learner's frame."""
    owner = name.split(".")[0]
    loss_fn = getattr(failure.loss_fn, "func", failure.loss_fn)
    if getattr(loss_fn, "__name__", None) == owner:
        return loss_fn
    if failure.model is not None:
        for module in failure.model.modules():
            if type(module).__name__ == owner:
                return type(module)
    if failure.place is not None:
        for dotted in re.findall(r"([A-Za-z_][\w.]*)\s*\(", failure.place.source):
            if dotted.split(".")[-1].lstrip("_") == owner.lstrip("_"):
                return _lookup(dotted, failure.place.names)
        return failure.place.names.get(owner)
    return None


def _declaration(callee: Any, function: str) -> str:
    """'def forward(self, x, mask) (net.py:12)'; the file and line only for the learner's own code."""
    target = getattr(callee, function, None) if isinstance(callee, type) else callee
    if target is None:
        return ""
    with contextlib.suppress(TypeError, ValueError, OSError):
        parameters = [str(p) for p in inspect.signature(target).parameters.values()]
        if function == "__init__" and isinstance(callee, type):
            parameters = parameters[1:]  # a class is called without self
        called = callee.__name__ if function == "__init__" and isinstance(callee, type) else function
        signature = f"{'' if called != function else 'def '}{called}({', '.join(parameters)})"
        path = inspect.getsourcefile(target) or ""
        if not is_user_file(path):
            return signature
        return f"{signature} ({short_path(path)}:{inspect.getsourcelines(target)[1]})"
    return ""


def _lookup(dotted: str, names: dict[str, Any]) -> Any:
    """The object a dotted name such as nn.Linear stands for in a frame (attributes only: nothing is called)."""
    first, *rest = dotted.split(".")
    value = names.get(first)
    for part in rest:
        value = getattr(value, part, None)
    return value


def _not_callable(failure: Failure, match: re.Match[str]) -> Advice:
    kind = match[1]
    if kind == "Tensor":
        what = "a tensor is called like a function: an attribute that held a layer was overwritten by a tensor, or "
        what += "a name like F/torch was reassigned"
    elif kind == "module":
        what = "a module is called like a function (e.g. nn.functional(x) or torch.nn(x))"
    else:
        what = f"a {kind} is called like a function"
    return Advice(
        f"{what}{failure.at}",
        "on that line, check what the name before '(' holds: layers are made in __init__ (self.act = nn.ReLU()) "
        "and called in forward (self.act(x)); keep layer names and tensor names apart",
        key_of(failure),
    )


# What a value of the wrong kind usually is, where a tensor was expected.
KIND_HINTS = {
    "tuple": "a layer such as nn.LSTM / nn.GRU returns (output, hidden), and `return a, b` gives a tuple: unpack it "
    "first (output, _ = self.lstm(x))",
    "list": "stack a list of tensors into one first: torch.stack(items) (or torch.cat)",
    "NoneType": "a function or forward without `return` gives None: make it return its result",
    "int": "a Python number is given where a tensor is needed: use a tensor operation, or torch.tensor(...)",
    "float": "a Python number is given where a tensor is needed: use a tensor operation, or torch.tensor(...)",
    "ndarray": "convert numpy arrays with torch.from_numpy(a).float()",
    "dict": "pick the tensor out of the dict first (e.g. out['logits'])",
    "str": "a string is given where a tensor is needed: check the variable on that line",
}


def _not_a_tensor(failure: Failure, match: re.Match[str]) -> Advice:
    got = match[4] or match[5] or match[6]
    functional = _functional_of(got)
    if functional:
        return Advice(
            f"a {got} layer object was given where a tensor is needed{failure.at}: nn.{got}(x) makes a new layer "
            "(with x as its setting) instead of applying one",
            f"apply it as a function: {functional}(x), or make it in __init__ (self.act = nn.{got}()) and call "
            "self.act(x) in forward",
            key_of(failure),
        )
    return Advice(
        f"a {got} was given where a tensor is needed{failure.at}",
        KIND_HINTS.get(got, "pass a tensor on that line"),
        key_of(failure),
    )


def _functional_of(layer_name: str) -> str:
    """'F.relu' for 'ReLU': the function that does what a torch layer class does, or ''."""
    import torch.nn.functional as functional
    from torch import nn

    if not isinstance(getattr(nn, layer_name, None), type):
        return ""
    folded = {name.lower().replace("_", ""): name for name in dir(functional) if not name.startswith("_")}
    name = folded.get(layer_name.lower())
    return f"F.{name}" if name else ""


def _made_by(failure: Failure, name: str) -> str:
    """'net.py:11: out = self.lstm(...)': the line above the failing one where `name` was last assigned."""
    place = failure.place
    if place is None:
        return ""
    for number in range(place.line - 1, max(place.line - 40, 0), -1):
        text = linecache.getline(place.path, number)
        if re.match(rf"\s*{re.escape(name)}\s*=[^=]", text):
            return f"{short_path(place.path)}:{number}: {text.strip()}"
        if re.match(r"\s*def ", text):
            break
    return ""


def _subscript(failure: Failure, match: re.Match[str]) -> Advice:
    return _wrong_kind(failure, match[1], f"a {match[1]} is indexed as if it were a tensor")


def _wrong_kind(failure: Failure, kind: str, what: str) -> Advice:
    """A value of another kind where a tensor was meant; where the line names it, say which layer made it."""
    place = failure.place
    names = [n for n, v in (place.local_names.items() if place else ()) if type(v).__name__ == kind]
    used = [n for n in names if re.search(rf"(?<![.\w]){re.escape(n)}(?!\w)", place.source)] if place else []
    made = _made_by(failure, used[0]) if used else ""
    layer = re.search(r"self\.(\w+)\(", made)
    if made and layer and kind == "tuple":
        fixed = re.sub(rf"^(.*?:\d+: )?{re.escape(used[0])}\s*=", f"{used[0]}, _ =", made).split(": ", 1)[-1]
        return Advice(
            f"{what}{failure.at}: '{used[0]}' is the tuple layer '{layer[1]}' returns ({made}); nn.LSTM and nn.GRU "
            "return (output, hidden)",
            f"unpack it: {fixed}",
            key_of(failure),
        )
    if made:
        what += f"; '{used[0]}' comes from {made}"
    return Advice(
        f"{what}{failure.at}", KIND_HINTS.get(kind, "print the type of the value on that line"), key_of(failure)
    )


def _bad_combination(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a torch function got arguments of kinds it does not take: ({match[1][:160]}){failure.at}",
        "compare with the function's documentation; a tuple from an LSTM, a layer instead of a tensor, or a float "
        "where an int is needed are the usual causes",
        key_of(failure),
    )


def _operands(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"'{match[1]}' between a {match[2]} and a {match[3]}{failure.at}",
        KIND_HINTS.get(match[3], KIND_HINTS.get(match[2], "both sides must be tensors or numbers")),
        key_of(failure),
    )


def _tensor_in_if(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a tensor of many numbers is used as one True/False (in an `if`, `and`, `or` or `while`){failure.at}",
        "compare element by element with torch.where(cond, a, b) or a mask; for one number use (x > 0).all() / .any()",
        key_of(failure),
    )


def _item_of_many(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a tensor of many numbers is turned into one Python number (.item(), float(), int()){failure.at}",
        "reduce it first (.mean(), .sum()), or keep it a tensor; a loss must stay a tensor for backward",
        key_of(failure),
    )


def _bce_raw_scores(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"BCELoss takes probabilities in [0, 1], but the model outputs raw scores{failure.at}",
        "use loss: bce_with_logits on the raw scores (safer than a sigmoid followed by BCELoss)",
        "loss",
    )


def _value_out_of_range(failure: Failure, match: re.Match[str]) -> Advice | None:
    if failure.during != "building the model" and failure.place is None:
        return None
    got = re.search(r"but got (\S+)", failure.text)
    given = f" (it got {got[1].rstrip('.,')})" if got else ""
    hint = " (a probability such as dropout is a fraction: 0.5, not 50)" if "between 0 and 1" in match[0] else ""
    return Advice(
        f"a value on that line must be {match[1]}{given}{hint}{failure.at}",
        f"change it to a value {match[1]}",
        key_of(failure),
    )


def _batch_of_one(failure: Failure, match: re.Match[str]) -> Advice:
    name = failure.layer_name if failure.layer else "a batch norm layer"
    return Advice(
        f"{name} got a batch of one sample, and cannot normalize one sample{failure.at}",
        "change data.batch_size so that the last batch is not a single sample",
        "data.batch_size",
    )


def _recursion(failure: Failure, match: re.Match[str]) -> Advice:
    return Advice(
        f"a function calls itself without end{failure.at}: forward calling self(x) or self.forward(x), or a "
        "property that reads itself",
        "in forward, call the layers (self.fc(x)), never the model itself",
    )


def _out_of_memory(failure: Failure, match: re.Match[str]) -> Advice:
    batch_size = failure.batch_size
    on_gpu = "CUDA" in failure.text or type(failure.err).__name__ == "OutOfMemoryError"
    device = "the GPU" if on_gpu else "the computer (CPU memory)"
    size = f" at batch size {batch_size}" if batch_size else ""
    half = f"data.batch_size={max(1, batch_size // 2)}" if batch_size else "a smaller data.batch_size"
    # torch's CPU allocator says "you tried to allocate N bytes", the CUDA one "Tried to allocate 2.00 GiB".
    asked = re.search(r"allocate (\d+) bytes|Tried to allocate ([\d.]+ [KMGTP]?i?B)", failure.text)
    one_tensor = f"; one tensor asked for {_bytes_text(int(asked[1])) if asked[1] else asked[2]}" if asked else ""
    parameters = sum(p.numel() for p in failure.model.parameters()) if hasattr(failure.model, "parameters") else 0
    weights = f"; the model has {parameters:,} parameters" if parameters else ""
    if failure.during == "building the model":  # the weights themselves: no batch exists yet
        return Advice(
            f"{device} ran out of memory for the model's own weights{failure.at}{one_tensor}: they alone do not fit",
            "a smaller model: fewer or narrower layers (a layer holds inputs x outputs weights; an embedding "
            "rows x dim); the batch size plays no part here",
        )
    precision = "precision bf16/fp16" if on_gpu else "precision bf16"  # fp16 training needs a CUDA GPU
    return Advice(
        f"{device} ran out of memory{size}{failure.at}{one_tensor}{weights}",
        f"{half}, or {precision}, or a smaller model (fewer or narrower layers)",
        "data.batch_size",
    )


def _not_a_folder(failure: Failure, match: re.Match[str]) -> Advice | None:
    """A folder made under a file (log.dir=notes.txt/runs): the file in the way, and a folder that would do."""
    path = Path(str(getattr(failure.err, "filename", None) or ""))
    in_a_file = file_in_the_way(path) if path.parts else None
    if in_a_file is None:
        return None
    if failure.place is not None:  # the learner's own code made the folder
        return Advice(
            f"cannot write {path}{failure.at}: {in_a_file} is a file, not a folder",
            f"give a path in a folder, e.g. {in_a_file.parent / path.name}",
        )
    # Our own folders (a run's, a sweep's) are made under log.dir.
    folder = in_a_file.parent / ("runs" if in_a_file.name != "runs" else "my_runs")
    return Advice(
        f"cannot make the run folder {path}: {in_a_file} is a file, not a folder",
        f"log.dir={folder} (a folder, or a path not yet there), or move {in_a_file} away",
        "log.dir",
    )


def _bytes_text(count: int) -> str:
    """'2.0 GiB' for 2147483648: the size in the units torch's own messages use."""
    value, unit = float(count), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}" if unit != "bytes" else f"{count} bytes"


def _no_forward(failure: Failure, match: re.Match[str]) -> Advice:
    model = failure.model
    methods = {name: value for name, value in vars(type(model)).items() if callable(value)} if model else {}
    close = closest("forward", [name for name in methods if name != "forward"])
    if close:
        found = source_of(methods[close])
        where = f" at {short_path(found[0])}:{found[1]}" if found else ""
        return Advice(
            f"the model has no forward method, but a method '{close}'{where}",
            f"rename '{close}' to 'forward' (the Trainer calls model(x), which runs forward)",
        )
    return Advice(
        f"the model has no forward method{failure.at} (a misspelled `def forward`, or it is indented inside __init__)",
        "define `def forward(self, x):` at the level of __init__, spelled exactly so",
    )


def _float_size(failure: Failure, match: re.Match[str]) -> Advice:
    divisions = _divisions_on_line(failure.place)
    shown = f" ({divisions})" if divisions else ""
    return Advice(
        f"a size or count is a float{shown}, but layer sizes and counts must be whole numbers{failure.at}",
        "divide with // (hidden // 2), or wrap it in int(...)",
        key_of(failure),
    )


def _divisions_on_line(place: Place | None) -> str:
    """'hidden / 2 = 64.0': each `/` on the line worked out from the frame's numbers (nothing else is run)."""
    if place is None:
        return ""
    try:
        tree = ast.parse(place.source.rstrip(",").removesuffix(":") if place.source else "", mode="exec")
    except SyntaxError:
        return ""
    shown = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            value = _arithmetic(node, place.local_names)
            if value is not None:
                shown.append(f"{ast.unparse(node)} = {value!r}")
    return ", ".join(dict.fromkeys(shown))


def _arithmetic(node: ast.AST, names: dict[str, Any]) -> float | None:
    """The value of +, -, *, /, // over number literals and the frame's number variables; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and isinstance(names.get(node.id), int | float):
        return names[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _arithmetic(node.left, names), _arithmetic(node.right, names)
        operations = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
        operations |= {ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
        operation = operations.get(type(node.op))
        if left is not None and right is not None and operation and (right != 0 or type(node.op) is ast.Mult):
            return operation(left, right)
    return None


# In the order they are tried: the first that answers wins, so narrower wordings come before wider ones.
RULES: list[Entry] = [
    rule(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)", _linear_features),
    rule(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels", _conv_channels),
    rule(
        r"Expected (\dD) \(unbatched\) or (\dD) \(batched\) input to (\w+), but got input of size: (\[[\d, ]+\])",
        _conv_rank,
    ),
    rule("|".join(RANK_WORDINGS), _rank),
    rule(
        r"Module \[(ModuleList|ModuleDict|ParameterList|ParameterDict)\] is missing the required \"forward\" function",
        _container_called,
    ),
    rule(
        r"Kernel size can't be greater than actual input size|Output size is too small|input image .* is smaller",
        _too_small,
    ),
    rule(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)", _view_size),
    rule(r"view size is not compatible with input tensor's size and stride", _view_stride),
    rule(
        r"Sizes of tensors must match except in dimension (\d+)\. Expected size (\d+) but got size (\d+) "
        r"for tensor number (\d+)",
        _cat_sizes,
    ),
    rule(
        r"stack expects each tensor to be equal size, but got (\[[\d, ]*\]) at entry (\d+) "
        r"and (\[[\d, ]*\]) at entry (\d+)",
        _stack_sizes,
    ),
    rule(
        r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)",
        _broadcast,
    ),
    rule(
        r"The expanded size of the tensor \((\d+)\) must match the existing size \((\d+)\) "
        r"at non-singleton dimension (\d+)",
        _expand,
    ),
    rule(r"running_mean should contain (\d+) elements not (\d+)", _batch_norm_features),
    rule(
        r"Given normalized_shape=\[([\d, ]+)\], expected input with shape \[\*, ([\d, ]+)\], "
        r"but got input of size\s*\[([\d, ]+)\]",
        _layer_norm,
    ),
    rule(r"input\.size\(-1\) must be equal to input_size\. Expected (\d+), got (\d+)", _rnn_features),
    rule(r"Expected hidden(?:\[\d\])? size \(([\d, ]+)\), got \[([\d, ]+)\]", _rnn_hidden),
    rule(r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)", _batch_rows),
    rule(
        r"Target size \((?:torch\.Size\()?\[([\d, ]*)\]\)?\) must be the same as "
        r"input size \((?:torch\.Size\()?\[([\d, ]*)\]",
        _bce_shapes,
    ),
    rule(r"0D or 1D target tensor expected, multi-target not supported", _targets_with_extra_dim),
    rule(r"Target (-?\d+) is out of bounds", _target_out_of_bounds),
    rule(r"index out of range in self", _embedding_index),
    rule(r"Dimension out of range \(expected to be in range of \[(-?\d+), (\d+)\], but got (-?\d+)\)", _dimension),
    rule(r"index (-?\d+) is out of bounds for dimension (\d+) with size (\d+)", _index_bounds),
    rule(r"too many indices for tensor of dimension (\d+)", _too_many_indices),
    rule(
        rf"expected (?:scalar type|m1 and m2 to have the same dtype, but got:?) ?({DTYPE_WORDS})\w* (?:but found|!=) "
        rf"({DTYPE_WORDS})|mat1 and mat2 must have the same dtype|Input type \((\w+)\) and bias type \((\w+)\)|"
        rf"Found dtype ({DTYPE_WORDS}) but expected ({DTYPE_WORDS})|\"(\w+)\" not implemented for '({DTYPE_WORDS})'|"
        r"result type (\w+) can't be cast to the desired output type (\w+)|"
        # any other wording that names a dtype it expected and one it got
        rf"(?:dtype|scalar type|type)s? (?:to be |of )?(?:one of )?{DTYPE_WORDS}\b"
        rf".*(?:but got|got|found) {DTYPE_WORDS}\b",
        _dtypes,
    ),
    rule(
        r"Expected tensor for argument #\d+ '(\w+)' to have (?:one of )?the following scalar types?: "
        r"([\w, ]+); but got (\S+)",
        _index_dtype,
    ),
    rule(
        r"Found no NVIDIA driver|Torch not compiled with CUDA enabled|"
        r"No CUDA GPUs are available|no CUDA-capable device",
        _no_gpu,
    ),
    rule(
        r"Expected all tensors to be on the same device|Input type \(\S*cuda\S*\) and weight type|on the same device",
        _devices,
    ),
    rule(r"modified by an inplace operation: \[(\S+) \[([\d, ]*)\]\], which is output (\d+) of (\w+)", _inplace),
    rule(r"a leaf Variable that requires grad is being used in an in-place operation", _leaf_inplace),
    rule(r"Trying to backward through the graph a second time", _backward_twice),
    rule(r"does not require grad and does not have a grad_fn", _no_graph),
    rule(r"Can't call numpy\(\) on Tensor that requires grad", _numpy_in_graph),
    rule(r"grad can be implicitly created only for scalar outputs", _not_scalar),
    rule(r"name '(\w+)' is not defined", _name, NameError),
    rule(
        r"'(\w+)' object has no attribute '(\w+)'|module '([\w.]+)' has no attribute '(\w+)'",
        _attribute,
        AttributeError,
    ),
    rule(
        r"cannot assign module before Module\.__init__\(\) call|__init__\(\) was not called|"
        r"has no attribute '_modules'",
        _no_super_init,
    ),
    rule(
        r"(\w[\w.]*)\(\) (?:takes (\d+) positional arguments? but (\d+) (?:was|were) given|"
        r"missing (\d+) required positional arguments?: (.*)|got an unexpected keyword argument '(\w+)'|"
        r"takes from \d+ to \d+ positional arguments but \d+ were given)",
        _call_arguments,
        TypeError,
    ),
    rule(r"'(\w+)' object is not callable", _not_callable, TypeError),
    rule(
        r"argument '(\w+)' \(position (\d+)\) must be (\w+), not (\w+)|must be Tensor, not (\w+)|"
        r"expected Tensor as element \d+ in argument \d+, but got (\w+)",
        _not_a_tensor,
        TypeError,
    ),
    rule(
        r"'?(tuple|list|NoneType|dict|int|float|str)'? (?:indices must be integers|object is not subscriptable)",
        _subscript,
    ),
    rule(r"received an invalid combination of arguments - got \((.*?)\), but expected", _bad_combination, TypeError),
    rule(r"unsupported operand type\(s\) for (\S+): '(\w+)' and '(\w+)'", _operands, TypeError),
    rule(r"Boolean value of Tensor with more than one value is ambiguous", _tensor_in_if),
    rule(
        r"only one element tensors can be converted to Python scalars|a Tensor with \d+ elements cannot be converted",
        _item_of_many,
    ),
    rule(r"all elements of input should be between 0 and 1", _bce_raw_scores),
    rule(
        r"(?:has to be|must be|should be) "
        r"(between [\d.]+ and [\d.]+|positive|non-negative|greater than \S+|in \[.*?\])",
        _value_out_of_range,
    ),
    rule(r"Expected more than 1 value per channel when training", _batch_of_one),
    rule(r"maximum recursion depth exceeded", _recursion, RecursionError),
    rule(
        r"not enough memory|DefaultCPUAllocator: can't allocate memory|out of memory|OutOfMemoryError", _out_of_memory
    ),
    rule(r"Not a directory", _not_a_folder, NotADirectoryError),
    rule(
        r"Module \[\w+\] is missing the required \"forward\" function|" r"forward\(\) is not implemented",
        _no_forward,
        NotImplementedError,
    ),
    rule(
        r"must be tuple of ints, but found element of type float|'float' object cannot be interpreted as an integer",
        _float_size,
    ),
]
