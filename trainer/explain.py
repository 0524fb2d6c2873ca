"""One translator for exceptions raised while the learner's model, loss or data runs: what, where, what to try.

Every message names the innermost line of the learner's own code (and shows it), the layer that was running and
the shapes it got, what torch said in one line, and a fix. Known failures are recognized by the exception's class
and by the family of torch's wording (`RULES`); any other exception still gets the place and the likely fix for
its class (`LIKELY_FIX`). Importing this module does not import torch: the config checks run without it.
"""

from __future__ import annotations

import contextlib
import re
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer import torch_errors
from trainer.errors import UserError
from trainer.failure import (
    OWN_FOLDER,
    Advice,
    Failure,
    Layer,
    LayerTracker,
    Place,
    key_of,
    layer_at,
    place_in_forward_trace,
    user_location,
    user_place,
)


def explain(
    err: BaseException,
    layer: Layer | tuple[str, Any] | None = None,
    batch_size: int | None = None,
    during: str = "training",
    *,
    model: Any = None,
    loss_fn: Any = None,
    forward_place: Place | None = None,
    model_input: str = "",
) -> UserError:
    """A UserError naming the learner's line, the layer and the fix; any exception gets at least the place."""
    try:
        return _translated(err, layer, batch_size, during, model, loss_fn, forward_place, model_input)
    except Exception:  # the translator itself failed: the original error, and where, must still be said
        text = (str(err).strip().splitlines() or [""])[0]
        where = user_location(err.__traceback__)
        return UserError(
            f"{type(err).__name__}{' at ' + where if where else ''}: {text}",
            fix=LIKELY_FIX["RuntimeError"],
            key="model",
        )


def _translated(
    err: BaseException,
    layer: Layer | tuple[str, Any] | None,
    batch_size: int | None,
    during: str,
    model: Any,
    loss_fn: Any,
    forward_place: Place | None,
    model_input: str,
) -> UserError:
    if isinstance(layer, tuple):
        layer = Layer(*layer)
    place = user_place(err.__traceback__)
    if layer is None and model is not None:
        layer = layer_at(model, place or forward_place)
    failure = Failure(err, place, layer, during, batch_size, model, forward_place, loss_fn, model_input)
    advice = None
    for classes, pattern, translate in torch_errors.RULES:
        if classes is not None and not isinstance(err, classes):
            continue
        match = pattern.search(failure.text)
        if match is None:
            continue
        try:
            advice = translate(failure, match)
        except Exception:  # a translator that fails must never hide the original error: fall back below
            advice = None
        if advice is not None:
            break
    if advice is None:
        advice = fallback(failure)
    return UserError(advice.what + details(failure), fix=advice.fix, key=advice.key)


def details(failure: Failure) -> str:
    """The lines under the message: the learner's line, the layer and its input, and torch's own words."""
    lines = []
    for label, place in (("", failure.place), ("made by ", failure.forward_place)):
        if place is not None and place.source:
            lines.append(f"{label}{place.where}: {place.source}")
    if failure.place is not None and (tensors := failure.place.tensors_on_line()):
        lines.append(f"on that line: {tensors}")
    if failure.during not in ("the forward pass", "the loss", "backward", "training", "a training step"):
        lines.append(f"during {failure.during}")
    if failure.layer is not None and failure.layer.inputs:
        weights = _weight_dtype(failure.layer.module)
        lines.append(f"{failure.layer.label} got {failure.layer.inputs}{weights}")
    said = "torch said" if raised_by_torch(failure.err) else "Python said"
    lines.append(f"{said}: {type(failure.err).__name__}: {failure.first_line}")
    return "".join(f"\n    {line}" for line in lines)


# Errors Python itself raises about the learner's code, whatever their wording.
PYTHON_ERRORS = (NameError, KeyError, ZeroDivisionError, RecursionError, AssertionError, ImportError, SyntaxError)
TORCH_WORDS = re.compile(r"[Tt]ensor|torch|dtype|device|grad|shape|size|dimension|kernel|CUDA|channels|mat1")


def raised_by_torch(err: BaseException) -> bool:
    """Did torch's own checks raise it (in its Python code or its C++ core), rather than Python itself?"""
    if isinstance(err, PYTHON_ERRORS) or re.search(r"positional argument|keyword argument", str(err)):
        return False
    frames = traceback.extract_tb(err.__traceback__)
    if frames and f"{Path('torch')}{'/'}" in frames[-1].filename.replace("\\", "/"):
        return True
    return bool(TORCH_WORDS.search(str(err)))


LIKELY_FIX = {
    "NameError": "define the name or import it at the top of your file",
    "AttributeError": "check the spelling of the attribute, and that it is set in __init__ (self.name = ...)",
    "TypeError": "compare the call on that line with what the function takes: the number and kind of arguments",
    "ValueError": "a value has the wrong size or kind for that call: print its shape just before that line",
    "IndexError": "an index is past the end: print the size of what is indexed and the index just before that line",
    "KeyError": "that key is not in the dict: print the dict's keys just before that line",
    "ZeroDivisionError": "a divisor is zero: guard it, or add a small number (x / (n + 1e-8))",
    "AssertionError": "an assert in your code failed: print the values it compares just before that line",
    "RecursionError": "a function calls itself without end: in forward, call the layers, not self(x) or self.forward",
    "NotImplementedError": "a method is missing: an nn.Module needs a `def forward(self, x)` (spelled exactly so)",
    "RuntimeError": "print the shapes and dtypes of the tensors on that line; `python -m trainer check CONFIG` "
    "shows the output shape of every layer",
}


def fallback(failure: Failure) -> Advice:
    """No rule knows this error: the place, the layer and torch's words still say where to look."""
    kind = type(failure.err).__name__
    where = f"in {failure.layer.label}" if failure.layer else f"during {failure.during}"
    fix = next((LIKELY_FIX[c.__name__] for c in type(failure.err).__mro__ if c.__name__ in LIKELY_FIX), "")
    fix = fix or LIKELY_FIX["RuntimeError"]
    own = _own_frame(failure.err) if failure.place is None else ""
    if own:  # not the learner's code at all: say so, rather than blame their model
        return Advice(
            f"{kind} inside leaptrain itself ({own}) {where}: {failure.first_line}",
            "`python -m trainer check CONFIG` shows whether the model's output and the data have the shapes the "
            "loss expects; if they do, this is a bug in leaptrain: run again with --debug and report the traceback",
            key="",
        )
    return Advice(f"{kind} {where}{failure.at}: {failure.first_line}", fix, key=key_of(failure))


def _own_frame(err: BaseException) -> str:
    """'trainer/components/tables.py:120' when the innermost frame outside torch is leaptrain's own, else ''."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "torch" not in Path(f.filename).parts]
    if frames and frames[-1].filename.startswith(OWN_FOLDER):
        path = Path(frames[-1].filename)
        return f"{Path(OWN_FOLDER).name}/{path.relative_to(OWN_FOLDER)}:{frames[-1].lineno}"
    return ""


def _weight_dtype(module: Any) -> str:
    """'; its weights are float32' (to compare with what the layer got), or ''."""
    parameter = next(iter(module.parameters(recurse=False)), None) if hasattr(module, "parameters") else None
    return f"; its weights are {str(parameter.dtype).removeprefix('torch.')}" if parameter is not None else ""


def explain_batch_failure(
    err: BaseException,
    model: Any,
    loss_fn: Any,
    inputs: Any,
    targets: Any,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> UserError:
    """Explain an exception raised while a batch went through model, loss and backward.

    The batch is run again with the layers watched (which layer was running, what it got) and, for a failure in
    backward, with autograd's anomaly mode, which records the forward line that made each operation. The run is
    stopping anyway; the random state is left as it was.
    """
    # Out of memory: running the batch again would only run out of memory again.
    if re.search(r"out of memory|can't allocate memory|not enough memory", str(err), re.I):
        return explain(err, batch_size=len(targets), model=model)
    import torch

    during, layer, forward_place = "training", None, None
    # Anomaly mode must be on during the forward too: that is when it records the line that made each operation.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly():
                with LayerTracker(model) as tracker, autocast():
                    during = "the forward pass"
                    logits = model(inputs)
                    during = "the loss"
                    loss = loss_fn(logits, targets)
                during = "backward"
                loss.backward()
            during = "training"
        except Exception:
            layer = tracker.failing_layer if during == "the forward pass" else None
        finally:
            model.zero_grad(set_to_none=True)
    if during == "backward":
        for warning in caught:
            forward_place = forward_place or place_in_forward_trace(str(warning.message))
    return explain(
        err,
        layer,
        len(targets),
        during if during != "training" else "a training step",
        model=model,
        loss_fn=loss_fn,
        forward_place=forward_place,
        model_input=tracker.model_input if during == "the forward pass" else "",
    )
