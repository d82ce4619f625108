"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment"): the same random transforms on
real and fake images before D, differentiable so G still gets gradients. For small datasets.
ADA (the `ada` term) applies each op to a sample with an adapted probability p instead of always."""

from __future__ import annotations

import torch
from torch import Tensor


def color(x: Tensor) -> Tensor:
    """Random brightness, saturation and contrast per sample."""
    n = len(x)
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each sample by whole pixels, up to `ratio` of its height and width, filling with zeros.
    Gathers only, so it is twice differentiable on every device (R1/R2 through D's augmentation):
    CUDA has no double backward of grid_sample."""
    n, c, h, w = x.shape
    dy = torch.randint(-int(h * ratio), int(h * ratio) + 1, (n, 1), device=x.device)
    dx = torch.randint(-int(w * ratio), int(w * ratio) + 1, (n, 1), device=x.device)
    rows, cols = torch.arange(h, device=x.device) + dy, torch.arange(w, device=x.device) + dx  # source pixels
    inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    x = x.gather(2, rows.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
    x = x.gather(3, cols.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
    return x * inside.to(x.dtype)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a random square of `ratio` times the image side in each sample."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - size_h % 2, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + 1 - size_w % 2, (n, 1, 1), device=x.device)
    ys, xs = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= size_h // 2) & ((xs - cx).abs() <= size_w // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[str]:
    """'translation,cutout' -> ['translation', 'cutout']; '' -> []."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = sorted(set(names) - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}; use a comma-separated subset of {sorted(POLICIES)}")
    return names


def diff_augment(x: Tensor, policy: list[str], p: float | Tensor = 1.0) -> Tensor:
    """`x` through each op of `policy` in turn; with `p` < 1 (ADA) each op changes each sample
    with probability p only. Differentiable in `x` either way. A tensor `p` (ADA's, on the
    device) is never read on the host: each op runs and is kept where a uniform draw falls below p."""
    for name in policy:
        if isinstance(p, Tensor):
            chosen = torch.rand(len(x), *[1] * (x.ndim - 1), device=x.device) < p.to(x.device)
            x = torch.where(chosen, POLICIES[name](x), x)
        elif p >= 1.0:
            x = POLICIES[name](x)
        elif p > 0.0:
            chosen = torch.rand(len(x), *[1] * (x.ndim - 1), device=x.device) < p
            x = torch.where(chosen, POLICIES[name](x), x)
    return x
