"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani
et al. 2017; seed 003's final model), unconditional and conditional."""

from __future__ import annotations

from typing import Any

from lit_gan.models.dcgan import DCGAN
from lit_gan.nets.blocks import Norm
from lit_gan.optim import Optim


class WGAN(DCGAN):
    """Wasserstein loss, critic weights clipped to [-0.01, 0.01], RMSprop(5e-5), 5 critic steps."""

    def __init__(
        self,
        loss: str = "wasserstein",
        clip_value: float = 0.01,
        d_steps: int = 5,
        opt_g: Optim = Optim(name="rmsprop", lr=5e-5),
        opt_d: Optim = Optim(name="rmsprop", lr=5e-5),
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, clip_value=clip_value, d_steps=d_steps, opt_g=opt_g, opt_d=opt_d, **kwargs)


class WGANGP(DCGAN):
    """Wasserstein loss with gradient penalty 10, no batch norm in the critic, Adam(1e-4, betas
    0/0.9), 5 critic steps."""

    def __init__(
        self,
        loss: str = "wasserstein",
        gp_weight: float = 10.0,
        d_norm: Norm = "none",
        d_steps: int = 5,
        opt_g: Optim = Optim(lr=1e-4, betas=(0.0, 0.9)),
        opt_d: Optim = Optim(lr=1e-4, betas=(0.0, 0.9)),
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, gp_weight=gp_weight, d_norm=d_norm, d_steps=d_steps, opt_g=opt_g, opt_d=opt_d, **kwargs)


class CWGANGP(WGANGP):
    """Seed 003's conditional WGAN-GP: labels into G and the critic."""

    def __init__(self, conditional: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, **kwargs)
