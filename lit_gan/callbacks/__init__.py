"""Callbacks: everything a user watches during training."""

from lit_gan.callbacks.budget import CPUBudget
from lit_gan.callbacks.checkpoints import LastCheckpoint
from lit_gan.callbacks.metrics import Evaluation
from lit_gan.callbacks.samples import SampleGrid

__all__ = ["CPUBudget", "Evaluation", "LastCheckpoint", "SampleGrid"]
