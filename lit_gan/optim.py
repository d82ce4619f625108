"""How each network is updated, as small dataclasses, so configs and sweeps set flat keys
(`--model.init_args.opt_d.lr=1e-4`, `--model.init_args.opt_d.steps=5`, `--model.init_args.ema.decay=0.999`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import torch
from lightning.pytorch.utilities import rank_zero_warn

from lit_gan.util import check_int, require

FP16_EPS = 1e-4


@dataclass(frozen=True)
class Optim:
    """One network's optimizer: Adam, RMSprop or SGD, and its `steps` per round: a round is
    `opt_d.steps` batches, each with one D step, then `opt_g.steps` G steps (WGAN: 5 and 1)."""

    name: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam only
    momentum: float = 0.0  # SGD and RMSprop only
    weight_decay: float = 0.0
    eps: float = 1e-8  # Adam and RMSprop: added to the denominator
    steps: int = 1

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, "the network's updates per round, e.g. --model.init_args.opt_d.steps 5")
        if self.name not in ("adam", "rmsprop", "sgd"):
            raise ValueError(f"optimizer name {self.name!r} is unknown; use adam, rmsprop or sgd")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got lr={self.lr}; try 2e-4")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"Adam betas must lie in [0, 1), got {self.betas}; try (0.5, 0.999)")
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0:
            raise ValueError(f"momentum must lie in [0, 1) and weight_decay be >= 0, got {self.momentum}, {self.weight_decay}")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps}; try 1e-8 (1e-4 for fp16 weights, --trainer.precision 16-true)")

    @classmethod
    def parse(cls, value: "Optim | dict") -> "Optim":
        """An `Optim` from itself or from a mapping (as configs deliver it)."""
        return value if isinstance(value, cls) else cls(**{**value, "betas": tuple(value.get("betas", cls.betas))})

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer; for fp16 weights (`--trainer.precision 16-true`) an `eps` below 1e-4, which
        fp16 rounds to (almost) zero so the first step divides by zero, is raised to 1e-4, once said."""
        params = list(params)
        eps = self.eps
        if self.name != "sgd" and eps < FP16_EPS and any(p.dtype == torch.float16 for p in params):
            rank_zero_warn(f"fp16 weights: {self.name}'s eps {eps:g} is (almost) zero in fp16; using {FP16_EPS:g} "
                           "(set --model.init_args.opt_g.eps / opt_d.eps to choose)")
            eps = FP16_EPS
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=eps, weight_decay=self.weight_decay)
        if self.name == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr, momentum=self.momentum, eps=eps, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


@dataclass(frozen=True)
class EMA:
    """An exponential moving average of G's weights, used outside training.

    Args:
        decay: ema <- decay * ema + (1 - decay) * G after every G update (0: no EMA; try 0.999).
        rampup: StyleGAN2's ramp-up: the EMA's half-life is at most this fraction of the G updates
            so far (e.g. 0.05), so early weights are forgotten fast; 0: `decay` throughout.
    """

    decay: float = 0.0
    rampup: float = 0.0

    def __post_init__(self) -> None:
        require(0.0 <= self.decay < 1.0, f"ema decay must lie in [0, 1) (0 turns EMA off; try 0.999), got {self.decay}")
        require(self.rampup >= 0.0, f"ema rampup must be >= 0 (0 turns the ramp-up off; StyleGAN2 uses 0.05), got {self.rampup}")

    def decay_after(self, updates: int) -> float:
        """The decay of the `updates`-th G update (1-based)."""
        if not self.rampup:
            return self.decay
        return min(self.decay, 0.5 ** (1.0 / (self.rampup * updates)))
