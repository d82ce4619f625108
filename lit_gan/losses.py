"""Adversarial losses on discriminator logits.

One sign convention everywhere: the discriminator (or critic) outputs a real-valued score,
**higher = more real**. No network ends in a sigmoid; the logistic losses apply it themselves.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LossName = Literal["nonsaturating", "minimax", "wasserstein", "hinge"]
LOGISTIC = ("nonsaturating", "minimax")


def discriminator_targets(
    n: int, real: bool, flip: float = 0.0, smoothing: float = 0.0, device: torch.device | str = "cpu"
) -> Tensor:
    """Targets for a logistic D: 1 (real) or 0 (fake), each flipped with probability `flip`;
    real targets are one-sided smoothed to `1 - smoothing` (fake targets stay 0)."""
    targets = torch.full((n,), 1.0 if real else 0.0, device=device)
    if flip > 0:
        flipped = torch.rand(n, device=device) < flip
        targets = torch.where(flipped, 1.0 - targets, targets)
    if smoothing > 0:
        targets = torch.where(targets > 0.5, targets - smoothing, targets)
    return targets


def d_loss(
    kind: LossName, real: Tensor, fake: Tensor, flip: float = 0.0, smoothing: float = 0.0
) -> Tensor:
    """The discriminator's loss from its scores on a real and a fake batch."""
    if kind in LOGISTIC:
        t_real = discriminator_targets(len(real), True, flip, smoothing, real.device)
        t_fake = discriminator_targets(len(fake), False, flip, smoothing, fake.device)
        return F.binary_cross_entropy_with_logits(real, t_real) + F.binary_cross_entropy_with_logits(fake, t_fake)
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    if kind == "hinge":  # max(0, 1 - D(x)) + max(0, 1 + D(G(z)))
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LossName.__args__}")


def g_loss(kind: LossName, fake: Tensor) -> Tensor:
    """The generator's loss from the discriminator's scores on its samples."""
    if kind == "nonsaturating":  # -log D(G(z))
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - D(G(z))), the saturating original
        return -F.softplus(fake).mean()
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LossName.__args__}")
