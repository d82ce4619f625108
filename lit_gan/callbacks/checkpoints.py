"""`checkpoints/last.ckpt`: written after every epoch and when training is interrupted."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gan import checkpoint_io
from lit_gan.errors import Diverged


class LastCheckpoint(ModelCheckpoint):
    """The checkpoint to resume from: `last.ckpt` after every validation (or epoch without one),
    and on an exception, Ctrl-C or SIGTERM once training has started. (Lightning's `save_last`
    only refreshes `last.ckpt` when a top-k checkpoint improves, so it can lag behind.)"""

    def __init__(self, dirpath: str | None = None) -> None:
        super().__init__(
            dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
            enable_version_counter=False, save_on_exception=True,
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Every checkpoint of the run (this one, the best, Lightning's) is written atomically and read safely."""
        checkpoint_io.install(trainer)
        super().setup(trainer, pl_module, stage)

    def _should_save_on_exception(self, trainer: L.Trainer) -> bool:
        return super()._should_save_on_exception(trainer) and trainer.global_step > 0

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, Diverged):  # a diverged model is not saved: last.ckpt keeps the last finite one
            super().on_exception(trainer, pl_module, exception)
