"""Generator/discriminator pairs with one common signature, by architecture name."""

from lit_gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from lit_gan.nets.mlp import MLPDiscriminator, MLPGenerator

ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}

__all__ = ["ARCHITECTURES", "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator"]
