"""Checkpoints written by lit_gan 0.1 (flat hyperparameters; made by commit f9539b4 and kept in
tests/assets) load, draw the same images, and resume; unreadable files are refused clearly."""

from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.models import GAN
from lit_gan.models.legacy import read
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
    assert hp["terms"] == {"label_noise": {"flip": 0.1, "smoothing": 0.0}, "aux_classifier": {}}
    mlp = read(ASSETS / "legacy_gan_maxout.ckpt")["hyper_parameters"]
    assert mlp["discriminator"]["init_args"] == {"width": 8, "dropout": 0.0, "minibatch_std": False, "norm": "none", "maxout": 2}


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
