"""What the rest of lit_gan may use of a model, nothing else: `Generative` (callbacks, `lit-gan
generate`, evaluation, export) and `Adversarial` (the parts that reach into training: `Speed`,
`Budget`, `GANDDPStrategy`). `is_generative(model)` is the one test of "is this a generator",
`is_adversarial(model)` of "is this a GAN in training"."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class Generative(Protocol):
    """A trained generator, as the rest of lit_gan sees it.

    `value_range`: the range of its images ((-1, 1) or (0, 1)); `noise`: the latent
    distribution ("normal" or "uniform"); `num_classes`: classes it can be asked for when
    `conditional`.
    """

    @property
    def conditional(self) -> bool: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def value_range(self) -> tuple[float, float]: ...

    @property
    def noise(self) -> str: ...

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latent vectors for `n` samples (seeded on CPU when `generator` is given)."""
        ...

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """`n` class labels for a conditional model, else None."""
        ...

    def generate(self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """Images for `z` (drawn when absent) and `labels`; the EMA generator outside training."""
        ...

    def fixed_samples(self) -> tuple[Tensor, int]:
        """Images of the fixed grid noise kept in checkpoints, and how many go in a grid row."""
        ...


@runtime_checkable
class Adversarial(Generative, Protocol):
    """A GAN in training, as the parts that reach into it see it (`lit_gan.callbacks.Speed`,
    `lit_gan.callbacks.Budget`, `lit_gan.distributed.GANDDPStrategy`). Test it with `is_adversarial`,
    not `isinstance`, which is False for every GAN on Python >= 3.12.

    `generator`, `discriminator`: the networks trained; `generator_ema`: G's moving average (or
    None); `ddp`: their DistributedDataParallel wrappers while a `GANDDPStrategy` fits, set by it;
    `batches_seen`: training batches done (the schedule's clock, kept in checkpoints).
    """

    generator: nn.Module
    discriminator: nn.Module
    generator_ema: nn.Module | None
    ddp: dict[str, nn.Module]
    batches_seen: int

    def losses(self, real: Tensor, labels: Tensor | None, phase: str = "lookahead") -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """D's loss (with readouts) and G's loss on a batch, without an update."""
        ...


def _members(protocol: type) -> frozenset[str]:
    """A protocol's public methods, properties and annotated attributes, its bases' included."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if getattr(base, "_is_protocol", False) and base is not Protocol:
            names |= {n for n in (*vars(base), *vars(base).get("__annotations__", {})) if not n.startswith("_")}
    return frozenset(names)


_GENERATIVE, _ADVERSARIAL = _members(Generative), _members(Adversarial)


def is_generative(model: Any) -> bool:
    """`model` has all of `Generative` (looked up with getattr; see `is_adversarial`)."""
    return all(hasattr(model, name) for name in _GENERATIVE)


def is_adversarial(model: Any) -> bool:
    """`model` has all of `Adversarial`. Not an isinstance check of the protocol: from Python 3.12 on,
    isinstance checks a runtime protocol with `inspect.getattr_static`, which cannot see a module's
    submodules (kept in `nn.Module._modules`), so every GAN's `generator` would count as missing."""
    return all(hasattr(model, name) for name in _ADVERSARIAL)
