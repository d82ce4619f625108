"""`checkpoints/last.ckpt`: written after every epoch and when training is interrupted."""

from __future__ import annotations

import signal
import threading
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_gan import checkpoint_io
from lit_gan.errors import Diverged


class LastCheckpoint(ModelCheckpoint):
    """The checkpoint to resume from: `last.ckpt` after every validation (or epoch without one),
    and on an exception, Ctrl-C (at the next batch boundary) or SIGTERM once training has started.
    (Lightning's `save_last` only refreshes `last.ckpt` when a top-k checkpoint improves.)"""

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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Ctrl-C stops at the next batch boundary, so last.ckpt never holds half a step (D updated,
        G not) and a resume repeats nothing; a second Ctrl-C stops at once."""
        self._interrupted = False
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        rank_zero_info("\nCtrl-C: stopping after this batch and saving last.ckpt (Ctrl-C again to stop at once)")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if getattr(self, "_interrupted", False):
            raise KeyboardInterrupt  # between two batches: Lightning saves and exits 1

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        previous = getattr(self, "_previous_sigint", None)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
            self._previous_sigint = None
        super().teardown(trainer, pl_module, stage)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Save last.ckpt and say why (a diverged model is not saved: last.ckpt keeps the last finite one)."""
        if isinstance(exception, Diverged) or not self._should_save_on_exception(trainer):
            return
        path = self.format_checkpoint_name(metrics=self._monitor_candidates(trainer))
        self._save_checkpoint(trainer, path)
        cause = {SIGTERMException: "SIGTERM", KeyboardInterrupt: "Ctrl-C"}.get(type(exception), f"{type(exception).__name__}: {exception}")
        rank_zero_info(f"Stopped by {cause}: saved {path} to resume from")
