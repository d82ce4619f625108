"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani
et al. 2017), unconditional and conditional."""

from __future__ import annotations

from typing import Any

from lit_gan.models.dcgan import DCGAN
from lit_gan.nets import DCGANDiscriminator, DiscriminatorFactory, net
from lit_gan.objective import ObjectiveSpec
from lit_gan.optim import Optim


class WGAN(DCGAN):
    """Wasserstein loss, critic weights clipped to [-0.01, 0.01], RMSprop(5e-5), 5 critic steps per G step."""

    def __init__(
        self,
        objective: ObjectiveSpec = ObjectiveSpec(loss="wasserstein", terms={"weight_clipping": {"value": 0.01}}),
        opt_g: Optim = Optim(name="rmsprop", lr=5e-5),
        opt_d: Optim = Optim(name="rmsprop", lr=5e-5, steps=5),
        **kwargs: Any,
    ) -> None:
        super().__init__(objective=objective, opt_g=opt_g, opt_d=opt_d, **kwargs)


class WGANGP(DCGAN):
    """Wasserstein loss with gradient penalty 10, no batch norm in the critic, Adam(1e-4, betas
    0/0.9), 5 critic steps per G step."""

    def __init__(
        self,
        objective: ObjectiveSpec = ObjectiveSpec(loss="wasserstein", terms={"gradient_penalty": {"weight": 10.0}}),
        discriminator: DiscriminatorFactory = net(DCGANDiscriminator, norm="none"),
        opt_g: Optim = Optim(lr=1e-4, betas=(0.0, 0.9)),
        opt_d: Optim = Optim(lr=1e-4, betas=(0.0, 0.9), steps=5),
        **kwargs: Any,
    ) -> None:
        super().__init__(objective=objective, discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, **kwargs)


class CWGANGP(WGANGP):
    """Conditional WGAN-GP: labels into G and the critic."""

    def __init__(self, conditional: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, **kwargs)
