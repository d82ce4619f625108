"""Callbacks: everything a user watches during training."""

from lit_gan.callbacks.samples import SampleGrid

__all__ = ["SampleGrid"]
