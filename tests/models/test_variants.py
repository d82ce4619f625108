"""Every variant: its defaults follow its paper, and it trains (both networks move, stay finite)."""

import lightning as L
import pytest
import torch

from lit_gan.models import ACGAN, CDCGAN, CGAN, CWGANGP, DCGAN, GAN, R3GAN, SNGAN, WGAN, WGANGP
from lit_gan.nets import DCGANDiscriminator, MLPGenerator
from lit_gan.optim import Optim
from lit_gan.terms import AuxClassifier, GradientPenalty, WeightClipping
from tests.conftest import tiny
from tests.models.test_base import batches, params, same

VARIANTS = [GAN, CGAN, DCGAN, CDCGAN, SNGAN, WGAN, WGANGP, CWGANGP, ACGAN, R3GAN]


@pytest.mark.parametrize("cls", VARIANTS, ids=lambda c: c.__name__)
def test_every_variant_trains_and_moves_both_networks(trainer_kwargs, cls):
    model = tiny(cls, num_classes=10)
    g0, d0 = params(model.generator), params(model.discriminator)
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 5}).fit(model, batches(n=5))
    assert not same(g0, params(model.generator)) and not same(d0, params(model.discriminator))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_variant_defaults_follow_the_papers():
    assert isinstance(GAN().generator, MLPGenerator) and GAN().hparams.generator["init_args"] == {}
    assert isinstance(DCGAN().discriminator, DCGANDiscriminator) and DCGAN().opt_d == Optim(lr=2e-4, betas=(0.5, 0.999))
    assert CDCGAN(num_classes=10).conditional and CGAN(num_classes=10).conditional and not DCGAN().conditional
    wgan, gp = WGAN(), WGANGP()
    assert [type(t) for t in wgan.objective.terms] == [WeightClipping] and wgan.objective.terms[0].value == 0.01
    assert (wgan.opt_d.steps, wgan.opt_d.name, wgan.opt_d.lr, wgan.objective.loss.name) == (5, "rmsprop", 5e-5, "wasserstein")
    assert (wgan.hparams.opt_d["steps"], wgan.hparams.objective["loss"], wgan.opt_g.steps) == (5, "wasserstein", 1)
    assert [type(t) for t in gp.objective.terms] == [GradientPenalty] and gp.objective.terms[0].weight == 10.0
    assert (gp.opt_d.steps, gp.opt_d.lr, gp.opt_d.betas) == (5, 1e-4, (0.0, 0.9))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in gp.discriminator.modules())
    assert CWGANGP(num_classes=10).conditional
    acgan = ACGAN(num_classes=10)
    assert [type(t) for t in acgan.objective.terms] == [AuxClassifier] and acgan.discriminator.outputs == 11
    assert acgan.objective.class_head and not DCGAN().objective.class_head
    sngan = SNGAN()
    assert sngan.hparams.objective["loss"] == sngan.objective.loss.name == "hinge" and sngan.opt_d.betas == (0.0, 0.9)
    assert any(hasattr(m, "parametrizations") for m in sngan.discriminator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sngan.discriminator.modules())


def test_hyperparameters_are_plain_data():
    hp = WGANGP(num_classes=10).hparams
    assert hp.generator == {"class_path": "lit_gan.nets.dcgan.DCGANGenerator", "init_args": {}}
    assert hp.discriminator == {"class_path": "lit_gan.nets.dcgan.DCGANDiscriminator", "init_args": {"norm": "none"}}
    assert hp.objective == {"loss": "wasserstein", "terms": {"gradient_penalty": {"weight": 10.0}}, "augment": ""}
    assert hp.opt_d == {"name": "adam", "lr": 1e-4, "betas": (0.0, 0.9), "momentum": 0.0, "weight_decay": 0.0, "eps": 1e-8, "steps": 5}
    assert hp.latent == {"dim": 100, "noise": "normal", "sample_seed": 0, "clusters": 0} and hp.ema == {"decay": 0.0, "rampup": 0.0}
