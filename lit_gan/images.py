"""Converting generated tensors to pictures."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


def to_uint8(images: Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Map images in `value_range` to uint8 with rounding (not truncation)."""
    lo, hi = value_range
    return ((images.detach().float().cpu() - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)


def save_grid(images: Tensor, path: str | Path, nrow: int = 8, value_range: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """Write `images` (N, C, H, W) as one PNG grid with `nrow` images per row."""
    grid = make_grid(to_uint8(images, value_range), nrow=nrow, padding=2, pad_value=255)[: images.shape[1]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = grid.permute(1, 2, 0).numpy()  # make_grid repeats one channel 3x; [:C] keeps grey as grey
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
    return path
