"""GAN variants: one training loop (`GAN`), thin subclasses that change its defaults, and the
contracts (`Generative`, `Adversarial`, tested with `is_generative`, `is_adversarial`) that the
rest of lit_gan uses."""

from lit_gan.models.acgan import ACGAN
from lit_gan.models.base import GAN
from lit_gan.models.cgan import CGAN
from lit_gan.models.contract import Adversarial, Generative, is_adversarial, is_generative
from lit_gan.models.dcgan import CDCGAN, DCGAN, SNGAN
from lit_gan.models.r3gan import R3GAN
from lit_gan.models.wgan import CWGANGP, WGAN, WGANGP
from lit_gan.trust import trust_classes

__all__ = ["ACGAN", "Adversarial", "CDCGAN", "CGAN", "CWGANGP", "DCGAN", "GAN", "Generative", "R3GAN", "SNGAN", "WGAN",
           "WGANGP", "is_adversarial", "is_generative"]

trust_classes(__name__, [ACGAN, CDCGAN, CGAN, CWGANGP, DCGAN, GAN, R3GAN, SNGAN, WGAN, WGANGP])
