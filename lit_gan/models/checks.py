"""Settings that are out of range or make no sense together stop here, before any training,
with a message that says what is wrong and how to fix it: the loop's own checks, then each
term's (`lit_gan.terms.Term.check`). The networks check their own options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from lit_gan.terms import require

if TYPE_CHECKING:
    from lit_gan.models.base import GAN


def check_model(model: GAN) -> None:
    """Validate a GAN's training settings and the compatibility of its terms."""
    hp, name = model.hparams, type(model).__name__
    require(hp.noise in ("normal", "uniform"), f"noise must be 'normal' or 'uniform', got {hp.noise!r}")
    for key in ("d_steps", "g_steps", "latent_dim"):
        require(isinstance(hp[key], int) and hp[key] >= 1, f"{key} must be a positive integer, got {hp[key]!r}")
    require(0.0 <= hp.ema_decay < 1.0, f"ema_decay must lie in [0, 1) (0 turns EMA off; try 0.999), got {hp.ema_decay}")
    require(hp.ema_rampup >= 0.0, f"ema_rampup must be >= 0 (0 turns the ramp-up off; StyleGAN2 uses 0.05), got {hp.ema_rampup}")
    require(
        not (model.conditional or model.class_head) or model.num_classes >= 2,
        f"{name} uses class labels and needs labelled data with at least 2 classes, but the data has "
        f"num_classes={model.num_classes}; use labelled data (e.g. --data EmbeddedMNIST, or an ImageFolder "
        "with one subfolder per class) or an unconditional model (e.g. --model DCGAN)",
    )
    for term in model.terms:
        term.check(model)


UNSUITED_CALLBACKS = {
    "StochasticWeightAveraging": "averages the whole module, D included, and works with one optimizer; lit_gan "
                                 "keeps an average of G only: --model.init_args.ema_decay 0.999",
    "BackboneFinetuning": "unfreezes a transfer-learning model's `backbone`, which a GAN has not; to start from another "
                          "run's G and D use --model.init_args.weights_from CKPT",
    "LearningRateFinder": "searches one optimizer's learning rate against one loss; a GAN has two losses that pull against "
                          "each other: set --model.init_args.opt_g.lr and opt_d.lr (a sweep: sweeps/)",
    "SpikeDetection": "watches the one loss a training_step returns; the GAN loop has two, and stops by itself at the "
                      "first non-finite one",
}
"""Lightning's stock callbacks that cannot work for a GAN, with the reason and what to use instead."""


def check_callbacks(callbacks: Iterable[Any]) -> None:
    """Refuse, before training, a stock callback that cannot work for a GAN (`UNSUITED_CALLBACKS`)."""
    for callback in callbacks:
        reason = UNSUITED_CALLBACKS.get(type(callback).__name__)
        if reason is not None and type(callback).__module__.startswith("lightning."):
            raise ValueError(f"{type(callback).__name__} does not work for a GAN: it {reason}")
