"""Stand-in "generators" made of real digits: their right answers are known."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor


class RealDigits(L.LightningModule):
    """``generate`` returns random copies of ``images`` (uint8) in [-1, 1]. ``conditional``: a digit
    of the asked label; ``ignore_labels``: any digit whatever the label; ``only``: digits of that
    class only (a collapsed generator). Records whether it was called in training mode."""

    value_range = (-1.0, 1.0)
    noise = "normal"

    def __init__(self, images: Tensor, labels: Tensor, conditional: bool = False, ignore_labels: bool = False,
                 only: int | None = None) -> None:
        super().__init__()
        keep = labels == only if only is not None else torch.ones_like(labels, dtype=torch.bool)
        self.images, self.labels = images[keep], labels[keep]
        self.conditional, self.ignore_labels = conditional, ignore_labels
        self.weight = torch.nn.Parameter(torch.zeros(()))  # gives the module a device and an optimizer
        self.calls_in_training_mode: list[bool] = []

    def generate(self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        self.calls_in_training_mode.append(self.training)
        n = len(labels) if labels is not None else n
        if labels is None or self.ignore_labels:
            idx = torch.randint(len(self.images), (n,))
        else:
            idx = torch.stack([torch.nonzero(self.labels == y)[torch.randint(int((self.labels == y).sum()), ())][0]
                               for y in labels.cpu()])
        return (self.images[idx].float() / 127.5 - 1).to(self.device) + 0 * self.weight

    # the rest of `lit_gan.models.Generative`, which the callbacks ask for
    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 1, generator=generator)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        return torch.randint(self.num_classes, (n,), generator=generator) if self.conditional else None

    def fixed_samples(self) -> tuple[Tensor, int]:
        return self.generate(64), 8

    def validation_step(self, batch, batch_idx):  # the callback does the work
        return None

    def test_step(self, batch, batch_idx):
        return None


class Noise(RealDigits):
    """Uniform noise images: a generator that learned nothing."""

    def generate(self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        n = len(labels) if labels is not None else n
        return torch.rand(n, *self.images.shape[1:], device=self.device) * 2 - 1


class UnitRange(RealDigits):
    """The same digits as :class:`RealDigits`, in [0, 1] (as a sigmoid generator draws)."""

    value_range = (0.0, 1.0)

    def generate(self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        return (super().generate(n, labels, z) + 1) / 2
