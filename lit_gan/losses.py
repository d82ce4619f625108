"""Adversarial losses on discriminator logits.

One sign convention everywhere: the discriminator (or critic) outputs a real-valued score,
**higher = more real**. No network ends in a sigmoid; the logistic losses apply it themselves.
"""

from __future__ import annotations

from typing import Callable, Literal

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


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, scale: float = 1.0) -> Tensor:
    """WGAN-GP's penalty E[(||grad_x D(x)||_2 - 1)^2] at random interpolates x between real and
    fake samples; the norm is per sample over all non-batch dimensions.

    `scale` is the GradScaler's scale under `16-mixed`: the gradient is taken of the scaled output
    (so fp16 gradients do not underflow) and unscaled before the norm (PyTorch's AMP recipe).
    """
    eps = torch.rand(len(real), *[1] * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum() * scale, x, create_graph=True)
    norm = (grad.float() / scale).flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()
