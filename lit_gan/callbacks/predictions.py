"""`lit-gan predict`'s output: the generated images (and the labels asked for) as files in the run."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch import Tensor

from lit_gan.folders import new_run_dir
from lit_gan.images import save_grid, to_uint8
from lit_gan.models.contract import is_generative

LABELS = "labels.csv"
GRID = "grid.png"


class PredictionWriter(BasePredictionWriter):
    """Writes what ``predict`` generates (``model.predict_step``: one image per label of the data's
    predict set, ``--data.init_args.predict_size`` of them) into a folder of the run,
    ``<run>/predict-<date>-<time>/`` (the folder of that command's ``metrics.csv``):

    - ``000000.png``, ``000001.png``, ...: image i of the predict set, lossless uint8 (the same
      format as ``lit-gan generate samples``), written batch by batch as they come;
    - ``labels.csv`` (conditional models): ``file,label,class_name`` per image, the label it was
      asked for;
    - ``grid.png``: the first ``grid`` images, one column per class for a conditional model (as the
      training sample grids).

    Under DDP every rank writes its own images (named by their index in the predict set); rank 0
    writes the labels and the grid once all are written. ``folder`` is where they went (the CLI
    prints it).

    Args:
        dirpath: the folder to write into (must hold no earlier predictions); None: a new
            ``predict-<date>-<time>`` folder in the run directory.
        grid: images in ``grid.png`` (0: no grid).
    """

    def __init__(self, dirpath: str | None = None, grid: int = 64) -> None:
        super().__init__(write_interval="batch")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 0:
            raise ValueError(f"grid is a number of images (0: no grid), got {grid!r}")
        self.dirpath, self.grid = dirpath, grid
        self.folder: Path | None = None
        self._labels: list[tuple[int, int]] = []  # (index, label) of this rank's images
        self._written = 0  # images this rank wrote
        self._active = False

    # ----- Lightning hooks ----------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._active = stage == "predict" and is_generative(pl_module)
        if not self._active:
            return
        folder = str(self._claim(trainer)) if trainer.is_global_zero else None
        self.folder = Path(trainer.strategy.broadcast(folder, src=0))
        self._labels, self._written = [], 0

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        if not self._active or self.folder is None:
            return
        if not isinstance(prediction, Tensor) or prediction.ndim != 4:
            rank_zero_warn(f"PredictionWriter: predict_step returned {type(prediction).__name__}, not a batch of "
                           "images (N, C, H, W); nothing written")
            return
        if not torch.isfinite(prediction).all():
            rank_zero_warn("PredictionWriter: the generator produced non-finite images (a diverged model?); "
                           "they are written clipped")
        indices = list(batch_indices) if batch_indices else range(self._written, self._written + len(prediction))
        pixels = to_uint8(prediction, tuple(getattr(pl_module, "value_range", (-1.0, 1.0))))
        for index, image in zip(indices, pixels):
            _save_png(image, self.folder / f"{int(index):06d}.png")
        self._written += len(pixels)
        if getattr(pl_module, "conditional", False) and isinstance(batch, Tensor) and len(batch) == len(pixels):
            self._labels += list(zip(map(int, indices), batch.flatten().tolist()))

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        if not self._active or self.folder is None:
            return
        conditional = bool(getattr(pl_module, "conditional", False))
        part = self.folder / f".labels.rank{trainer.global_rank}.pt"
        if conditional and trainer.world_size > 1:
            torch.save(self._labels, part)
        trainer.strategy.barrier()  # every rank's images and labels are on disk
        if not trainer.is_global_zero:
            return
        if conditional:
            rows = self._labels
            if trainer.world_size > 1:
                parts = sorted(self.folder.glob(".labels.rank*.pt"))
                rows = [row for p in parts for row in torch.load(p, weights_only=True)]
                for p in parts:
                    p.unlink()
            names = list(getattr(trainer.datamodule, "class_names", []) or []) if trainer.datamodule is not None else []
            with open(self.folder / LABELS, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["file", "label", "class_name"])
                for index, label in sorted(rows):
                    writer.writerow([f"{index:06d}.png", label, names[label] if 0 <= label < len(names) else ""])
        if self.grid:
            self._write_grid(pl_module)

    # ----- helpers ------------------------------------------------------------------------------
    def _claim(self, trainer: L.Trainer) -> Path:
        """The folder this predict writes into: `dirpath` (refused when it holds earlier
        predictions), else the folder of this command's CSV log (`<run>/predict-<time>`), else a
        new `<run>/predict-<time>` of its own."""
        if self.dirpath is not None:
            folder = Path(self.dirpath)
            if folder.is_dir() and any(itertools.chain(folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"),
                                                       folder.glob(LABELS), folder.glob(GRID))):
                raise FileExistsError(f"{folder} already holds predictions; choose another --predictions.dirpath")
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        root = Path(trainer.default_root_dir)
        for logger in trainer.loggers:  # the CLI's CSV log of this command: <run>/predict-<time>/metrics.csv
            log_dir = getattr(logger, "log_dir", None)
            if log_dir and Path(log_dir).name.startswith("predict-") and Path(log_dir).parent.resolve() == root.resolve():
                folder = Path(log_dir)
                if not any(folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png")):
                    folder.mkdir(parents=True, exist_ok=True)
                    return folder
        return new_run_dir(root, "predict")

    def _write_grid(self, pl_module: L.LightningModule) -> None:
        assert self.folder is not None
        columns = int(getattr(pl_module, "grid_columns", 8)) or 8
        files = sorted(self.folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"))
        shown = min(len(files), max(self.grid // columns * columns, min(self.grid, columns)))
        if not shown:
            return
        images = torch.stack([_read_png(p) for p in files[:shown]])
        save_grid(images.float(), self.folder / GRID, nrow=columns, value_range=(0.0, 255.0))


def _save_png(image: Tensor, path: Path) -> None:
    """One uint8 (C, H, W) image as a PNG (grey stays one channel)."""
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)


def _read_png(path: Path) -> Tensor:
    """A PNG written by :func:`_save_png` as uint8 (C, H, W)."""
    with Image.open(path) as picture:
        array = torch.from_numpy(np.array(picture))
    return array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1)
