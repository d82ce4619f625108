"""No host-device synchronization inside a training step: only once per logging interval.

On CUDA every call that turns a device tensor into a host value waits for the GPU's queue to
drain. CPU has no queue, so the test counts the calls themselves, by batch: a real fit (logger,
progress bar, checkpointing) of 50 batches with `log_every_n_steps=10` may synchronize in the
batches where Lightning logs (10, 20, ..., 50) and nowhere else.
"""

from __future__ import annotations

import csv
import sys
from typing import Any

import lightning as L
import pytest
import torch
from torch.optim import optimizer as torch_optimizer
from lightning.pytorch.loggers import CSVLogger

from lit_gan.callbacks import LastCheckpoint
from lit_gan.models import DCGAN, R3GAN, WGANGP
from tests.conftest import tiny
from tests.models.test_base import batches

SYNCING = ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy")
"""Tensor methods that bring a value to the host (on CUDA: wait for the device)."""

HOST_STEP_COUNTER = torch_optimizer._get_value.__code__
"""Where torch's optimizers read their step count: a host tensor on CUDA too (unless capturable),
so no synchronization there; on CPU the single-tensor Adam reads it with `.item()`."""

MODELS = {
    "DCGAN": lambda: tiny(DCGAN),
    "WGANGP": lambda: tiny(WGANGP),
    "R3GAN+ADA": lambda: tiny(R3GAN, objective={"loss": "rpgan", "terms": {"ada": {"interval": 4, "ramp_images": 500}},
                                                 "augment": "translation,cutout"}),
}


class Syncs(L.Callback):
    """Which batch (index) each synchronizing call happened in."""

    def __init__(self) -> None:
        self.batch: int | None = None
        self.calls: list[tuple[int | None, str]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.batch = batch_idx

    def count(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in SYNCING:
            original = getattr(torch.Tensor, name)

            def counted(tensor: torch.Tensor, *args: Any, __name: str = name, __original: Any = original, **kwargs: Any) -> Any:
                if sys._getframe(1).f_code is not HOST_STEP_COUNTER:
                    self.calls.append((self.batch, __name))
                return __original(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)
        monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: self.calls.append((self.batch, "cuda.synchronize")))


@pytest.mark.parametrize("variant", list(MODELS))
def test_a_training_step_synchronizes_only_at_the_logging_interval(variant: str, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, syncs = MODELS[variant](), Syncs()
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, log_every_n_steps=10,
                        logger=CSVLogger(tmp_path), callbacks=[syncs, LastCheckpoint(dirpath=str(tmp_path / "ckpt"))],
                        enable_model_summary=False)
    syncs.count(monkeypatch)
    trainer.fit(model, batches(n=50))
    in_steps = sorted({batch for batch, _ in syncs.calls if batch is not None})
    assert in_steps == [9, 19, 29, 39, 49], syncs.calls[:12]  # one round per interval (the last is also the epoch's end)
    # the curves are still there: every logging step's values, with ADA's p
    header, *rows = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    assert {"train/d_loss", "train/g_loss"} <= set(header.split(",")) and len(rows) >= 5
    assert ("train/ada_p" in header) == (variant == "R3GAN+ADA")


def _fit_logged(tmp_path, monkeypatch: pytest.MonkeyPatch, every_step: bool) -> tuple[list[dict[str, str]], int]:
    """metrics.csv of a 10-batch fit logging every 3 steps, and how many readouts D's steps computed;
    `every_step`: the readouts computed in every step, as before they were kept for logged steps."""
    from lit_gan.models.base import GAN
    from lit_gan.objective import Objective

    readouts, readout, train_step = [0], Objective.readout, GAN._train_step
    monkeypatch.setattr(Objective, "readout", lambda self, scores: readouts.__setitem__(0, readouts[0] + 1) or readout(self, scores))
    if every_step:
        monkeypatch.setattr(GAN, "_train_step", lambda self, group, logged=True: train_step(self, group, True))
    torch.manual_seed(0)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, log_every_n_steps=3, logger=CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(tiny(DCGAN), batches(n=10))
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        rows = [{k: v for k, v in row.items() if k != "train/epoch_seconds"} for row in csv.DictReader(f)]
    return rows, readouts[0]


def test_readouts_are_computed_for_logged_steps_only_and_log_the_same_curves(tmp_path, monkeypatch):
    lean, n_lean = _fit_logged(tmp_path / "lean", monkeypatch, every_step=False)
    monkeypatch.undo()
    full, n_full = _fit_logged(tmp_path / "full", monkeypatch, every_step=True)
    assert n_full == 2 * 10  # D(real) and D(fake), every D step
    assert n_lean == 2 * 4  # the logged steps: batches 3, 6, 9 (every 3) and 10 (the epoch's end)
    assert lean == full and {"train/d_real", "train/d_fake"} <= set(lean[0])
    assert [r["step"] for r in lean if r["train/d_real"]] == ["2", "5", "8"]  # rows at the interval (the epoch's end reaches the callbacks)
