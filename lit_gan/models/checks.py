"""Settings that are out of range or make no sense together stop here, before any training,
with a message that says what is wrong and how to fix it."""

from __future__ import annotations

from typing import Any, Mapping

from lit_gan import losses
from lit_gan.nets import ARCHITECTURES


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_settings(name: str, hp: Mapping[str, Any]) -> None:
    """Validate a GAN's hyperparameters (`GAN.__init__` arguments)."""
    require(hp["arch"] in ARCHITECTURES, f"unknown arch {hp['arch']!r}; choose one of {sorted(ARCHITECTURES)}")
    require(hp["noise"] in ("normal", "uniform"), f"noise must be 'normal' or 'uniform', got {hp['noise']!r}")
    require(hp["loss"] in losses.LossName.__args__, f"unknown loss {hp['loss']!r}; choose one of {losses.LossName.__args__}")
    for key in ("label_flip", "label_smoothing", "g_dropout", "d_dropout"):
        require(0.0 <= hp[key] <= 1.0, f"{key} is a probability and must lie in [0, 1], got {hp[key]}")
    for key in ("d_steps", "g_steps", "latent_dim", "width"):
        require(isinstance(hp[key], int) and hp[key] >= 1, f"{key} must be a positive integer, got {hp[key]!r}")
    for key in ("gp_weight", "clip_value", "unroll_steps", "maxout"):
        require(hp[key] >= 0, f"{key} must be >= 0 (0 turns it off), got {hp[key]}")
    require(not hp["aux_classifier"] or hp["conditional"], "aux_classifier (ACGAN) needs conditional=True: G must be told which class to draw")
    require(hp["maxout"] != 1, "maxout takes the number of pieces per unit, at least 2 (0 turns it off)")
    require(0.0 <= hp["ema_decay"] < 1.0, f"ema_decay must lie in [0, 1) (0 turns EMA off; try 0.999), got {hp['ema_decay']}")
    labelled = hp["conditional"] or hp["aux_classifier"]
    require(
        not labelled or hp["num_classes"] >= 2,
        f"{name} uses class labels and needs labelled data with at least 2 classes, but the data has "
        f"num_classes={hp['num_classes']}; use labelled data (e.g. --data EmbeddedMNIST, or an ImageFolder "
        "with one subfolder per class) or an unconditional model (e.g. --model DCGAN)",
    )
    logistic = hp["loss"] in losses.LOGISTIC
    require(
        logistic or hp["label_flip"] == hp["label_smoothing"] == 0,
        f"label_flip and label_smoothing change the targets of a logistic D; loss={hp['loss']!r} has no targets: set them to 0",
    )
    require(
        not (hp["gp_weight"] and hp["clip_value"]),
        "weight clipping (clip_value) and a gradient penalty (gp_weight) are two ways to the same Lipschitz "
        "constraint and fight each other: use one (WGAN: clip_value; WGANGP: gp_weight)",
    )
    require(
        not (hp["gp_weight"] and hp["d_norm"] == "batch"),
        "batch norm in the critic breaks the per-sample gradient penalty (it mixes samples): "
        "set d_norm to 'none' (or 'spectral') with gp_weight > 0",
    )
    require(
        not (hp["clip_value"] and hp["d_norm"] == "spectral"),
        "spectral normalisation already bounds the critic; do not clip its weights as well",
    )
