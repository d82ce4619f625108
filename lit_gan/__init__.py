"""lit_gan: GANs with PyTorch Lightning."""

__version__ = "0.1.0"

import lit_gan.distributed  # noqa: E402, F401  (registers the "gan_ddp" strategies with Lightning)
