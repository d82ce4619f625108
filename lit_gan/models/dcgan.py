"""DCGAN (Radford et al.; seed 001's complete model) and its conditional form (seeds 000, 003)."""

from __future__ import annotations

from typing import Any

from lit_gan.models.base import GAN
from lit_gan.optim import Optim

DCGAN_ADAM = Optim(lr=2e-4, betas=(0.5, 0.999))


class DCGAN(GAN):
    """Convolutional G and D with batch norm; Adam(2e-4, betas 0.5/0.999) for both."""

    def __init__(
        self, arch: str = "dcgan", width: int = 64, opt_g: Optim = DCGAN_ADAM, opt_d: Optim = DCGAN_ADAM, **kwargs: Any
    ) -> None:
        super().__init__(arch=arch, width=width, opt_g=opt_g, opt_d=opt_d, **kwargs)


class CDCGAN(DCGAN):
    """Conditional DCGAN: labels enter G with z and D as an extra image channel."""

    def __init__(self, conditional: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, **kwargs)
