"""What a careful person sets by hand to make a GPU fast, set for every run on CUDA: TensorFloat-32 for float32
matmuls and convolutions, cuDNN's search for the fastest convolution, and the fused (one kernel) Adam, AdamW
and SGD. On a CPU nothing changes: these settings only exist for CUDA."""

from __future__ import annotations

from typing import Any

import torch

FUSED = ("Adam", "AdamW", "SGD")  # torch's optimizers with a fused CUDA kernel


def gpu_defaults(device: torch.device) -> str | None:
    """Turn on TF32 and cudnn.benchmark on CUDA; the line that says so, or None on other devices."""
    if device.type != "cuda":
        return None
    torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on the tensor cores, 10 bits of mantissa
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # the fastest convolution for each input shape, found once
    return (
        "cuda: TF32 for float32 matmuls and convolutions (about 3 significant digits, as in bf16 training), "
        "cudnn.benchmark on, fused optimizers"
    )


def optimizer_arguments(cls: type, args: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The optimizer's arguments with `fused=True` on CUDA for Adam, AdamW and SGD, unless the config chose
    `fused` or `foreach` itself."""
    if device.type == "cuda" and cls.__name__ in FUSED and "fused" not in args and "foreach" not in args:
        return {**args, "fused": True}
    return args
