"""R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN!"): the relativistic pairing
loss with R1 and R2, a normalization-free ResNet G and D, Adam with beta1 = 0, and an EMA of G."""

from __future__ import annotations

from typing import Any

from lit_gan.models.base import GAN, Latent
from lit_gan.nets import DiscriminatorFactory, GeneratorFactory, R3GANDiscriminator, R3GANGenerator, net
from lit_gan.objective import ObjectiveSpec
from lit_gan.optim import EMA, Optim

R3GAN_ADAM = Optim(lr=2e-4, betas=(0.0, 0.99))


class R3GAN(GAN):
    """RpGAN + R1 + R2 with gamma 0.05 (the paper's CIFAR-10 value), R3GAN's networks, a 64-d z,
    Adam(2e-4, betas 0/0.99) for both, an EMA of G (decay 0.999 with StyleGAN2's ramp-up 0.05).
    The paper's cosine schedules of the learning rate and gamma, over 20M+ images, are left out."""

    def __init__(
        self,
        generator: GeneratorFactory = net(R3GANGenerator),
        discriminator: DiscriminatorFactory = net(R3GANDiscriminator),
        latent: Latent = Latent(dim=64),
        objective: ObjectiveSpec = ObjectiveSpec(loss="rpgan", terms={"r1": {"gamma": 0.05}, "r2": {"gamma": 0.05}}),
        opt_g: Optim = R3GAN_ADAM,
        opt_d: Optim = R3GAN_ADAM,
        ema: EMA = EMA(decay=0.999, rampup=0.05),
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, latent=latent, objective=objective,
                         opt_g=opt_g, opt_d=opt_d, ema=ema, **kwargs)
