"""Lightning's GradientAccumulationScheduler for lit_gan's loop, which accumulates itself."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import GradientAccumulationScheduler


class AccumulationSchedule(GradientAccumulationScheduler):
    """Sets `trainer.accumulate_grad_batches` per epoch, as Lightning's does, without its refusal of
    manual optimization: `lit_gan.models.GAN` reads the value at every batch."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """(Lightning's checks concern its own automatic accumulation.)"""

    @classmethod
    def of(cls, callback: Any) -> Any:
        """`callback` as an AccumulationSchedule when it is Lightning's scheduler, else as it is."""
        return cls(callback.scheduling) if type(callback) is GradientAccumulationScheduler else callback
