"""lit_gan: GANs with PyTorch Lightning."""

__version__ = "0.1.0"
