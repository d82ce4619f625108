"""The R3GAN variant: the paper's defaults, and it trains end to end (fp32, bf16, conditional)."""

import lightning as L
import pytest
import torch

from lit_gan.models import R3GAN
from lit_gan.nets import R3GANDiscriminator, R3GANGenerator
from lit_gan.optim import Optim
from lit_gan.terms import R1, R2, AdaptiveAugment
from tests.conftest import tiny
from tests.models.test_base import batches, params, same
from tests.test_terms import R3GAN_OPTIONS


def test_defaults_follow_the_paper():
    model = R3GAN()
    assert isinstance(model.generator, R3GANGenerator) and isinstance(model.discriminator, R3GANDiscriminator)
    assert model.hparams.objective["loss"] == model.objective.loss.name == "rpgan"
    assert [type(t) for t in model.objective.terms] == [R1, R2]
    assert [(t.gamma, t.every) for t in model.objective.terms] == [(0.05, 1), (0.05, 1)]
    assert model.opt_g == model.opt_d == Optim(lr=2e-4, betas=(0.0, 0.99))
    assert (model.latent_dim, model.ema.decay, model.ema.rampup) == (64, 0.999, 0.05)
    assert (model.hparams.latent["dim"], model.hparams.ema) == (64, {"decay": 0.999, "rampup": 0.05})
    assert model.hparams.generator == {"class_path": "lit_gan.nets.r3gan.R3GANGenerator", "init_args": {}}


@pytest.mark.parametrize("conditional", [False, True])
def test_trains_end_to_end_with_the_real_trainer(trainer_kwargs, conditional):
    model = tiny(R3GAN, num_classes=10, conditional=conditional, **R3GAN_OPTIONS)
    g0, d0 = params(model.generator), params(model.discriminator)
    trainer = L.Trainer(**{**trainer_kwargs, "limit_train_batches": 6})
    trainer.fit(model, batches(n=6), batches(n=1))  # with validation: no penalty there, no crash
    assert not same(g0, params(model.generator)) and not same(d0, params(model.discriminator))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    logged = trainer.callback_metrics
    assert {"train/r1", "train/r2", "train/ada_p", "val/d_loss"} <= set(logged) and logged["train/r2"] > 0
    assert not same(params(model.generator), params(model.generator_ema))  # the EMA lags G
    assert model.hparams.conditional == conditional and isinstance(model.objective.terms[2], AdaptiveAugment)


def test_every_new_option_trains_under_bf16_mixed(trainer_kwargs):
    model = tiny(R3GAN, **R3GAN_OPTIONS)
    trainer = L.Trainer(**{**trainer_kwargs, "precision": "bf16-mixed", "limit_train_batches": 4})
    trainer.fit(model, batches())
    logged = trainer.callback_metrics
    assert all(torch.isfinite(logged[k]) for k in ("train/d_loss", "train/g_loss", "train/r1", "train/r2"))
    assert logged["train/r1"] > 0 and 0.0 <= logged["train/ada_p"] <= 1.0
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())  # fp32 master weights
