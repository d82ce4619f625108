"""Sample grids from the fixed noise stored in the model (one column per class when conditional)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from lit_gan.images import save_grid
from lit_gan.models.contract import is_generative
from lit_gan.tracking import log_image


class SampleGrid(L.Callback):
    """Writes `<run>/samples/epoch_NNN.png` every `every_n_epochs` and sends it to every logger
    that can show images (`lit_gan.tracking.log_image`: W&B, TensorBoard). The grid is
    `model.fixed_samples()`: the same noise (kept in checkpoints) every time, so grids compare
    across epochs."""

    def __init__(self, every_n_epochs: int = 1, dirname: str = "samples") -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs, self.dirname = every_n_epochs, dirname
        self.last_path: Path | None = None
        self._written_at_step = -1

    @torch.no_grad()
    def write(self, trainer: L.Trainer, model: L.LightningModule, name: str) -> Path | None:
        if not is_generative(model):  # e.g. the metrics' Classifier
            return None
        images, columns = model.fixed_samples()
        if not trainer.is_global_zero:
            return None
        path = Path(trainer.default_root_dir) / self.dirname / f"{name}.png"
        self._written_at_step = trainer.global_step
        self.last_path = save_grid(images, path, nrow=columns, value_range=model.value_range)
        log_image(trainer, "samples", path)
        return path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.write(trainer, pl_module, f"epoch_{trainer.current_epoch:03d}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._written_at_step:  # stopped between two grids
            self.write(trainer, pl_module, "final")
