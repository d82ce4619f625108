"""Lightning data modules for GAN training: uint8 batches, converted to float on the device."""

from lit_gan.data.base import ImageDataModule, TensorImageDataModule, TorchvisionDataModule
from lit_gan.data.celeba import CelebA
from lit_gan.data.cifar import CIFAR10, CIFAR10_CLASSES
from lit_gan.data.folder import ImageFolder
from lit_gan.data.mnist import DEBIAN_FASHION_MNIST_DIRS, EmbeddedMNIST, FashionMNIST, MNIST
from lit_gan.data.prepared import Prepared
from lit_gan.data.stacked import StackedMNIST

__all__ = [
    "CIFAR10",
    "CIFAR10_CLASSES",
    "CelebA",
    "DEBIAN_FASHION_MNIST_DIRS",
    "EmbeddedMNIST",
    "FashionMNIST",
    "ImageDataModule",
    "ImageFolder",
    "MNIST",
    "Prepared",
    "StackedMNIST",
    "TensorImageDataModule",
    "TorchvisionDataModule",
]
