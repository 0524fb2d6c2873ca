"""Turning config sections into objects: data, models, losses, optimizers and schedulers."""
