"""Checkpoints written by lit_gan 0.1 (flat hyperparameters; made by commit f9539b4 and kept in
tests/assets) load, draw the same images, and resume; 0.2's flat training settings move into their
groups; unreadable files are refused clearly."""

from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.models import DCGAN, GAN
from lit_gan.models.base import Latent
from lit_gan.models.legacy import FLAT, read, upgrade_hparams
from lit_gan.optim import EMA, Optim
from lit_gan.terms import R1
from tests.conftest import tiny
from tests.models.test_base import batches

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.mark.parametrize("name", ["cdcgan", "acgan", "gan_maxout"])
def test_a_0_1_checkpoint_loads_and_draws_the_same_images(name):
    model = GAN.load_from_checkpoint(ASSETS / f"legacy_{name}.ckpt").eval()
    expected = torch.load(ASSETS / f"legacy_{name}_images.pt", weights_only=True)  # 0.1's own output
    with torch.no_grad():
        drawn = model.generate(z=model.grid_z[:4], labels=model.grid_labels[:4])
    # the same weights and noise; another CPU's kernels may round the last float bits otherwise (6e-8 seen)
    torch.testing.assert_close(drawn, expected, rtol=0, atol=1e-6)


def test_0_1_hyperparameters_become_networks_and_terms():
    hp = read(ASSETS / "legacy_acgan.ckpt")["hyper_parameters"]
    assert "arch" not in hp and "width" not in hp and "label_flip" not in hp
    assert hp["generator"] == {"class_path": "lit_gan.nets.dcgan.DCGANGenerator",
                               "init_args": {"width": 4, "dropout": 0.0, "final_activation": "tanh"}}
    assert hp["objective"] == {"loss": "nonsaturating", "terms": {"label_noise": {"flip": 0.1, "smoothing": 0.0}, "aux_classifier": {}},
                               "augment": ""}
    assert hp["latent"] == {"dim": 8, "noise": "normal", "sample_seed": 0} and hp["ema"] == {"decay": 0.0, "rampup": 0.0}
    assert hp["opt_d"] == {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999), "momentum": 0.0, "weight_decay": 0.0, "steps": 1}
    assert not set(FLAT) & set(hp) and "weights_from" not in hp
    mlp = read(ASSETS / "legacy_gan_maxout.ckpt")["hyper_parameters"]
    assert mlp["discriminator"]["init_args"] == {"width": 8, "dropout": 0.0, "minibatch_std": False, "norm": "none", "maxout": 2}


FLAT_0_2 = {
    "image_shape": (1, 28, 28), "num_classes": 10, "conditional": True,
    "latent_dim": 16, "noise": "uniform", "sample_seed": 3,
    "loss": "hinge", "terms": {"r1": {"gamma": 1.0, "every": 2}}, "augment": "translation",
    "d_steps": 5, "g_steps": 2, "ema_decay": 0.9, "ema_rampup": 0.05,
    "opt_g": {"name": "adam", "lr": 1e-4, "betas": (0.0, 0.9), "momentum": 0.0, "weight_decay": 0.0, "eps": 1e-8},
    "opt_d": {"name": "rmsprop", "lr": 5e-5, "betas": (0.5, 0.999), "momentum": 0.0, "weight_decay": 0.0, "eps": 1e-8},
    "weights_from": "x",
}
"""lit_gan 0.2's flat hyperparameters (besides the network specs), as its checkpoints hold them."""


def test_0_2_flat_settings_become_their_groups_and_the_model_loads(tmp_path):
    model = tiny(DCGAN, num_classes=10, conditional=True, d={"norm": "none"}, ema=EMA(decay=0.9))  # weights to save with 0.2's hyperparameters
    flat = {**FLAT_0_2, "generator": model.hparams.generator, "discriminator": model.hparams.discriminator}
    hp = upgrade_hparams(dict(flat))
    assert not set(FLAT) & set(hp)
    assert hp["latent"] == {"dim": 16, "noise": "uniform", "sample_seed": 3}
    assert hp["objective"] == {"loss": "hinge", "terms": {"r1": {"gamma": 1.0, "every": 2}}, "augment": "translation"}
    assert hp["opt_d"] == {**FLAT_0_2["opt_d"], "steps": 5} and hp["opt_g"] == {**FLAT_0_2["opt_g"], "steps": 2}
    assert hp["ema"] == {"decay": 0.9, "rampup": 0.05}
    assert upgrade_hparams({"latent_dim": 8})["opt_d"]["steps"] == 1  # what the checkpoint lacks: 0.2's defaults

    path = tmp_path / "flat.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": flat}, path)  # the keys Lightning writes
    assert "weights_from" not in read(path)["hyper_parameters"]  # 0.2 loaded weights at construction
    loaded = GAN.load_from_checkpoint(path)
    assert loaded.latent == Latent(dim=16, noise="uniform", sample_seed=3)
    assert loaded.objective.loss.name == "hinge" and loaded.objective.augment == ["translation"]
    assert [(type(t), t.gamma, t.every) for t in loaded.objective.terms] == [(R1, 1.0, 2)]
    assert loaded.opt_d == Optim(name="rmsprop", lr=5e-5, steps=5) and loaded.opt_g == Optim(lr=1e-4, betas=(0.0, 0.9), steps=2)
    assert loaded.ema == EMA(decay=0.9, rampup=0.05) and loaded.generator_ema is not None
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    assert loaded.hparams.objective == hp["objective"] and "latent_dim" not in loaded.hparams
    assert upgrade_hparams(dict(loaded.hparams)) == dict(loaded.hparams)  # this version's pass unchanged


def test_training_resumes_from_a_0_1_checkpoint(trainer_kwargs):
    path = ASSETS / "legacy_cdcgan.ckpt"
    model = GAN(**read(path)["hyper_parameters"])
    L.Trainer(**{**trainer_kwargs, "max_epochs": 2, "limit_train_batches": 2}).fit(model, batches(), ckpt_path=str(path))
    assert model.batches_seen == 4  # 2 batches from the checkpoint + 2 more


def test_an_unreadable_checkpoint_is_refused_without_unsafe_advice(tmp_path):
    broken = tmp_path / "last.ckpt"
    broken.write_bytes((ASSETS / "legacy_cdcgan.ckpt").read_bytes()[:5000])  # truncated
    with pytest.raises(ValueError, match="not a readable lit_gan checkpoint") as error:
        GAN.load_from_checkpoint(broken)
    assert "weights_only=False" not in str(error.value)
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a lit_gan model checkpoint"):
        GAN.load_from_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        GAN.load_from_checkpoint(tmp_path / "missing.ckpt")
