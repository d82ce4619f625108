"""GAN variants: one training loop (`GAN`), thin subclasses that change its defaults."""

from lit_gan.models.base import GAN
from lit_gan.models.cgan import CGAN
from lit_gan.models.dcgan import CDCGAN, DCGAN

__all__ = ["CDCGAN", "CGAN", "DCGAN", "GAN"]
