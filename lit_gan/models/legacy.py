"""Reading checkpoints of earlier versions. lit_gan 0.1's flat hyperparameters (`arch`, `width`,
`gp_weight`, ...) become network specs and terms, and the fixed grid noise moves from
`sample_z`/`sample_labels` to `grid_z`/`grid_labels`; 0.2's flat training settings (`latent_dim`,
`loss`, `terms`, `d_steps`, `ema_decay`, ...) move into their groups (`latent`, `objective`,
`opt_d.steps`, `ema`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from lit_gan.checkpoint_io import read_checkpoint
from lit_gan.trust import check_hparams

FIXED_NOISE = ("grid_", "sample_")
"""State-dict prefixes of the fixed grid noise: never copied between models (weights_from)."""

_RENAMED = {"sample_z": "grid_z", "sample_labels": "grid_labels"}
_NETS = {"mlp": ("lit_gan.nets.mlp.MLPGenerator", "lit_gan.nets.mlp.MLPDiscriminator"),
         "dcgan": ("lit_gan.nets.dcgan.DCGANGenerator", "lit_gan.nets.dcgan.DCGANDiscriminator")}


def read(path: str | Path, map_location: Any = "cpu", allowed: Iterable[str] = ()) -> dict[str, Any]:
    """A lit_gan checkpoint, loaded safely (`weights_only=True`), upgraded in memory, and with
    hyperparameters that name only lit_gan's own classes or `allowed` ones (`lit_gan.trust`).
    Anything else stops with a message; it is never loaded unsafely."""
    checkpoint = read_checkpoint(path, map_location)
    if "state_dict" not in checkpoint or not isinstance(checkpoint.get("hyper_parameters"), dict):
        raise ValueError(f"{path} is not a lit_gan model checkpoint (no state_dict and hyper_parameters)")
    hparams = dict(checkpoint["hyper_parameters"])
    hparams.pop("_instantiator", None)  # Lightning's CLI bookkeeping: lit_gan never calls it
    hparams.pop("weights_from", None)  # 0.2 loaded weights at construction; the checkpoint holds them
    check_hparams(hparams, path, allowed)  # before the upgrade reads any field
    checkpoint["hyper_parameters"] = upgrade_hparams(hparams)
    upgrade_state(checkpoint)
    return checkpoint


def upgrade_hparams(hp: dict[str, Any]) -> dict[str, Any]:
    """Earlier versions' arguments as this version's; current hyperparameters pass unchanged."""
    return group_settings(specs_from_flat(hp))


MOVED = {"latent_dim": "latent.dim", "noise": "latent.noise", "sample_seed": "latent.sample_seed",
         "loss": "objective.loss", "terms": "objective.terms", "augment": "objective.augment",
         "d_steps": "opt_d.steps", "g_steps": "opt_g.steps", "ema_decay": "ema.decay", "ema_rampup": "ema.rampup"}
"""0.2's flat training settings and where they are now (weights_from became the CLI's --weights_from)."""
FLAT = tuple(MOVED)


def group_settings(hp: dict[str, Any]) -> dict[str, Any]:
    """0.2's flat settings in their groups; values the checkpoint does not hold keep the defaults of 0.2."""
    if not any(key in hp for key in FLAT):
        return hp
    hp["latent"] = {"dim": hp.pop("latent_dim", 100), "noise": hp.pop("noise", "normal"), "sample_seed": hp.pop("sample_seed", 0)}
    hp["objective"] = {"loss": hp.pop("loss", "nonsaturating"), "terms": hp.pop("terms", {}), "augment": hp.pop("augment", "")}
    hp["ema"] = {"decay": hp.pop("ema_decay", 0.0), "rampup": hp.pop("ema_rampup", 0.0)}
    for network in ("d", "g"):
        steps = hp.pop(f"{network}_steps", 1)
        if isinstance(hp.get(f"opt_{network}"), dict):
            hp[f"opt_{network}"] = {**hp[f"opt_{network}"], "steps": steps}
        else:
            hp[f"opt_{network}"] = {"lr": 1e-3, "betas": (0.9, 0.999), "steps": steps}  # 0.2's GAN default
    return hp


def specs_from_flat(hp: dict[str, Any]) -> dict[str, Any]:
    """0.1's flat arguments as 0.2's network specs and terms."""
    if "arch" not in hp:
        return hp
    arch = hp.pop("arch")
    if arch not in _NETS:
        raise ValueError(f"checkpoint uses unknown architecture {arch!r}")
    mlp = arch == "mlp"
    width, maxout, norm = hp.pop("width"), hp.pop("maxout", 0), hp.pop("d_norm", "batch")
    g_args = {"width": width, "dropout": hp.pop("g_dropout", 0.0), "final_activation": hp.pop("final_activation", "tanh")}
    d_args = {"width": width, "dropout": hp.pop("d_dropout", 0.0), "minibatch_std": hp.pop("minibatch_std", False),
              "norm": "none" if mlp and norm == "batch" else norm}  # 0.1's MLP ignored "batch"
    if mlp:
        g_args["maxout"] = d_args["maxout"] = maxout
    hp["generator"] = {"class_path": _NETS[arch][0], "init_args": g_args}
    hp["discriminator"] = {"class_path": _NETS[arch][1], "init_args": d_args}
    terms: dict[str, dict[str, Any]] = {}
    if gp := hp.pop("gp_weight", 0.0):
        terms["gradient_penalty"] = {"weight": gp}
    flip, smoothing = hp.pop("label_flip", 0.0), hp.pop("label_smoothing", 0.0)
    if flip or smoothing:
        terms["label_noise"] = {"flip": flip, "smoothing": smoothing}
    if clip := hp.pop("clip_value", 0.0):
        terms["weight_clipping"] = {"value": clip}
    if hp.pop("aux_classifier", False):
        terms["aux_classifier"] = {}
    if steps := hp.pop("unroll_steps", 0):
        terms["unrolled"] = {"steps": steps}
    hp["terms"] = terms
    return hp


def upgrade_state(checkpoint: dict[str, Any]) -> None:
    """Rename 0.1's fixed-noise buffers in place (before Lightning loads the weights on resume)."""
    state = checkpoint.get("state_dict", {})
    for old, new in _RENAMED.items():
        if old in state:
            state[new] = state.pop(old)
