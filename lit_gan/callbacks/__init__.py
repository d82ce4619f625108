"""Callbacks: everything a user watches during training."""

from lit_gan.callbacks.budget import Budget
from lit_gan.callbacks.checkpoints import BestCheckpoint, LastCheckpoint
from lit_gan.callbacks.metrics import Evaluation
from lit_gan.callbacks.predictions import PredictionWriter
from lit_gan.callbacks.samples import SampleGrid
from lit_gan.callbacks.speed import Speed

__all__ = ["BestCheckpoint", "Budget", "Evaluation", "LastCheckpoint", "PredictionWriter", "SampleGrid", "Speed"]
