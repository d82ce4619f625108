"""Conditional GAN with fully connected networks (Mirza & Osindero 2014)."""

from __future__ import annotations

from typing import Any

from lit_gan.models.base import GAN


class CGAN(GAN):
    """The fully connected GAN with one-hot labels concatenated to G's and D's inputs."""

    def __init__(self, conditional: bool = True, **kwargs: Any) -> None:
        super().__init__(conditional=conditional, **kwargs)
