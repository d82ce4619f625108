"""Stop a fit after a budget of CPU time: comparisons at equal compute on a shared machine."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_info


class CPUBudget(L.Callback):
    """Stops training once the process has spent `minutes` of CPU time (`time.process_time()`:
    all its threads, so pin runs to threads you mean them to have) in training batches; time in
    validation and evaluation is not counted. Checked after every batch. Logs
    `train/cpu_minutes` each epoch and at the stop."""

    def __init__(self, minutes: float) -> None:
        if not (isinstance(minutes, (int, float)) and minutes > 0):
            raise ValueError(f"CPUBudget minutes must be a number > 0, got {minutes!r}")
        self.minutes = float(minutes)
        self.spent = 0.0  # CPU seconds in training batches
        self._start: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._start = time.process_time()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self._start is not None:
            self.spent += time.process_time() - self._start
        if self.spent >= 60 * self.minutes and not trainer.should_stop:
            trainer.should_stop = True
            rank_zero_info(f"CPUBudget: {self.spent / 60:.2f} CPU-minutes spent after {getattr(pl_module, 'batches_seen', '?')} batches: stopping")
            pl_module.log("train/cpu_minutes", self.spent / 60)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("train/cpu_minutes", self.spent / 60)

    def state_dict(self) -> dict[str, float]:
        return {"spent": self.spent}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.spent = float(state_dict.get("spent", 0.0))
