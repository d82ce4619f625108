"""`lit-gan generate`: images for chosen labels, latent interpolations and latent arithmetic
from any lit_gan checkpoint. Seeded: the same command gives the same images.

    lit-gan generate samples     --checkpoint last.ckpt --labels [3] --num 16 --out sevens
    lit-gan generate interpolate --checkpoint last.ckpt --pairs 4 --steps 10
    lit-gan generate arithmetic  --checkpoint last.ckpt --a [3,17] --b [5] --c [40,41]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_gan.images import save_grid, to_uint8
from lit_gan.models import GAN, Generative
from lit_gan.progress import bar


def load(checkpoint: str | Path, device: str = "cpu") -> Generative:
    """Any variant's checkpoint, of this version or an earlier one (read with weights_only=True)."""
    return GAN.load_from_checkpoint(checkpoint, map_location=device).eval()


def _out_dir(out: str | Path, overwrite: bool) -> Path:
    """`out`, created; a non-empty one only with `overwrite`, and then emptied of the images an
    earlier `generate` wrote there (other files are left alone), so no stale image stays behind."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; choose another --out or pass --overwrite true")
        for old in [*out.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"), *(out / n for n in ("grid.png", "samples.pt", "samples.npz"))]:
            old.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _count(name: str, n: int) -> int:
    if n < 1:
        raise ValueError(f"--{name} must be at least 1, got {n}")
    return n


def _one_label(model: Generative, label: int | None) -> list[int] | None:
    """A conditional model draws `label` (class 0 by default); an unconditional one takes none."""
    if label is None:
        return [0] if model.conditional else None
    return [label]


def _labels(model: Generative, labels: list[int] | None, n: int) -> Tensor | None:
    k = model.num_classes
    if not model.conditional:
        if labels:
            raise ValueError("this model is not conditional: it cannot draw chosen labels; leave --labels out")
        return None
    chosen = torch.tensor(labels if labels else list(range(k)))
    if chosen.min() < 0 or chosen.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} for this model, got {labels}")
    return chosen.repeat((n + len(chosen) - 1) // len(chosen))[:n]


def _noise(model: Generative, n: int, seed: int) -> Tensor:
    return model.sample_z(n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def _draw(model: Generative, z: Tensor, labels: Tensor | None) -> Tensor:
    """Images for `z` (from `model.sample_z`, so on the model's device) and `labels`."""
    return model.generate(z=z, labels=None if labels is None else labels.to(z.device))


FORMATS = ("png", "pt", "npz")


def samples(
    checkpoint: str, out: str = "generated", num: int = 64, labels: list[int] | None = None,
    seed: int = 0, nrow: int = 8, grid: int = 64, format: str = "png", overwrite: bool = False,
    device: str = "cpu", batch_size: int = 500,
) -> Path:
    """`num` images (cycling through `labels` for conditional models, all classes by default):
    `format` png writes `out/000000.png ...`; pt / npz write one file, `out/samples.pt` (uint8
    images (N, C, H, W) and labels, for `torch.load`) or `out/samples.npz` (numpy arrays `images`
    and `labels`), for external metrics. `out/grid.png` shows the first `grid` images (0: no grid).
    Returns the grid (png) or the file written (pt, npz)."""
    num = _count("num", num)
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if grid < 0:
        raise ValueError(f"--grid is a number of images (0: no grid), got {grid}")
    model, folder = load(checkpoint, device), _out_dir(out, overwrite)
    y = _labels(model, labels, num)
    z = _noise(model, num, seed)
    chunks = [_draw(model, z[i : i + batch_size], None if y is None else y[i : i + batch_size])
              for i in bar(range(0, num, batch_size), desc="generating", unit="batch", enabled=num > batch_size)]
    images = torch.cat(chunks)
    pixels = to_uint8(images, model.value_range)
    shown = save_grid(images[:grid], folder / "grid.png", nrow=nrow, value_range=model.value_range) if grid else folder
    if format == "png":
        for i, image in enumerate(bar(pixels, num, "writing", "image", enabled=num > batch_size)):
            save_grid(image[None].float() / 255, folder / f"{i:06d}.png", nrow=1, value_range=(0.0, 1.0))
        return shown
    if format == "pt":
        torch.save({"images": pixels, "labels": y}, folder / "samples.pt")
        return folder / "samples.pt"
    np.savez_compressed(folder / "samples.npz", images=pixels.numpy(), **({} if y is None else {"labels": y.numpy()}))
    return folder / "samples.npz"


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation, the right path between Gaussian latents (lerp for parallel ones)."""
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.where(so.abs() < 1e-6, (1 - t) * a + t * b, (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so)


def interpolate(
    checkpoint: str, out: str = "interpolation", pairs: int = 4, steps: int = 8, label: int | None = None,
    seed: int = 0, overwrite: bool = False, device: str = "cpu",
) -> Path:
    """One row per pair of random latents, `steps` images from one to the other (slerp for normal
    noise, straight lines for uniform noise); conditional models hold `label` fixed."""
    pairs, steps = _count("pairs", pairs), _count("steps", steps)
    model, folder = load(checkpoint, device), _out_dir(out, overwrite)
    ends = _noise(model, 2 * pairs, seed).view(pairs, 2, -1)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    a, b = ends[:, :1], ends[:, 1:]
    z = slerp(a, b, t) if model.noise == "normal" else (1 - t) * a + t * b
    y = _labels(model, _one_label(model, label), pairs * steps)
    return save_grid(_draw(model, z.reshape(pairs * steps, -1), y), folder / "grid.png", nrow=steps, value_range=model.value_range)


def arithmetic(
    checkpoint: str, a: list[int], b: list[int], c: list[int], out: str = "arithmetic", num: int = 64,
    label: int | None = None, seed: int = 0, overwrite: bool = False, device: str = "cpu",
) -> Path:
    """Latent vector arithmetic (Radford et al.): mean z of group A - group B + group C. Groups are
    indices into the `num` samples that `generate samples --seed SEED` draws (its grid, row by
    row). Writes one row: mean A, mean B, mean C, and the result."""
    num = _count("num", num)
    model, folder = load(checkpoint, device), _out_dir(out, overwrite)
    z = _noise(model, num, seed)
    for name, group in (("a", a), ("b", b), ("c", c)):
        if not group or min(group) < 0 or max(group) >= num:
            raise ValueError(f"--{name} needs sample indices in 0..{num - 1}, got {group}")
    means = [z[torch.tensor(g)].mean(0) for g in (a, b, c)]
    rows = torch.stack([*means, means[0] - means[1] + means[2]])
    y = _labels(model, _one_label(model, label), len(rows))
    return save_grid(_draw(model, rows, y), folder / "grid.png", nrow=len(rows), value_range=model.value_range)


def main(args: list[str] | None = None) -> None:
    from jsonargparse import CLI

    path = CLI([samples, interpolate, arithmetic], args=args, as_positional=False)
    print(f"Wrote {path}")
