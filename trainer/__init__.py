"""leaptrain: train PyTorch models from a YAML config, or from Python with `trainer.Trainer`.

Importing this package does not import torch, so the command line can reject a bad config at once.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Trainer", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Trainer":
        from trainer.loop import Trainer

        return Trainer
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
