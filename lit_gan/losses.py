"""Adversarial losses on discriminator logits, by name.

One sign convention everywhere: the discriminator (or critic) outputs a real-valued score,
**higher = more real**. No network ends in a sigmoid; the logistic losses apply it themselves.
A new loss is one class with a D term and a G term (its arguments: `__init__`), plus one line in `LOSSES`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gan.util import construct, parts, require


class AdversarialLoss:
    """D's loss from its scores on a real and a fake batch, and G's loss from D's scores on its
    samples. `g_sees_real`: G's term also needs D's scores on the real batch (relativistic
    losses); the loop computes them only then. `logistic`: scores are logits of P(real)."""

    name: str = ""
    logistic: bool = False
    g_sees_real: bool = False

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        raise NotImplementedError


class NonSaturating(AdversarialLoss):
    """Goodfellow et al. 2014: D minimises binary cross-entropy, G minimises -log D(G(z))."""

    logistic = True

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE with targets 1 and 0

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return F.softplus(-fake).mean()


class Minimax(NonSaturating):
    """The original saturating game: G minimises log(1 - D(G(z))), whose gradient vanishes
    when D confidently rejects G's samples."""

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -F.softplus(fake).mean()


class Wasserstein(AdversarialLoss):
    """Arjovsky et al. 2017: the critic maximises E[D(x)] - E[D(G(z))]; needs a Lipschitz
    constraint (weight clipping, a gradient penalty or spectral norm)."""

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -fake.mean()


class Hinge(Wasserstein):
    """Lim & Ye 2017 / SNGAN: D minimises max(0, m - D(x)) + max(0, m + D(G(z))) with margin m
    (1 in the papers); G as Wasserstein."""

    def __init__(self, margin: float = 1.0) -> None:
        require(margin > 0, f"hinge margin must be > 0, got {margin}")
        self.margin = margin

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(self.margin - real).mean() + F.relu(self.margin + fake).mean()


class RelativisticPairing(AdversarialLoss):
    """RpGAN (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024): each real sample is paired
    with the fake of the same batch index; D minimises softplus(-(D(x_r) - D(x_f))), i.e. wants
    every real scored above its fake, and G minimises softplus(-(D(x_f) - D(x_r))). Pair with the
    `r1` and `r2` penalties, which make it converge locally. Scores are not logits of P(real)
    on their own (only differences are), so the loss is not `logistic`."""

    g_sees_real = True

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(fake - real).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        if real is None:
            raise ValueError("the relativistic pairing loss needs D's scores on the real batch for G's loss too")
        return F.softplus(real - fake).mean()


LOSSES: dict[str, type[AdversarialLoss]] = {
    "nonsaturating": NonSaturating,
    "minimax": Minimax,
    "wasserstein": Wasserstein,
    "hinge": Hinge,
    "rpgan": RelativisticPairing,
}
"""Every adversarial loss by the name `objective.loss` takes: `hinge`, or with arguments `{hinge: {margin: 2}}`."""


def build(spec: str | Mapping[str, Mapping[str, Any] | None]) -> AdversarialLoss:
    """The loss a spec names, built with its arguments."""
    named = parts(spec)
    require(len(named) == 1, f"objective.loss names one loss, e.g. hinge or {{hinge: {{margin: 1}}}}; got {spec!r}")
    (name, args), = named.items()
    loss = construct("loss", LOSSES, name, args)
    loss.name = name
    return loss


def input_gradient(critic: Callable[[Tensor], Tensor], x: Tensor, scale: float = 1.0) -> Tensor:
    """grad_x D(x) per sample, in fp32, with a graph (so a penalty on it trains D), flattened to
    (N, everything else). `scale` is the GradScaler's scale under `16-mixed`: the gradient is
    taken of the scaled output (so fp16 gradients do not underflow) and unscaled after (PyTorch's
    AMP gradient-penalty recipe); 1 otherwise."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum() * scale, x, create_graph=True)
    return (grad.float() / scale).flatten(1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, scale: float = 1.0) -> Tensor:
    """WGAN-GP's penalty E[(||grad_x D(x)||_2 - 1)^2] at random interpolates x between real and
    fake samples; the norm is per sample over all non-batch dimensions (`scale`: as in `input_gradient`)."""
    eps = torch.rand(len(real), *[1] * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x = eps * real.detach() + (1 - eps) * fake.detach()
    return ((input_gradient(critic, x, scale).norm(2, dim=1) - 1) ** 2).mean()


def zero_centred_penalty(critic: Callable[[Tensor], Tensor], x: Tensor, scale: float = 1.0) -> Tensor:
    """E||grad_x D(x)||_2^2 at the samples `x` themselves (Mescheder et al. 2018: R1 on real data,
    R2 on generated data); the norm is per sample over all non-batch dimensions."""
    return input_gradient(critic, x, scale).pow(2).sum(1).mean()
