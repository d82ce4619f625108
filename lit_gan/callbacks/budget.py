"""`Budget`: stop training after a time budget (process CPU time or wall-clock), with snapshots on the way."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_gan.models.contract import is_adversarial

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


class Budget(Callback):
    """Train for ``minutes`` of ``clock`` time, then stop after the current batch; save
    ``<dirpath>/budget-<m>min.ckpt`` when each of ``snapshots`` (minutes) is crossed.

    ``clock="cpu"`` counts the training process's CPU time (`time.process_time`, all its threads):
    on a shared machine it measures the work done, where wall-clock time (Lightning's ``max_time``,
    or ``clock="wall"``) also counts the waiting. The time counts from the start of training, without
    the snapshots' own saves, and carries over a resume. Each checkpoint records the time spent in
    ``checkpoint["budget"]`` (``clock``, ``seconds``, ``batches``, ``images``: training images this
    process saw). DataLoader worker processes are
    not counted: keep ``num_workers=0`` for a CPU budget.

    Args:
        minutes: the budget; training stops at the first batch end past it.
        snapshots: minutes at which to save a checkpoint (each <= minutes), e.g. [2, 5, 10].
        clock: "cpu" (this process's CPU time) or "wall" (elapsed time).
        dirpath: where snapshots go (default: ``<default_root_dir>/checkpoints``).
    """

    def __init__(self, minutes: float, snapshots: Sequence[float] = (), clock: Literal["cpu", "wall"] = "cpu",
                 dirpath: str | None = None) -> None:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
            raise ValueError(f"Budget: minutes must be a number > 0, got {minutes!r}")
        bad = [m for m in snapshots if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= minutes]
        if bad:
            raise ValueError(f"Budget: snapshots must be minutes in (0, {minutes:g}] (the budget), got {bad}")
        if clock not in CLOCKS:
            raise ValueError(f"Budget: clock must be 'cpu' or 'wall', got {clock!r}")
        self.minutes, self.snapshots, self.clock = float(minutes), sorted(set(float(m) for m in snapshots)), clock
        self.dirpath = dirpath
        self.spent = 0.0  # seconds of budget used before this fit (a resume)
        self.taken: list[float] = []
        self.images = 0
        self.saved: dict[float, Path] = {}
        self._origin: float | None = None
        self._frozen: float | None = None  # the time of the snapshot being saved

    @property
    def state_key(self) -> str:
        return f"Budget[clock={self.clock}]"

    def elapsed(self) -> float:
        """Seconds of budget used so far."""
        if self._frozen is not None:
            return self._frozen
        return self.spent if self._origin is None else CLOCKS[self.clock]() - self._origin

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._origin = CLOCKS[self.clock]() - self.spent

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.images += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch)
        spent = self.elapsed()
        due = [m for m in self.snapshots if m not in self.taken and spent >= 60 * m]
        stop = spent >= 60 * self.minutes
        due, stop = trainer.strategy.broadcast((due, stop), src=0)  # every rank saves and stops together
        for m in due:
            self.save(trainer, m)
        if stop:
            trainer.should_stop = True
            self._log(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module)

    def _log(self, pl_module: L.LightningModule) -> None:
        """`train/cpu_minutes` (or `train/wall_minutes`): the budget used so far."""
        pl_module.log(f"train/{self.clock}_minutes", self.elapsed() / 60)

    def save(self, trainer: L.Trainer, minutes: float) -> Path:
        """Write the snapshot of ``minutes``; the time the save takes is not counted."""
        start, self._frozen = CLOCKS[self.clock](), self.elapsed()
        self.taken.append(minutes)
        folder = Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "checkpoints"
        path = folder / f"budget-{minutes:g}min.ckpt"
        try:
            trainer.save_checkpoint(path)
        finally:
            self._frozen = None
            if self._origin is not None:
                self._origin += CLOCKS[self.clock]() - start
        self.saved[minutes] = path
        return path

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        batches = pl_module.batches_seen if is_adversarial(pl_module) else trainer.global_step  # a GAN counts batches itself
        checkpoint["budget"] = {"clock": self.clock, "seconds": self.elapsed(), "batches": int(batches),
                                "images": self.images}

    def state_dict(self) -> dict[str, Any]:
        return {"spent": self.elapsed(), "taken": list(self.taken), "images": self.images}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.spent, self.taken = float(state_dict["spent"]), list(state_dict["taken"])
        self.images = int(state_dict.get("images", 0))
