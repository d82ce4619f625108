"""A diverging run stops within one logging interval, saves nothing non-finite, and keeps its last finite checkpoint."""

import lightning as L
import pytest
import torch

from lit_gan.callbacks import LastCheckpoint
from lit_gan.checkpoint_io import read_checkpoint
from lit_gan.errors import Diverged
from lit_gan.metrics.evaluate import Settings, generate
from lit_gan.models import DCGAN
from tests.conftest import tiny
from tests.models.test_base import batches


class Poisoned(DCGAN):
    """D's loss turns NaN at batch 3: a NaN injected mid-run, after a finite first epoch."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        d_loss = self.objective.d_loss

        def poisoned(step):
            loss, logs = d_loss(step)
            return (loss * float("nan") if step.index == 3 and step.phase == "d" else loss), logs  # during batch 3

        self.objective.d_loss = poisoned


def test_a_nan_loss_stops_training_and_last_ckpt_keeps_the_last_finite_state(tmp_path):
    model = tiny(Poisoned)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=3, limit_train_batches=2, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[LastCheckpoint(dirpath=str(tmp_path / "ckpt"))])
    with pytest.raises(Diverged, match=r"diverged at batch 3: D's loss is nan; lower the learning rates \(opt_d.lr=0.0002"):
        trainer.fit(model, batches())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.ckpt"]
    saved = read_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert saved["batches_seen"] == 2  # the end of the finite first epoch, not the diverged state
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())
    # no synchronization per step: the NaN is found at the next check (each logging interval, each
    # epoch's end, every checkpoint), here the end of epoch 2, and named by the batch it came from
    assert model.batches_seen == 4


def test_non_finite_weights_are_never_saved(tmp_path):
    model = tiny(DCGAN)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, batches())
    trainer.save_checkpoint(tmp_path / "good.ckpt")
    with torch.no_grad():
        next(model.generator.parameters())[0] = float("inf")
    with pytest.raises(Diverged, match="non-finite weights in generator"):
        trainer.save_checkpoint(tmp_path / "good.ckpt")
    assert read_checkpoint(tmp_path / "good.ckpt")["batches_seen"] == 1  # the previous file is kept


def test_evaluation_refuses_non_finite_images():
    model = tiny(DCGAN)
    with torch.no_grad():
        for p in model.generator.parameters():
            p.fill_(float("nan"))
    with pytest.raises(Diverged, match="non-finite images"):
        generate(model, 8, None, Settings(num_fake=8, num_real=8, batch_size=8), model.value_range)
