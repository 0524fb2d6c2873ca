"""leaptrain: train PyTorch models from a YAML config, or from Python with `trainer.Trainer`.

Importing this package does not import torch, so the command line can reject a bad config at once.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Callback", "Options", "Trainer", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "Options"):
        from trainer import loop

        return getattr(loop, name)
    if name == "Callback":
        from trainer.callbacks import Callback

        return Callback
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
