"""DCGAN (Radford et al. 2016), its conditional form, and SNGAN's hinge loss with spectral norm."""

from __future__ import annotations

from typing import Any

from lit_gan.models.base import GAN
from lit_gan.nets import DCGANDiscriminator, DCGANGenerator, DiscriminatorFactory, GeneratorFactory, net
from lit_gan.objective import ObjectiveSpec
from lit_gan.optim import Optim

DCGAN_ADAM = Optim(lr=2e-4, betas=(0.5, 0.999))


class DCGAN(GAN):
    """Convolutional G and D with batch norm; Adam(2e-4, betas 0.5/0.999) for both."""

    def __init__(
        self,
        generator: GeneratorFactory = net(DCGANGenerator),
        discriminator: DiscriminatorFactory = net(DCGANDiscriminator),
        opt_g: Optim = DCGAN_ADAM,
        opt_d: Optim = DCGAN_ADAM,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, **kwargs)


class CDCGAN(DCGAN):
    """Conditional DCGAN (Mirza & Osindero 2014): labels enter G with z and D as an extra image channel."""

    def __init__(self, conditional: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, **kwargs)


SN_ADAM = Optim(lr=2e-4, betas=(0.0, 0.9))


class SNGAN(DCGAN):
    """SNGAN (Miyato et al. 2018): hinge loss, spectral normalisation in D instead of batch norm,
    Adam(2e-4, betas 0/0.9)."""

    def __init__(
        self,
        objective: ObjectiveSpec = ObjectiveSpec(loss="hinge"),
        discriminator: DiscriminatorFactory = net(DCGANDiscriminator, norm="spectral"),
        opt_g: Optim = SN_ADAM,
        opt_d: Optim = SN_ADAM,
        **kwargs: Any,
    ) -> None:
        super().__init__(objective=objective, discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, **kwargs)
